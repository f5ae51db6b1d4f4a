"""The simulator's device states, as Asterisk 22 computes and publishes them, over real sockets.

A phone's device (``PJSIP/201``) is what Switchboard asks before offering a
call: ``GET /deviceStates/PJSIP/201`` and ``DeviceStateChanged`` to an
application subscribed with ``deviceState:PJSIP/201``.  The states come from
chan_pjsip_devicestate (channels/chan_pjsip.c) and main/devicestate.c's
aggregation; the events from res/res_stasis_device_state.c.  Every answer is
checked against its ARI operation and every event against events.json (the
helpers of ``tests/test_asterisk_sim.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.clock import ScaledClock
from tests.test_asterisk_sim import AUTH, Ari, Events, connect

APP = "switchboard"
PHONE = "PJSIP/201"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[AsteriskSimulator]:
    simulator = AsteriskSimulator(clock=ScaledClock(0.01))
    simulator.script_endpoint(PHONE, EndpointScript("answer", after=1.0))
    simulator.script_endpoint("PJSIP/202", EndpointScript("answer", after=1.0))
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


@pytest_asyncio.fixture
async def events(sim: AsteriskSimulator, session: aiohttp.ClientSession) -> AsyncIterator[Events]:
    stream = await connect(sim, session)
    yield stream
    await stream.ws.close()


async def subscribe(ari: Ari, *devices: str, app: str = APP) -> dict[str, Any]:
    sources = [f"deviceState:{d}" for d in devices]
    body = await ari.post(f"/applications/{app}/subscription", 200, eventSource=sources)
    assert isinstance(body, dict)
    return body


def path(device: str) -> str:
    """``/deviceStates/PJSIP%2F201``: the name is one path segment, its ``/`` encoded."""
    return f"/deviceStates/{quote(device, safe='')}"


async def state_of(ari: Ari, device: str) -> str:
    body = await ari.get(path(device))
    assert body["name"] == device
    return str(body["state"])


async def next_state(events: Events) -> tuple[str, str]:
    """The next DeviceStateChanged (other events skipped) as ``(name, state)``."""
    event = await events.next("DeviceStateChanged")
    return event["device_state"]["name"], event["device_state"]["state"]


def device_events(sim: AsteriskSimulator, app: str = APP) -> list[tuple[str, str]]:
    """Every DeviceStateChanged delivered to ``app`` so far."""
    return [
        (e["device_state"]["name"], e["device_state"]["state"])
        for e in sim.sent_events
        if e["type"] == "DeviceStateChanged" and e["application"] == app
    ]


async def control(
    session: aiohttp.ClientSession, sim: AsteriskSimulator, path: str, body: Any = None
) -> tuple[int, Any]:
    async with session.post(f"{sim.url}/_sim{path}", json=body) as response:
        data = await response.json() if response.content_type == "application/json" else None
        return response.status, data


# -- the states ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_phone_rung_by_the_app_goes_ringing_inuse_onhold_and_back_to_not_inuse(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint(PHONE, EndpointScript("answer", after=100.0))  # 1 s: time to look
    assert await state_of(ari, PHONE) == "NOT_INUSE"
    app = await subscribe(ari, PHONE)
    assert app["device_names"] == [PHONE]

    await ari.post("/channels/create", 200, endpoint=PHONE, app=APP, channelId="leg")
    await events.next("StasisStart")
    assert await state_of(ari, PHONE) == "NOT_INUSE"  # a Down channel counts NOT_INUSE
    await ari.post("/channels/leg/dial", 204)
    assert await next_state(events) == (PHONE, "RINGING")
    assert await state_of(ari, PHONE) == "RINGING"
    assert await next_state(events) == (PHONE, "INUSE")
    assert sim.channels["leg"].state == "Up"

    await ari.post("/channels/leg/hold", 204)  # chan_pjsip_indicate(AST_CONTROL_HOLD)
    assert await next_state(events) == (PHONE, "ONHOLD")
    assert await state_of(ari, PHONE) == "ONHOLD"
    await ari.delete("/channels/leg/hold")
    assert await next_state(events) == (PHONE, "INUSE")

    await ari.delete("/channels/leg")
    assert await next_state(events) == (PHONE, "NOT_INUSE")
    assert await state_of(ari, PHONE) == "NOT_INUSE"
    assert device_events(sim) == [
        (PHONE, "RINGING"),
        (PHONE, "INUSE"),
        (PHONE, "ONHOLD"),
        (PHONE, "INUSE"),
        (PHONE, "NOT_INUSE"),
    ]
    event = next(e for e in sim.sent_events if e["type"] == "DeviceStateChanged")
    assert event["application"] == APP
    assert event["asterisk_id"] == sim.pbx.asterisk_id


@pytest.mark.asyncio
async def test_a_call_the_phone_makes_itself_is_inuse_and_ringing_it_too_is_ringinuse(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint(PHONE, EndpointScript("noanswer"))
    await subscribe(ari, PHONE)
    own = await sim.call_from(PHONE, "74951112233")
    channel = sim.channels[own]
    assert channel.name.startswith(f"{PHONE}-")
    assert channel.state == "Up"
    assert channel.stasis_app is None
    assert await next_state(events) == (PHONE, "INUSE")
    endpoint = await ari.get("/endpoints/PJSIP/201")
    assert endpoint["channel_ids"] == [own]

    await ari.post("/channels/create", 200, endpoint=PHONE, app=APP, channelId="leg")
    await events.next("StasisStart")
    await ari.post("/channels/leg/dial", 204)
    assert await next_state(events) == (PHONE, "RINGINUSE")  # ringing + in use
    await ari.delete("/channels/leg")
    assert await next_state(events) == (PHONE, "INUSE")

    await sim.hangup(own)
    assert await next_state(events) == (PHONE, "NOT_INUSE")
    # the phone's own call never reached the application
    assert not [e for e in events.received if e.get("channel", {}).get("id") == own]


@pytest.mark.asyncio
async def test_an_internal_call_between_two_phones_makes_both_busy_until_one_hangs_up(
    sim: AsteriskSimulator, ari: Ari, events: Events, session: aiohttp.ClientSession
) -> None:
    await subscribe(ari, PHONE, "PJSIP/202")
    status, body = await control(
        session, sim, "/endpoints/PJSIP/201/call", {"called": "202", "to": "PJSIP/202"}
    )
    assert status == 201
    caller, callee = body["channel_id"], body["peer_id"]
    assert body["name"].startswith("PJSIP/201-")
    assert sim.channels[callee].name.startswith("PJSIP/202-")
    assert sim.channels[caller].dialplan.app_name == "Dial"

    first = {await next_state(events), await next_state(events)}
    assert first == {("PJSIP/202", "RINGING"), (PHONE, "INUSE")}
    assert await next_state(events) == ("PJSIP/202", "INUSE")
    assert sim.channels[caller].state == "Up"
    assert await state_of(ari, PHONE) == "INUSE"
    async with session.get(f"{sim.url}/_sim/state") as response:
        state = await response.json()
    assert state["device_states"][PHONE] == "INUSE"
    assert state["device_states"]["PJSIP/202"] == "INUSE"

    status, _ = await control(session, sim, f"/channels/{callee}/hangup")
    assert status == 204
    last = {await next_state(events), await next_state(events)}
    assert last == {("PJSIP/202", "NOT_INUSE"), (PHONE, "NOT_INUSE")}
    assert not sim.channels[caller].live
    assert await ari.get("/channels") == []


@pytest.mark.asyncio
async def test_a_call_to_a_busy_phone_ends_the_callers_call_without_a_state_change(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint("PJSIP/202", EndpointScript("busy"))
    await subscribe(ari, PHONE, "PJSIP/202")
    own = await sim.call_from(PHONE, "202", to="PJSIP/202")
    await sim.wait_for(lambda s: not s.channels[own].live, what="the caller's call ended")
    assert sim.channels[own].hangup_cause == 17
    assert device_events(sim) == []
    assert await state_of(ari, PHONE) == "NOT_INUSE"


# -- registration ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_unregistered_phone_is_unavailable_and_cannot_be_called(
    sim: AsteriskSimulator, ari: Ari, events: Events, session: aiohttp.ClientSession
) -> None:
    await subscribe(ari, PHONE)
    status, _ = await control(session, sim, "/endpoints/PJSIP/201/unregister")
    assert status == 204
    assert await next_state(events) == (PHONE, "UNAVAILABLE")
    assert await state_of(ari, PHONE) == "UNAVAILABLE"
    assert (await ari.get("/endpoints/PJSIP/201"))["state"] == "offline"
    body = await ari.post("/channels/create", 500, endpoint=PHONE, app=APP, channelId="x")
    assert body == {"error": "Allocation failed"}

    # a call placed to it from another phone fails to be made: no route to destination
    own = await sim.call_from("PJSIP/202", "201", to=PHONE)
    await sim.wait_for(lambda s: not s.channels[own].live, what="the call failed")
    assert sim.channels[own].hangup_cause == 3

    status, _ = await control(session, sim, "/endpoints/PJSIP/201/register")
    assert status == 204
    assert await next_state(events) == (PHONE, "NOT_INUSE")
    assert (await ari.get("/endpoints/PJSIP/201"))["state"] == "online"


@pytest.mark.asyncio
async def test_an_unregistered_phone_still_on_a_call_shows_the_call(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """chan_pjsip_devicestate: the channels' aggregate replaces UNAVAILABLE."""
    await subscribe(ari, PHONE)
    own = await sim.call_from(PHONE)
    assert await next_state(events) == (PHONE, "INUSE")
    sim.unregister_endpoint(PHONE)
    await sim.hangup(own)
    assert await next_state(events) == (PHONE, "UNAVAILABLE")
    assert device_events(sim) == [(PHONE, "INUSE"), (PHONE, "UNAVAILABLE")]
    sim.register_endpoint(PHONE)
    assert await next_state(events) == (PHONE, "NOT_INUSE")


