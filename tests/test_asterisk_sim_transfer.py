"""A phone's blind transfer (REFER) of a call in an ARI bridge, as Asterisk 22 does it.

`AsteriskSimulator.blind_transfer` stands for the REFER: res/res_pjsip_refer.c
hands it to main/bridge.c's ast_bridge_transfer_blind, which for a bridge made
over ARI swaps a Local channel to the target into the bridge in the
transferer's place (blind_transfer_bridge; res/stasis/stasis_bridge.c puts the
Local channel into the transferer's application first).  Everything is
checked over real HTTP and websockets, every answer against its ARI operation
and every event against events.json (the helpers of
``tests/test_asterisk_sim.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.clock import ScaledClock
from tests.test_asterisk_sim import (
    APP,
    Ari,
    Events,
    answered_agent,
    connect,
    inbound_call,
    summary,
)

AGENT = "PJSIP/101"
TARGET = "Local/200@phones"  # what ;2 of the transfer's Local channel runs, as a script


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[AsteriskSimulator]:
    simulator = AsteriskSimulator(clock=ScaledClock(0.01))
    simulator.script_endpoint(AGENT, EndpointScript("answer", after=1.0))
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


async def bridged_call(sim: AsteriskSimulator, ari: Ari, events: Events) -> tuple[str, str]:
    """An answered inbound caller and an answered agent leg (created over ARI) in the
    mixing bridge ``b-1``, in that order; returns their channel ids."""
    caller = (await inbound_call(sim, events, app=APP))["channel"]["id"]
    await ari.post(f"/channels/{caller}/answer", 204)
    await events.next("ChannelStateChange")
    await answered_agent(sim, ari, events, AGENT, "agent-1")
    await ari.post("/bridges", 200, type="mixing", bridgeId="b-1")
    await ari.post("/bridges/b-1/addChannel", 204, channel=f"{caller},agent-1")
    await events.next("ChannelEnteredBridge")
    entered = await events.next("ChannelEnteredBridge")
    assert entered["bridge"]["channels"] == [caller, "agent-1"]
    return caller, "agent-1"


def varset(event: dict[str, Any]) -> tuple[str, str, str]:
    assert event["type"] == "ChannelVarset"
    return event["channel"]["id"], event["variable"], event["value"]


# -- a transfer that works --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_blind_transfer_swaps_a_local_channel_into_the_bridge_in_the_transferers_place(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint(TARGET, EndpointScript("answer", after=2.0, hangup_after=3.0))
    caller, agent = await bridged_call(sim, ari, events)
    caller_name = sim.channels[caller].name
    agent_name = sim.channels[agent].name

    assert await sim.blind_transfer(agent, "200", "phones") == 200  # the REFER's 200

    got = await events.sequence(8)
    assert [e["type"] for e in got] == [
        "ChannelUnhold",
        "ChannelVarset",
        "ChannelVarset",
        "StasisStart",
        "ChannelLeftBridge",
        "ChannelEnteredBridge",
        "ChannelVarset",
        "BridgeBlindTransfer",
    ]
    unhold, caller_var, agent_var, start, left, entered, cleared, transfer = got
    assert unhold["channel"]["id"] == agent
    # set_transfer_variables_all: the transferer's BRIDGEPEER, the others the transferer
    assert varset(caller_var) == (caller, "BLINDTRANSFER", agent_name)
    assert varset(agent_var) == (agent, "BLINDTRANSFER", caller_name)

    local = start["channel"]
    assert local["name"].startswith("Local/200@phones-")
    assert local["name"].endswith(";1")
    assert local["state"] == "Down"
    assert local["dialplan"] == {
        "context": "phones",
        "exten": "200",
        "priority": 1,
        "app_name": "Stasis",
        "app_data": APP,
    }
    assert start["args"] == []
    assert start["replace_channel"]["id"] == agent
    assert start["replace_channel"]["state"] == "Up"

    assert left["channel"]["id"] == agent
    assert left["bridge"]["channels"] == [caller]
    assert entered["channel"]["id"] == local["id"]
    assert entered["bridge"]["channels"] == [caller, local["id"]]
    assert varset(cleared) == (local["id"], "BLINDTRANSFER", "")

    assert transfer["channel"]["id"] == agent
    assert transfer["transferee"]["id"] == caller
    assert transfer["replace_channel"]["id"] == local["id"]
    assert transfer["replace_channel"]["dialplan"]["app_name"] == ""  # made, not yet in Stasis
    assert transfer["bridge"]["id"] == "b-1"
    assert transfer["bridge"]["channels"] == [caller, agent]  # as it was before
    assert (transfer["exten"], transfer["context"]) == ("200", "phones")
    assert (transfer["result"], transfer["is_external"]) == ("Success", True)

    bridge = await ari.get("/bridges/b-1")
    assert bridge["channels"] == [caller, local["id"]]
    transferer = await ari.get(f"/channels/{agent}")
    assert transferer["state"] == "Up"  # alive, in the app, out of the bridge
    assert sim.channels[agent].stasis_app == APP
    assert sim.channels[agent].bridge_id is None

    # ;2 rings the target, which answers 2 s later and hangs up 3 s after that
    ringing = await events.sequence(4)
    assert summary(ringing) == [
        "ChannelStateChange:Ringing",
        "Dial:RINGING",
        "ChannelStateChange:Up",
        "Dial:ANSWER",
    ]
    assert all(e["channel" if "channel" in e else "peer"]["id"] == local["id"] for e in ringing)
    assert all("caller" not in e and "dialstring" not in e for e in ringing if e["type"] == "Dial")
    one = sim.channels[local["id"]]
    assert one.answered_at is not None
    assert one.answered_at - one.created_at >= 2.0

    await sim.hangup(agent)  # the phone hangs up after the NOTIFY: created, still heard
    assert summary(await events.sequence(3)) == [
        "ChannelHangupRequest:16",
        "StasisEnd:Up",
        "ChannelDestroyed:16",
    ]
    gone = await events.sequence(4)
    assert summary(gone) == [
        "ChannelHangupRequest:16",
        "ChannelLeftBridge:Up",
        "StasisEnd:Up",
        "ChannelDestroyed:16",
    ]
    assert all(e["channel"]["id"] == local["id"] for e in gone)
    assert (await ari.get("/bridges/b-1"))["channels"] == [caller]
    assert not sim.channels[one.local_peer_id or ""].live


@pytest.mark.asyncio
async def test_an_inbound_transferer_is_not_heard_after_the_transfer_but_its_stasis_end_is(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """The Local channel's StasisStart drops the app's only subscription to the caller
    (res_stasis.c, send_start_msg_snapshots -> app_unsubscribe_channel_id)."""
    sim.script_endpoint("Local/300@phones", EndpointScript("noanswer"))
    caller, agent = await bridged_call(sim, ari, events)
    assert caller in (await ari.get(f"/applications/{APP}"))["channel_ids"]

    assert await sim.blind_transfer(caller, "300", "phones") == 200
    transfer = await events.next("BridgeBlindTransfer")
    assert transfer["channel"]["id"] == caller
    assert transfer["transferee"]["id"] == agent
    local = transfer["replace_channel"]["id"]
    assert (await ari.get("/bridges/b-1"))["channels"] == [agent, local]
    assert caller not in (await ari.get(f"/applications/{APP}"))["channel_ids"]
    assert summary(await events.sequence(2)) == ["ChannelStateChange:Ringing", "Dial:RINGING"]

    await sim.hangup(caller)
    await ari.delete(f"/channels/{local}")
    assert summary(await events.sequence(5)) == [
        "StasisEnd:Up",  # the caller's: no hangup request, no ChannelDestroyed
        "ChannelHangupRequest:32",
        "ChannelLeftBridge:Ringing",
        "StasisEnd:Ringing",
        "ChannelDestroyed:16",
    ]


@pytest.mark.asyncio
async def test_a_busy_transfer_target_leaves_the_local_channel_down_in_the_bridge(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    """Busy() on ;2: the BUSY frame reaches ;1 in the bridge (Dial BUSY), ;2 goes Busy."""
    sim.script_endpoint(TARGET, EndpointScript("busy"))
    caller, agent = await bridged_call(sim, ari, events)
    assert await sim.blind_transfer(agent, "200", "phones") == 200
    local = (await events.next("BridgeBlindTransfer"))["replace_channel"]["id"]
    busy = await events.next()
    assert summary([busy]) == ["Dial:BUSY"]
    assert busy["peer"]["id"] == local
    assert (await ari.get(f"/channels/{local}"))["state"] == "Down"
    assert sim.channels[sim.channels[local].local_peer_id or ""].state == "Busy"
    await ari.delete(f"/channels/{local}")
    await ari.delete(f"/channels/{agent}")
    await ari.delete(f"/channels/{caller}")


@pytest.mark.asyncio
async def test_an_app_subscribed_to_all_also_hears_the_local_channel_being_made(
    sim: AsteriskSimulator, ari: Ari, events: Events, session: aiohttp.ClientSession
) -> None:
    """Before ;1 enters Stasis only an app subscribed to everything hears the Local
    channel: its creation, BLINDTRANSFER and refer_blind_callback's SIPTRANSFER, and
    ;2 copying ;1's variables (core_unreal.c, ast_unreal_call_setup)."""
    sim.script_endpoint(TARGET, EndpointScript("noanswer"))
    caller, agent = await bridged_call(sim, ari, events)
    watcher = await connect(sim, session, app="watcher", subscribeAll="true")
    try:
        assert await sim.blind_transfer(agent, "200", "phones") == 200
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != "BridgeBlindTransfer":
            seen.append(await watcher.message())
        made = [e for e in seen if e["type"] == "ChannelCreated"]
        assert [e["channel"]["name"][-2:] for e in made] == [";1", ";2"]
        assert [e["channel"]["state"] for e in made] == ["Down", "Ring"]
        one, two = (e["channel"]["id"] for e in made)
        local_vars = [varset(e) for e in seen if e["type"] == "ChannelVarset"]
        agent_name = sim.channels[agent].name
        assert (one, "BLINDTRANSFER", agent_name) in local_vars
        assert local_vars.index((one, "BLINDTRANSFER", agent_name)) < local_vars.index(
            (one, "SIPTRANSFER", "yes")
        )
        assert [v for v in local_vars if v[0] == two] == [
            (two, "SIPTRANSFER", "yes"),
            (two, "BLINDTRANSFER", agent_name),
        ]
        assert "StasisStart" not in [e["type"] for e in seen]  # only the Local's own app
    finally:
        await watcher.ws.close()
    await ari.delete(f"/channels/{caller}")


