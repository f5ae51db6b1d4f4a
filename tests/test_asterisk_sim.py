"""The Asterisk simulator speaks ARI as Asterisk 22 does, checked over real HTTP and websockets.

Every HTTP answer is checked against its operation in the ARI spec (the
response model, or an error code the operation declares) and every websocket
message against its model in events.json.  The clock runs 100x faster, and
nothing sleeps: tests wait on websocket messages or on ``sim.wait_for``.
"""

from __future__ import annotations

import re
import wave
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from asterisk_sim import (
    AsteriskSimulator,
    CallerScript,
    EndpointScript,
    Press,
    SpecError,
    UnknownChannel,
    load_spec,
)
from switchboard.clock import ScaledClock

SPEC = load_spec()
APP = "switchboard"
AUTH = {"Authorization": aiohttp.encode_basic_auth("switchboard", "secret")}
DURATIONS = {"sound:switchboard/main-menu": 6.0, "sound:switchboard/greeting": 2.0}
WAIT = 5.0  # real seconds before a test gives up on a message


class Ari:
    """A bare ARI client that checks each answer against the spec's operation."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        expect: int | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **params: str | int | bool | Sequence[str],
    ) -> tuple[int, Any]:
        query: list[tuple[str, str]] = []
        for key, value in params.items():
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                query.append((key, str(v).lower() if isinstance(v, bool) else str(v)))
        async with self.session.request(
            method,
            f"{self.base}/ari{path}",
            params=query,
            json=json,
            headers=AUTH if headers is None else headers,
        ) as response:
            body = await response.json() if response.content_type == "application/json" else None
            status = response.status
        check_response(method, path, status, body)
        if expect is not None:
            assert status == expect, (method, path, status, body)
        return status, body

    async def get(self, path: str, expect: int | None = 200, **params: Any) -> Any:
        return (await self.call("GET", path, expect, **params))[1]

    async def post(self, path: str, expect: int | None = None, **params: Any) -> Any:
        return (await self.call("POST", path, expect, **params))[1]

    async def delete(self, path: str, expect: int | None = 204, **params: Any) -> Any:
        return (await self.call("DELETE", path, expect, **params))[1]


def check_response(method: str, path: str, status: int, body: Any) -> None:
    """A 2xx answer has the operation's response model; an error is declared and has a message."""
    operation = SPEC.operation(method, path.split("?", maxsplit=1)[0])
    if status in (401, 404, 405) and operation is None:
        assert isinstance(body, dict)
        assert isinstance(body.get("message"), str)
        return
    assert operation is not None, f"{method} {path} is no ARI operation"
    if status == 500 and body == {"error": "Allocation failed"}:
        return  # ast_ari_response_alloc_failed (res/res_ari.c): possible anywhere, never declared
    if status == 204:
        assert operation.response_class == "void"
        assert body is None
    elif 200 <= status < 300:
        assert status == 200
        problems = SPEC.validate(body, operation.response_class)
        assert not problems, problems
    else:
        assert status in operation.error_codes() | {401}, (status, operation.error_codes(), body)
        assert isinstance(body, dict), body
        assert isinstance(body.get("message"), str), body


