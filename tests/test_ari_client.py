"""The typed ARI client against the simulator: typed results, typed errors, odd events."""

from __future__ import annotations

import pytest

from ari_app.client import AriClient, AriError, AriUnavailable, CallGone, NotInStasis
from ari_app.models import (
    ChannelDtmfReceived,
    Dial,
    MalformedEvent,
    StasisStart,
    UnknownEvent,
    event_channel_id,
    parse_event,
)
from asterisk_sim import AsteriskSimulator
from switchboard.clock import ScaledClock


@pytest.mark.asyncio
async def test_a_hung_up_channel_is_call_gone_not_a_crash() -> None:
    async with (
        AsteriskSimulator(clock=ScaledClock(0.01), user="u", password="p") as sim,  # noqa: S106
        AriClient(sim.url, "u", "p", "switchboard") as client,
    ):
        with pytest.raises(CallGone):
            await client.answer("no-such-channel")
        with pytest.raises(CallGone):
            await client.stop_playback("no-such-playback")


@pytest.mark.asyncio
async def test_wrong_credentials_are_an_ari_error_that_says_401() -> None:
    async with (
        AsteriskSimulator(clock=ScaledClock(0.01), user="u", password="p") as sim,  # noqa: S106
        AriClient(sim.url, "u", "wrong", "switchboard") as client,
    ):
        with pytest.raises(AriError) as raised:
            await client.asterisk_info()
        assert raised.value.status == 401
        assert "wrong" not in str(raised.value)  # the password never shows


@pytest.mark.asyncio
async def test_a_channel_outside_stasis_is_not_in_stasis() -> None:
    async with (
        AsteriskSimulator(clock=ScaledClock(0.01), user="u", password="p") as sim,  # noqa: S106
        AriClient(sim.url, "u", "p", "switchboard") as client,
    ):
        # no app connected: Stasis() failed and the channel stayed in the dialplan
        channel = await sim.place_call("79160000000", "74951234567")
        with pytest.raises(NotInStasis):
            await client.answer(channel)
        channels = await client.list_channels()
        assert [c.id for c in channels] == [channel]
        assert channels[0].caller_number == "79160000000"
        assert channels[0].exten == "74951234567"


@pytest.mark.asyncio
async def test_asterisk_not_listening_is_unavailable() -> None:
    async with AriClient("http://127.0.0.1:9", "u", "p", "switchboard") as client:
        with pytest.raises(AriUnavailable):
            await client.asterisk_info()


def test_an_event_we_do_not_know_is_kept_as_unknown() -> None:
    event = parse_event({"type": "ChannelTalkingStarted", "channel": {"id": "1"}})
    assert isinstance(event, UnknownEvent)
    assert event.type == "ChannelTalkingStarted"


def test_events_are_typed_with_their_channel() -> None:
    channel = {"id": "c1", "name": "DAHDI/3-1", "state": "Ring", "caller": {"number": "123"}}
    start = parse_event({"type": "StasisStart", "args": [], "channel": channel})
    assert isinstance(start, StasisStart)
    assert start.channel.dahdi_line == 3
    assert start.channel.caller_number == "123"
    dtmf = parse_event({"type": "ChannelDtmfReceived", "digit": "5", "channel": channel})
    assert isinstance(dtmf, ChannelDtmfReceived)
    dial = parse_event({"type": "Dial", "dialstatus": "BUSY", "peer": channel})
    assert isinstance(dial, Dial)
    assert [event_channel_id(e) for e in (start, dtmf, dial)] == ["c1", "c1", "c1"]


@pytest.mark.parametrize(
    "garbage",
    [[], "text", {"no": "type"}, {"type": "StasisStart"}, {"type": "Dial", "peer": 5}],
    ids=["a list", "a string", "no type", "no channel", "a peer that is a number"],
)
def test_malformed_events_raise_a_typed_error(garbage: object) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(garbage)
