"""ARI requests over the events websocket (Asterisk 20.14, 21.9, 22.4 and later).

The simulator answers a ``RESTRequest`` on the events websocket with a
``RESTResponse`` as res/ari/ari_websocket_requests.c does; the supervisor
asks once after connecting and, when Asterisk answers, the client sends its
requests there.  An Asterisk that takes no requests on the websocket, a
configuration that says no, or a websocket that drops: requests go over HTTP.
Checked from the simulator's request log, which records each request with its
transport's own HTTP path either way, and the events each side sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import aiohttp
import pytest

from ari_app.app import AriApp, AriSettings
from ari_app.client import AriUnavailable
from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.calls import MemorySink
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from, example

AUTH = {"Authorization": aiohttp.encode_basic_auth("u", "p")}
WHEN = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)
QUICK = """
timezone: Europe/Moscow
employees: [{id: solo, extension: "201"}]
numbers: [{number: "74951234567", scenario: main}]
asterisk: {rest_over_websocket: REST}
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: solo, noanswer: bye}
      bye: {type: hangup}
"""


@pytest.mark.asyncio
async def test_a_rest_request_on_the_events_websocket_gets_its_rest_response() -> None:
    async with (
        AsteriskSimulator(clock=ScaledClock(0.01), user="u", password="p") as sim,  # noqa: S106
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}?app=a", headers=AUTH) as ws,
    ):
        channel = await sim.place_call("79160000000", "74951234567", app="a")
        start = json.loads((await ws.receive()).data)
        assert start["type"] == "StasisStart"
        requests = [
            {"method": "POST", "uri": f"channels/{channel}/answer"},
            {"method": "GET", "uri": f"channels/{channel}/variable?variable=CALLERID(num)"},
            {"method": "POST", "uri": "channels/nope/answer"},
            {"method": "BREW", "uri": "coffee"},
        ]
        for n, request in enumerate(requests):
            await ws.send_json(
                {"type": "RESTRequest", "transaction_id": "t", "request_id": str(n), **request}
            )
        answers = []
        while len(answers) < len(requests):
            event = json.loads((await ws.receive()).data)
            if event["type"] == "RESTResponse":
                answers.append(event)
    # in the order sent (Asterisk runs them one at a time on the websocket's thread)
    assert [(a["request_id"], a["status_code"]) for a in answers] == [
        ("0", 204), ("1", 200), ("2", 404), ("3", 400),
    ]  # fmt: skip
    assert json.loads(answers[1]["message_body"]) == {"value": "79160000000"}
    assert answers[2]["reason_phrase"] == "Not Found"
    assert json.loads(answers[3]["message_body"]) == {
        "message": "Unknown or missing 'method' property."
    }
    assert sim.channels[channel].state == "Up"


@pytest.mark.parametrize(
    ("asterisk_takes_them", "configured", "transport"),
    [(True, "true", "websocket"), (False, "true", "http"), (True, "false", "http")],
)
@pytest.mark.asyncio
async def test_requests_go_over_the_websocket_only_when_asterisk_and_the_config_agree(
    asterisk_takes_them: bool, configured: str, transport: str
) -> None:
    company = company_from(QUICK.replace("REST", configured))
    clock = ScaledClock(0.02)
    async with AsteriskSimulator(
        clock=clock,
        user="u",
        password="p",  # noqa: S106 - the test double's
        rest_over_websocket=asterisk_takes_them,
    ) as sim:
        sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1, hangup_after=2))
        app = AriApp(lambda: company, AriSettings(sim.url, "u", "p", "switchboard"), clock=clock)
        async with app:
            await app.wait_ready(within=10)
            placed = len(sim.requests)
            channel = await sim.place_call("79035550000", "74951234567", app="switchboard")
            sink = app.sink
            assert isinstance(sink, MemorySink)
            async with asyncio.timeout(10):
                while not sink.records:
                    sink.finished.clear()
                    await sink.finished.wait()
            await sim.wait_for(lambda s: not s.live_channels(), timeout=10, what="call over")
        (record,) = sink.records
    assert (record.channel_id, record.outcome.result) == (channel, "connected")
    # every request of the call (create, dial ... destroy the bridge) came the one way
    of_the_call = sim.requests[placed:]
    assert {r.path.rsplit("/", 1)[-1] for r in of_the_call} >= {"create", "dial", "addChannel"}
    assert {r.via for r in of_the_call} == {transport}


@pytest.mark.asyncio
async def test_when_asterisk_stops_answering_on_the_websocket_requests_fail_over_to_http() -> None:
    """A request waiting on a websocket that drops is AriUnavailable (the call handles
    it as any unreachable Asterisk); after the reconnection Asterisk is asked again."""
    stack = AriStack(example("office.yaml"), clock=ScaledClock(0.02), when=WHEN)
    async with stack:
        client = stack.app.client
        assert client.over_websocket is not None
        stack.sim.server.rest_over_websocket = False  # it stalls: reads, never answers
        waiting = asyncio.create_task(client.asterisk_info())
        await stack.sim.wait_for(lambda s: bool(s.connected_apps()), what="still connected")
        connections = stack.app.supervisor.connections
        await stack.sim.server.drop_websockets()
        with pytest.raises(AriUnavailable):
            await waiting
        await stack.app.wait_ready(within=10)  # not ready since the websocket went
        assert stack.app.supervisor.connections == connections + 1
        assert client.over_websocket is None  # asked again: no answer, so HTTP
        info = await client.asterisk_info()
    assert info.version == "22.10.1"
    assert stack.sim.requests[-1].via == "http"
