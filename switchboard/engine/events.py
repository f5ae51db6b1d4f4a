"""What the runtimes tell a call's scenario run: things that happened on the call."""

from __future__ import annotations

from typing import Literal

from switchboard.engine.message import message

AgentState = Literal["available", "busy", "offline"]


@message
class CallerHungUp:
    pass


@message
class Digits:
    keys: str  # one or more DTMF keys, in the order pressed


@message
class PlaybackFinished:
    playback_id: str


@message
class TimerFired:
    timer_id: str


@message
class LegAnswered:
    leg_id: str  # for a mobile with `confirm`, after the employee pressed 1


@message
class LegBusy:
    leg_id: str


@message
class LegTaken:
    """A queue offer found its employee held for another call (of this runtime or of
    another instance sharing the agents) before the leg was rung: nothing rang, and
    the call does not rest them (they are offered to it again once free)."""

    leg_id: str


@message
class LegFailed:
    leg_id: str  # could not be rung at all: offline, unreachable, congestion
    reason: str = "unavailable"


@message
class LegNoAnswer:
    leg_id: str  # the far end gave up ringing before we did


@message
class LegDigits:
    """Keys the employee on a bridged leg pressed (`recording.on_demand_key`)."""

    leg_id: str
    keys: str


@message
class LegHungUp:
    leg_id: str  # a bridged employee ended the conversation


@message
class LegTransferred:
    """The bridged employee handed the caller on with Asterisk's own transfer (a SIP
    phone's REFER); the leg now stands for the transfer target, ``to`` (``exten@context``
    of a blind transfer; "" when unknown: an attended one)."""

    leg_id: str
    to: str
    kind: Literal["blind", "attended"] = "blind"


@message
class AgentStatus:
    employee_id: str
    state: AgentState


@message
class LookupResult:
    request_id: str
    value: str | None  # an employee id or extension; None: nothing found or an error


@message
class RecordingFinished:
    recording_id: str
    duration: float


@message
class CallbackStored:
    request_id: str
    ok: bool  # committed to storage; only then does the caller hear the promise


Event = (
    CallerHungUp
    | Digits
    | PlaybackFinished
    | TimerFired
    | LegAnswered
    | LegBusy
    | LegTaken
    | LegFailed
    | LegNoAnswer
    | LegHungUp
    | LegDigits
    | LegTransferred
    | AgentStatus
    | LookupResult
    | RecordingFinished
    | CallbackStored
)

LegEvent = LegAnswered | LegBusy | LegTaken | LegFailed | LegNoAnswer
