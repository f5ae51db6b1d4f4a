"""Issue 11: distribution strategies over ARI, on the simulator.

Thirty calls, one after another, reach a queue served by three free agents who
answer and talk briefly.  Which agent took each call is read from the records;
the ACD's statistics (last conversation's end, conversations so far, the
department's last taker) decide the next."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest

from asterisk_sim import EndpointScript
from switchboard.clock import ScaledClock
from switchboard.config.model import RingStrategy
from switchboard.demo import AriStack
from tests.helpers import company_from

TEAM = """
timezone: Europe/Moscow
employees:
  - {{id: anna, name: Anna, extension: "201"}}
  - {{id: boris, name: Boris, extension: "202"}}
  - {{id: vera, name: Vera, extension: "203"}}
departments:
  - {{id: desk, strategy: {strategy}, ring_delay: 10, ring_timeout: 30,
     members: [anna, {{employee: boris, penalty: {boris_penalty}}}, vera]}}
numbers: [{{number: "74951234567", scenario: main}}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 0, max_wait: 300, overflow: bye}}
      bye: {{type: hangup}}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
CALLS = 30
AGENTS = ("anna", "boris", "vera")


async def thirty_calls(strategy: RingStrategy, boris_penalty: int = 0) -> Counter[str]:
    company = company_from(TEAM.format(strategy=strategy, boris_penalty=boris_penalty))
    clock = ScaledClock(0.02)
    taken: Counter[str] = Counter()
    async with AriStack(company, clock=clock, when=WHEN) as stack:
        acd = stack.app.runtime.acd
        freed = asyncio.Event()
        acd.on_free(lambda _: freed.set())

        async def everyone_free() -> None:
            """Until the app knows every phone is free again (its device state too)."""
            async with asyncio.timeout(30):
                while not all(acd.free(a, clock.now()) for a in AGENTS):
                    freed.clear()
                    await freed.wait()

        for phone in ("PJSIP/201", "PJSIP/202", "PJSIP/203"):
            stack.sim.script_endpoint(phone, EndpointScript("answer", after=1, hangup_after=2))
        for n in range(CALLS):
            record = await stack.call(caller=f"790355500{n:02}", called="74951234567")
            assert record.outcome.result == "connected", record.outcome
            assert record.outcome.agent is not None
            taken[record.outcome.agent] += 1
            await stack.settled(within=100)
            await everyone_free()
    return taken


@pytest.mark.asyncio
@pytest.mark.parametrize("strategy", ["least_recent", "round_robin", "fewest_calls"])
async def test_fair_strategies_give_each_of_three_agents_ten_of_thirty_calls(
    strategy: RingStrategy,
) -> None:
    assert await thirty_calls(strategy) == {"anna": 10, "boris": 10, "vera": 10}


@pytest.mark.asyncio
async def test_one_by_one_gives_every_call_to_the_first_free_member_in_order() -> None:
    assert await thirty_calls("one_by_one") == {"anna": CALLS}


@pytest.mark.asyncio
async def test_a_higher_tier_takes_calls_only_when_the_lower_cannot() -> None:
    # boris is tier 1: anna and vera, tier 0, share every call between them
    assert await thirty_calls("round_robin", boris_penalty=1) == {"anna": 15, "vera": 15}


VIP_DESK = """
timezone: Europe/Moscow
employees:
  - {id: solo, name: Solo, extension: "201"}
departments:
  - {id: desk, strategy: one_by_one, ring_delay: 10, ring_timeout: 30, members: [solo]}
numbers: [{number: "74951234567", scenario: main}]
vip: {"79161230000": 10}
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 0, max_wait: 300, overflow: bye}
      bye: {type: hangup}
"""


@pytest.mark.asyncio
async def test_a_vip_who_arrives_last_is_served_first() -> None:
    clock = ScaledClock(0.02)
    async with AriStack(company_from(VIP_DESK), clock=clock, when=WHEN) as stack:
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=5))
        busy = await stack.place(caller="79035550000", called="74951234567")
        await stack.sim.wait_for(lambda s: bool(s.live_bridges()), what="solo talking")
        waiting = []
        for caller in ("79035550001", "79035550002", "79161230000"):  # the VIP last
            channel = await stack.place(caller=caller, called="74951234567")
            await stack.sim.wait_for(lambda s, c=channel: bool(s.channels[c].moh_class))
            waiting.append(channel)
        for channel in [busy, *waiting]:
            await stack.record_of(channel, within=60)
        await stack.settled(within=100)
    # one agent, talks of equal length: the calls end in the order they were served
    assert [r.caller for r in stack.sink.records] == [
        "79035550000", "79161230000", "79035550001", "79035550002",
    ]  # fmt: skip
    assert all(r.outcome.result == "connected" for r in stack.sink.records)
