"""Issue 12: a call's record joins Asterisk's own CDR and CEL.

Every call marks the caller's channel (``SWITCHBOARD_CALL_ID``, ``SWITCHBOARD_SCENARIO``,
and ``SWITCHBOARD_RESULT`` when Switchboard lets it go) and its record keeps the
channel's uniqueid and linkedid (``CHANNEL(linkedid)``, funcs/func_channel.c), over
ARI and FastAGI alike; the ``calls`` table stores both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from asterisk_sim import EndpointScript
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from switchboard.storage.records import record_row
from tests.agi_stack import AgiStack
from tests.helpers import company_from
from tests.test_storage_records import simple_record

SHORT = """
timezone: Europe/Moscow
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: ivanov, ring_timeout: 20, noanswer: bye}
      bye: {type: hangup}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.asyncio
async def test_over_ari_the_callers_channel_is_marked_and_the_record_has_its_ids() -> None:
    stack = AriStack(company_from(SHORT), clock=ScaledClock(0.02), when=WHEN)
    async with stack:
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=5))
        caller = await stack.place(caller="79035550000", called="74951234567")
        record = await stack.record_of(caller)
        await stack.settled()
        variables = stack.sim.channels[caller].variables
    assert (record.channel_id, record.linkedid) == (caller, caller)  # its own: an inbound call
    assert variables["SWITCHBOARD_CALL_ID"] == record.call_id
    assert variables["SWITCHBOARD_SCENARIO"] == "main"
    # Ivan hung up: Switchboard let the caller go, and said how the call ended
    assert variables["SWITCHBOARD_RESULT"] == record.outcome.result == "connected"


GREETING_FIRST = SHORT.replace(
    "start: ring\n    nodes:\n",
    "start: hello\n    nodes:\n      hello: {type: play, prompt: welcome, next: ring}\n",
)


@pytest.mark.asyncio
async def test_over_ari_the_marks_are_on_the_channel_while_the_first_prompt_plays() -> None:
    """Asterisk sets a channel variable in turn with the channel's other commands, after a
    prompt that plays (res/stasis/control.c): marks sent after the first prompt would be
    there only when it ends, and a dialplan or CDR reading them meanwhile would miss them."""
    stack = AriStack(company_from(GREETING_FIRST), clock=ScaledClock(0.05), when=WHEN)
    async with stack:
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=2))
        caller = await stack.place(caller="79035550000", called="74951234567")
        channel = stack.sim.channels[caller]

        def greeting() -> list[str]:
            return [
                p.state
                for p in stack.sim.pbx.playbacks.values()
                if p.target_id == caller and "welcome" in p.media_uri
            ]

        await stack.sim.wait_for(lambda _: "SWITCHBOARD_SCENARIO" in channel.variables)
        states_when_marked = greeting()
        record = await stack.record_of(caller)
        await stack.settled()
    assert "done" not in states_when_marked  # marked before the greeting was over
    assert channel.variables["SWITCHBOARD_CALL_ID"] == record.call_id


@pytest.mark.asyncio
async def test_over_fastagi_the_record_has_the_channels_ids_and_the_channel_its_marks() -> None:
    async with AgiStack(company_from(SHORT), WHEN) as stack:
        call = await stack.call("scenario", args=("74951234567",), uniqueid="1733050000.77")
    [record] = stack.memory.records
    assert (record.channel_id, record.linkedid) == ("1733050000.77", "1733050000.77")
    assert call.variables["SWITCHBOARD_CALL_ID"] == record.call_id
    assert call.variables["SWITCHBOARD_SCENARIO"] == "main"
    assert call.variables["SWITCHBOARD_RESULT"] == record.outcome.result


def test_the_calls_row_keeps_the_uniqueid_and_the_linkedid() -> None:
    record = dataclasses.replace(simple_record("linked"), linkedid="1733050000.1")
    row = record_row(record, "test", None)
    assert (row["uniqueid"], row["linkedid"]) == ("1.1", "1733050000.1")
    unknown = dataclasses.replace(record, channel_id="", linkedid="")
    assert (
        record_row(unknown, "test", None)["uniqueid"],
        record_row(unknown, "test", None)["linkedid"],
    ) == (None, None)
