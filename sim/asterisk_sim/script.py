"""How the simulated people behave: endpoints that are dialled and callers who call in.

An `EndpointScript` says what a dialled phone does (answer after N seconds,
be busy, ring forever, be offline, report congestion; hang up after a talk;
press a confirmation key when asked).  A `CallerScript` says what an inbound
caller does: the keys they press (at a time, or when a prompt starts, or when
hold music starts) and when they give up.  All times are clock seconds, so a
`ScaledClock` plays them faster.

The ``run_*`` coroutines carry the scripts out against the simulated PBX;
each runs as a task owned by its channel and is cancelled when the channel
goes away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from asterisk_sim.model import (
    CONGESTION,
    NORMAL_CLEARING,
    SUBSCRIBER_ABSENT,
    USER_BUSY,
    Channel,
)

if TYPE_CHECKING:
    from asterisk_sim.pbx import Pbx

EndpointKind = Literal["answer", "busy", "noanswer", "offline", "congestion"]
DTMF_DIGITS = frozenset("0123456789*#ABCD")

# What a failed dial reports: the Dial status and the hangup cause.
FAILURES: dict[str, tuple[str, int]] = {
    "busy": ("BUSY", USER_BUSY),
    "offline": ("CHANUNAVAIL", SUBSCRIBER_ABSENT),
    "congestion": ("CONGESTION", CONGESTION),
}


def check_digits(digits: str) -> str:
    """``digits`` if every character is a DTMF digit, else ValueError."""
    if not digits or any(d not in DTMF_DIGITS for d in digits):
        raise ValueError(f"not DTMF digits: {digits!r}")
    return digits


@dataclass(frozen=True)
class EndpointScript:
    """What a dialled endpoint (``PJSIP/101``, ``PJSIP/7916...@trunk``) does.

    ``answer``: rings at once and answers ``after`` seconds later;
    ``busy``, ``offline`` (CHANUNAVAIL), ``congestion``: fail at once;
    ``noanswer``: rings until the app hangs up or the dial timeout passes.
    ``hangup_after``: the far end hangs up that long after answering.
    ``confirm_key``: pressed ``confirm_after`` seconds after a playback whose
    media contains ``confirm_on`` starts on the channel.
    """

    kind: EndpointKind = "answer"
    after: float = 2.0
    hangup_after: float | None = None
    confirm_key: str | None = None
    confirm_on: str = "press-1-to-accept"
    confirm_after: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in get_args(EndpointKind):
            raise ValueError(f"unknown endpoint behaviour {self.kind!r}")
        if self.confirm_key is not None:
            check_digits(self.confirm_key)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointScript:
        """From the control API's ``{"kind": "answer", "after": 3, ...}``."""
        known = {"kind", "after", "hangup_after", "confirm_key", "confirm_on", "confirm_after"}
        unknown = set(data) - known - {"endpoint"}
        if unknown:
            raise ValueError(f"unknown endpoint script fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})


DEFAULT_ENDPOINT = EndpointScript("answer", after=2.0)


@dataclass(frozen=True)
class Press:
    """Keys a caller presses, once: ``at`` a time after the call started, or when a
    playback whose media contains ``on_playback`` starts (then ``delay`` later),
    or when hold music starts (``on_moh``).  Several digits are ``gap`` apart."""

    digits: str
    at: float | None = None
    on_playback: str | None = None
    delay: float = 0.0
    on_moh: bool = False
    gap: float = 0.3

    def __post_init__(self) -> None:
        check_digits(self.digits)
        triggers = [self.at is not None, self.on_playback is not None, self.on_moh]
        if sum(triggers) != 1:
            raise ValueError("a Press needs exactly one of at=, on_playback=, on_moh=True")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Press:
        known = {"digits", "at", "on_playback", "delay", "on_moh", "gap"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown press fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class CallerScript:
    """What an inbound caller does: `Press` es in order, and hanging up.

    ``hangup_after``: the caller hangs up that long after the call started.
    ``silent_after``: the caller stops talking that long after a recording
    starts (so a recording with ``maxSilenceSeconds`` ends on silence).
    """

    presses: Sequence[Press] = field(default_factory=tuple)
    hangup_after: float | None = None
    silent_after: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "presses", tuple(self.presses))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallerScript:
        known = {"presses", "hangup_after", "silent_after"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown caller script fields: {sorted(unknown)}")
        presses = [Press.from_json(p) for p in data.get("presses", [])]
        return cls(presses, data.get("hangup_after"), data.get("silent_after"))


async def run_presses(pbx: Pbx, channel: Channel, presses: Sequence[Press]) -> None:
    """Press each key in order; a playback/MOH trigger counts only after the previous press."""
    armed = 0
    for press in presses:
        if press.at is not None:
            await pbx.clock.sleep(channel.created_at + press.at - pbx.now())
        else:
            kind: Literal["playback", "moh"] = "moh" if press.on_moh else "playback"
            await pbx.wait_media(channel, after_seq=armed, kind=kind, contains=press.on_playback)
            await pbx.clock.sleep(press.delay)
        if not channel.live:
            return
        await pbx.press(channel, press.digits, gap=press.gap)
        armed = pbx.media_seq()


async def run_caller_hangup(pbx: Pbx, channel: Channel, after: float) -> None:
    """The caller hangs up ``after`` clock seconds into the call."""
    await pbx.clock.sleep(channel.created_at + after - pbx.now())
    pbx.far_end_hangup(channel, NORMAL_CLEARING)


async def run_outgoing(
    pbx: Pbx,
    channel: Channel,
    script: EndpointScript,
    dial_timeout: float | None,
    on_answer: Callable[[Channel], None],
) -> None:
    """Carry out a dial of ``channel`` as its endpoint's script says.

    ``dial_timeout`` (clock seconds, None for none) ends a dial that has not
    been answered: Asterisk hangs the channel up (`Pbx.dial_timed_out`).
    """
    if script.kind in FAILURES:
        status, cause = FAILURES[script.kind]
        await pbx.clock.sleep(0)
        pbx.dial_failed(channel, status, cause)
        return
    pbx.far_end_ringing(channel)
    ring_for = script.after if script.kind == "answer" else None
    if ring_for is None or (dial_timeout is not None and dial_timeout <= ring_for):
        if dial_timeout is None:
            return  # rings until someone hangs it up
        await pbx.clock.sleep(dial_timeout)
        pbx.dial_timed_out(channel)
        return
    await pbx.clock.sleep(ring_for)
    pbx.far_end_answer(channel)
    on_answer(channel)
    if script.hangup_after is not None:
        await pbx.clock.sleep(script.hangup_after)
        pbx.far_end_hangup(channel, NORMAL_CLEARING)


async def run_confirm(pbx: Pbx, channel: Channel, script: EndpointScript) -> None:
    """Press the confirmation key each time the confirmation prompt starts."""
    assert script.confirm_key is not None
    seen = 0
    while channel.live:
        event = await pbx.wait_media(
            channel, after_seq=seen, kind="playback", contains=script.confirm_on
        )
        seen = event.seq
        await pbx.clock.sleep(script.confirm_after)
        if channel.live:
            await pbx.press(channel, script.confirm_key)
