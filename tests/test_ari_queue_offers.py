"""Queue offers over ARI: one waiting caller at a time rings a freed employee.

An employee being offered a queue call is held for that call (`AgentPool`):
the other callers waiting in the queue do not ring them meanwhile, and when
they free up the caller who arrived first is offered them first.  Read from
the simulator's record of the legs the app created.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from asterisk_sim import EndpointScript
from switchboard.calls import AgentPool
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from

DESK = """
timezone: Europe/Moscow
employees:
  - {id: solo, name: Solo, extension: "201"}
departments:
  - {id: desk, strategy: all_at_once, ring_timeout: 30, members: [solo]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 0, max_wait: 300, retry: 5,
             overflow: bye}
      bye: {type: hangup}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
ANSWER_AFTER, TALK = 3.0, 10.0


@pytest.mark.asyncio
async def test_three_waiting_callers_are_offered_the_one_employee_in_turn() -> None:
    company = company_from(DESK)
    clock = ScaledClock(0.03)
    stack = AriStack(company, clock=clock, when=WHEN)
    async with stack:
        stack.sim.script_endpoint(
            "PJSIP/201", EndpointScript("answer", after=ANSWER_AFTER, hangup_after=TALK)
        )
        channels = []
        for n in range(3):
            channels.append(await stack.place(caller=f"7903555000{n}", called="74951234567"))
            await clock.sleep(1.0)
        records = [await stack.record_of(channel, within=30) for channel in channels]
        await stack.settled()
    assert [r.outcome.result for r in records] == ["connected"] * 3
    legs = [
        (r.t, r.query["channelId"])
        for r in stack.sim.requests
        if r.method == "POST" and r.path == "/ari/channels/create"
    ]
    # one leg per caller, never two ringing the one phone: each offer only after the
    # previous conversation (answer + talk) is over
    assert len(legs) == 3
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(legs)]
    assert all(gap >= ANSWER_AFTER + TALK - 0.75 for gap in gaps), gaps
    # first come, first served
    offered = [next(r.call_id for r in records if leg.startswith(r.call_id)) for _, leg in legs]
    assert offered == [r.call_id for r in records]


def test_an_employee_held_for_one_offer_is_taken_for_every_other_caller() -> None:
    pool = AgentPool()
    told: list[tuple[str, str, str]] = []
    first, second = object(), object()
    pool.subscribe(lambda s: told.append(("a", s.employee_id, s.state)))
    pool.subscribe(lambda s: told.append(("b", s.employee_id, s.state)))
    assert pool.reserve("solo", first)
    assert pool.reserve("solo", first)  # their mobile, in the same offer
    assert not pool.reserve("solo", second)
    pool.release("solo", second)  # not theirs to release
    assert pool.states["solo"] == "busy"
    pool.release("solo", first)
    assert pool.states["solo"] == "available"
    assert pool.reserve("solo", second)
    # listeners hear in the order they subscribed: calls in the order they arrived
    assert told[:4] == [
        ("a", "solo", "busy"), ("b", "solo", "busy"),
        ("a", "solo", "available"), ("b", "solo", "available"),
    ]  # fmt: skip
