"""The simulator's state: channels, bridges, playbacks, recordings and the request log.

Each resource knows how ARI shows it (`snapshot`, shaped exactly like the
``Channel``, ``Bridge``, ``Playback``, ``LiveRecording`` and
``StoredRecording`` models of the spec) and carries the extra facts a test
wants to read afterwards (the hangup cause, where a channel continued in the
dialplan, the digits a caller pressed).  Resources stay in the simulator's
dictionaries after they end, flagged as gone, so a test can look at a call's
history; ARI itself only shows live ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]

DOWN = "Down"
RING = "Ring"
RINGING = "Ringing"
UP = "Up"

NO_ROUTE_DESTINATION = 3
NORMAL_CLEARING = 16
USER_BUSY = 17
NO_ANSWER = 19
SUBSCRIBER_ABSENT = 20
CONGESTION = 34
SOFTHANGUP_EXPLICIT = 32  # ast_softhangup(AST_SOFTHANGUP_EXPLICIT): the "cause" ARI reports

# ast_cause2str() of main/causes.c for the causes a call-control app meets.
CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    58: "Bearer capability not available",
    127: "Interworking, unspecified",
}

# DELETE /channels/{id}?reason=... -> Q.850 cause (convert_reason_to_hangup_code).
HANGUP_REASONS = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 18,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def parse_endpoint(endpoint: str) -> tuple[str, str]:
    """``"PJSIP/101"`` -> ``("PJSIP", "101")``; raises ValueError without a resource."""
    tech, _, resource = endpoint.partition("/")
    if not tech or not resource:
        raise ValueError(f"invalid endpoint {endpoint!r}")
    return tech, resource


@dataclass
class CallerId:
    name: str = ""
    number: str = ""

    def to_json(self) -> Json:
        return {"name": self.name, "number": self.number}

    @classmethod
    def parse(cls, text: str) -> CallerId:
        """``'"Ivan" <101>'``, ``'Ivan <101>'`` or ``'101'`` as Asterisk reads a callerId."""
        text = text.strip()
        if "<" in text and text.endswith(">"):
            name, _, number = text[:-1].partition("<")
            return cls(name.strip().strip('"'), number.strip())
        return cls("", text)


@dataclass
class DialplanLocation:
    context: str
    exten: str
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    label: str | None = None

    def to_json(self) -> Json:
        return {
            "context": self.context,
            "exten": self.exten,
            "priority": self.priority,
            "app_name": self.app_name,
            "app_data": self.app_data,
        }


@dataclass(frozen=True)
class MediaEvent:
    """Something a channel started to hear: a playback's media or music on hold."""

    seq: int
    t: float
    kind: Literal["playback", "moh"]
    media: str


@dataclass(eq=False)
class Channel:
    """One call leg, from creation to ``ChannelDestroyed``."""

    id: str
    name: str
    endpoint: str
    state: str
    caller: CallerId
    dialplan: DialplanLocation
    created_at: float
    creationtime: str
    direction: Literal["inbound", "outbound"]
    connected: CallerId = field(default_factory=CallerId)
    language: str = "en"
    protocol_id: str = ""
    accountcode: str = ""
    stasis_app: str | None = None
    app_args: list[str] = field(default_factory=list)
    subscribers: set[str] = field(default_factory=set)
    bridge_id: str | None = None
    moh_class: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    reported_variables: set[str] = field(default_factory=set)
    created_by_ari: bool = False
    entering_stasis: bool = False  # created, its StasisStart not yet sent
    hangup_pending: int | None = None  # hung up while entering Stasis: the cause
    dialstring: str = ""
    dialed: bool = False
    local_peer_id: str | None = None
    dial_peer_id: str | None = None  # the other party of a call the dialplan's Dial() made
    # main/channel_internal_api.c, __ast_channel_internal_alloc_with_initializers: a
    # channel requested by another takes the requestor's linkedid, else its own uniqueid
    linkedid: str = ""
    on_hold: bool = False  # indicated HOLD (chan_pjsip's pjsip_uids_onhold, channel.c's hold state)
    snoop_ids: list[str] = field(default_factory=list)
    answered_at: float | None = None
    destroyed: bool = False
    destroyed_at: float | None = None
    hangup_cause: int | None = None
    continued_to: DialplanLocation | None = None
    stasis_failed: bool = False
    media_events: list[MediaEvent] = field(default_factory=list)
    dtmf_received: list[str] = field(default_factory=list)
    dtmf_sent: list[str] = field(default_factory=list)
    current_playback: Playback | None = None
    playback_queue: list[Playback] = field(default_factory=list)
    recording: LiveRecording | None = None
    silent_after: float | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def live(self) -> bool:
        return not self.destroyed

    @property
    def tech(self) -> str:
        return self.endpoint.partition("/")[0]

    @property
    def device(self) -> str:
        """The device whose state the channel counts in: its name up to the last ``-``
        (main/channel.c, ast_setstate), ``PJSIP/201`` for ``PJSIP/201-0000000a``."""
        device, dash, _ = self.name.rpartition("-")
        return device if dash else self.name

    def snapshot(self) -> Json:
        """The channel as ARI's ``Channel`` model shows it."""
        data: Json = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": self.protocol_id,
            "caller": self.caller.to_json(),
            "connected": self.connected.to_json(),
            "accountcode": self.accountcode,
            "dialplan": self.dialplan.to_json(),
            "creationtime": self.creationtime,
            "language": self.language,
        }
        if self.reported_variables:
            data["channelvars"] = {
                name: self.variables.get(name, "") for name in sorted(self.reported_variables)
            }
        return data


