"""What the Stasis runtime asks Asterisk, and that it leaves nothing behind.

Read from the simulator's record of ARI requests: which legs were created and
dialled when, which were hung up, and that every channel and bridge is gone
when the call is over, however it ended.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import pytest

from ari_app.app import AriApp, AriSettings
from asterisk_sim import AsteriskSimulator, EndpointScript, Press
from switchboard.calls import MemorySink
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from switchboard.simulate import AgentBehaviour
from tests.helpers import company_from, example

pytestmark = pytest.mark.asyncio

TEAM = """
timezone: Europe/Moscow
employees:
  - {{id: a, extension: "101"}}
  - {{id: b, extension: "102"}}
  - {{id: c, extension: "103", mobile: "79161234567", forward_to_mobile_after: 5}}
departments:
  - {{id: team, strategy: {strategy}, ring_delay: 10, ring_timeout: 30, members: [a, b, c]}}
numbers: [{{number: "74951234567", scenario: main}}]
scenarios:
  main:
    start: ring
    nodes:
      ring: {{type: dial, target: team, noanswer: bye}}
      bye: {{type: hangup}}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
CREATE = "/ari/channels/create"
TOLERANCE = 2.0  # clock seconds: ARI round trips on a loaded 2-core machine (the steps
# these tests tell apart are 5 to 10 clock seconds apart)


def agents(**spec: str) -> dict[str, AgentBehaviour]:
    return {k: AgentBehaviour.parse(v) for k, v in spec.items()}


def created(stack: AriStack) -> list[tuple[float, str, str]]:
    """(time since the first leg, endpoint, channel id) of every leg the app created."""
    legs = [
        r for r in stack.sim.requests if r.method == "POST" and r.path == "/ari/channels/create"
    ]
    start = legs[0].t
    return [(r.t - start, r.query["endpoint"], r.query["channelId"]) for r in legs]


def hung_up(stack: AriStack) -> dict[str, float]:
    first = next(r.t for r in stack.sim.requests if r.method == "POST" and r.path == CREATE)
    return {
        r.path.rsplit("/", 1)[1]: r.t - first
        for r in stack.sim.requests
        if r.method == "DELETE" and r.path.startswith("/ari/channels/")
    }


def near(value: float, expected: float) -> bool:
    return abs(value - expected) <= TOLERANCE


async def team_call(strategy: str, **spec: str) -> AriStack:
    company = company_from(TEAM.format(strategy=strategy))
    # 0.1: a busy machine's lag of a second is 10 clock seconds here, not 33
    stack = AriStack(company, clock=ScaledClock(0.1), when=WHEN)
    async with stack:
        stack.script(agents(**spec))
        await stack.call(caller="79035550000", called="74951234567")
        await stack.settled()
    return stack


async def test_all_at_once_creates_every_leg_together_and_only_the_answer_survives() -> None:
    stack = await team_call("all_at_once", a="noanswer", b="answer:4", c="noanswer")
    legs = created(stack)
    assert [endpoint for _, endpoint, _ in legs] == ["PJSIP/101", "PJSIP/102", "PJSIP/103"]
    assert all(near(t, 0) for t, _, _ in legs)
    stopped = hung_up(stack)
    by_endpoint = {endpoint: channel for _, endpoint, channel in legs}
    assert near(stopped[by_endpoint["PJSIP/101"]], 4)
    assert near(stopped[by_endpoint["PJSIP/103"]], 4)
    assert by_endpoint["PJSIP/102"] not in stopped  # the winner is bridged, then hangs up itself
    dials = [r for r in stack.sim.requests if r.path.endswith("/dial")]
    assert len(dials) == 3


async def test_one_by_one_creates_each_leg_ring_delay_after_the_last() -> None:
    stack = await team_call("one_by_one", a="noanswer", b="noanswer", c="answer:3")
    legs = created(stack)
    assert [e for _, e, _ in legs] == ["PJSIP/101", "PJSIP/102", "PJSIP/103"]
    assert [near(t, want) for (t, _, _), want in zip(legs, [0, 10, 20], strict=True)] == [True] * 3
    stopped = hung_up(stack)
    assert near(stopped[legs[0][2]], 10)
    assert near(stopped[legs[1][2]], 20)


async def test_cascade_adds_a_leg_every_ring_delay_and_keeps_the_earlier_ones() -> None:
    stack = await team_call("cascade", a="noanswer", b="noanswer", c="answer:3")
    legs = created(stack)
    assert [near(t, want) for (t, _, _), want in zip(legs, [0, 10, 20], strict=True)] == [True] * 3
    stopped = hung_up(stack)
    # a and b rang until c answered at 23 s
    assert near(stopped[legs[0][2]], 23)
    assert near(stopped[legs[1][2]], 23)


async def test_desk_then_mobile_and_the_mobile_must_press_1() -> None:
    company = company_from(TEAM.format(strategy="all_at_once"))
    stack = AriStack(company, clock=ScaledClock(0.03), when=WHEN)
    async with stack:
        stack.script(agents(a="offline", b="offline", c="answer:7"))
        # the desk phone never answers; the mobile answers 7 s after it starts ringing
        stack.sim.script_endpoint("PJSIP/103", EndpointScript("noanswer"))
        record = await stack.call(caller="79035550000", called="74951234567")
        await stack.settled()
    legs = created(stack)
    mobile = next(leg for leg in legs if leg[1] == "PJSIP/79161234567@trunk")
    assert near(mobile[0], 5)  # forward_to_mobile_after: 5, the desk still ringing
    plays = [r for r in stack.sim.requests if r.path.startswith(f"/ari/channels/{mobile[2]}/play")]
    assert plays
    assert "press-1-to-accept" in plays[0].query["media"]
    assert record.outcome.result == "connected"
    bridged = [r for r in stack.sim.requests if r.path.endswith("/addChannel")]
    assert mobile[2] in bridged[0].query["channel"]


