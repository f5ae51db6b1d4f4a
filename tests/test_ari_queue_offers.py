"""Queues over ARI: one waiting caller at a time rings a freed employee, and hears its place.

An employee being offered a queue call is held for that call (the ACD's claim):
the other callers waiting in the queue do not ring them meanwhile, and when
they free up the caller who arrived first is offered them first.  Read from
the simulator's record of the legs the app created.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from asterisk_sim import EndpointScript
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


ANNOUNCING = DESK.replace("announce_every: 0,", "announce_every: 10, announce_prompt: please-hold,")


def announced(stack: AriStack, channel: str) -> list[tuple[float, str]]:
    """(time, media) of every announcement played to ``channel``."""
    return [
        (r.t, r.query["media"])
        for r in stack.sim.requests
        if r.method == "POST"
        and r.path.startswith(f"/ari/channels/{channel}/play")
        and "please-hold" in r.query["media"]
    ]


@pytest.mark.asyncio
async def test_a_waiting_caller_hears_their_place_in_the_queue_move_up() -> None:
    company = company_from(ANNOUNCING)
    clock = ScaledClock(0.03)
    stack = AriStack(company, clock=clock, when=WHEN)
    async with stack:
        # the one employee takes the first caller for 30 s; two more wait behind
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=30))
        first = await stack.place(caller="79035550000", called="74951234567")
        await clock.sleep(1.0)
        second = await stack.place(caller="79035550001", called="74951234567")
        await clock.sleep(1.0)
        third = await stack.place(caller="79035550002", called="74951234567")
        records = [await stack.record_of(c, within=30) for c in (first, second, third)]
        await stack.settled()
    assert [r.outcome.result for r in records] == ["connected"] * 3
    assert not announced(stack, first)  # served at once
    second_heard = [media for _, media in announced(stack, second)]
    third_heard = [media for _, media in announced(stack, third)]
    # the second caller is next from the start; the third is second until the second
    # caller is served (at about 31 s), then next
    assert second_heard
    assert all(place(m) == 1 for m in second_heard), second_heard
    assert place(third_heard[0]) == 2, third_heard
    assert place(third_heard[-1]) == 1, third_heard
    # once a conversation has been seen the estimate follows the place: 1 minute (one
    # agent, a handle time of about 31 s)
    assert third_heard[-1].endswith("estimated-wait,number:1,sound:switchboard/minutes-1")


def place(media: str) -> int:
    """The place an announcement says (``...position-is,number:N...``)."""
    return int(media.split("position-is,number:", 1)[1].split(",", 1)[0])
