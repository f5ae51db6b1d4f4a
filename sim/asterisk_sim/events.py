"""Builders for the websocket events, each shaped by its model in ``events.json``.

A builder returns the event's own fields and ``type``; `envelope` adds what
every message carries (``timestamp``, ``asterisk_id``, ``application``) when
it is delivered to one application.  Channel, bridge, playback and recording
fields are the resources' snapshots at the moment of the event.
"""

from __future__ import annotations

from asterisk_sim.model import (
    Bridge,
    Channel,
    Json,
    LiveRecording,
    Playback,
    cause_text,
)


def envelope(event: Json, *, application: str, asterisk_id: str, timestamp: str) -> Json:
    """The event as one application receives it: type, timestamp, fields, ids."""
    message: Json = {"type": event["type"], "timestamp": timestamp}
    message.update((k, v) for k, v in event.items() if k != "type")
    message["asterisk_id"] = asterisk_id
    message["application"] = application
    return message


def stasis_start(channel: Channel, args: list[str]) -> Json:
    return {"type": "StasisStart", "args": list(args), "channel": channel.snapshot()}


def stasis_end(channel: Channel) -> Json:
    return {"type": "StasisEnd", "channel": channel.snapshot()}


def channel_created(channel: Channel) -> Json:
    return {"type": "ChannelCreated", "channel": channel.snapshot()}


def channel_state_change(channel: Channel) -> Json:
    return {"type": "ChannelStateChange", "channel": channel.snapshot()}


def channel_dtmf_received(channel: Channel, digit: str, duration_ms: int = 100) -> Json:
    return {
        "type": "ChannelDtmfReceived",
        "digit": digit,
        "duration_ms": duration_ms,
        "channel": channel.snapshot(),
    }


def channel_hangup_request(channel: Channel, cause: int, *, soft: bool = False) -> Json:
    event: Json = {"type": "ChannelHangupRequest", "cause": cause}
    if soft:
        event["soft"] = True
    event["channel"] = channel.snapshot()
    return event


def channel_destroyed(channel: Channel, cause: int) -> Json:
    return {
        "type": "ChannelDestroyed",
        "cause": cause,
        "cause_txt": cause_text(cause),
        "channel": channel.snapshot(),
    }


def channel_varset(channel: Channel, variable: str, value: str) -> Json:
    return {
        "type": "ChannelVarset",
        "variable": variable,
        "value": value,
        "channel": channel.snapshot(),
    }


def dial(
    peer: Channel,
    dialstatus: str,
    *,
    dialstring: str | None = None,
    caller: Channel | None = None,
) -> Json:
    """A ``Dial`` event.  An ARI-dialled or originated channel has no caller (Asterisk
    passes NULL); the dialplan's ``Dial()`` names the calling channel (app_dial.c,
    ast_channel_publish_dial(chan, peer, ...))."""
    event: Json = {"type": "Dial"}
    if caller is not None:
        event["caller"] = caller.snapshot()
    event["peer"] = peer.snapshot()
    if dialstring:
        event["dialstring"] = dialstring
    event["dialstatus"] = dialstatus
    return event


_PLAYBACK_TYPES = {
    "playing": "PlaybackStarted",
    "continuing": "PlaybackContinuing",
    "done": "PlaybackFinished",
    "failed": "PlaybackFinished",
}


def playback(pb: Playback) -> Json:
    """PlaybackStarted / PlaybackContinuing / PlaybackFinished, by the playback's state."""
    return {"type": _PLAYBACK_TYPES[pb.state], "playback": pb.snapshot()}


_RECORDING_TYPES = {
    "recording": "RecordingStarted",
    "done": "RecordingFinished",
    "canceled": "RecordingFinished",
    "failed": "RecordingFailed",
}


def recording(rec: LiveRecording) -> Json:
    """RecordingStarted / RecordingFinished / RecordingFailed, by the recording's state."""
    return {"type": _RECORDING_TYPES[rec.state], "recording": rec.snapshot()}


def channel_entered_bridge(bridge: Bridge, channel: Channel) -> Json:
    return {
        "type": "ChannelEnteredBridge",
        "bridge": bridge.snapshot(),
        "channel": channel.snapshot(),
    }


def channel_left_bridge(bridge: Bridge, channel: Channel) -> Json:
    return {"type": "ChannelLeftBridge", "bridge": bridge.snapshot(), "channel": channel.snapshot()}


def bridge_created(bridge: Bridge) -> Json:
    return {"type": "BridgeCreated", "bridge": bridge.snapshot()}


def bridge_destroyed(bridge: Bridge) -> Json:
    return {"type": "BridgeDestroyed", "bridge": bridge.snapshot()}


def device_state_changed(name: str, state: str) -> Json:
    """res_stasis_device_state.c, send_device_state: ``{type, application, timestamp,
    device_state: {name, state}}`` (app_send adds ``asterisk_id``)."""
    return {"type": "DeviceStateChanged", "device_state": {"name": name, "state": state}}


def application_replaced() -> Json:
    return {"type": "ApplicationReplaced"}