@pytest.mark.asyncio
async def test_scripting_a_phone_offline_is_the_same_as_unregistering_it(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    await subscribe(ari, PHONE)
    sim.script_endpoint(PHONE, EndpointScript("offline"))
    assert await next_state(events) == (PHONE, "UNAVAILABLE")
    sim.script_endpoint(PHONE, EndpointScript("answer"))
    assert await next_state(events) == (PHONE, "NOT_INUSE")
    # an endpoint the simulator did not know yet is configured so from the start
    sim.unregister_endpoint("PJSIP/203")
    assert await state_of(ari, "PJSIP/203") == "UNAVAILABLE"
    assert device_events(sim) == [(PHONE, "UNAVAILABLE"), (PHONE, "NOT_INUSE")]


# -- subscriptions ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_only_a_subscribed_application_hears_a_device_and_unsubscribing_stops_it(
    sim: AsteriskSimulator, ari: Ari, events: Events, session: aiohttp.ClientSession
) -> None:
    other = await connect(sim, session, app="other")
    try:
        await subscribe(ari, PHONE)
        app = await subscribe(ari, PHONE)  # the same name again: nothing changes
        assert app["device_names"] == [PHONE]
        # another spelling is a subscription of its own to the same (case-blind) topic:
        # res_stasis_device_state.c sends the event once per subscription
        await subscribe(ari, "pjsip/201")
        own = await sim.call_from(PHONE)
        assert await next_state(events) == (PHONE, "INUSE")
        assert await next_state(events) == (PHONE, "INUSE")
        assert device_events(sim, "other") == []
        assert device_events(sim) == [(PHONE, "INUSE"), (PHONE, "INUSE")]

        app = await ari.delete(
            f"/applications/{APP}/subscription", 200, eventSource=f"deviceState:{PHONE}"
        )
        assert app["device_names"] == ["pjsip/201"]
        await ari.delete(
            f"/applications/{APP}/subscription", 200, eventSource="deviceState:pjsip/201"
        )
        status, body = await ari.call(
            "DELETE", f"/applications/{APP}/subscription", eventSource=f"deviceState:{PHONE}"
        )
        assert (status, body) == (422, {"message": "Event source was not subscribed to"})
        await sim.hangup(own)
        await sim.wait_for(lambda s: s.device_state(PHONE) == "NOT_INUSE")
        assert device_events(sim) == [(PHONE, "INUSE"), (PHONE, "INUSE")]
        assert device_events(sim, "other") == []
        assert other.received == []
    finally:
        await other.ws.close()


