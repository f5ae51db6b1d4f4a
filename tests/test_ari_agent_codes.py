"""Issue 11: agents change their state from their desk phones over ARI.

The dialplan sends ``*71`` / ``*72`` / ``*73`` to the Stasis app with the
arguments ``agent,login`` / ``agent,logout`` / ``agent,toggle``; the simulator
places such a call from the phone itself (``PJSIP/201``), and the app answers,
changes the agent's state in its ACD, plays the confirmation and hangs up.
Which phones a queue call then rings is read from the simulator's requests.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.acd import Acd
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from

TEAM = """
timezone: Europe/Moscow
language: ru
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
  - {id: petrov, name: Pyotr Petrov, extension: "202"}
departments:
  - {id: sales, strategy: one_by_one, ring_delay: 10, ring_timeout: 30, members: [ivanov, petrov]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: sales, announce_every: 0, max_wait: 300, overflow: bye}
      bye: {type: hangup}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
CODES = {"*71": "login", "*72": "logout", "*73": "toggle"}


def rung(stack: AriStack) -> list[str]:
    return [
        str(r.query.get("endpoint"))
        for r in stack.sim.requests
        if r.method == "POST" and r.path == "/ari/channels/create"
    ]


def state(acd: Acd, agent: str) -> str:
    return acd.agents[agent].state


def played(sim: AsteriskSimulator, channel_id: str) -> list[tuple[str, str]]:
    """(media, lang) of every playback the app started on ``channel_id``."""
    return [
        (str(r.query.get("media")), str(r.query.get("lang")))
        for r in sim.requests
        if r.method == "POST" and r.path.startswith(f"/ari/channels/{channel_id}/play/")
    ]


async def dial_code(
    stack: AriStack, code: str, phone: str = "PJSIP/201", caller: str = "201", *extra: str
) -> str:
    """``phone`` dials a feature code (as extensions-switchboard.conf sends it); returns
    its channel once the app has hung it up."""
    channel = await stack.sim.place_call(
        caller, code, tech=phone, app_args=["agent", CODES.get(code, code), *extra],
        app=stack.company.config.asterisk.app,
    )  # fmt: skip
    await stack.sim.wait_for(
        lambda s: channel not in {c.id for c in s.live_channels()}, what="the code call over"
    )
    return channel


@pytest.mark.asyncio
async def test_an_agent_logs_out_pauses_and_logs_in_from_the_phone() -> None:
    stack = AriStack(company_from(TEAM), clock=ScaledClock(0.05), when=WHEN)
    async with stack:
        for phone in ("PJSIP/201", "PJSIP/202"):
            stack.sim.script_endpoint(phone, EndpointScript("answer", after=1, hangup_after=5))
        acd = stack.app.runtime.acd

        out = await dial_code(stack, "*72")
        assert state(acd, "ivanov") == "logged_out"
        assert played(stack.sim, out) == [("sound:switchboard/agent-logged-out", "ru")]
        assert stack.sim.channels[out].answered_at is not None
        change = acd.changes[-1]
        assert (change.agent, change.state, change.by) == ("ivanov", "logged_out", "phone")
        # a queue call is not offered to him: petrov takes it
        record = await stack.call(caller="79035550001", called="74951234567")
        assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
        assert rung(stack) == ["PJSIP/202"]

        back = await dial_code(stack, "*71")
        assert state(acd, "ivanov") == "available"
        assert played(stack.sim, back) == [("sound:switchboard/agent-logged-in", "ru")]

        paused = await dial_code(stack, "*73")
        assert (state(acd, "ivanov"), acd.changes[-1].by) == ("paused", "phone")
        assert played(stack.sim, paused) == [("sound:switchboard/agent-paused", "ru")]
        record = await stack.call(caller="79035550002", called="74951234567")
        assert record.outcome.agent == "petrov"

        resumed = await dial_code(stack, "*73")
        assert state(acd, "ivanov") == "available"
        assert played(stack.sim, resumed) == [("sound:switchboard/agent-resumed", "ru")]
        record = await stack.call(caller="79035550003", called="74951234567")
        assert record.outcome.agent == "ivanov"  # first in the order again
        await stack.settled()
    # the codes leave no call record: only the three queue calls are there
    assert [r.caller for r in stack.sink.records] == ["79035550001", "79035550002", "79035550003"]
    assert [(c.state, c.by) for c in acd.changes] == [
        ("logged_out", "phone"), ("available", "phone"), ("paused", "phone"),
        ("available", "phone"),
    ]  # fmt: skip
    assert rung(stack) == ["PJSIP/202", "PJSIP/202", "PJSIP/201"]


@pytest.mark.asyncio
async def test_a_pause_with_a_reason_and_the_phone_known_by_its_device() -> None:
    stack = AriStack(company_from(TEAM), clock=ScaledClock(0.05), when=WHEN)
    async with stack:
        acd = stack.app.runtime.acd
        # the desk phone sends no caller ID: its device (PJSIP/202-...) says whose it is
        await dial_code(stack, "pause", "PJSIP/202", "", "lunch")
        assert (acd.agents["petrov"].state, acd.agents["petrov"].reason) == ("paused", "lunch")
        assert acd.changes[-1].reason == "lunch"
        await dial_code(stack, "resume", "PJSIP/202", "")
        assert acd.agents["petrov"].state == "available"
        await stack.settled()
    assert stack.sink.records == []


@pytest.mark.asyncio
async def test_a_phone_that_is_no_employees_is_refused() -> None:
    stack = AriStack(company_from(TEAM), clock=ScaledClock(0.05), when=WHEN)
    async with stack:
        acd = stack.app.runtime.acd
        stranger = await dial_code(stack, "*72", "PJSIP/299", "299")
        assert played(stack.sim, stranger) == [("sound:switchboard/agent-unknown", "ru")]
        # an action nobody knows: "not a valid choice", nothing changed
        odd = await dial_code(stack, "dance", "PJSIP/201", "201")
        assert played(stack.sim, odd) == [("sound:switchboard/invalid-option", "ru")]
        await stack.settled()
    assert {a.state for a in acd.agents.values()} == {"available"}
    assert list(acd.changes) == []
    assert stack.sink.records == []