# -- transfers that cannot be made ------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_transfer_outside_a_bridge_or_alone_in_one_is_invalid_and_changes_nothing(
    sim: AsteriskSimulator, ari: Ari, events: Events
) -> None:
    sim.script_endpoint(TARGET, EndpointScript("answer", after=1.0))
    caller = (await inbound_call(sim, events, app=APP))["channel"]["id"]
    await ari.post(f"/channels/{caller}/answer", 204)
    await events.next("ChannelStateChange")
    channels_before = set(sim.channels)

    # in no bridge: ast_bridge_transfer_acquire_bridge finds none
    assert await sim.blind_transfer(caller, "200", "phones") == 400
    invalid = await events.next()
    assert invalid["type"] == "BridgeBlindTransfer"
    assert (invalid["result"], invalid["channel"]["id"]) == ("Invalid", caller)
    assert (invalid["exten"], invalid["context"], invalid["is_external"]) == (
        "200",
        "phones",
        True,
    )
    assert not {"bridge", "transferee", "replace_channel"} & set(invalid)

    # alone in a bridge: off hold first, then "<= 1 channels" is Invalid too
    await ari.post("/bridges", 200, type="mixing", bridgeId="b-2")
    await ari.post("/bridges/b-2/addChannel", 204, channel=caller)
    await events.next("ChannelEnteredBridge")
    assert await sim.blind_transfer(caller, "200", "phones") == 400
    unhold, alone = await events.sequence(2)
    assert unhold["type"] == "ChannelUnhold"
    assert alone["type"] == "BridgeBlindTransfer"
    assert alone["result"] == "Invalid"
    assert alone["bridge"]["channels"] == [caller]
    assert not {"transferee", "replace_channel"} & set(alone)
    assert (await ari.get("/bridges/b-2"))["channels"] == [caller]
    assert set(sim.channels) == channels_before  # no Local channel was made

    # no such extension: res_pjsip_refer answers 404 and never asks the bridge
    sim.script_endpoint("Local/999@phones", EndpointScript("offline"))
    assert await sim.blind_transfer(caller, "999", "phones") == 404
    await ari.delete(f"/channels/{caller}")
    assert summary(await events.sequence(3)) == [
        "ChannelHangupRequest:32",
        "ChannelLeftBridge:Up",  # the next event after the 404: nothing came of it
        "StasisEnd:Up",
    ]
    assert set(sim.channels) == channels_before


@pytest.mark.asyncio
async def test_only_a_sip_phone_sends_a_refer(sim: AsteriskSimulator, events: Events) -> None:
    analog = await sim.place_call(caller="1", line=3, app=APP)
    with pytest.raises(ValueError, match="PJSIP"):
        await sim.blind_transfer(analog, "200", "phones")
