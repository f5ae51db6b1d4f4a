"""The fault proxy of tests/faults.py, between the app (or a bare client) and the simulator.

Whether a request reached Asterisk is read from the simulator's request log;
what the app was told, from what its client raised or the ``RESTResponse`` frame
it got.  Every fault is checked both ways a request travels: plain HTTP and a
``RESTRequest`` on the events websocket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from ari_app.app import AriApp, AriSettings
from ari_app.client import AriClient, AriError, AriUnavailable
from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.calls import CallRecord, MemorySink
from switchboard.clock import ScaledClock
from switchboard.config.company import Company
from switchboard.demo import prompt_durations
from tests.faults import (
    Action,
    Delay,
    Drop,
    Fail,
    FailAfterForward,
    FaultPlan,
    FaultProxy,
    Route,
    Rule,
)
from tests.helpers import company_from

USER, PASSWORD = "u", "p"
AUTH = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}
CALLED = "74951234567"
SOLO = """
timezone: Europe/Moscow
employees: [{id: solo, extension: "201"}]
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: solo, noanswer: bye}
      bye: {type: hangup}
"""


# --- the plan: pure --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "method", "path", "matches"),
    [
        ("POST /bridges", "POST", "/bridges", True),
        ("POST /bridges", "DELETE", "/bridges", False),
        ("POST /bridges/*/addChannel", "POST", "/bridges/b1/addChannel", True),
        ("DELETE /channels/*", "DELETE", "/channels/c1", True),
        ("DELETE /channels/*", "DELETE", "/channels/c1/moh", False),
        ("* /channels/**", "GET", "/channels", True),
        ("any", "PUT", "/applications/a/eventFilter", True),
    ],
)
def test_a_route_matches_its_method_and_one_segment_per_star(
    route: str, method: str, path: str, matches: bool
) -> None:
    assert Route.parse(route).matches(method, path) is matches


def test_the_first_matching_route_decides_and_its_rules_share_one_seeded_draw() -> None:
    rules = [
        Rule("POST /bridges", Fail(500), 0.25),
        Rule("POST /bridges", Drop(), 0.25),
        Rule("any", Fail(503), 1.0),  # never for POST /bridges: its route came first
    ]

    def kinds(seed: int) -> list[str]:
        plan = FaultPlan(rules, seed=seed)
        return [plan.judge("POST", "/bridges")[0].kind for _ in range(2000)]

    drawn = kinds(7)
    assert drawn == kinds(7)  # reproducible
    assert set(drawn) == {"fail", "drop", "pass"}
    assert 900 < drawn.count("pass") < 1100  # 1 - 0.25 - 0.25 of them
    assert FaultPlan(rules).judge("GET", "/channels")[0] == Fail(503)


# --- one request, each fault, each way ---------------------------------------------------------

# (action, status the app is told or None for no answer, whether Asterisk did it)
FAULTS: list[tuple[Action, int | None, bool]] = [
    (Fail(500), 500, False),
    (Drop(), None, False),
    (Delay(5.0), 200, True),
    (Delay(5.0, then="drop"), None, False),
    (FailAfterForward(500), 500, True),
    (FailAfterForward(None), None, True),
]
FAULT_IDS = ["fail", "drop", "delay", "delay-then-drop", "fail-after-forward", "forward-then-drop"]


@asynccontextmanager
async def proxy_to_simulator(action: Action) -> AsyncIterator[tuple[AsteriskSimulator, FaultProxy]]:
    """A simulator behind a proxy whose every ``POST /bridges`` meets ``action``; a
    delay of 5 s is 50 ms."""
    clock = ScaledClock(0.01)
    plan = FaultPlan([Rule("POST /bridges", action)])
    async with (
        AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim,
        FaultProxy(sim.url, plan, clock=clock) as proxy,
    ):
        yield sim, proxy


def asterisk_made(sim: AsteriskSimulator, bridge_id: str) -> bool:
    asked = any(r.method == "POST" and r.path == "/ari/bridges" for r in sim.requests)
    return asked and bridge_id in {b.id for b in sim.live_bridges()}


@pytest.mark.parametrize(("action", "told", "done"), FAULTS, ids=FAULT_IDS)
@pytest.mark.asyncio
async def test_a_fault_on_an_http_request(action: Action, told: int | None, done: bool) -> None:
    async with (
        proxy_to_simulator(action) as (sim, proxy),
        AriClient(proxy.url, USER, PASSWORD, "a") as client,
    ):
        status = 200
        try:
            await client.create_bridge("b1")
        except AriUnavailable:
            status = 0
        except AriError as exc:
            status = exc.status
        assert proxy.counts[f"http {action.kind}"] == 1
        await proxy.wait_for(lambda p: p.holding == 0)
    assert status == (told or 0)
    assert asterisk_made(sim, "b1") is done


class RestFrames:
    """A bare events websocket through the proxy, sending RESTRequests by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.answers: dict[str, dict[str, Any]] = {}

    async def send(self, request_id: str, method: str, uri: str) -> None:
        await self.ws.send_json(
            {"type": "RESTRequest", "transaction_id": "t", "request_id": request_id,
             "method": method, "uri": uri}
        )  # fmt: skip

    async def answer(self, request_id: str) -> dict[str, Any]:
        """The RESTResponse for ``request_id``, keeping every other one that comes first."""
        async with asyncio.timeout(5):
            while request_id not in self.answers:
                frame = json.loads((await self.ws.receive()).data)
                if frame["type"] == "RESTResponse":
                    self.answers[frame["request_id"]] = frame
        return self.answers[request_id]


