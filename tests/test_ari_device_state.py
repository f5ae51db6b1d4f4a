"""Issue 11: an employee whose phone is busy with any call, or unregistered, is not
offered a queue call (Asterisk's device state, followed over ARI).

The app subscribes to ``deviceState:`` of every employee's desk phone and reads
each one's state after connecting; the simulator computes device states as
chan_pjsip does (asterisk_sim/devices.py).  Which phones the app rang is read
from the simulator's requests."""

from __future__ import annotations

import datetime as dt

import pytest

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from

TEAM = """
timezone: Europe/Moscow
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


def rung(stack: AriStack) -> list[str]:
    return [
        str(r.query.get("endpoint"))
        for r in stack.sim.requests
        if r.method == "POST" and r.path == "/ari/channels/create"
    ]


def reads(sim: AsteriskSimulator) -> list[str]:
    return [
        r.path
        for r in sim.requests
        if r.method == "GET" and r.path.startswith("/ari/deviceStates/")
    ]


def subscribed(stack: AriStack) -> set[str]:
    return {
        source
        for r in stack.sim.requests
        if r.method == "POST" and r.path.endswith("/subscription")
        for source in str(r.query.get("eventSource", "")).split(",")
    }


@pytest.mark.asyncio
async def test_a_phone_on_its_own_call_is_skipped_until_it_hangs_up() -> None:
    clock = ScaledClock(0.05)
    stack = AriStack(company_from(TEAM), clock=clock, when=WHEN)
    async with stack:
        for phone in ("PJSIP/201", "PJSIP/202"):
            stack.sim.script_endpoint(phone, EndpointScript("answer", after=1, hangup_after=5))
        await stack.sim.wait_for(lambda s: len(reads(s)) == 2, what="the desk phones read")
        assert subscribed(stack) == {"deviceState:PJSIP/201", "deviceState:PJSIP/202"}
        # ivanov is on an internal call of his own (the app never placed it); the event
        # saying so reaches the app before the next call's StasisStart
        own = await stack.sim.call_from("PJSIP/201", "74957654321")
        assert stack.sim.device_state("PJSIP/201") == "INUSE"
        first = await stack.place(caller="79035550001", called="74951234567")
        record = await stack.record_of(first, within=30)
        assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
        assert rung(stack) == ["PJSIP/202"]
        await stack.sim.hangup(own)
        second = await stack.place(caller="79035550002", called="74951234567")
        record = await stack.record_of(second, within=30)
        assert record.outcome.agent == "ivanov"  # free again: first in the order
        await stack.settled()
    assert rung(stack) == ["PJSIP/202", "PJSIP/201"]


@pytest.mark.asyncio
async def test_an_unregistered_phone_is_not_rung() -> None:
    clock = ScaledClock(0.05)
    stack = AriStack(company_from(TEAM), clock=clock, when=WHEN)
    async with stack:
        stack.sim.script_endpoint("PJSIP/202", EndpointScript("answer", after=1, hangup_after=5))
        await stack.sim.wait_for(lambda s: len(reads(s)) == 2, what="the desk phones read")
        stack.sim.unregister_endpoint("PJSIP/201")
        caller = await stack.place(caller="79035550001", called="74951234567")
        record = await stack.record_of(caller, within=30)
        await stack.settled()
    assert record.outcome.agent == "petrov"
    assert rung(stack) == ["PJSIP/202"]
