"""Issue 10, findings 2 and 3: failed and stalled ARI requests, through the fault proxy.

The app talks to the Asterisk simulator through `tests.faults.FaultProxy`,
which fails, stalls and drops requests (over HTTP and over the events
websocket alike).  Before this issue (371d264) one failed ``POST /bridges``
or ``addChannel`` cost the caller a conversation the employee had just
answered, and with 15 % of requests failing and 5 % dropped, channels were
left in Asterisk.  Now the requests a conversation needs are tried again, the
requests that release something are tried again on a 5xx too, and every call
leaves exactly one record and nothing behind.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from structlog.testing import capture_logs

from ari_app.app import AriApp, AriSettings
from ari_app.client import REQUEST_TIMEOUT
from asterisk_sim import AsteriskSimulator, CallerScript, EndpointScript
from switchboard.calls import MemorySink
from switchboard.clock import ScaledClock
from tests.faults import Delay, Drop, Fail, FailAfterForward, FaultPlan, FaultProxy, Rule
from tests.helpers import company_from

USER, PASSWORD = "u", "p"
CALLED = "74951234567"
TEAM = """
timezone: Europe/Moscow
employees:
{employees}
departments:
  - {{id: desk, strategy: all_at_once, ring_timeout: 20, members: [{members}]}}
numbers: [{{number: "74951234567", scenario: main}}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 0, max_wait: 120, overflow: bye}}
      bye: {{type: hangup}}
