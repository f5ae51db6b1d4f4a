"""Ringing people: one attempt to reach a set of members by a ring strategy.

A `RingAttempt` is what `dial`, `queue`, `icm` and a menu's extension dialling
share.  It starts legs (desk phone, mobile, external number), moves through the
members by the strategy, and ends with the leg that answered or with why
nobody did: ``noanswer`` (somebody rang), ``busy`` (everybody was busy) or
``unavailable`` (nobody could be rung at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from switchboard.acd.service import RING_MODES
from switchboard.config.model import Employee, RingStrategy, Whisper
from switchboard.engine.actions import Device, Ring, StopRinging
from switchboard.engine.events import (
    LegAnswered,
    LegBusy,
    LegEvent,
    LegFailed,
    LegNoAnswer,
    LegTaken,
    TimerFired,
)
from switchboard.engine.message import message

if TYPE_CHECKING:
    from switchboard.engine.call import CallRun

Failure = Literal["noanswer", "busy", "unavailable"]
# members skipped (busy, offline, no phone) named one by one in the trace; past that a
# count: a 500-member department whose first free member is the 400th does not write
# 399 lines into every call's record
SKIPS_TRACED = 10


@message
class Member:
    """Somebody to ring: an employee (desk, then mobile) or an external number."""

    employee: Employee | None
    number: str | None = None  # external number, when `employee` is None
    to_mobile: bool = False  # ring the mobile together with the desk from the start

    @property
    def name(self) -> str:
        return self.employee.id if self.employee else (self.number or "?")


@dataclass(slots=True)
class _Leg:
    leg_id: str
    member: int
    device: Device
    live: bool = True


@dataclass(slots=True)
class _MemberState:
    member: Member
    state: Literal["waiting", "ringing", "done"] = "waiting"
    legs: list[str] = field(default_factory=list)
    mobile_timer: str | None = None
    rang: bool = False
    busy: bool = False
    taken: bool = False  # held for another call before anything rang (`LegTaken`)


@message
class Answered:
    leg_id: str
    member: Member
    device: Device


AttemptResult = Answered | Failure


class RingAttempt:
    def __init__(
        self,
        run: CallRun,
        members: Sequence[Member],
        strategy: RingStrategy,
        ring_delay: float,
        ring_timeout: float,
        offer: bool = False,  # a queue's offer: see `Ring.offer`
        rest: float = 0.0,  # see `Ring.rest`
        caller_name: str | None = None,  # see `Ring.caller_name`
        whisper: Whisper | None = None,  # see `Ring.whisper`
        department: str | None = None,  # whose conversation it would be (`Ring.record`)
    ) -> None:
        self._run = run
        self._record = run.record_policy(department) == "always"
        self._caller_name = caller_name
        self._whisper = whisper
        self._offer = offer
        self._rest = rest
        self._all = members
        # the members started so far (rung, or tried): a thousand-member department whose
        # first free member answers costs one state, not a thousand
        self._members: dict[int, _MemberState] = {}
        # the strategies that pick one member at a time ring them one by one
        self._strategy = RING_MODES[strategy]
        self._delay = ring_delay
        self._timeout = ring_timeout
        self._legs: dict[str, _Leg] = {}
        self._next = 0  # next member to start (one_by_one, cascade)
        self._timeout_timer: str | None = None
        self._advance_timer: str | None = None
        self._busy = 0
        self._failed = 0
        self._ringing = 0  # members in state "ringing"
        self._skips = 0
        self.finished = False

    # --- driving ----------------------------------------------------------------------

    def start(self) -> AttemptResult | None:
        self._timeout_timer = self._run.start_timer(self._timeout)
        if self._strategy == "all_at_once":
            for index in range(len(self._all)):
                self._start_member(index)
            self._next = len(self._all)
        else:
            self._start_next()
        return self._settle()

    def handle(self, event: LegEvent | TimerFired) -> AttemptResult | None:
        """Feed an event; a result when the attempt is over.  Unrelated events: None."""
        if self.finished:
            return None
        if isinstance(event, TimerFired):
            return self._on_timer(event.timer_id)
        leg = self._legs.get(event.leg_id)
        if leg is None or not leg.live:
            return None
        match event:
            case LegAnswered():
                return self._answered(leg)
            case LegBusy():
                self._leg_over(leg, "busy")
            case LegTaken():
                self._leg_over(leg, "taken")
            case LegFailed():
                self._leg_over(leg, "failed")
            case LegNoAnswer():
                self._leg_over(leg, "noanswer")
        return self._settle()

    def owns(self, event: LegEvent | TimerFired) -> bool:
        if isinstance(event, TimerFired):
            return event.timer_id in (self._timeout_timer, self._advance_timer) or any(
                m.mobile_timer == event.timer_id for m in self._members.values()
            )
        return event.leg_id in self._legs

    def tried(self) -> list[str]:
        """The employees this attempt rang (whatever came of it), in member order; not
        those another call had taken before their phone rang."""
        return [
            state.member.employee.id
            for state in self._members.values()
            if state.legs and state.member.employee is not None and not state.taken
        ]

    def stop(self) -> None:
        """Stop every leg still ringing (the caller left, or somebody else answered)."""
        for leg in self._legs.values():
            if leg.live:
                self._hang_leg(leg, "stopped")
        for state in self._members.values():
            self._cancel_mobile(state)
            if state.state == "ringing":
                state.state = "done"
        self._ringing = 0
        if self._skips > SKIPS_TRACED:
            self._run.trace_event("skipped", more=self._skips - SKIPS_TRACED)
            self._skips = SKIPS_TRACED
        self._cancel(self._timeout_timer)
        self._cancel(self._advance_timer)
        self._timeout_timer = self._advance_timer = None
        self.finished = True

    # --- internals --------------------------------------------------------------------

    def _on_timer(self, timer_id: str) -> AttemptResult | None:
        if timer_id == self._timeout_timer:
            self._timeout_timer = None
            for index, state in list(self._members.items()):
                if state.state == "ringing":
                    self._stop_member(index, "noanswer")
            self._next = len(self._all)
            return self._settle()
        if timer_id == self._advance_timer:
            self._advance_timer = None
            if self._strategy == "one_by_one":
                for index, state in list(self._members.items()):
                    if state.state == "ringing":
                        self._stop_member(index, "noanswer")
            self._start_next()
            return self._settle()
        for index, state in list(self._members.items()):
            if state.mobile_timer == timer_id:
                state.mobile_timer = None
                if state.state == "ringing":
                    self._ring_mobile(index)
                return self._settle()
        return None

    def _start_next(self) -> None:
        """Start the next member that can be rung; skip (at once) those that cannot."""
        self._cancel(self._advance_timer)
        self._advance_timer = None
        while self._next < len(self._all):
            index = self._next
            self._next += 1
            if self._start_member(index):
                if self._next < len(self._all):
                    self._advance_timer = self._run.start_timer(self._delay)
                elif self._strategy == "one_by_one":
                    # the last member gets its own window too, within the whole attempt
                    self._advance_timer = self._run.start_timer(self._delay)
                return

    def _start_member(self, index: int) -> bool:
        """Ring member ``index``; False when it could not be rung (busy, offline)."""
        member = self._all[index]
        emp = member.employee
        if emp is not None:
            status = self._run.agent_state(emp.id)
            if status != "available":
                self._skip(emp.id, status)
                if status == "busy":
                    self._busy += 1
                else:
                    self._failed += 1
                return False
            if emp.extension is None and emp.mobile is None:
                self._skip(emp.id, "no phone")
                self._failed += 1
                return False
        state = self._members[index] = _MemberState(member, state="ringing")
        self._ringing += 1
        if emp is None:
            self._ring(index, "external", member.number or "")
            return True
        if emp.extension is not None:
            self._ring(index, "desk", emp.extension)
            if emp.mobile is not None:
                if member.to_mobile:
                    self._ring_mobile(index)
                elif emp.forward_to_mobile_after is not None:
                    state.mobile_timer = self._run.start_timer(emp.forward_to_mobile_after)
        else:
            self._ring_mobile(index)
        return True

    def _skip(self, employee_id: str, status: str) -> None:
        self._skips += 1
        if self._skips <= SKIPS_TRACED:
            self._run.trace_event("skip", agent=employee_id, status=status)

    def _ring_mobile(self, index: int) -> None:
        emp = self._all[index].employee
        if emp is not None and emp.mobile is not None:
            self._ring(index, "mobile", self._run.company.normalize(emp.mobile))

    def _ring(self, index: int, device: Device, number: str) -> None:
        leg_id = self._run.new_id("leg")
        state = self._members[index]
        self._legs[leg_id] = _Leg(leg_id, index, device)
        state.legs.append(leg_id)
        emp = state.member.employee
        whisper = self._whisper if emp is not None else None
        heard = tuple(self._run.resolve_prompt(p) for p in whisper.prompts) if whisper else ()
        self._run.emit(
            Ring(
                leg_id=leg_id,
                employee_id=emp.id if emp else None,
                device=device,
                number=number,
                confirm=device != "desk",
                timeout=self._timeout,
                offer=self._offer,
                rest=self._rest,
                caller_name=self._caller_name,
                whisper=heard,
                whisper_language=(emp.language if emp else None) or self._run.language,
                refuse_key=whisper.refuse_key if whisper else None,
                record=self._record,
            )
        )
        said = {"whisper": list(heard)} if heard else {}
        self._run.trace_event("ring", agent=state.member.name, device=device, leg=leg_id, **said)

    def _answered(self, leg: _Leg) -> AttemptResult:
        leg.live = False
        member = self._members[leg.member].member
        self._run.trace_event("answer", agent=member.name, device=leg.device, leg=leg.leg_id)
        self.stop()
        return Answered(leg.leg_id, member, leg.device)

    def _leg_over(self, leg: _Leg, why: Literal["busy", "taken", "failed", "noanswer"]) -> None:
        leg.live = False
        state = self._members[leg.member]
        self._run.trace_event(why, agent=state.member.name, device=leg.device, leg=leg.leg_id)
        if why == "taken":
            state.busy = state.taken = True
        elif why == "busy":
            state.busy = True
        elif why == "noanswer":
            state.rang = True
        if any(self._legs[other].live for other in state.legs):
            return
        emp = state.member.employee
        if (
            why in ("busy", "failed")
            and leg.device == "desk"
            and state.mobile_timer is not None
            and emp is not None
        ):
            # desk busy or unreachable: go to the mobile now instead of waiting
            self._cancel_mobile(state)
            self._ring_mobile(leg.member)
            return
        self._member_done(state)

    def _member_done(self, state: _MemberState) -> None:
        self._cancel_mobile(state)
        if state.state == "ringing":
            self._ringing -= 1
        state.state = "done"
        if state.rang:
            return
        if state.busy:
            self._busy += 1
        else:
            self._failed += 1

    def _stop_member(self, index: int, why: str) -> None:
        state = self._members[index]
        for leg_id in state.legs:
            leg = self._legs[leg_id]
            if leg.live:
                self._hang_leg(leg, why)
        state.rang = True
        self._member_done(state)

    def _hang_leg(self, leg: _Leg, why: str) -> None:
        leg.live = False
        self._run.emit(StopRinging(leg.leg_id))
        name = self._members[leg.member].member.name
        self._run.trace_event("stop", agent=name, device=leg.device, leg=leg.leg_id, why=why)

    def _cancel_mobile(self, state: _MemberState) -> None:
        if state.mobile_timer is not None:
            self._cancel(state.mobile_timer)
            state.mobile_timer = None

    def _cancel(self, timer_id: str | None) -> None:
        if timer_id is not None:
            self._run.cancel_timer(timer_id)

    def _settle(self) -> AttemptResult | None:
        """The attempt's result once nobody rings and nobody is left to start."""
        if self.finished:
            return None
        if self._ringing:
            return None
        if self._next < len(self._all) and self._strategy != "all_at_once":
            self._start_next()
            if self._ringing:
                return None
        self.stop()
        if any(state.rang for state in self._members.values()):
            return "noanswer"
        if self._busy:
            return "busy"
        return "unavailable"