@pytest.mark.parametrize(("action", "told", "done"), FAULTS, ids=FAULT_IDS)
@pytest.mark.asyncio
async def test_a_fault_on_a_request_over_the_websocket(
    action: Action, told: int | None, done: bool
) -> None:
    async with (
        proxy_to_simulator(action) as (sim, proxy),
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{proxy.url}/ari/events?app=a", headers=AUTH) as ws,
    ):
        frames = RestFrames(ws)
        await frames.send("1", "POST", "bridges?bridgeId=b1")
        if told is not None:
            answer = await frames.answer("1")
        else:
            # Asterisk answers in order: once a later request is answered, so would
            # this one have been
            await proxy.wait_for(lambda p: p.holding == 0 and p.counts["ws requests"] == 1)
            await frames.send("2", "GET", "bridges")
            await frames.answer("2")
            answer = frames.answers.get("1", {})
        assert proxy.counts[f"ws {action.kind}"] == 1
    assert answer.get("status_code") == told
    if told is not None and told >= 400:
        assert answer["reason_phrase"] == "Internal Server Error"
        assert json.loads(answer["message_body"])["message"]
    assert asterisk_made(sim, "b1") is done
    assert {r.via for r in sim.requests if r.path != "/ari/events"} <= {"websocket"}


@pytest.mark.asyncio
async def test_calm_lets_every_request_through_and_resume_brings_the_faults_back() -> None:
    async with (
        proxy_to_simulator(Fail(503)) as (sim, proxy),
        AriClient(proxy.url, USER, PASSWORD, "a") as client,
    ):
        proxy.calm()
        await client.create_bridge("b1")
        proxy.resume()
        with pytest.raises(AriError) as refused:
            await client.create_bridge("b2")
    assert refused.value.status == 503
    assert [b.id for b in sim.live_bridges()] == ["b1"]


# --- the app through the proxy -------------------------------------------------------------------


