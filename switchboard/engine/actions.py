"""What a call's scenario run asks the runtime to do.  Times are seconds since the call began."""

from __future__ import annotations

from typing import Literal

from switchboard.config.model import CRM_MAX_BODY, CRM_MAX_DEPTH, CRM_MAX_REDIRECTS
from switchboard.engine.message import message

Device = Literal["desk", "mobile", "external"]


@message
class Answer:
    pass


@message
class Play:
    playback_id: str
    prompts: tuple[str, ...]  # resolved names: built-in, declared, sound:X, number:N, digits:N
    language: str


@message
class StopPlayback:
    playback_id: str


@message
class StartMoh:
    moh_class: str


@message
class StopMoh:
    pass


@message
class StartTimer:
    timer_id: str
    at: float  # fire `TimerFired(timer_id)` at this call time


@message
class CancelTimer:
    timer_id: str


@message
class Ring:
    leg_id: str
    employee_id: str | None  # None for an external number
    device: Device
    number: str  # extension for a desk phone, the full number otherwise
    confirm: bool  # the answering side must press 1 before it is bridged (mobiles)
    timeout: float  # the runtime's own safety limit; the engine stops the leg itself
    # a queue offer: the employee is held for this call while it rings (no other waiting
    # caller is offered them meanwhile); the runtime answers LegBusy if they are taken
    offer: bool = False
    # an offer that ends without a conversation: the call does not offer the employee
    # again for this long (the queue's `retry`), and the ACD knows it
    rest: float = 0.0
    # the caller-ID name the rung phone shows (`caller_id_name`); None: the caller's own
    caller_name: str | None = None
    # played to the employee when they answer, before LegAnswered (`whisper`): resolved
    # prompts, in ``whisper_language``; ``refuse_key`` pressed meanwhile: LegNoAnswer
    whisper: tuple[str, ...] = ()
    whisper_language: str = ""
    refuse_key: str | None = None
    # a conversation on this leg is recorded from its start (`record: always`): the
    # engine asks with `RecordConversation` once it is bridged; FastAGI, whose Dial
    # bridges it by itself, starts MixMonitor before the Dial
    record: bool = False


@message
class JoinQueue:
    """The call waits in ``department``'s queue (the ACD's line): offered agents in
    priority order, first come first served within a priority."""

    department: str
    priority: int = 0
    skills: tuple[str, ...] = ()  # required, e.g. ("en",)
    widen_after: float | None = None


@message
class LeaveQueue:
    """The call no longer waits in a queue (served, overflow, call-back, gone).
    ``keep_place``: it left by the `callback` or `overflow` exit, so a call-back it
    asks for next takes its place in the line (the runtime's ACD parks it)."""

    keep_place: bool = False


@message
class StopRinging:
    leg_id: str


@message
class Bridge:
    leg_id: str  # join the caller and this answered leg


@message
class StartRecording:
    recording_id: str
    max_length: float
    beep: bool


def recording_name(call_id: str, recording_id: str) -> str:
    """The name a call's recording has in Asterisk (and in the `messages` table)."""
    return f"switchboard-{call_id}-{recording_id}"


# the engine's id of a call's conversation recording: its file is
# `recording_name(call_id, CONVERSATION)`, e.g. switchboard-<call id>-conversation.wav
CONVERSATION = "conversation"


@message
class RecordConversation:
    """Record the caller's conversation with the employee (the bridge, over ARI;
    MixMonitor over FastAGI) until it ends, as `recording_name(call_id, recording_id)`.
    A recording that could not start: ``RecordingFinished(recording_id, 0.0)``."""

    recording_id: str = CONVERSATION


@message
class StopRecording:
    recording_id: str


@message
class SaveMessage:
    recording_id: str
    caller: str
    called: str
    at: float
    length: float
    mailbox: str | None


@message
class RequestCallback:
    request_id: str
    number: str
    caller: str
    called: str
    department: str | None
    scenario: str
    node: str
    # the local time the caller chose (`ask_time`), ISO 8601 with its offset; "" = as
    # soon as the department can
    due: str = ""


@message
class Lookup:
    request_id: str
    source: Literal["last_agent", "contacts", "http"]
    caller: str
    timeout: float
    days: float = 0.0  # last_agent: how far back to look
    # http: the request, rendered for the call, its {env.NAME} left for the runtime
    # (`switchboard.templates.defer`): url, method, headers, JSON body
    url: str = ""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    path: str = ""  # http: dotted JSON path to the employee
    # http: what the CRM may answer (the source's keys of the same names)
    max_body: int = CRM_MAX_BODY
    max_depth: int = CRM_MAX_DEPTH
    max_redirects: int = CRM_MAX_REDIRECTS
    allowed_hosts: tuple[str, ...] = ()


@message
class Notify:
    level: Literal["info", "warning"]
    message: str


@message
class ContinueInDialplan:
    context: str
    extension: str
    priority: int


@message
class Hangup:
    reason: str


Action = (
    Answer
    | Play
    | StopPlayback
    | StartMoh
    | StopMoh
    | StartTimer
    | CancelTimer
    | Ring
    | JoinQueue
    | LeaveQueue
    | StopRinging
    | Bridge
    | StartRecording
    | RecordConversation
    | StopRecording
    | SaveMessage
    | RequestCallback
    | Lookup
    | Notify
    | ContinueInDialplan
    | Hangup
)