MOMENTS = [
    ("office.yaml", "74951234567", {}, 1.0, "while the greeting plays"),
    ("office.yaml", "74951234567", {"ivanov": "noanswer"}, 18.0, "while agents ring"),
    ("office.yaml", "74951234567", {}, 30.0, "while talking"),
    (
        "call-centre.yaml",
        "",
        {"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"},
        45.0,
        "while queued, after an announcement",
    ),
    ("office.yaml", "74951234567", {}, 0.05, "at once"),
]


@pytest.mark.parametrize(
    ("config", "called", "spec", "moment", "label"), MOMENTS, ids=[m[-1] for m in MOMENTS]
)
async def test_a_caller_hanging_up_at_any_moment_leaves_nothing_behind(
    config: str, called: str, spec: dict[str, str], moment: float, label: str
) -> None:
    company = example(config)
    when = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)
    async with AriStack(company, when=when) as stack:
        stack.script(agents(**spec))
        record = await stack.call(caller="79035550000", called=called, hangup_after=moment)
        await stack.settled()
        assert stack.app.runtime.failures == 0
    assert record.outcome.reason == "caller hung up"


async def test_a_dropped_websocket_mid_call_does_not_lose_the_call() -> None:
    company = example("call-centre.yaml")
    busy = {"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"}
    async with AriStack(company, when=WHEN) as stack:
        stack.script(agents(**busy))
        await stack.place(caller="79035550000", presses=(Press("1", at=30),))
        await stack.sim.wait_for(lambda sim: any(c.moh_class for c in sim.live_channels()))
        await stack.sim.drop_websockets()
        await stack.sim.wait_for(lambda sim: bool(sim.connected_apps()), what="reconnected")
        async with asyncio.timeout(20):
            while not stack.sink.records:
                stack.sink.finished.clear()
                await stack.sink.finished.wait()
        await stack.settled()
    assert stack.app.supervisor.connections >= 2
    assert stack.sink.records[0].outcome.result == "callback"


async def test_after_an_asterisk_restart_the_app_reconnects_and_serves_new_calls() -> None:
    company = example("office.yaml")
    office_hours = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)
    async with AriStack(company, when=office_hours) as stack:
        stack.script({})
        await stack.place(caller="79035550000", called="74951234567")
        await stack.sim.wait_for(
            lambda sim: any(r.path.endswith("/answer") for r in sim.requests), what="answered"
        )
        await stack.sim.restart()
        await stack.sim.wait_for(lambda sim: bool(sim.connected_apps()), what="reconnected")
        # the call that was up when Asterisk died is over; a new one is served
        record = await stack.call(caller="79035550001", called="74951234567")
        await stack.settled()
    assert record.outcome.result == "connected", [(s.node, s.via, s.events) for s in record.steps]
    assert stack.sink.records[0].outcome.result == "abandoned"


async def test_channels_in_the_app_that_the_runtime_does_not_know_go_to_the_fallback() -> None:
    """A call parked in the Stasis app by an instance that died is not left hanging."""
    company = example("office.yaml")
    clock = ScaledClock(0.02)
    async with AsteriskSimulator(clock=clock, user="u", password="p") as sim:  # noqa: S106
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{sim.ws_url}?app=switchboard&api_key=u:p") as previous,
        ):
            orphan = await sim.place_call("79035550002", "74951234567", app="switchboard")
            await previous.receive_json(timeout=5)  # its StasisStart, then the instance dies
        settings = AriSettings(sim.url, "u", "p", "switchboard")
        sink = MemorySink()
        async with AriApp(lambda: company, settings, sink=sink, clock=clock) as app:
            await app.wait_ready()
            await sim.wait_for(
                lambda s: s.channels[orphan].continued_to is not None, what="sent on"
            )
        location = sim.channels[orphan].continued_to
        assert location is not None
        # the fallback context's `_X.` extension keeps the number the caller dialled
        assert (location.context, location.exten) == ("switchboard-fallback", "74951234567")
        # and the call has its record (issue 10: none was written on this path)
        (record,) = sink.records
        assert (record.channel_id, record.called, record.outcome.result) == (
            orphan,
            "74951234567",
            "dialplan",
        )


async def test_a_call_no_scenario_takes_goes_to_the_fallback_and_is_not_hung_up_there() -> None:
    """Once a channel is sent back to the dialplan, nothing more is asked of it."""
    stack = AriStack(example("office.yaml"), clock=ScaledClock(0.02), when=WHEN)
    async with stack:
        channel = await stack.place(caller="79035550000", called="74950000000")
        await stack.sim.wait_for(
            lambda s: s.channels[channel].continued_to is not None, what="sent on"
        )
        await stack.app.runtime.wait_idle()
        assert stack.sim.channels[channel].live
        asked = [r.method + " " + r.path for r in stack.sim.requests if channel in r.path]
        await stack.sim.hangup(channel)
    assert asked == [f"POST /ari/channels/{channel}/continue"]