@dataclass(eq=False)
class Bridge:
    """A mixing or holding bridge created through ``POST /bridges``."""

    id: str
    bridge_type: Literal["mixing", "holding"]
    name: str
    created_at: float
    creationtime: str
    attributes: list[str] = field(default_factory=list)
    channel_ids: list[str] = field(default_factory=list)
    subscribers: set[str] = field(default_factory=set)
    moh_class: str | None = None
    destroyed: bool = False
    current_playback: Playback | None = None
    playback_queue: list[Playback] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # ``POST /bridges/{id}/record``: its Recorder channel's recording (that channel is
    # internal: Asterisk sends none of its own events, only the recording's)
    recording: LiveRecording | None = None

    @property
    def live(self) -> bool:
        return not self.destroyed

    @property
    def technology(self) -> str:
        if self.bridge_type == "holding":
            return "holding_bridge"
        return "softmix" if len(self.channel_ids) > 2 else "simple_bridge"

    def snapshot(self) -> Json:
        """The bridge as ARI's ``Bridge`` model shows it."""
        return {
            "id": self.id,
            "technology": self.technology,
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": self.name,
            "channels": list(self.channel_ids),
            "video_mode": "talker" if self.bridge_type == "mixing" else "none",
            "creationtime": self.creationtime,
        }


PlaybackState = Literal["queued", "playing", "continuing", "done", "failed"]


@dataclass(eq=False)
class Playback:
    """A ``/play`` request: one or more media URIs played in turn to a channel or bridge."""

    id: str
    media: list[str]
    target_kind: Literal["channel", "bridge"]
    target_id: str
    language: str
    state: PlaybackState = "queued"
    index: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    stopped: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def target_uri(self) -> str:
        return f"{self.target_kind}:{self.target_id}"

    @property
    def media_uri(self) -> str:
        return self.media[self.index]

    def snapshot(self) -> Json:
        """The playback as ARI's ``Playback`` model shows it."""
        data: Json = {"id": self.id, "media_uri": self.media_uri}
        if self.index + 1 < len(self.media):
            data["next_media_uri"] = self.media[self.index + 1]
        data.update({"target_uri": self.target_uri, "language": self.language, "state": self.state})
        return data


RecordingState = Literal["queued", "recording", "paused", "done", "failed", "canceled"]


@dataclass(eq=False)
class LiveRecording:
    """A recording in progress on a channel (``POST /channels/{id}/record``) or on a
    bridge (``POST /bridges/{id}/record``: ``bridge_id``, and no channel of ours)."""

    name: str
    format: str
    channel_id: str
    max_duration: int
    max_silence: int
    if_exists: str
    beep: bool
    terminate_on: str
    state: RecordingState = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    duration: int | None = None
    talking_duration: int | None = None
    task: asyncio.Task[None] | None = None
    bridge_id: str | None = None

    @property
    def target_uri(self) -> str:
        # res/res_stasis_recording.c takes the target the request built: "bridge:<id>" for a
        # bridge's (res/ari/resource_bridges.c, ast_ari_bridges_record)
        if self.bridge_id is not None:
            return f"bridge:{self.bridge_id}"
        return f"channel:{self.channel_id}"

    def snapshot(self) -> Json:
        """The recording as ARI's ``LiveRecording`` model shows it."""
        data: Json = {
            "name": self.name,
            "format": self.format,
            "state": self.state,
            "target_uri": self.target_uri,
        }
        if self.duration is not None:
            data["duration"] = self.duration
        if self.duration is not None and self.talking_duration is not None:
            data["talking_duration"] = self.talking_duration
            data["silence_duration"] = self.duration - self.talking_duration
        return data


@dataclass
class StoredRecording:
    """A finished recording on disk (``/recordings/stored``)."""

    name: str
    format: str
    duration: float

    def snapshot(self) -> Json:
        return {"name": self.name, "format": self.format}


@dataclass
class RequestRecord:
    """One request received under ``/ari``: when (clock seconds), what, the answer, and
    how it came (``http``, or ``websocket`` for a ``RESTRequest`` on the events socket)."""

    t: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    via: str = "http"