class Events:
    """One /ari/events websocket; every message it receives is checked against events.json."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def message(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=WAIT)
        assert msg.type == aiohttp.WSMsgType.TEXT, f"websocket ended: {msg.type!r}"
        event = msg.json()
        problems = SPEC.validate_event(event)
        assert not problems, (event["type"], problems)
        self.received.append(event)
        assert isinstance(event, dict)
        return event

    async def next(self, *types: str) -> dict[str, Any]:
        """The next event of one of ``types``, skipping others."""
        while True:
            event = await self.message()
            if not types or event["type"] in types:
                return event

    async def sequence(self, count: int) -> list[dict[str, Any]]:
        return [await self.message() for _ in range(count)]

    async def closed(self) -> aiohttp.WSMsgType:
        """Read until the websocket ends; fail on any event in between."""
        msg = await self.ws.receive(timeout=WAIT)
        assert msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ), msg
        return msg.type


def summary(events: list[dict[str, Any]]) -> list[str]:
    """``["Dial:RINGING", "ChannelStateChange:Up", ...]`` for asserting sequences."""
    out = []
    for e in events:
        detail = e.get("dialstatus") or e.get("channel", {}).get("state", "")
        if e["type"].startswith("Playback"):
            detail = e["playback"]["media_uri"]
        if e["type"] in ("ChannelHangupRequest", "ChannelDestroyed"):
            detail = str(e["cause"])
        out.append(f"{e['type']}:{detail}" if detail or e["type"] == "Dial" else e["type"])
    return out


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[AsteriskSimulator]:
    simulator = AsteriskSimulator(clock=ScaledClock(0.01), app_durations=DURATIONS)
    await simulator.start()
    yield simulator
    await simulator.stop()
    assert not simulator.pbx.task_errors
    assert not simulator.pbx.running_tasks(), "the simulator leaked tasks"


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def ari(sim: AsteriskSimulator, session: aiohttp.ClientSession) -> Ari:
    return Ari(session, sim.url)


async def connect(
    sim: AsteriskSimulator, session: aiohttp.ClientSession, app: str = APP, **query: str
) -> Events:
    params = {"app": app, **query}
    ws = await session.ws_connect(sim.ws_url, params=params, headers=AUTH)
    await sim.wait_for(lambda s: app in s.connected_apps(), what=f"{app} connected")
    return Events(ws)


@pytest_asyncio.fixture
async def events(sim: AsteriskSimulator, session: aiohttp.ClientSession) -> AsyncIterator[Events]:
    stream = await connect(sim, session)
    yield stream
    await stream.ws.close()


async def inbound_call(sim: AsteriskSimulator, events: Events, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("caller", "79161112233")
    kwargs.setdefault("called", "74951234567")
    channel_id = await sim.place_call(**kwargs)
    start = await events.next("StasisStart")
    assert start["channel"]["id"] == channel_id
    return start


async def answered_agent(
    sim: AsteriskSimulator, ari: Ari, events: Events, endpoint: str, channel_id: str
) -> None:
    """Create and dial ``endpoint`` (scripted to answer) and wait for its ANSWER."""
    await ari.post("/channels/create", 200, endpoint=endpoint, app=APP, channelId=channel_id)
    await events.next("StasisStart")
    await ari.post(f"/channels/{channel_id}/dial", 204)
    await events.next("ChannelStateChange")
    while (await events.next("Dial"))["dialstatus"] != "ANSWER":
        pass


# -- inbound calls --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_inbound_call_enters_stasis_with_the_called_number_as_args(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    start = await inbound_call(sim, events, caller_name="Ivan")
    channel = start["channel"]
    assert start["args"] == ["74951234567"]
    assert start["application"] == APP
    assert start["asterisk_id"] == sim.pbx.asterisk_id
    assert re.fullmatch(r"PJSIP/trunk-[0-9a-f]{8}", channel["name"])
    assert channel["state"] == "Ring"
    assert channel["caller"] == {"name": "Ivan", "number": "79161112233"}
    assert channel["dialplan"]["exten"] == "74951234567"
    assert channel["dialplan"]["app_name"] == "Stasis"
    assert channel["dialplan"]["app_data"] == "switchboard,74951234567"
    listed = await ari.get("/channels")
    assert [c["id"] for c in listed] == [channel["id"]]


@pytest.mark.asyncio
async def test_a_call_on_an_analog_line_has_exten_s_and_no_args(
    sim: AsteriskSimulator, events: Events
) -> None:
    start = await inbound_call(sim, events, called="", line=3)
    assert start["channel"]["name"] == "DAHDI/3-1"
    assert start["channel"]["dialplan"]["exten"] == "s"
    assert start["args"] == []


@pytest.mark.asyncio
async def test_app_args_replace_the_called_number(sim: AsteriskSimulator, events: Events) -> None:
    start = await inbound_call(sim, events, app_args=["main", "x"])
    assert start["args"] == ["main", "x"]


@pytest.mark.asyncio
async def test_a_call_with_no_app_connected_is_left_to_the_dialplan_fallback(
    sim: AsteriskSimulator, ari: Ari
) -> None:
    channel_id = await sim.place_call(caller="79161112233", called="74951234567")
    assert sim.channels[channel_id].stasis_failed
    assert sim.channels[channel_id].stasis_app is None
    status, body = await ari.call("POST", f"/channels/{channel_id}/answer")
    assert status == 409
    assert body == {"message": "Channel not in Stasis application"}


# -- answer, play ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_answer_then_play_finishes_the_prompt_after_its_length(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/answer", 204)
    change = await events.next()
    assert change["type"] == "ChannelStateChange"
    assert change["channel"]["state"] == "Up"

    playback = await ari.post(
        f"/channels/{channel_id}/play", 200, media="sound:switchboard/main-menu"
    )
    assert playback["state"] == "queued"
    assert playback["target_uri"] == f"channel:{channel_id}"
    started = await events.next()
    finished = await events.next()
    assert [started["type"], finished["type"]] == ["PlaybackStarted", "PlaybackFinished"]
    assert started["playback"]["state"] == "playing"
    assert finished["playback"]["state"] == "done"
    played = sim.playbacks[playback["id"]]
    assert played.started_at is not None
    assert played.finished_at is not None
    assert 6.0 <= played.finished_at - played.started_at < 15.0
    await ari.get(f"/playbacks/{playback['id']}", 404)


@pytest.mark.asyncio
async def test_a_media_list_plays_in_turn_and_a_stopped_playback_still_finishes(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/answer", 204)
    await events.next("ChannelStateChange")
    await ari.post(
        f"/channels/{channel_id}/play", 200, media=["sound:switchboard/greeting", "digits:12"]
    )
    sequence = await events.sequence(4)
    assert summary(sequence) == [
        "PlaybackStarted:sound:switchboard/greeting",
        "PlaybackContinuing:sound:switchboard/greeting",
        "PlaybackStarted:digits:12",
        "PlaybackFinished:digits:12",
    ]
    assert sequence[0]["playback"]["next_media_uri"] == "digits:12"

    long = await ari.post(
        f"/channels/{channel_id}/play/menu-1", 200, media="sound:switchboard/main-menu"
    )
    assert long["id"] == "menu-1"
    await events.next("PlaybackStarted")
    current = await ari.get("/playbacks/menu-1")
    assert current["state"] == "playing"
    await ari.delete("/playbacks/menu-1")
    stopped = await events.next()
    assert stopped["type"] == "PlaybackFinished"
    assert stopped["playback"]["state"] == "done"


@pytest.mark.asyncio
async def test_hanging_up_a_playing_channel_finishes_the_playback_before_stasis_end(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/play", 200, media="sound:switchboard/main-menu")
    await events.next("PlaybackStarted")
    await ari.delete(f"/channels/{channel_id}", reason="normal")
    teardown = await events.sequence(4)
    assert summary(teardown) == [
        "ChannelHangupRequest:32",
        "PlaybackFinished:sound:switchboard/main-menu",
        "StasisEnd:Ring",
        "ChannelDestroyed:16",
    ]
    assert teardown[0]["soft"] is True
    assert teardown[3]["cause_txt"] == "Normal Clearing"


@pytest.mark.asyncio
async def test_a_gone_channel_answers_404_channel_not_found(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await sim.hangup(channel_id)
    assert summary(await events.sequence(3)) == [
        "ChannelHangupRequest:16",
        "StasisEnd:Ring",
        "ChannelDestroyed:16",
    ]
    for method, path in [
        ("GET", f"/channels/{channel_id}"),
        ("POST", f"/channels/{channel_id}/answer"),
        ("POST", f"/channels/{channel_id}/play?media=sound:x"),
        ("DELETE", f"/channels/{channel_id}"),
    ]:
        status, body = await ari.call(method, path)
        assert (status, body) == (404, {"message": "Channel not found"}), (method, path)
    assert not sim.channels[channel_id].live
    assert sim.channels[channel_id].hangup_cause == 16
    with pytest.raises(UnknownChannel):
        await sim.press(channel_id, "1")


@pytest.mark.asyncio
async def test_variables_are_set_with_a_varset_event_and_read_back(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/variable", 204, variable="SCENARIO", value="main")
    varset = await events.next()
    assert (varset["type"], varset["variable"], varset["value"]) == (
        "ChannelVarset",
        "SCENARIO",
        "main",
    )
    assert (await ari.get(f"/channels/{channel_id}/variable", variable="SCENARIO")) == {
        "value": "main"
    }
    assert (await ari.get(f"/channels/{channel_id}/variable", variable="CALLERID(num)")) == {
        "value": "79161112233"
    }
    await ari.get(f"/channels/{channel_id}/variable", 404, variable="NOPE")


@pytest.mark.asyncio
async def test_a_variable_set_while_a_prompt_plays_is_set_when_the_prompt_is_over(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """res/stasis/control.c: the channel's control thread sets it, in turn behind the
    playback queued before it; reading it (func_read on the channel) waits for nothing."""
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/answer", 204)
    playback = await ari.post(
        f"/channels/{channel_id}/play", 200, media="sound:switchboard/main-menu"
    )
    await ari.post(f"/channels/{channel_id}/variable", 204, variable="MARK", value="x")
    set_at = sim.now()
    played = sim.playbacks[playback["id"]]
    assert played.finished_at is not None
    assert set_at >= played.finished_at
    assert (await ari.get(f"/channels/{channel_id}/variable", variable="MARK")) == {"value": "x"}
    # nothing ahead of it: set at once
    await ari.post(f"/channels/{channel_id}/variable", 204, variable="NEXT", value="y")
    assert sim.now() - set_at < 1.0


# -- outgoing: create + dial, originate ------------------------------------------------------


@pytest.mark.asyncio
async def test_dialling_an_answering_endpoint_reports_ringing_then_answer(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint("PJSIP/101", EndpointScript("answer", after=3.0))
    caller_id = (await inbound_call(sim, events, caller_name="Ivan"))["channel"]["id"]
    created = await ari.post(
        "/channels/create",
        200,
        endpoint="PJSIP/101",
        app=APP,
        appArgs="dialled,ivanov",
        channelId="agent-1",
    )
    assert created["id"] == "agent-1"
    assert created["state"] == "Down"
    assert re.fullmatch(r"PJSIP/101-[0-9a-f]{8}", created["name"])
    start = await events.next()
    assert start["type"] == "StasisStart"
    assert start["channel"]["state"] == "Down"
    assert start["args"] == ["dialled", "ivanov"]

    await ari.post("/channels/agent-1/dial", 204, caller=caller_id, timeout=30)
    sequence = await events.sequence(5)
    assert summary(sequence) == [
        "Dial:",
        "ChannelStateChange:Ringing",
        "Dial:RINGING",
        "ChannelStateChange:Up",
        "Dial:ANSWER",
    ]
    assert sequence[0]["dialstring"] == "101"
    assert all("caller" not in e for e in sequence if e["type"] == "Dial")
    assert sequence[4]["peer"]["connected"] == {"name": "Ivan", "number": "79161112233"}
    agent = sim.channels["agent-1"]
    assert agent.answered_at is not None
    assert agent.answered_at - agent.created_at >= 3.0
    status, body = await ari.call("POST", "/channels/agent-1/dial")
    assert status == 409, body


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "cause"), [("busy", 17), ("congestion", 34)])
async def test_a_pjsip_endpoint_that_refuses_the_call_is_hung_up_by_asterisk_with_its_cause(
    sim: AsteriskSimulator, ari: Ari, events: Events, kind: Any, cause: int
) -> None:
    """chan_pjsip ends the session and queues a hangup: no final Dial status."""
    sim.script_endpoint("PJSIP/102", EndpointScript(kind))
    await ari.post("/channels/create", 200, endpoint="PJSIP/102", app=APP, channelId="agent-2")
    await events.next("StasisStart")
    await ari.post("/channels/agent-2/dial", 204)
    assert summary(await events.sequence(4)) == [
        "Dial:",
        f"ChannelHangupRequest:{cause}",
        "StasisEnd:Down",
        f"ChannelDestroyed:{cause}",
    ]
    await ari.get("/channels/agent-2", 404)


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "dialstatus"), [("busy", "BUSY"), ("congestion", "CONGESTION")])
async def test_a_local_channel_that_signals_busy_reports_it_and_stays_until_hung_up(
    sim: AsteriskSimulator, ari: Ari, events: Events, kind: Any, dialstatus: str
) -> None:
    """Its ``;2`` half runs Busy(): only the control frame crosses, the channel stays."""
    sim.script_endpoint("Local/102@phones", EndpointScript(kind))
    await ari.post(
        "/channels/create", 200, endpoint="Local/102@phones", app=APP, channelId="agent-2"
    )
    await events.next("StasisStart")
    await ari.post("/channels/agent-2/dial", 204)
    assert summary(await events.sequence(2)) == ["Dial:", f"Dial:{dialstatus}"]
    assert (await ari.get("/channels/agent-2"))["state"] == "Down"
    await ari.delete("/channels/agent-2")
    assert summary(await events.sequence(3)) == [
        "ChannelHangupRequest:32",
        "StasisEnd:Down",
        "ChannelDestroyed:16",
    ]


@pytest.mark.asyncio
async def test_an_unregistered_pjsip_endpoint_cannot_even_be_created(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint("PJSIP/105", EndpointScript("offline"))
    body = await ari.post("/channels/create", 500, endpoint="PJSIP/105", app=APP, channelId="x")
    assert body == {"error": "Allocation failed"}
    await ari.get("/channels/x", 404)


@pytest.mark.asyncio
async def test_a_local_channel_to_nowhere_leaves_stasis_without_a_dial_event(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """``ast_call`` fails: a soft hangup with no event, no Dial (control.c, app_control_dial)."""
    sim.script_endpoint("Local/999@phones", EndpointScript("offline"))
    await ari.post("/channels/create", 200, endpoint="Local/999@phones", app=APP, channelId="l")
    await events.next("StasisStart")
    await ari.post("/channels/l/dial", 204)
    assert summary(await events.sequence(2)) == ["StasisEnd:Down", "ChannelDestroyed:16"]


@pytest.mark.asyncio
async def test_an_unanswered_dial_is_hung_up_by_asterisk_at_its_timeout(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """control.c, bridge_timeout -> hangup_channel: cause 19, and no Dial NOANSWER."""
    sim.script_endpoint("PJSIP/103", EndpointScript("noanswer"))
    await ari.post("/channels/create", 200, endpoint="PJSIP/103", app=APP, channelId="agent-3")
    await events.next("StasisStart")
    await ari.post("/channels/agent-3/dial", 204, timeout=20)
    sequence = await events.sequence(6)
    assert summary(sequence) == [
        "Dial:",
        "ChannelStateChange:Ringing",
        "Dial:RINGING",
        "ChannelHangupRequest:32",
        "StasisEnd:Ringing",
        "ChannelDestroyed:19",
    ]
    assert sequence[-1]["cause_txt"] == "User alerting, no answer"
    agent = sim.channels["agent-3"]
    assert agent.destroyed_at is not None
    assert agent.destroyed_at - agent.created_at >= 20.0


@pytest.mark.asyncio
async def test_a_ringing_endpoint_without_timeout_rings_until_the_app_hangs_it_up(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint("PJSIP/104", EndpointScript("noanswer"))
    await ari.post("/channels/create", 200, endpoint="PJSIP/104", app=APP, channelId="agent-4")
    await events.next("StasisStart")
    await ari.post("/channels/agent-4/dial", 204)
    await events.next("Dial")
    assert (await events.next("Dial"))["dialstatus"] == "RINGING"
    await ari.delete("/channels/agent-4", reason="no_answer")
    assert summary(await events.sequence(3)) == [
        "ChannelHangupRequest:32",
        "StasisEnd:Ringing",
        "ChannelDestroyed:19",
    ]


# -- created channels: Stasis on their own thread, and what is left until hung up ------------


@pytest.mark.asyncio
async def test_a_created_channel_enters_stasis_after_the_answer_and_a_dial_before_it_is_409(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """resource_channels.c: the answer is the snapshot before ari_channel_thread runs
    Stasis(); until StasisStart, find_control finds no control (409)."""
    sim.pbx.stasis_delay = 2.0
    created = await ari.post("/channels/create", 200, endpoint="PJSIP/101", app=APP, channelId="a")
    assert (created["state"], created["dialplan"]["app_name"]) == ("Down", "")
    status, body = await ari.call("POST", "/channels/a/dial")
    assert (status, body) == (409, {"message": "Channel not in Stasis application"})
    start = await events.next("StasisStart")
    assert start["channel"]["dialplan"]["app_name"] == "Stasis"
    await ari.post("/channels/a/dial", 204)
    assert (await events.next("Dial"))["dialstatus"] == ""


@pytest.mark.asyncio
async def test_a_created_channel_hung_up_before_its_stasis_start_still_gets_it_then_ends(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """DELETE works on any channel; app_stasis.c still enters Stasis for a hung-up one."""
    sim.pbx.stasis_delay = 2.0
    await ari.post("/channels/create", 200, endpoint="PJSIP/101", app=APP, channelId="a")
    await ari.delete("/channels/a")
    assert summary(await events.sequence(4)) == [
        "ChannelHangupRequest:32",
        "StasisStart:Down",
        "StasisEnd:Down",
        "ChannelDestroyed:16",
    ]


@pytest.mark.asyncio
async def test_a_created_channel_never_dialled_stays_in_asterisk_until_hung_up(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    await ari.post("/channels/create", 200, endpoint="PJSIP/101", app=APP, channelId="a")
    await events.next("StasisStart")
    await sim.clock.sleep(30)  # half a minute of nothing: Asterisk has no timer for it
    assert [c["id"] for c in await ari.get("/channels")] == ["a"]
    await ari.delete("/channels/a")
    assert (await events.next("ChannelDestroyed"))["cause"] == 16


@pytest.mark.asyncio
async def test_media_and_answer_on_a_created_channel_not_yet_up_are_412(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """channel_state_invalid (resource_channels.c): Down, Reserved, Ringing are refused."""
    sim.script_endpoint("PJSIP/104", EndpointScript("noanswer"))
    await ari.post("/channels/create", 200, endpoint="PJSIP/104", app=APP, channelId="a")
    await events.next("StasisStart")
    invalid = {"message": "Channel in invalid state"}
    assert await ari.call("POST", "/channels/a/play", media="sound:beep") == (412, invalid)
    await ari.post("/channels/a/dial", 204)
    await events.next("ChannelStateChange")  # Ringing
    assert await ari.call("POST", "/channels/a/moh") == (412, invalid)
    assert await ari.call("POST", "/channels/a/answer") == (412, invalid)
    assert await ari.call("POST", "/channels/a/continue") == (412, invalid)
    await ari.delete("/channels/a")


@pytest.mark.asyncio
async def test_an_originated_call_enters_stasis_only_once_answered(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint("PJSIP/79161234567@trunk", EndpointScript("answer", after=1.0))
    created = await ari.post(
        "/channels",
        200,
        endpoint="PJSIP/79161234567@trunk",
        app=APP,
        appArgs="callback",
        callerId='"Switchboard" <74951234567>',
        channelId="cb-1",
    )
    assert created["name"].startswith("PJSIP/trunk-")
    assert created["caller"] == {"name": "Switchboard", "number": "74951234567"}
    sequence = await events.sequence(6)
    assert summary(sequence) == [
        "Dial:",
        "ChannelStateChange:Ringing",
        "Dial:RINGING",
        "ChannelStateChange:Up",
        "Dial:ANSWER",
        "StasisStart:Up",
    ]
    assert sequence[5]["args"] == ["callback"]


@pytest.mark.asyncio
async def test_the_endpoints_list_shows_scripted_phones_and_their_state(
    sim: AsteriskSimulator, ari: Ari
) -> None:
    sim.script_endpoint("PJSIP/101", EndpointScript("answer"))
    sim.script_endpoint("PJSIP/105", EndpointScript("offline"))
    listed = {f"{e['technology']}/{e['resource']}": e["state"] for e in await ari.get("/endpoints")}
    assert listed == {"PJSIP/101": "online", "PJSIP/105": "offline", "PJSIP/trunk": "online"}
    assert (await ari.get("/endpoints/PJSIP/105"))["state"] == "offline"
    await ari.get("/endpoints/PJSIP/999", 404)


# -- bridges --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bridged_channels_leave_the_bridge_when_they_hang_up_and_the_bridge_stays(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint("PJSIP/101", EndpointScript("answer", after=1.0))
    caller_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{caller_id}/answer", 204)
    await events.next("ChannelStateChange")
    await answered_agent(sim, ari, events, "PJSIP/101", "agent-1")

    bridge = await ari.post("/bridges", 200, type="mixing", name="call-1", bridgeId="b-1")
    assert (bridge["id"], bridge["bridge_type"], bridge["channels"]) == ("b-1", "mixing", [])
    await ari.post("/bridges/b-1/addChannel", 204, channel=f"{caller_id},agent-1")
    entered = [await events.next(), await events.next()]
    assert [e["type"] for e in entered] == ["ChannelEnteredBridge"] * 2
    assert entered[1]["bridge"]["channels"] == [caller_id, "agent-1"]

    await ari.post("/bridges/b-1/removeChannel", 204, channel="agent-1")
    left = await events.next()
    assert left["type"] == "ChannelLeftBridge"
    assert left["channel"]["id"] == "agent-1"
    status, body = await ari.call("POST", "/bridges/b-1/removeChannel", channel="agent-1")
    assert (status, body) == (422, {"message": "Channel not in this bridge"})
    await ari.post("/bridges/b-1/addChannel", 204, channel="agent-1")
    await events.next("ChannelEnteredBridge")

    await sim.hangup(caller_id)
    teardown = await events.sequence(4)
    assert summary(teardown) == [
        "ChannelHangupRequest:16",
        "ChannelLeftBridge:Up",
        "StasisEnd:Up",
        "ChannelDestroyed:16",
    ]
    assert teardown[1]["bridge"]["channels"] == ["agent-1"]
    assert (await ari.get("/bridges/b-1"))["channels"] == ["agent-1"]

    await ari.delete("/bridges/b-1")
    final = await events.sequence(2)
    assert [e["type"] for e in final] == ["ChannelLeftBridge", "BridgeDestroyed"]
    await ari.get("/bridges/b-1", 404)
    assert sim.channels["agent-1"].live
    assert sim.channels["agent-1"].bridge_id is None


@pytest.mark.asyncio
async def test_adding_a_channel_outside_stasis_or_unknown_to_a_bridge_is_refused(
    sim: AsteriskSimulator, ari: Ari
) -> None:
    await ari.post("/bridges", 200, bridgeId="b-2")
    status, body = await ari.call("POST", "/bridges/b-2/addChannel", channel="nope")
    assert (status, body) == (400, {"message": "Channel not found"})
    outside = await sim.place_call(caller="1", called="2")  # no app: never in Stasis
    status, body = await ari.call("POST", "/bridges/b-2/addChannel", channel=outside)
    assert (status, body) == (422, {"message": "Channel not in Stasis application"})
    status, _ = await ari.call("POST", "/bridges/b-9/addChannel", channel=outside)
    assert status == 404
    status, _ = await ari.call("POST", "/bridges", bridgeId="b-2")
    assert status == 409


# -- auth, routes, request log ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bad_credentials_are_refused_with_401_and_api_key_is_accepted(
    sim: AsteriskSimulator, ari: Ari, session: aiohttp.ClientSession
) -> None:
    wrong = {"Authorization": aiohttp.encode_basic_auth("switchboard", "wrong")}
    status, body = await ari.call("GET", "/channels", headers=wrong)
    assert (status, body) == (401, {"message": "Authentication required"})
    status, _ = await ari.call("GET", "/channels", headers={})
    assert status == 401
    status, _ = await ari.call("GET", "/channels", headers={}, api_key="switchboard:secret")
    assert status == 200
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(sim.ws_url, params={"app": APP}, headers=wrong)
    assert refused.value.status == 401
    ws = await session.ws_connect(sim.ws_url, params={"app": APP, "api_key": "switchboard:secret"})
    await sim.wait_for(lambda s: s.connected_apps() == [APP])
    await ws.close()


@pytest.mark.asyncio
async def test_unknown_routes_answer_404_json_and_wrong_methods_405(ari: Ari) -> None:
    status, body = await ari.call("GET", "/nothing/here")
    assert (status, body) == (404, {"message": "Resource not found"})
    status, body = await ari.call("PUT", "/channels")
    assert (status, body) == (405, {"message": "Invalid method"})
    info = await ari.get("/asterisk/info")
    assert info["system"]["version"] == "22.10.1"


@pytest.mark.asyncio
async def test_the_request_log_records_each_request_in_order(
    sim: AsteriskSimulator, ari: Ari, events: Events, session: aiohttp.ClientSession
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    before = len(sim.requests)
    await ari.post(f"/channels/{channel_id}/answer", 204)
    await ari.post(f"/channels/{channel_id}/play", 200, media=["sound:a", "sound:b"], lang="ru")
    await ari.call(
        "PUT", f"/applications/{APP}/eventFilter", 200, json={"allowed": [{"type": "StasisStart"}]}
    )
    await ari.call("GET", "/channels", headers={}, api_key="switchboard:secret")
    log = sim.requests[before:]
    assert [(r.method, r.path, r.status) for r in log] == [
        ("POST", f"/ari/channels/{channel_id}/answer", 204),
        ("POST", f"/ari/channels/{channel_id}/play", 200),
        ("PUT", f"/ari/applications/{APP}/eventFilter", 200),
        ("GET", "/ari/channels", 200),
    ]
    assert log[1].query == {"media": "sound:a,sound:b", "lang": "ru"}
    assert log[2].body == {"allowed": [{"type": "StasisStart"}]}
    assert log[3].query == {}, "the api_key (a password) is not logged"
    assert all(a.t <= b.t for a, b in zip(sim.requests, sim.requests[1:], strict=False))
    assert sim.requests[0].path == "/ari/events"
    assert sim.requests[0].status == 101
    async with session.get(f"{sim.url}/_sim/requests") as response:
        over_http = await response.json()
    assert [r["path"] for r in over_http] == [r.path for r in sim.requests]


# -- websockets: replaced, dropped, restart, filter ----------------------------------------------


@pytest.mark.asyncio
async def test_a_second_connection_for_the_app_replaces_the_first(
    sim: AsteriskSimulator, session: aiohttp.ClientSession, events: Events
) -> None:
    second = await connect(sim, session)
    replaced = await events.next()
    assert replaced["type"] == "ApplicationReplaced"
    assert replaced["application"] == APP
    await events.closed()
    await inbound_call(sim, second)
    await second.ws.close()


@pytest.mark.asyncio
async def test_dropped_websockets_leave_calls_up_for_the_reconnecting_app(
    sim: AsteriskSimulator, ari: Ari, session: aiohttp.ClientSession, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await sim.drop_websockets()
    await events.closed()
    assert sim.connected_apps() == []
    await sim.press(channel_id, "5")  # nobody hears it: Asterisk drops undeliverable events
    assert sim.channels[channel_id].live
    assert sim.channels[channel_id].stasis_app == APP

    again = await connect(sim, session)
    assert [c["id"] for c in await ari.get("/channels")] == [channel_id]
    app = await ari.get(f"/applications/{APP}")
    assert app["channel_ids"] == [channel_id]
    await ari.post(f"/channels/{channel_id}/answer", 204)
    assert (await again.next())["type"] == "ChannelStateChange"
    await again.ws.close()


@pytest.mark.asyncio
async def test_a_restart_forgets_every_call_bridge_and_app_without_events(
    sim: AsteriskSimulator, ari: Ari, session: aiohttp.ClientSession, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post("/bridges", 200, bridgeId="b-3")
    await ari.post("/bridges/b-3/addChannel", 204, channel=channel_id)
    await events.next("ChannelEnteredBridge")
    await ari.call(
        "PUT", f"/applications/{APP}/eventFilter", 200, json={"allowed": [{"type": "StasisStart"}]}
    )

    await sim.restart()
    await events.closed()  # no StasisEnd, no ChannelDestroyed: a crash
    assert sim.live_channels() == []
    assert sim.live_bridges() == []
    assert await ari.get("/channels") == []
    assert await ari.get("/bridges") == []
    assert await ari.get("/applications") == []

    again = await connect(sim, session)
    new = await inbound_call(sim, again)
    assert new["channel"]["name"] == "PJSIP/trunk-00000001", "names count from 1 again"
    assert new["channel"]["id"] != channel_id
    await ari.post(f"/channels/{new['channel']['id']}/answer", 204)
    assert (await again.next())["type"] == "ChannelStateChange", "the old filter is gone"
    await again.ws.close()


@pytest.mark.asyncio
async def test_the_event_filter_keeps_only_allowed_events_and_disallowed_wins(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    allowed = {"allowed": [{"type": "StasisStart"}, {"type": "ChannelDtmfReceived"}]}
    _, app = await ari.call("PUT", f"/applications/{APP}/eventFilter", 200, json=allowed)
    assert app["events_allowed"] == allowed["allowed"]
    assert app["events_disallowed"] == []

    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/answer", 204)  # ChannelStateChange: filtered out
    await sim.press(channel_id, "5")
    assert (await events.message())["type"] == "ChannelDtmfReceived"

    disallow = {"disallowed": [{"type": "ChannelDtmfReceived"}]}
    _, app = await ari.call("PUT", f"/applications/{APP}/eventFilter", 200, json=disallow)
    assert app["events_allowed"] == allowed["allowed"], "a list not given is kept"
    await sim.press(channel_id, "6")
    second = await inbound_call(sim, events, caller="79990000000")
    assert events.received[-1] is second
    assert events.received[-2]["digit"] == "5"

    status, _ = await ari.call("PUT", f"/applications/{APP}/eventFilter", json={"allowed": 1})
    assert status == 400
    status, _ = await ari.call("PUT", "/applications/nobody/eventFilter", json={})
    assert status == 404


# -- scripted people --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_caller_presses_keys_when_a_prompt_starts_and_at_set_times(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    script = CallerScript(
        [
            Press("2", on_playback="main-menu", delay=1.0),
            Press("1", at=30.0),
            Press("9", on_moh=True),
            Press("101", on_playback="greeting"),
        ]
    )
    channel_id = (await inbound_call(sim, events, script=script))["channel"]["id"]
    channel = sim.channels[channel_id]
    await ari.post(f"/channels/{channel_id}/answer", 204)
    await ari.post(f"/channels/{channel_id}/play", 200, media="sound:switchboard/main-menu")
    started = (await events.next("PlaybackStarted"))["playback"]["id"]
    two = await events.next("ChannelDtmfReceived")
    assert two["digit"] == "2"
    assert two["duration_ms"] == 100
    start = sim.playbacks[started].started_at
    assert start is not None
    assert sim.now() - start >= 1.0

    one = await events.next("ChannelDtmfReceived")
    assert one["digit"] == "1"
    assert sim.now() - channel.created_at >= 30.0

    await ari.post(f"/channels/{channel_id}/moh", 204, mohClass="default")
    assert (await events.next("ChannelDtmfReceived"))["digit"] == "9"
    await ari.delete(f"/channels/{channel_id}/moh")
    await ari.post(f"/channels/{channel_id}/play", 200, media="sound:switchboard/greeting")
    digits = [(await events.next("ChannelDtmfReceived"))["digit"] for _ in range(3)]
    assert digits == ["1", "0", "1"]
    assert "".join(channel.dtmf_received) == "219101"


@pytest.mark.asyncio
async def test_a_caller_who_hangs_up_ends_the_call_at_that_time(
    sim: AsteriskSimulator, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events, script=CallerScript(hangup_after=40.0)))[
        "channel"
    ]["id"]
    destroyed = await events.next("ChannelDestroyed")
    assert destroyed["cause"] == 16
    channel = sim.channels[channel_id]
    assert channel.destroyed_at is not None
    assert channel.destroyed_at - channel.created_at >= 40.0


@pytest.mark.asyncio
async def test_an_agent_confirms_with_a_key_after_the_accept_prompt_and_hangs_up_later(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint(
        "PJSIP/101", EndpointScript("answer", after=1.0, hangup_after=20.0, confirm_key="1")
    )
    await answered_agent(sim, ari, events, "PJSIP/101", "agent-1")
    await ari.post("/channels/agent-1/play", 200, media="sound:switchboard/press-1-to-accept")
    confirm = await events.next("ChannelDtmfReceived")
    assert confirm["digit"] == "1"
    assert confirm["channel"]["id"] == "agent-1"
    hangup = await events.next("ChannelHangupRequest")
    assert hangup["cause"] == 16
    assert "soft" not in hangup
    agent = sim.channels["agent-1"]
    await sim.wait_for(lambda s: not agent.live)
    assert agent.answered_at is not None
    assert agent.destroyed_at is not None
    assert agent.destroyed_at - agent.answered_at >= 20.0


# -- recording, continue, snoop, control API ------------------------------------------------------


@pytest.mark.asyncio
async def test_a_recording_ends_at_its_maximum_duration_and_is_stored(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/answer", 204)
    live = await ari.post(
        f"/channels/{channel_id}/record",
        200,
        name="vm-1",
        format="wav",
        maxDurationSeconds=5,
        beep=True,
    )
    assert live["state"] == "queued"
    assert live["target_uri"] == f"channel:{channel_id}"
    assert (await events.next("RecordingStarted"))["recording"]["state"] == "recording"
    finished = (await events.next("RecordingFinished"))["recording"]
    assert finished["state"] == "done"
    assert finished["duration"] == 5
    assert await ari.get("/recordings/stored/vm-1") == {"name": "vm-1", "format": "wav"}
    status, _ = await ari.call("POST", f"/channels/{channel_id}/record", name="vm-1", format="wav")
    assert status == 409, "ifExists=fail keeps the stored recording"

    await ari.post(
        f"/channels/{channel_id}/record", 200, name="vm-2", format="wav", terminateOn="#"
    )
    await events.next("RecordingStarted")
    await sim.press(channel_id, "#")
    assert (await events.next("RecordingFinished"))["recording"]["name"] == "vm-2"
    await ari.delete("/recordings/stored/vm-2")
    await ari.get("/recordings/stored/vm-2", 404)


@pytest.mark.asyncio
async def test_a_bridge_recording_runs_until_the_last_party_leaves_and_is_a_file(
    sim: AsteriskSimulator, ari: Ari, events: Events, tmp_path: Path
) -> None:
    sim.pbx.recordings_dir = tmp_path
    sim.script_endpoint("PJSIP/101", EndpointScript("answer", after=1.0))
    caller_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{caller_id}/answer", 204)
    await events.next("ChannelStateChange")
    await answered_agent(sim, ari, events, "PJSIP/101", "agent-1")
    await ari.post("/bridges", 200, type="mixing", bridgeId="b-r")
    await ari.post("/bridges/b-r/addChannel", 204, channel=f"{caller_id},agent-1")
    await events.next("ChannelEnteredBridge")
    await events.next("ChannelEnteredBridge")
    # resource_bridges.c: the format first (422), then terminateOn / ifExists (400)
    status, body = await ari.call("POST", "/bridges/b-r/record", name="talk", format="mp9")
    assert (status, body["message"]) == (422, "specified format is unknown on this system")
    status, body = await ari.call(
        "POST", "/bridges/b-r/record", name="talk", format="wav", ifExists="maybe"
    )
    assert (status, body["message"]) == (400, "ifExists invalid")
    status, _ = await ari.call("POST", "/bridges/nope/record", name="talk", format="wav")
    assert status == 404
    live = await ari.post("/bridges/b-r/record", 200, name="talk", format="wav")
    assert (live["target_uri"], live["state"]) == ("bridge:b-r", "queued")
    started = await events.next("RecordingStarted")
    assert started["recording"]["target_uri"] == "bridge:b-r"
    status, _ = await ari.call("POST", "/bridges/b-r/record", name="talk", format="wav")
    assert status == 409  # a live recording of that name
    await sim.pbx.clock.sleep(10.0)
    # one party leaves: the Recorder still has the other to record
    await sim.hangup("agent-1")
    await events.next("ChannelLeftBridge")
    assert sim.recordings["talk"].state == "recording"
    # the last one leaves: the LONELY Recorder leaves too and the recording ends
    await sim.hangup(caller_id)
    await sim.wait_for(lambda s: "talk" in s.stored_recordings, what="the recording stored")
    assert sim.recordings["talk"].state == "done"
    assert sim.recordings["talk"].duration >= 10
    with wave.open(str(tmp_path / "talk.wav")) as wav:
        assert wav.getnframes() / wav.getframerate() >= 10.0
    await ari.delete("/bridges/b-r", 204)


@pytest.mark.asyncio
async def test_a_recording_in_progress_ends_when_the_caller_hangs_up(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(f"/channels/{channel_id}/record", 200, name="vm-3", format="wav")
    await events.next("RecordingStarted")
    await sim.hangup(channel_id)
    sequence = await events.sequence(4)
    assert [e["type"] for e in sequence] == [
        "ChannelHangupRequest",
        "RecordingFinished",
        "StasisEnd",
        "ChannelDestroyed",
    ]
    assert "vm-3" in sim.stored_recordings


@pytest.mark.asyncio
async def test_continue_sends_the_channel_back_to_the_dialplan(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    await ari.post(
        f"/channels/{channel_id}/continue", 204, context="fax", extension="s", priority=1
    )
    end = await events.next()
    assert end["type"] == "StasisEnd"
    channel = sim.channels[channel_id]
    assert channel.live
    assert channel.continued_to is not None
    assert (channel.continued_to.context, channel.continued_to.exten) == ("fax", "s")
    status, _ = await ari.call("POST", f"/channels/{channel_id}/answer")
    assert status == 409


@pytest.mark.asyncio
async def test_a_snoop_channel_enters_stasis_and_goes_with_its_target(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    channel_id = (await inbound_call(sim, events))["channel"]["id"]
    snoop = await ari.post(
        f"/channels/{channel_id}/snoop", 200, app=APP, spy="both", snoopId="snoop-1"
    )
    assert snoop["name"].startswith(f"Snoop/{channel_id}-")
    assert snoop["state"] == "Up"
    assert (await events.next())["type"] == "StasisStart"
    await sim.hangup(channel_id)
    await sim.wait_for(lambda s: not s.channels["snoop-1"].live)


@pytest.mark.asyncio
async def test_the_control_api_places_calls_presses_keys_and_hangs_up_over_http(
    sim: AsteriskSimulator, session: aiohttp.ClientSession, events: Events
) -> None:
    base = f"{sim.url}/_sim"
    script = {"presses": [{"digits": "4", "at": 5.0}], "hangup_after": 60.0}
    payload = {"caller": "79161112233", "called": "74951234567", "script": script}
    async with session.post(f"{base}/calls", json=payload) as response:
        assert response.status == 201
        channel_id = (await response.json())["channel_id"]
    assert (await events.next("StasisStart"))["channel"]["id"] == channel_id
    assert (await events.next("ChannelDtmfReceived"))["digit"] == "4"
    async with session.post(f"{base}/channels/{channel_id}/dtmf", json={"digits": "7"}) as r:
        assert r.status == 204
    assert (await events.next("ChannelDtmfReceived"))["digit"] == "7"
    endpoint = {"endpoint": "PJSIP/101", "kind": "busy"}
    async with session.post(f"{base}/endpoints", json=endpoint) as r:
        assert r.status == 204
    assert sim.pbx.script_for("PJSIP/101").kind == "busy"
    async with session.get(f"{base}/state") as r:
        state = await r.json()
    assert [c["id"] for c in state["channels"] if c["live"]] == [channel_id]
    async with session.post(f"{base}/channels/{channel_id}/hangup") as r:
        assert r.status == 204
    assert (await events.next("ChannelDestroyed"))["channel"]["id"] == channel_id
    async with session.post(f"{base}/calls", json={"script": {"presses": [{"digits": "x"}]}}) as r:
        assert r.status == 400


# -- the spec module ----------------------------------------------------------------------------


def test_the_spec_validator_reports_missing_fields_wrong_types_and_unknown_fields() -> None:
    caller = {"name": "", "number": "101"}
    problems = SPEC.validate(
        {"id": 1, "name": "x", "state": "Dancing", "caller": caller, "extra": True}, "Channel"
    )
    text = "\n".join(problems)
    assert "$.id: expected string, got int" in text
    assert "$.state: 'Dancing' is not one of" in text
    assert "$.connected: required by Channel, missing" in text
    assert "$.extra: Channel has no such field" in text
    event = {"type": "StasisEnd", "timestamp": "2026-01-01T10:00:00.000+0000"}
    assert "$.application: required by StasisEnd, missing" in SPEC.validate_event(event)
    with pytest.raises(SpecError):
        SPEC.assert_valid([{"name": "a"}], "List[StoredRecording]")
    operation = SPEC.operation("POST", "/ari/channels/create")
    assert operation is not None
    assert operation.nickname == "create"
