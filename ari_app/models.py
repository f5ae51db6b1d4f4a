"""ARI's JSON, typed at the edge: channels, playbacks, recordings, bridges and events.

Nothing past this module reads ``event["channel"]["caller"]["number"]``; it
reads ``event.channel.caller_number``.  Unknown event types become
`UnknownEvent` (logged, never a crash); missing optional fields get defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchboard.numbering import dahdi_line


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str = ""
    caller_name: str = ""
    context: str = ""
    exten: str = ""
    language: str = ""
    app_name: str = ""  # the dialplan application the channel is in ("Stasis")
    app_data: str = ""  # its arguments ("switchboard,74951234567")

    def in_stasis_app(self, app: str) -> bool:
        return self.app_name.lower() == "stasis" and self.app_data.split(",", 1)[0] == app

    @property
    def dahdi_line(self) -> int | None:
        """``DAHDI/3-1`` -> 3: the analog line a call came in on (None for other techs)."""
        return dahdi_line(self.name)


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str


@dataclass(frozen=True, slots=True)
class LiveRecording:
    name: str
    state: str
    target_uri: str = ""
    duration: float = 0.0
    cause: str = ""


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    bridge_type: str
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AsteriskInfo:
    version: str
    system_name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StasisStart:
    channel: Channel
    args: tuple[str, ...]
    replace_channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class StasisEnd:
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelDestroyed:
    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest:
    channel: Channel
    cause: int = 0


@dataclass(frozen=True, slots=True)
class ChannelStateChange:
    channel: Channel


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived:
    channel: Channel
    digit: str


@dataclass(frozen=True, slots=True)
class Dial:
    peer: Channel
    dialstatus: str
    caller: Channel | None = None


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    playback: Playback


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    playback: Playback


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    recording: LiveRecording


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge:
    channel: Channel
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class ApplicationReplaced:
    application: str


@dataclass(frozen=True, slots=True)
class DeviceStateChanged:
    """A subscribed device's state changed (``deviceState:NAME`` subscriptions):
    ``name`` as ``PJSIP/201``, ``state`` Asterisk's (``NOT_INUSE``, ``INUSE``, ...)."""

    name: str
    state: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    type: str
    raw: dict[str, Any]


AriEvent = (
    StasisStart
    | StasisEnd
    | ChannelDestroyed
    | ChannelHangupRequest
    | ChannelStateChange
    | ChannelDtmfReceived
    | Dial
    | PlaybackStarted
    | PlaybackFinished
    | RecordingFinished
    | RecordingFailed
    | ChannelLeftBridge
    | ApplicationReplaced
    | DeviceStateChanged
    | UnknownEvent
)

#: The event types the runtime asks Asterisk for (`PUT /applications/{app}/eventFilter`).
USED_EVENTS: tuple[str, ...] = (
    "StasisStart",
    "StasisEnd",
    "ChannelDestroyed",
    "ChannelHangupRequest",
    "ChannelDtmfReceived",
    "Dial",
    "PlaybackFinished",
    "RecordingFinished",
    "RecordingFailed",
    "ApplicationReplaced",
    "DeviceStateChanged",  # agents' phones (ari_app.runtime: subscribed one by one)
    "RESTResponse",  # answers to requests sent over the websocket (ari_app.client)
)


class MalformedEvent(ValueError):
    """An event whose JSON lacks what the spec says it must have."""

    error_id = "ari.malformed_event"


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else str(value)


def parse_channel(data: Any) -> Channel:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise MalformedEvent("a channel without an id")
    caller = data.get("caller") if isinstance(data.get("caller"), dict) else {}
    dialplan = data.get("dialplan") if isinstance(data.get("dialplan"), dict) else {}
    assert isinstance(caller, dict)
    assert isinstance(dialplan, dict)
    return Channel(
        id=data["id"],
        name=_str(data, "name"),
        state=_str(data, "state"),
        caller_number=_str(caller, "number"),
        caller_name=_str(caller, "name"),
        context=_str(dialplan, "context"),
        exten=_str(dialplan, "exten"),
        language=_str(data, "language"),
        app_name=_str(dialplan, "app_name"),
        app_data=_str(dialplan, "app_data"),
    )