"""


def team(size: int) -> str:
    ids = [f"e{n:02}" for n in range(1, size + 1)]
    employees = "\n".join(f'  - {{id: {e}, extension: "{200 + n}"}}' for n, e in enumerate(ids, 1))
    return TEAM.format(employees=employees, members=", ".join(ids))


async def records_of(sink: MemorySink, channels: list[str], within: float) -> Counter[str]:
    """How many records each of ``channels`` has, once each has at least one."""
    async with asyncio.timeout(within):
        while not set(channels) <= {r.channel_id for r in sink.records}:
            sink.finished.clear()
            await sink.finished.wait()
    return Counter(r.channel_id for r in sink.records)


@pytest.mark.asyncio
async def test_a_failed_or_lost_bridge_request_does_not_cost_the_conversation() -> None:
    """Finding 2: a 500 on ``POST /bridges``, or an ``addChannel`` Asterisk carried out
    but whose answer was lost, ended the conversation the employee had just answered."""
    company = company_from(team(1))
    clock = ScaledClock(0.02)
    plan = FaultPlan(
        [
            Rule("POST /bridges", Fail(500), 0.25),
            Rule("POST /bridges", FailAfterForward(500), 0.25),
            Rule("POST /bridges/*/addChannel", FailAfterForward(None), 0.1),
            Rule("POST /bridges/*/addChannel", Fail(503), 0.25),
        ],
        seed=10,
    )
    sink = MemorySink()
    async with (
        AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim,
        FaultProxy(sim.url, plan, clock=clock) as proxy,
    ):
        sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=5))
        settings = AriSettings(proxy.url, USER, PASSWORD, "switchboard")
        async with AriApp(lambda: company, settings, sink=sink, clock=clock) as app:
            await app.wait_ready()
            channels = []
            for n in range(8):
                channels.append(await sim.place_call(f"790355500{n}", CALLED, app="switchboard"))
                await records_of(sink, channels, within=60)
            await sim.wait_for(
                lambda s: not s.live_channels() and not s.live_bridges(),
                timeout=30,
                what="every channel and bridge gone",
            )
    assert sum(proxy.by_rule.values()) >= 4, proxy.by_rule
    assert all(count == 1 for count in (await records_of(sink, channels, 1)).values())
    # Asterisk really put each caller in a bridge with the employee
    bridged = {
        channel
        for r in sim.requests
        if r.path.endswith("/addChannel") and r.status == 204
        for channel in r.query.get("channel", "").split(",")
    }
    assert set(channels) <= bridged
    for record in sink.records:
        # every conversation happened, and lasted as long as the employee talked
        assert (record.outcome.result, record.outcome.reason) == ("connected", "agent hung up")
        assert record.outcome.talk is not None
        assert record.outcome.talk >= 4.0, record.outcome


@pytest.mark.asyncio
async def test_with_15_percent_500s_and_5_percent_drops_each_call_has_one_record_nothing_left() -> (
    None
):
    """Finding 3: 78 channels were left in Asterisk in such a run."""
    company = company_from(team(6))
    clock = ScaledClock(0.02)
    plan = FaultPlan(
        [
            Rule("GET /events", Fail(500), 0.15),
            Rule("any", Fail(500), 0.15),
            Rule("any", Drop(), 0.05),
        ],
        seed=3,
    )
    sink = MemorySink()
    async with (
        AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim,
        FaultProxy(sim.url, plan, clock=clock) as proxy,
    ):
        for n in range(1, 7):
            sim.script_endpoint(
                f"PJSIP/{200 + n}", EndpointScript("answer", after=1.0, hangup_after=4)
            )
        settings = AriSettings(proxy.url, USER, PASSWORD, "switchboard")
        app = AriApp(lambda: company, settings, sink=sink, clock=clock, backoff_first=0.05)
        async with app:
            await app.wait_ready(within=30)
            # callers who get nobody give up after 60 s (clock); the rest talk
            patience = CallerScript(hangup_after=60.0)
            channels = [
                await sim.place_call(f"7903555{n:04}", CALLED, script=patience, app="switchboard")
                for n in range(30)
            ]
            counts = await records_of(sink, channels, within=120)
            proxy.calm()
            await sim.wait_for(
                lambda s: not s.live_channels() and not s.live_bridges(),
                timeout=60,
                what="every channel and bridge gone",
            )
    assert proxy.counts["ws fail"] + proxy.counts["http fail"] >= 10, proxy.counts
    assert proxy.counts["ws drop"] + proxy.counts["http drop"] >= 2, proxy.counts
    assert set(counts) == set(channels)
    assert set(counts.values()) == {1}


@pytest.mark.asyncio
async def test_a_late_handshake_of_ours_does_not_cost_the_calls_in_progress() -> None:
    """The soak's case: a websocket handshake the network held past the client's timeout
    reached Asterisk after the app had connected again, took the Stasis app from it
    (``ApplicationReplaced``), and the app left its 813 calls to a connection nobody
    read, then stayed off for a minute (5ef8971).  Now it takes the app back at once and
    keeps its calls, as after a cut."""
    company = company_from(team(1).replace("max_wait: 120", "max_wait: 3000"))
    clock = ScaledClock(0.05)
    sink = MemorySink()

    def handshakes(sim: AsteriskSimulator) -> int:
        return sum(1 for r in sim.requests if r.path == "/ari/events")

    async with (
        AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim,
        FaultProxy(sim.url, FaultPlan()) as proxy,
    ):
        settings = AriSettings(proxy.url, USER, PASSWORD, "switchboard")
        app = AriApp(lambda: company, settings, sink=sink, clock=clock, backoff_first=0.05)
        with capture_logs() as logs:
            async with app:
                await app.wait_ready(within=30)
                await sim.wait_for(
                    lambda s: any(r.path.startswith("/ari/deviceStates/") for r in s.requests),
                    what="the phone followed",
                )
                # three callers wait in the queue: the one employee is on another call
                own = await sim.call_from("PJSIP/201", "74957654321")
                callers = [
                    await sim.place_call(f"7903555000{n}", "74951234567", app="switchboard")
                    for n in range(3)
                ]
                await sim.wait_for(
                    lambda s: all(s.channels[c].moh_class for c in callers),
                    what="three callers waiting",
                )
                # the next handshake is held past the client's timeout, then forwarded:
                # it reaches Asterisk after the app has connected again
                proxy.plan = FaultPlan([Rule("GET /events", Delay(REQUEST_TIMEOUT + 3))])
                await proxy.cut_websocket()
                await proxy.wait_for(lambda p: p.holding == 1, within=10)
                proxy.plan = FaultPlan()
                # the first, the one after the cut that came again, the late one, and the
                # app's own taking it back
                await sim.wait_for(
                    lambda s: handshakes(s) >= 4,
                    timeout=(REQUEST_TIMEOUT + 20) / clock.scale,
                    what="the app taking its Stasis app back",
                )
                await app.wait_ready(within=30)
                # the calls are still the app's: the employee frees up and takes them
                sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=2))
                await sim.hangup(own)
                counts = await records_of(sink, callers, within=60)
    assert counts == dict.fromkeys(callers, 1)
    assert [r.outcome.result for r in sink.records] == ["connected"] * 3
    events = [e["event"] for e in logs]
    assert "stasis app taken by a late handshake of ours: taking it back" in events
    assert not [e for e in logs if e["log_level"] == "error"]