@pytest.mark.asyncio
async def test_an_application_connected_with_subscribe_all_hears_every_device(
    sim: AsteriskSimulator, ari: Ari, session: aiohttp.ClientSession
) -> None:
    everything = await connect(sim, session, app="monitor", subscribeAll="true")
    try:
        app = await ari.get("/applications/monitor")
        assert app["device_names"] == ["__AST_DEVICE_STATE_ALL_TOPIC"]
        await sim.call_from(PHONE, "202", to="PJSIP/202")
        dial = await everything.next("Dial")
        assert dial["caller"]["name"].startswith("PJSIP/201-")  # app_dial names the caller
        assert dial["peer"]["name"].startswith("PJSIP/202-")
        assert dial["dialstatus"] == ""
        seen: set[tuple[str, str]] = set()
        while ("PJSIP/202", "INUSE") not in seen:
            event = await everything.next("DeviceStateChanged")
            seen.add((event["device_state"]["name"], event["device_state"]["state"]))
        assert seen == {("PJSIP/202", "RINGING"), (PHONE, "INUSE"), ("PJSIP/202", "INUSE")}
    finally:
        await everything.ws.close()


# -- devices that do not exist, and devices ARI controls ---------------------------------------


@pytest.mark.asyncio
async def test_an_unknown_device_is_invalid_subscribing_to_it_succeeds_and_phones_are_not_settable(
    sim: AsteriskSimulator, ari: Ari, events: Events, session: aiohttp.ClientSession
) -> None:
    assert await state_of(ari, "PJSIP/999") == "INVALID"  # chan_pjsip: no such endpoint
    assert await state_of(ari, "IAX2/1") == "INVALID"  # no such channel driver
    assert await state_of(ari, "nonsense") == "INVALID"  # neither Tech/ nor Provider:
    assert await state_of(ari, "Stasis:nothing") == "UNKNOWN"

    # res_stasis_device_state.c, find_device_state: any name makes a subscription
    app = await subscribe(ari, "PJSIP/999")
    assert app["device_names"] == ["PJSIP/999"]

    # res_ari.c, ast_ari_invoke: segments are split, then decoded -- an unencoded "/"
    # makes a path no handler has
    status, body = await ari.call("GET", f"/deviceStates/{PHONE}")
    assert (status, body) == (404, {"message": "Resource not found"})

    status, body = await ari.call("PUT", path(PHONE), deviceState="BUSY")
    assert (status, body) == (409, {"message": "Uncontrolled device specified"})
    status, body = await ari.call("DELETE", path(PHONE))
    assert (status, body) == (409, {"message": "Uncontrolled device specified"})
    status, body = await ari.call("PUT", path("Stasis:"), deviceState="BUSY")
    assert (status, body) == (404, {"message": "Device name is missing"})
    # an unknown value: 500, which the spec does not declare (so not through Ari.call)
    async with session.put(
        f"{sim.url}/ari/deviceStates/Stasis:lamp", params={"deviceState": "DANCING"}, headers=AUTH
    ) as response:
        assert response.status == 500
        assert await response.json() == {"message": "Unknown device"}
    status, body = await ari.call(
        "POST", "/applications/nobody/subscription", eventSource=f"deviceState:{PHONE}"
    )
    assert (status, body) == (404, {"message": "Application not found"})
    status, body = await ari.call("POST", f"/applications/{APP}/subscription")
    assert (status, body) == (400, {"message": "Missing parameter eventSource"})
    assert await ari.get("/deviceStates") == []  # the list holds only Stasis: devices


