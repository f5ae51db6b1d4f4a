"""Switchboard over FastAGI on a real Asterisk 22 (issue 15), through the dialplan as
shipped (``dialplan/extensions-switchboard-agi.conf``): a call to
``switchboard-agi-scenario`` runs the whole scenario in the suite's FastAGI server.

- The whisper: Dial's ``U(switchboard-whisper)`` runs the shipped subroutine on the
  employee's Local channel before the bridge; it sets SWITCHBOARD_WHISPER_RESULT there
  (Asterisk's own ChannelVarset event) before that channel enters the bridge.  A phone
  that presses * during it is hung up and the next member is rung.
- The caller-ID name: the pre-dial handler ``[switchboard-caller-id]`` gives the phone
  the department's name.
- Recording: MixMonitor's file appears in Asterisk's recording folder under the call's
  id (read back through ``/recordings/stored``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from switchboard.config.company import Company
from switchboard.config.load import load_text
from tests.real_asterisk.conftest import RunningAgi
from tests.real_asterisk.harness import PHONES, RealAsterisk
from tests.real_asterisk.test_caller_id_name import shown
from tests.real_asterisk.test_recording import first, stored_seconds

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
Start = Callable[[Company], AbstractAsyncContextManager[RunningAgi]]
SCENARIO = "switchboard-agi-scenario"  # the shipped context
CALLER = "79035550003"

CONFIG = f"""
timezone: Europe/Moscow
employees:
  - {{id: e131, name: E131, extension: "131"}}
  - {{id: e132, name: E132, extension: "132"}}
  - {{id: e133, name: E133, extension: "133"}}
departments:
  - id: sales
    members: [e131]
    caller_id_name: "[Sales] {{caller_name}}"
    whisper: {{prompts: [please-hold]}}
    record: always
  - id: support
    strategy: one_by_one
    ring_delay: 15
    members: [e132, e133]
    whisper: {{prompts: [please-hold, "digits:42"]}}
numbers:
  - {{number: "74951110007", scenario: sales}}
  - {{number: "74951110008", scenario: support}}
asterisk:
  endpoints: {{employee: "Local/{{extension}}@{PHONES}/n", mobile: "Local/{{number}}@{PHONES}/n"}}
scenarios:
  sales:
    start: ring
    nodes:
      ring: {{type: dial, target: sales, ring_timeout: 20, noanswer: bye}}
      bye: {{type: hangup}}
  support:
    start: ring
    nodes:
      ring: {{type: dial, target: support, ring_timeout: 40, noanswer: bye}}
      bye: {{type: hangup}}
"""


def leg_of(pbx: RealAsterisk, extension: str) -> str:
    """The id of the ;1 half of the Local channel Dial made to ``extension``."""
    (leg,) = [c["id"] for c in pbx.created() if c["name"].startswith(f"Local/{extension}@")]
    return leg


def whisper_result(event: dict[str, Any], leg: str) -> bool:
    return (
        event["type"] == "ChannelVarset"
        and event.get("channel", {}).get("id") == leg
        and event["variable"] == "SWITCHBOARD_WHISPER_RESULT"
    )


async def test_over_fastagi_the_whisper_comes_before_the_bridge_and_the_call_is_recorded(
    pbx: RealAsterisk, agi_switchboard: Start
) -> None:
    await pbx.phone("131", "speak:1:6")  # a tone: MixMonitor writes the frames that pass
    company = load_text(CONFIG, "fastagi.yaml").raise_for_errors()
    async with agi_switchboard(company) as sb:
        call = await pbx.call("74951110007", CALLER, name="Anna", context=SCENARIO)
        record = await sb.record(call)
    name = f"switchboard-{record.call_id}-conversation"
    try:
        assert (record.outcome.result, record.outcome.agent) == ("connected", "e131")
        leg = leg_of(pbx, "131")
        events = pbx.events
        verdict = first(events, lambda e: whisper_result(e, leg))
        assert events[verdict]["value"].startswith("accepted:")
        bridged = first(events, lambda e: e["type"] == "ChannelEnteredBridge"
                        and e["channel"]["id"] == leg)  # fmt: skip
        assert verdict < bridged
        assert shown(pbx, "131") == {("[Sales] Anna", CALLER)}
        assert record.outcome.extra["recording"] == "conversation"
        # the conversation after the whisper (about 3 s of the phone's 6), not the ringing
        assert 1.5 <= await stored_seconds(pbx, name) <= 6.0
    finally:
        await pbx.request("DELETE", f"/recordings/stored/{name}")


async def test_over_fastagi_a_refusal_during_the_whisper_rings_the_next_member(
    pbx: RealAsterisk, agi_switchboard: Start
) -> None:
    await pbx.phone("132", "refuse:1:10")
    await pbx.phone("133", "answer:1:8")  # talks past its whisper
    company = load_text(CONFIG, "fastagi.yaml").raise_for_errors()
    async with agi_switchboard(company) as sb:
        call = await pbx.call("74951110008", CALLER, context=SCENARIO)
        record = await sb.record(call)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "e133")
    path = [
        (e["event"], e["agent"])
        for step in record.steps
        for e in step.events
        if e["event"] in ("ring", "answer", "noanswer")
    ]
    assert path == [("ring", "e132"), ("noanswer", "e132"), ("ring", "e133"), ("answer", "e133")]
    refused, taken = leg_of(pbx, "132"), leg_of(pbx, "133")
    events = pbx.events
    assert events[first(events, lambda e: whisper_result(e, refused))]["value"] == "refused"
    assert not any(
        e["type"] == "ChannelEnteredBridge" and e["channel"]["id"] == refused for e in events
    )
    assert events[first(events, lambda e: whisper_result(e, taken))]["value"].startswith(
        "accepted:"
    )