@dataclass
class Proxied:
    sim: AsteriskSimulator
    proxy: FaultProxy
    app: AriApp
    sink: MemorySink

    async def call(self) -> CallRecord:
        """A call to the one employee, who answers and hangs up: its record, once every
        channel and bridge is gone."""
        channel = await self.sim.place_call("79035550000", CALLED, app="switchboard")
        async with asyncio.timeout(15):
            while not any(r.channel_id == channel for r in self.sink.records):
                self.sink.finished.clear()
                await self.sink.finished.wait()
        await self.sim.wait_for(
            lambda s: not s.live_channels() and not s.live_bridges(),
            timeout=10,
            what="every channel and bridge gone",
        )
        return next(r for r in self.sink.records if r.channel_id == channel)


@asynccontextmanager
async def proxied_app(company: Company, plan: FaultPlan | None = None) -> AsyncIterator[Proxied]:
    clock = ScaledClock(0.02)
    async with (
        AsteriskSimulator(
            clock=clock, user=USER, password=PASSWORD, app_durations=prompt_durations(company)
        ) as sim,
        FaultProxy(sim.url, plan, clock=clock) as proxy,
    ):
        sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=2))
        sink = MemorySink()
        settings = AriSettings(proxy.url, USER, PASSWORD, company.config.asterisk.app)
        app = AriApp(lambda: company, settings, sink=sink, clock=clock, backoff_first=0.05)
        async with app:
            await app.wait_ready()
            yield Proxied(sim, proxy, app, sink)


@pytest.mark.asyncio
async def test_a_call_through_the_proxy_is_connected_and_leaves_its_record() -> None:
    async with proxied_app(company_from(SOLO)) as stack:
        record = await stack.call()
    assert record.outcome.result == "connected"
    bridged = [r for r in stack.sim.requests if r.path.endswith("/addChannel")]
    assert [r.via for r in bridged] == ["websocket"]  # the app's requests rode the websocket
    assert stack.proxy.counts["ws requests"] > 0
    assert stack.proxy.counts["websockets"] == 1


@pytest.mark.asyncio
async def test_the_apps_requests_on_the_websocket_meet_the_faults_too() -> None:
    """Asterisk never hears of the bridge: the call ends all the same, with its record."""
    plan = FaultPlan([Rule("POST /bridges", Fail(500))])
    async with proxied_app(company_from(SOLO), plan) as stack:
        assert stack.app.client.over_websocket is not None
        await stack.call()  # its record, and nothing left in Asterisk
    assert not [r for r in stack.sim.requests if r.method == "POST" and r.path == "/ari/bridges"]
    assert stack.proxy.counts["ws fail"] >= 1
    assert stack.proxy.counts["http fail"] == 0
    assert stack.proxy.by_rule["fail POST /bridges"] == stack.proxy.counts["ws fail"]


@pytest.mark.asyncio
async def test_a_cut_websocket_makes_the_app_reconnect_and_serve_calls_again() -> None:
    async with proxied_app(company_from(SOLO)) as stack:
        assert await stack.proxy.cut_websocket() == 1
        await stack.proxy.wait_for(lambda p: p.counts["websockets"] == 2)
        await stack.app.wait_ready()
        assert stack.app.supervisor.connections == 2
        record = await stack.call()
    assert record.outcome.result == "connected"
    assert stack.proxy.counts["cuts"] == 1


@pytest.mark.asyncio
async def test_cuts_every_few_seconds_stop_when_calm_and_the_app_is_back_each_time() -> None:
    async with proxied_app(company_from(SOLO)) as stack:
        proxy = stack.proxy
        proxy.cut_every(10.0)  # clock seconds: 0.2 s
        await proxy.wait_for(lambda p: p.counts["cuts"] >= 3)
        proxy.calm()
        # no cut after calm: the last one is followed by the app's reconnection
        await proxy.wait_for(lambda p: p.counts["websockets"] == p.counts["cuts"] + 1)
        await stack.app.wait_ready()
        record = await stack.call()
    assert record.outcome.result == "connected"
    assert stack.app.supervisor.connections >= 2  # the first, and the one after the last cut