def parse_playback(data: Any) -> Playback:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise MalformedEvent("a playback without an id")
    return Playback(
        id=data["id"],
        media_uri=_str(data, "media_uri"),
        target_uri=_str(data, "target_uri"),
        state=_str(data, "state"),
    )


def parse_recording(data: Any) -> LiveRecording:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise MalformedEvent("a recording without a name")
    duration = data.get("duration", 0)
    return LiveRecording(
        name=data["name"],
        state=_str(data, "state"),
        target_uri=_str(data, "target_uri"),
        duration=float(duration) if isinstance(duration, int | float) else 0.0,
        cause=_str(data, "cause"),
    )


def parse_bridge(data: Any) -> Bridge:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise MalformedEvent("a bridge without an id")
    channels = data.get("channels", [])
    return Bridge(
        id=data["id"],
        bridge_type=_str(data, "bridge_type"),
        channels=tuple(c for c in channels if isinstance(c, str))
        if isinstance(channels, list)
        else (),
    )


def parse_event(data: Any) -> AriEvent:
    """One websocket message -> a typed event; `MalformedEvent` if it cannot be read."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise MalformedEvent("an event without a type")
    kind = data["type"]
    match kind:
        case "StasisStart":
            args = data.get("args", [])
            replace = data.get("replace_channel")
            return StasisStart(
                parse_channel(data.get("channel")),
                tuple(str(a) for a in args) if isinstance(args, list) else (),
                parse_channel(replace) if replace else None,
            )
        case "StasisEnd":
            return StasisEnd(parse_channel(data.get("channel")))
        case "ChannelDestroyed":
            cause = data.get("cause", 0)
            return ChannelDestroyed(
                parse_channel(data.get("channel")),
                cause if isinstance(cause, int) else 0,
                _str(data, "cause_txt"),
            )
        case "ChannelHangupRequest":
            cause = data.get("cause", 0)
            return ChannelHangupRequest(
                parse_channel(data.get("channel")), cause if isinstance(cause, int) else 0
            )
        case "ChannelStateChange":
            return ChannelStateChange(parse_channel(data.get("channel")))
        case "ChannelDtmfReceived":
            return ChannelDtmfReceived(parse_channel(data.get("channel")), _str(data, "digit"))
        case "Dial":
            caller = data.get("caller")
            return Dial(
                parse_channel(data.get("peer")),
                _str(data, "dialstatus"),
                parse_channel(caller) if caller else None,
            )
        case "PlaybackStarted":
            return PlaybackStarted(parse_playback(data.get("playback")))
        case "PlaybackFinished":
            return PlaybackFinished(parse_playback(data.get("playback")))
        case "RecordingFinished":
            return RecordingFinished(parse_recording(data.get("recording")))
        case "RecordingFailed":
            return RecordingFailed(parse_recording(data.get("recording")))
        case "ChannelLeftBridge":
            return ChannelLeftBridge(
                parse_channel(data.get("channel")), parse_bridge(data.get("bridge"))
            )
        case "ApplicationReplaced":
            return ApplicationReplaced(_str(data, "application"))
        case "DeviceStateChanged":
            device = data.get("device_state")
            if not isinstance(device, dict) or not isinstance(device.get("name"), str):
                raise MalformedEvent("a device state change without a device")
            return DeviceStateChanged(device["name"], _str(device, "state"))
    return UnknownEvent(kind, data)


def event_channel_id(event: AriEvent) -> str | None:
    """The channel an event belongs to (for per-call ordering), if any."""
    match event:
        case (
            StasisStart()
            | StasisEnd()
            | ChannelDestroyed()
            | ChannelHangupRequest()
            | ChannelStateChange()
            | ChannelDtmfReceived()
            | ChannelLeftBridge()
        ):
            return event.channel.id
        case Dial():
            return event.peer.id
        case PlaybackStarted() | PlaybackFinished():
            return _target_channel(event.playback.target_uri)
        case RecordingFinished() | RecordingFailed():
            return _target_channel(event.recording.target_uri)
    return None


def _target_channel(uri: str) -> str | None:
    return uri[8:] if uri.startswith("channel:") else None
