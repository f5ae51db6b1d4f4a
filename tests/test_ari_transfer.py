"""Issue 11, transfers: an employee blind-transfers the caller with their phone (a SIP
REFER); the call follows it to the end and its record says so.

The simulator does what Asterisk 22 does (asterisk_sim: main/bridge.c
blind_transfer_bridge, res/stasis/stasis_bridge.c): a Local channel to the target
is swapped into the call's bridge in place of the employee's channel and enters the
app with ``replace_channel``.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from ari_app.app import AriApp, AriSettings
from ari_app.runtime import transfer_of
from asterisk_sim import EndpointScript
from switchboard.calls import MemorySink
from switchboard.clock import ScaledClock
from switchboard.demo import PASSWORD, USER, AriStack
from tests.helpers import company_from

SALES = """
timezone: Europe/Moscow
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
departments:
  - {id: sales, strategy: all_at_once, ring_timeout: 30, wrapup: 20, members: [ivanov]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: sales, announce_every: 0, max_wait: 300, overflow: bye}
      bye: {type: hangup}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
TARGET = "Local/777@phones"


@pytest.mark.asyncio
async def test_a_blind_transfer_keeps_the_caller_talking_to_the_target_and_is_recorded() -> None:
    clock = ScaledClock(0.02)
    stack = AriStack(company_from(SALES), clock=clock, when=WHEN)
    async with stack:
        sim = stack.sim
        sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1))
        sim.script_endpoint(TARGET, EndpointScript("answer", after=2, hangup_after=20))
        caller = await stack.place(caller="79035550000", called="74951234567")
        await sim.wait_for(
            lambda s: any(len(b.channel_ids) == 2 for b in s.live_bridges()),
            what="the conversation",
        )
        [bridge] = sim.live_bridges()
        [agent_leg] = [c for c in bridge.channel_ids if c != caller]
        await clock.sleep(10)  # they talk, then Ivan transfers the caller to 777
        assert await sim.blind_transfer(agent_leg, "777", "phones") == 200
        await sim.wait_for(
            lambda s: all(c.id != agent_leg for c in s.live_channels()),
            what="the employee's channel hung up",
        )
        ivanov = stack.app.runtime.acd.agents["ivanov"]
        assert ivanov.state == "wrapup"  # his part is over: his wrap-up runs
        [bridge] = sim.live_bridges()
        assert caller in bridge.channel_ids  # the caller still talks: to the target
        assert not stack.sink.records
        record = await stack.record_of(caller, within=60)  # the target hangs up after 20 s
        await stack.settled()
    outcome = record.outcome
    assert (outcome.result, outcome.agent, outcome.reason) == (
        "connected", "ivanov", "transfer target hung up",
    )  # fmt: skip
    assert (outcome.extra["transfers"], outcome.extra["transferred_to"]) == (1, "777@phones")
    assert outcome.extra["ended_by"] == "transfer target"
    assert outcome.talk is not None
    assert outcome.talk >= 29  # the caller's talk: with Ivan, then with the target
    [transferred] = [e for s in record.steps for e in s.events if e["event"] == "transferred"]
    assert (transferred["to"], transferred["kind"]) == ("777@phones", "blind")
    hangups = [r.path for r in sim.requests if r.method == "DELETE"]
    assert f"/ari/channels/{agent_leg}" in hangups  # the employee's channel, let go
    assert ivanov.stats.calls == 1
    assert not sim.live_channels()
    assert not sim.live_bridges()


@pytest.mark.asyncio
async def test_a_conversation_adopted_after_a_restart_follows_a_transfer_too() -> None:
    clock = ScaledClock(0.02)
    stack = AriStack(company_from(SALES), clock=clock, when=WHEN)
    async with stack:
        sim = stack.sim
        sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1))
        sim.script_endpoint(TARGET, EndpointScript("answer", after=1, hangup_after=15))
        caller = await stack.place(caller="79035550000", called="74951234567")
        await sim.wait_for(
            lambda s: any(len(b.channel_ids) == 2 for b in s.live_bridges()),
            what="the conversation",
        )
        [bridge] = sim.live_bridges()
        [agent_leg] = [c for c in bridge.channel_ids if c != caller]
        # Switchboard stops (a deploy): the conversation stays up in Asterisk...
        await stack.app.__aexit__(None, None, None)
        assert not stack.sink.records
        # ...and the next instance adopts it
        sink = MemorySink()
        settings = AriSettings(sim.url, USER, PASSWORD, stack.company.config.asterisk.app)
        # adopted: the new instance looks whether the employee's channel is still there
        looked = f"/ari/channels/{agent_leg}"
        before = sum(r.path == looked and r.method == "GET" for r in sim.requests)
        async with AriApp(lambda: stack.company, settings, sink=sink, clock=clock) as app:
            await app.wait_ready()
            await sim.wait_for(
                lambda s: sum(r.path == looked and r.method == "GET" for r in s.requests) > before,
                what="the conversation adopted",
            )
            assert await sim.blind_transfer(agent_leg, "777", "phones") == 200
            async with asyncio.timeout(30):
                while not sink.records:
                    sink.finished.clear()
                    await sink.finished.wait()
            await stack.settled()
            stack.app = app  # what the stack closes on its way out
        [record] = sink.records
    outcome = record.outcome
    assert (outcome.result, outcome.agent, outcome.reason) == (
        "connected", "ivanov", "transfer target hung up",
    )  # fmt: skip
    assert (outcome.extra["transfers"], outcome.extra["ended_by"]) == (1, "transfer target")
    assert not sim.live_channels()
    assert not sim.live_bridges()


@pytest.mark.parametrize(
    ("name", "seen"),
    [
        ("Local/777@phones-0000002a;1", ("blind", "777@phones")),
        ("Local/_attended@transfer-00000079;1", ("attended", "")),
        ("PJSIP/300-00000001", ("blind", "PJSIP/300-00000001")),
    ],
)
def test_the_transfer_is_told_by_the_channel_asterisk_swapped_in(
    name: str, seen: tuple[str, str]
) -> None:
    """The names main/bridge.c gives: blind_transfer_bridge's ``<exten>@<context>``,
    attended_transfer_bridge's ``_attended@transfer`` (seen on Asterisk 22.10.1)."""
    assert transfer_of(name) == seen