@pytest.mark.asyncio
async def test_a_stasis_device_set_over_ari_is_published_once_per_change(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    await subscribe(ari, "Stasis:lamp")
    await ari.call("PUT", "/deviceStates/Stasis:lamp", 204, deviceState="inuse")
    assert await next_state(events) == ("Stasis:lamp", "INUSE")
    await ari.call("PUT", "/deviceStates/Stasis:lamp", 204, deviceState="INUSE")
    await ari.call("PUT", "/deviceStates/Stasis:lamp", 204, deviceState="NOT_INUSE")
    assert await next_state(events) == ("Stasis:lamp", "NOT_INUSE")
    assert await ari.get("/deviceStates") == [{"name": "Stasis:lamp", "state": "NOT_INUSE"}]
    await ari.delete("/deviceStates/Stasis:lamp")
    assert await state_of(ari, "Stasis:lamp") == "UNKNOWN"
    assert await ari.get("/deviceStates") == []
    assert device_events(sim) == [("Stasis:lamp", "INUSE"), ("Stasis:lamp", "NOT_INUSE")]


@pytest.mark.asyncio
async def test_the_control_api_rejects_a_call_from_or_to_something_that_is_no_phone(
    sim: AsteriskSimulator, session: aiohttp.ClientSession
) -> None:
    status, _ = await control(session, sim, "/endpoints/PJSIP/201/call", {"to": "Local/1@x"})
    assert status == 400
    status, _ = await control(session, sim, "/endpoints/DAHDI/1/call", {})
    assert status == 400
    status, _ = await control(session, sim, "/endpoints/PJSIP/201/call", {"to": 5})
    assert status == 400
    assert sim.live_channels() == []


@pytest.mark.asyncio
async def test_a_restart_keeps_stasis_device_states_and_the_phones_registrations(
    sim: AsteriskSimulator, ari: Ari
) -> None:
    await ari.call("PUT", path("Stasis:lamp"), 204, deviceState="BUSY")
    sim.unregister_endpoint(PHONE)
    await sim.call_from("PJSIP/202")
    assert await state_of(ari, "PJSIP/202") == "INUSE"
    await sim.restart()
    assert not sim.channels
    assert await state_of(ari, "Stasis:lamp") == "BUSY"  # astdb, populate_cache
    assert await state_of(ari, PHONE) == "UNAVAILABLE"
    assert await state_of(ari, "PJSIP/202") == "NOT_INUSE"
