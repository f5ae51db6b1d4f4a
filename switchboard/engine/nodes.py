"""What each node type does with a call: one `Activity` class per node type.

An activity's `enter` starts the node and `handle` reacts to events; both
return the label of the exit to leave by (``"next"``, ``"default"``,
``"option 1"``, ``"noanswer"`` ...) or None to keep waiting.  They talk to the
world only through the `CallRun` they belong to.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from switchboard.acd import Waiting
from switchboard.config.model import (
    AssignNode,
    CallbackNode,
    DialNode,
    DialplanNode,
    GotoNode,
    HangupNode,
    HttpSource,
    IcmNode,
    LastAgentSource,
    MenuNode,
    Node,
    NotifyNode,
    PlayNode,
    QueueNode,
    ScheduleNode,
    SwitchNode,
    VoicemailNode,
    Whisper,
)
from switchboard.engine.actions import (
    ContinueInDialplan,
    JoinQueue,
    Lookup,
    Notify,
    RequestCallback,
    SaveMessage,
    StartMoh,
    StartRecording,
    StopRecording,
)
from switchboard.engine.activity import Activity
from switchboard.engine.events import (
    AgentStatus,
    CallbackStored,
    Digits,
    Event,
    LegAnswered,
    LegBusy,
    LegFailed,
    LegNoAnswer,
    LegTaken,
    LookupResult,
    PlaybackFinished,
    RecordingFinished,
    TimerFired,
)
from switchboard.engine.ringing import Answered, AttemptResult, Member, RingAttempt
from switchboard.numbering import ANONYMOUS, UNKNOWN, is_phone_number
from switchboard.prompts import minutes_prompt
from switchboard.schedule import OPEN
from switchboard.templates import header_value, json_value, url_value

if TYPE_CHECKING:
    from switchboard.engine.call import CallRun

_LEG_EVENTS = (LegAnswered, LegBusy, LegTaken, LegFailed, LegNoAnswer)
# run.vars: the department of the queue the caller last left, by `callback` (the key) or
# `overflow` (max_wait); a `callback` node without `department:` of its own takes it
CALLBACK_DEPARTMENT = "callback_department"


def activity_for(run: CallRun, node: Node) -> Activity:
    match node:
        case AssignNode():
            return AssignActivity(run, node)
        case SwitchNode():
            return SwitchActivity(run, node)
        case NotifyNode():
            return NotifyActivity(run, node)
        case PlayNode():
            return PlayActivity(run, node)
        case MenuNode():
            return MenuActivity(run, node)
        case ScheduleNode():
            return ScheduleActivity(run, node)
        case DialNode():
            return DialActivity(run, node)
        case QueueNode():
            return QueueActivity(run, node)
        case CallbackNode():
            return CallbackActivity(run, node)
        case IcmNode():
            return IcmActivity(run, node)
        case VoicemailNode():
            return VoicemailActivity(run, node)
        case DialplanNode():
            return DialplanActivity(run, node)
        case HangupNode():
            return HangupActivity(run, node)
        case GotoNode():  # handled by the run itself; kept here for exhaustiveness
            raise AssertionError("goto nodes are followed by CallRun")


# --- nodes that decide at once -------------------------------------------------------


class AssignActivity(Activity):
    def __init__(self, run: CallRun, node: AssignNode) -> None:
        super().__init__(run)
        self.node = node

    def enter(self) -> str:
        value = self.run.render(self.node.value)
        self.run.vars[self.node.var] = value
        self.run.detail(self.node.var, value)
        return "next"


class SwitchActivity(Activity):
    def __init__(self, run: CallRun, node: SwitchNode) -> None:
        super().__init__(run)
        self.node = node

    def enter(self) -> str:
        value = self.run.render(self.node.value)
        self.run.detail("value", value)
        cases = self.run.company.switch_cases.get((self.run.scenario, self.run.node_name), ())
        for case in cases:
            if case.matches(value):
                return case.label
        return "default"


class NotifyActivity(Activity):
    def __init__(self, run: CallRun, node: NotifyNode) -> None:
        super().__init__(run)
        self.node = node

    def enter(self) -> str:
        message = self.run.render(self.node.message)
        self.run.detail("message", message)
        self.run.emit(Notify(self.node.level, message))
        return "next"


class ScheduleActivity(Activity):
    def __init__(self, run: CallRun, node: ScheduleNode) -> None:
        super().__init__(run)
        self.node = node

    def enter(self) -> str:
        local = self.run.local_time()
        state = self.run.company.schedules[self.node.schedule].state(local)
        self.run.detail("local_time", local.strftime("%a %Y-%m-%d %H:%M"))
        self.run.detail("state", state)
        return state if state != OPEN else "open"


# --- prompts and keys ----------------------------------------------------------------


class PlayActivity(Activity):
    def __init__(self, run: CallRun, node: PlayNode) -> None:
        super().__init__(run)
        self.node = node
        self.playback: str | None = None
        self.listening = node.interruptible

    def enter(self) -> str | None:
        self.playback = self.run.play(self.node.prompt)
        return None

    def handle(self, event: Event) -> str | None:
        if isinstance(event, PlaybackFinished) and event.playback_id == self.playback:
            return "next"
        if isinstance(event, Digits) and self.node.interruptible:
            self.run.stop_playback(self.playback)
            self.run.pending_digits += event.keys
            self.run.trace_event("key", keys=event.keys)
            return "next"
        return None

    def leave(self) -> None:
        self.run.stop_playback(self.playback)


class MenuActivity(Activity):
    """Prompt, keys, retries, and a dialled extension rung directly (DISA)."""

    def __init__(self, run: CallRun, node: MenuNode) -> None:
        super().__init__(run)
        self.node = node
        self.listening = True
        self.buffer = ""
        self.invalid = 0
        self.playback: str | None = None
        self.wait_timer: str | None = None
        self.digit_timer: str | None = None
        self.ringing: RingAttempt | None = None
        self.ring_since = 0.0
        extensions = run.company.extensions if node.extension_dialing else {}
        self.candidates = tuple(node.options) + tuple(extensions)
        self.extensions = extensions
        self.max_digits = node.max_digits or max((len(c) for c in self.candidates), default=1)

    def enter(self) -> str | None:
        self.playback = self.run.play(self.node.prompt)
        pending, self.run.pending_digits = self.run.pending_digits, ""
        if pending:
            return self._keys(pending)
        return None

    def handle(self, event: Event) -> str | None:
        if self.ringing is not None:
            return self._ringing(event)
        match event:
            case PlaybackFinished() if event.playback_id == self.playback:
                self.playback = None
                if not self.buffer:
                    self.wait_timer = self.run.start_timer(self.node.wait)
            case Digits():
                return self._keys(event.keys)
            case TimerFired() if event.timer_id == self.wait_timer:
                self.wait_timer = None
                self.run.trace_event("timeout", waited=self.node.wait)
                return "default"
            case TimerFired() if event.timer_id == self.digit_timer:
                self.digit_timer = None
                return self._evaluate()
        return None

    def leave(self) -> None:
        self.run.stop_playback(self.playback)
        if self.ringing is not None:
            self.ringing.stop()

    def _keys(self, keys: str) -> str | None:
        for key in keys:
            self.run.trace_event("key", keys=key)
            if self.playback is not None:
                self.run.stop_playback(self.playback)
                self.playback = None
            self._cancel_timers()
            if key == "#":
                label = self._evaluate()
            else:
                self.buffer += key
                label = self._decide()
            if label is not None or self.ringing is not None:
                return label
        return None

    def _decide(self) -> str | None:
        buffer = self.buffer
        exact = buffer in self.node.options or buffer in self.extensions
        longer = any(c != buffer and c.startswith(buffer) for c in self.candidates)
        if len(buffer) >= self.max_digits or (exact and not longer) or not longer:
            return self._evaluate()
        self.digit_timer = self.run.start_timer(self.node.inter_digit)
        return None

    def _evaluate(self) -> str | None:
        entered, self.buffer = self.buffer, ""
        self.run.digits = entered
        if entered in self.node.options:
            self.run.detail("choice", entered)
            return f"option {entered}"
        target = self.extensions.get(entered)
        if target is not None:
            self.run.detail("extension", entered)
            self.listening = False
            kind, ident = target
            self.ringing = ring_target(self.run, kind, ident, self.node.ring_timeout)
            self.ring_since = self.run.now
            result = self.ringing.start()
            return self._ring_result(result)
        self.invalid += 1
        self.run.trace_event("invalid", keys=entered, attempt=self.invalid)
        if self.invalid > self.node.retries:
            return "default"
        prompts: list[str] = []
        if self.node.invalid_prompt is not None:
            invalid = self.node.invalid_prompt
            prompts.extend([invalid] if isinstance(invalid, str) else invalid)
        prompt = self.node.prompt
        prompts.extend([prompt] if isinstance(prompt, str) else prompt)
        self.playback = self.run.play(prompts)
        return None

    def _ringing(self, event: Event) -> str | None:
        assert self.ringing is not None
        if isinstance(event, (*_LEG_EVENTS, TimerFired)):
            return self._ring_result(self.ringing.handle(event))
        return None

    def _ring_result(self, result: AttemptResult | None) -> str | None:
        if result is None:
            return None
        if isinstance(result, Answered):
            self.ringing = None
            self.run.connect(result, None, since=self.ring_since)
            return None
        return "extension_noanswer"

    def _cancel_timers(self) -> None:
        for timer in (self.wait_timer, self.digit_timer):
            if timer is not None:
                self.run.cancel_timer(timer)
        self.wait_timer = self.digit_timer = None


# --- ringing people ------------------------------------------------------------------


def members_of(run: CallRun, kind: str, ident: str) -> tuple[Member, ...]:
    """Whom a dial to an employee or a department rings, in order (kept per snapshot)."""
    company = run.company
    key = ("members", kind, ident)
    found: tuple[Member, ...] | None = company.derived.get(key)
    if found is None:
        if kind == "employee":
            found = (Member(company.employees[ident]),)
        else:
            found = tuple(
                Member(company.employees[m])
                for m in company.departments[ident].members
                if m in company.employees
            )
        company.derived[key] = found
    return found


def caller_id_name(run: CallRun, *templates: str | None) -> str | None:
    """The caller-ID name rung phones show: the first template given, rendered."""
    template = next((t for t in templates if t is not None), None)
    return None if template is None else run.render(template)


def ring_target(
    run: CallRun,
    kind: str,
    ident: str,
    ring_timeout: float | None,
    caller_name: str | None = None,  # the node's `caller_id_name` (a template)
    whisper: Whisper | None = None,  # the node's `whisper`
) -> RingAttempt:
    """A ring attempt on an employee (desk, then mobile) or a department (its strategy)."""
    if kind == "department":
        dep = run.company.departments[ident]
        members = members_of(run, kind, ident)
        if dep.penalties or dep.strategy not in ("all_at_once", "one_by_one", "cascade"):
            # the ACD's order: tiers, then the strategy's statistics (busy members too:
            # the attempt skips them as it goes)
            employees = run.company.employees
            members = tuple(
                Member(employees[m])
                for tier in run.acd.order(ident, run.clock)
                for m in tier
                if m in employees
            )
        return RingAttempt(
            run,
            members,
            dep.strategy,
            dep.ring_delay,
            ring_timeout or dep.ring_timeout,
            caller_name=caller_id_name(run, caller_name, dep.caller_id_name),
            whisper=whisper or dep.whisper,
            department=ident,
        )
    timeout = ring_timeout or 30.0
    members = members_of(run, kind, ident)
    return RingAttempt(
        run, members, "all_at_once", timeout, timeout,
        caller_name=caller_id_name(run, caller_name), whisper=whisper,
    )  # fmt: skip


class DialActivity(Activity):
    def __init__(self, run: CallRun, node: DialNode) -> None:
        super().__init__(run)
        self.node = node
        self.ringing: RingAttempt | None = None
        self.department: str | None = None

    def enter(self) -> str | None:
        target = self.run.company.resolve_target(self.node.target)
        assert target is not None  # checked at load
        kind, ident = target
        if kind == "department":
            self.department = ident
        self.ringing = ring_target(
            self.run, kind, ident, self.node.ring_timeout, self.node.caller_id_name,
            self.node.whisper,
        )  # fmt: skip
        return self._result(self.ringing.start())

    def handle(self, event: Event) -> str | None:
        if self.ringing is not None and isinstance(event, (*_LEG_EVENTS, TimerFired)):
            return self._result(self.ringing.handle(event))
        return None

    def leave(self) -> None:
        if self.ringing is not None:
            self.ringing.stop()

    def _result(self, result: AttemptResult | None) -> str | None:
        if result is None:
            return None
        if isinstance(result, Answered):
            self.run.connect(result, self.department)
            return None
        return result


class QueueActivity(Activity):
    """Hold music, announcements, offers to free members, overflow and call-back."""

    def __init__(self, run: CallRun, node: QueueNode) -> None:
        super().__init__(run)
        self.node = node
        self.listening = node.callback_key is not None
        self.department = run.company.departments[node.department]
        self.ringing: RingAttempt | None = None
        self.retry_timer: str | None = None
        self.announce_timer: str | None = None
        self.max_timer: str | None = None
        self.announcement: str | None = None
        self.entered_at = run.now
        self.announcements = 0
        # member -> when this call may be offered to them again: a member just rung for
        # it (no answer, busy, failed) rests `retry` seconds, whatever the pool says
        self.resting: dict[str, float] = {}
        self.retry = node.retry if node.retry is not None else self.department.retry
        self.need: Waiting | None = None  # what the call needs of an agent, for the ACD
        self.widen_timers: list[str] = []

    def enter(self) -> str | None:
        run = self.run
        run.ensure_answered()
        self._moh_on()
        self.max_timer = run.start_timer(self.node.max_wait)
        if self.node.announce_every > 0:
            self.announce_timer = run.start_timer(self.node.announce_every)
        join = JoinQueue(
            self.department.id, self._priority(), self._skills(), self.node.widen_after
        )
        self.need = Waiting(
            run.call_key, join.department, join.priority, 0, run.clock, join.skills,
            join.widen_after,
        )  # fmt: skip
        run.join_queue(join)
        if join.skills and join.widen_after is not None:
            # the call is offered more members as it waits: look again at each widening
            self.widen_timers = [
                run.start_timer(join.widen_after),
                run.start_timer(2 * join.widen_after),
            ]
        details: dict[str, object] = {"priority": join.priority} if join.priority else {}
        if join.skills:
            details["skills"] = list(join.skills)
        if details:
            run.trace_event("queued", **details)
        self._offer()
        return None

    def _priority(self) -> int:
        """The caller's priority here: the node's `priority`, else the call's `priority`
        variable, else the VIP lists (the runtime's table, then the configuration's
        `vip:`), else 0 (text that is not a number counts 0)."""
        run = self.run
        if self.node.priority is not None:
            text = run.render(self.node.priority)
        elif "priority" in run.vars:
            text = run.vars["priority"]
        else:
            return run.vip.get(run.call.caller, 0)
        try:
            return max(-1000, min(1000, int(text.strip())))
        except ValueError:
            run.trace_event("priority ignored", value=text[:40])
            return 0

    def _skills(self) -> tuple[str, ...]:
        run = self.run
        rendered = (run.render(skill).strip() for skill in self.node.skills)
        return tuple(dict.fromkeys(skill for skill in rendered if skill))

    def handle(self, event: Event) -> str | None:
        run = self.run
        match event:
            case Digits():
                run.trace_event("key", keys=event.keys)
                if self.node.callback_key is not None and self.node.callback_key in event.keys:
                    self._leave_queue(keep_place=True)
                    self._remember_department()
                    run.detail("waited", round(run.now - self.entered_at, 3))
                    return "callback"
            case TimerFired() if event.timer_id == self.max_timer:
                self.max_timer = None
                run.trace_event("max_wait", waited=self.node.max_wait)
                self._leave_queue(keep_place=True)
                self._remember_department()
                return "overflow"
            case TimerFired() if event.timer_id == self.announce_timer:
                self._announce()
            case TimerFired() if event.timer_id == self.retry_timer:
                self.retry_timer = None
                if self.ringing is None:
                    self._offer()
            case TimerFired() if event.timer_id in self.widen_timers:
                self.widen_timers.remove(event.timer_id)
                run.trace_event("widen", waited=round(run.now - self.entered_at, 3))
                if self.ringing is None:
                    if self.retry_timer is not None:
                        # one offer at a time: an offer the retry made would replace this
                        # one while it rings, and its legs would ring on, forgotten
                        run.cancel_timer(self.retry_timer)
                        self.retry_timer = None
                    self._offer()
            case PlaybackFinished() if event.playback_id == self.announcement:
                self.announcement = None
                self._moh_on()
            case AgentStatus() if event.state == "available" and self.ringing is None:
                if event.employee_id in self.department.members and not self._rests(
                    event.employee_id
                ):
                    if self.retry_timer is not None:
                        run.cancel_timer(self.retry_timer)
                        self.retry_timer = None
                    self._offer()
            case _ if self.ringing is not None and isinstance(event, (*_LEG_EVENTS, TimerFired)):
                return self._result(self.ringing.handle(event))
        return None

    def takes(self, employee_id: str) -> bool:
        return (
            self.ringing is None
            and employee_id in self.department.members
            and not self._rests(employee_id)
        )

    def leave(self) -> None:
        self._leave_queue()

    def _moh_on(self) -> None:
        if not self.run.moh:
            self.run.moh = True
            self.run.emit(StartMoh(self.node.moh))

    def _announce(self) -> None:
        run = self.run
        self.announce_timer = run.start_timer(self.node.announce_every)
        self.announcements += 1
        run.stop_moh()
        prompt = self.node.announce_prompt
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        position = run.queue_position()
        if self.node.announce_position and position is not None:
            prompts += ["position-is", f"number:{position}"]
        estimate = run.acd.estimate(run.call_key)
        if self.node.announce_estimate and estimate is not None:
            minutes = max(1, math.ceil(estimate / 60))
            prompts += [
                "estimated-wait",
                f"number:{minutes}",
                minutes_prompt(minutes, run.language),
            ]
        run.stop_playback(self.announcement)
        self.announcement = run.play(prompts)
        if estimate is not None:
            run.trace_event(
                "announce", n=self.announcements, position=position, estimate=round(estimate)
            )
        else:
            run.trace_event("announce", n=self.announcements, position=position)

    def _rests(self, employee_id: str) -> bool:
        """Was ``employee_id`` rung for this call less than `retry` seconds ago?"""
        until = self.resting.get(employee_id)
        if until is None:
            return False
        if until <= self.run.now:
            del self.resting[employee_id]
            return False
        return True

    def _offer(self) -> None:
        run = self.run
        employees = run.company.employees
        tiers = run.acd.ranked(self.department.id, run.clock, self.need)
        if self.department.strategy == "all_at_once" and tiers:
            tiers = tiers[:1]  # ringall rings the free members of the best tier
        free = [
            Member(employees[m])
            for tier in tiers
            for m in tier
            if m in employees and not self._rests(m)
        ]
        if not free:
            if self.resting and self.retry_timer is None:
                # the free members rest: try again when the first may be offered
                self.retry_timer = run.start_timer(min(self.resting.values()) - run.now)
            return  # else wait for an AgentStatus, max_wait or the caller
        self.ringing = RingAttempt(
            run,
            free,
            self.department.strategy,
            self.department.ring_delay,
            self.department.ring_timeout,
            offer=True,
            rest=self.retry,
            caller_name=caller_id_name(
                run, self.node.caller_id_name, self.department.caller_id_name
            ),
            whisper=self.node.whisper or self.department.whisper,
            department=self.department.id,
        )
        outcome = self._result(self.ringing.start())
        assert outcome is None

    def _result(self, result: AttemptResult | None) -> str | None:
        if result is None:
            return None
        attempt, self.ringing = self.ringing, None
        if isinstance(result, Answered):
            self._stop_waiting()
            self.run.detail("waited", round(self.run.now - self.entered_at, 3))
            self.run.connect(result, self.department.id)
            return None
        if attempt is not None:
            for employee_id in attempt.tried():
                self.resting[employee_id] = self.run.now + self.retry
        self.retry_timer = self.run.start_timer(self.retry)
        return None

    def _stop_waiting(self, keep_place: bool = False) -> None:
        run = self.run
        for timer in (self.max_timer, self.announce_timer, self.retry_timer, *self.widen_timers):
            if timer is not None:
                run.cancel_timer(timer)
        self.max_timer = self.announce_timer = self.retry_timer = None
        self.widen_timers = []
        run.stop_playback(self.announcement)
        self.announcement = None
        run.stop_moh()
        self.listening = False
        if self.need is not None:
            self.need = None
            run.leave_queue(keep_place)

    def _remember_department(self) -> None:
        """Leaving by either exit: a `callback` node further on (with no `department:` of
        its own) promises a call-back from this queue's department."""
        self.run.vars[CALLBACK_DEPARTMENT] = self.department.id

    def _leave_queue(self, keep_place: bool = False) -> None:
        if self.ringing is not None:
            self.ringing.stop()
            self.ringing = None
        self._stop_waiting(keep_place)


class IcmActivity(Activity):
    """Find the caller's responsible employee, ring them; back to the scenario if not."""

    def __init__(self, run: CallRun, node: IcmNode) -> None:
        super().__init__(run)
        self.node = node
        self.source = 0
        self.request: str | None = None
        self.request_timer: str | None = None
        self.ringing: RingAttempt | None = None
        self.tried: list[dict[str, str | None]] = []

    def enter(self) -> str | None:
        self.run.detail("sources", self.tried)
        if self.run.call.caller in (ANONYMOUS, UNKNOWN):
            self.tried.append({"source": "caller", "result": self.run.call.caller})
            return self._not_found()
        return self._next_source()

    def handle(self, event: Event) -> str | None:
        if self.ringing is not None:
            if isinstance(event, (*_LEG_EVENTS, TimerFired)):
                return self._result(self.ringing.handle(event))
            return None
        match event:
            case LookupResult() if event.request_id == self.request:
                self._end_request()
                return self._candidate(event.value)
            case TimerFired() if event.timer_id == self.request_timer:
                self.request_timer = None
                self.request = None
                self.tried[-1]["result"] = "timeout"
                self.source += 1
                return self._next_source()
        return None

    def leave(self) -> None:
        self._end_request()
        if self.ringing is not None:
            self.ringing.stop()

    def _end_request(self) -> None:
        if self.request_timer is not None:
            self.run.cancel_timer(self.request_timer)
        self.request = self.request_timer = None

    def _next_source(self) -> str | None:
        run = self.run
        while self.source < len(self.node.sources):
            source = self.node.sources[self.source]
            entry: dict[str, str | None] = {"source": source.type, "result": None}
            self.tried.append(entry)
            match source:
                case LastAgentSource() | HttpSource():
                    self.request = run.new_id("lookup")
                    self.request_timer = run.start_timer(source.timeout)
                    if isinstance(source, LastAgentSource):
                        run.emit(
                            Lookup(
                                self.request,
                                "last_agent",
                                run.call.caller,
                                source.timeout,
                                days=source.days,
                            )
                        )
                    else:
                        run.emit(
                            Lookup(
                                self.request,
                                "http",
                                run.call.caller,
                                source.timeout,
                                url=run.render_request(source.url, url_value),
                                method=source.method,
                                headers=tuple(
                                    (name, run.render_request(value, header_value))
                                    for name, value in source.headers.items()
                                ),
                                body=None
                                if source.body is None
                                else run.render_request(source.body, json_value, json_body=True),
                                path=source.path,
                                max_body=source.max_body,
                                max_depth=source.max_depth,
                                max_redirects=source.max_redirects,
                                allowed_hosts=source.allowed_hosts,
                            )
                        )
                    return None
                case _:
                    # contacts: the config's own map answers at once; otherwise the
                    # runtime's contacts table is asked (imported from the CRM, CSV)
                    known = run.company.contacts.get(run.call.caller)
                    if known is not None:
                        return self._candidate(known)
                    self.request = run.new_id("lookup")
                    self.request_timer = run.start_timer(source.timeout)
                    run.emit(Lookup(self.request, "contacts", run.call.caller, source.timeout))
                    return None
        return self._not_found()

    def _candidate(self, value: str | None) -> str | None:
        """A source answered ``value``: ring that employee, or try the next source."""
        entry = self.tried[-1]
        source = self.node.sources[self.source]
        if value and isinstance(source, HttpSource) and value in source.map:
            value = source.map[value]  # the CRM's own user id -> ours
        target = self.run.company.resolve_target(value) if value else None
        if target is None or target[0] != "employee":
            entry["result"] = "none" if not value else f"not an employee: {value}"
            self.source += 1
            return self._next_source()
        employee_id = target[1]
        if employee_id in self.node.exceptions:
            entry["result"] = f"{employee_id} (exception)"
            self.source += 1
            return self._next_source()
        entry["result"] = employee_id
        self.run.detail("manager", employee_id)
        employee = self.run.company.employees[employee_id]
        return self._ring([Member(employee, to_mobile=self.node.to_mobile)])

    def _not_found(self) -> str | None:
        default = self.node.default
        if default is None:
            return "notfound"
        target = self.run.company.resolve_target(default)
        if target is not None:
            self.run.detail("default", default)
            members = members_of(self.run, *target)
            return self._ring(members)
        if is_phone_number(default):
            self.run.detail("default", default)
            return self._ring([Member(None, number=self.run.company.normalize(default))])
        return "notfound"

    def _ring(self, members: Sequence[Member]) -> str | None:
        timeout = self.node.ring_timeout
        self.ringing = RingAttempt(
            self.run, members, "all_at_once", timeout, timeout,
            caller_name=caller_id_name(self.run, self.node.caller_id_name),
        )  # fmt: skip
        return self._result(self.ringing.start())

    def _result(self, result: AttemptResult | None) -> str | None:
        if result is None:
            return None
        self.ringing = None
        if isinstance(result, Answered):
            self.run.connect(result, None)
            return None
        return "noanswer"


# --- messages, call-backs, hand-offs --------------------------------------------------


class CallbackActivity(Activity):
    """Take a call-back request; the caller hears the promise only once it is stored."""

    ASK_WAIT = 10.0
    INTER_DIGIT = 5.0
    MAX_DIGITS = 15
    TIME_DIGITS = 4  # HHMM
    STORE_TIMEOUT = 5.0

    def __init__(self, run: CallRun, node: CallbackNode) -> None:
        super().__init__(run)
        self.node = node
        self.playback: str | None = None
        self.timer: str | None = None
        self.entered = ""
        self.request: str | None = None
        self.number = ""
        self.asking_time = False  # the number is known: now the time (`ask_time`)
        self.due: dt.datetime | None = None
        self.confirming = False

    def enter(self) -> str | None:
        caller = self.run.call.caller
        if self.node.ask_number or caller in (ANONYMOUS, UNKNOWN) or not is_phone_number(caller):
            self.listening = True
            self.playback = self.run.play(self.node.ask_prompt)
            return None
        return self._request(caller)

    def handle(self, event: Event) -> str | None:
        run = self.run
        match event:
            case PlaybackFinished() if event.playback_id == self.playback:
                self.playback = None
                if self.confirming:
                    return "next"
                if self.listening and self.timer is None:
                    self.timer = run.start_timer(self.ASK_WAIT)
            case Digits() if self.listening:
                run.stop_playback(self.playback)
                self.playback = None
                most = self.TIME_DIGITS if self.asking_time else self.MAX_DIGITS
                for key in event.keys:
                    if key == "#" or len(self.entered) >= most:
                        return self._entered()
                    self.entered += key
                if self.asking_time and len(self.entered) == most:
                    return self._entered()
                self._restart_timer(self.INTER_DIGIT)
            case TimerFired() if event.timer_id == self.timer:
                self.timer = None
                if self.request is not None:
                    return self._stored(False)
                return self._entered()
            case CallbackStored() if event.request_id == self.request:
                return self._stored(event.ok)
        return None

    def leave(self) -> None:
        self.run.stop_playback(self.playback)

    def _restart_timer(self, delay: float) -> None:
        if self.timer is not None:
            self.run.cancel_timer(self.timer)
        self.timer = self.run.start_timer(delay)

    def _entered(self) -> str | None:
        self.listening = False
        if self.timer is not None:
            self.run.cancel_timer(self.timer)
            self.timer = None
        if self.asking_time:
            return self._time_entered()
        self.run.digits = self.entered
        number = self.run.company.normalize(self.entered) if self.entered else self.run.call.caller
        if number in (ANONYMOUS, UNKNOWN):
            self.run.detail("error", "no number to call back")
            return "next"
        return self._request(number)

    def _ask_time(self, number: str) -> None:
        self.number = number
        self.asking_time = True
        self.listening = True
        self.entered = ""
        self.playback = self.run.play(self.node.time_prompt)

    def _time_entered(self) -> str | None:
        run = self.run
        keys, self.entered = self.entered, ""
        self.due = requested_time(keys, run.local_time())
        if keys and self.due is None:
            run.detail("time ignored", keys)  # not a time of day: as soon as possible
        return self._request(self.number)

    def _request(self, number: str) -> str | None:
        run = self.run
        if self.node.ask_time and not self.asking_time:
            self._ask_time(number)
            return None
        self.request = run.new_id("callback")
        self.number = number
        # the node's own `department:` wins over the queue the caller came from
        department = self.node.department or run.vars.get(CALLBACK_DEPARTMENT)
        run.detail("number", number)
        if department:
            run.detail("department", department)
        due = self.due.isoformat() if self.due is not None else ""
        if due:
            run.detail("at", due)
        run.emit(
            RequestCallback(
                request_id=self.request,
                number=number,
                caller=run.call.caller,
                called=run.call.called,
                department=department,
                scenario=run.scenario,
                node=run.node_name,
                due=due,
            )
        )
        self.timer = run.start_timer(self.STORE_TIMEOUT)
        return None

    def _stored(self, ok: bool) -> str | None:
        if self.timer is not None:
            self.run.cancel_timer(self.timer)
            self.timer = None
        self.request = None
        self.run.detail("stored", ok)
        if not ok:
            # never promise a call-back that was not written down
            self.confirming = True
            self.playback = self.run.play("callback-failed")
            return None
        self.run.mark("callback", callback_number=self.number)
        self.confirming = True
        prompts = _as_list(self.node.prompt)
        if self.due is not None:
            # "... we will call you at 15 30" (hours, then minutes unless on the hour)
            prompts += ["callback-at", f"number:{self.due.hour}"]
            if self.due.minute:
                prompts.append(f"number:{self.due.minute}")
        self.playback = self.run.play(prompts)
        return None


def requested_time(keys: str, now: dt.datetime) -> dt.datetime | None:
    """The call-back time a caller keyed in: ``1500`` 15:00, ``930`` 9:30, ``9`` or
    ``09`` 9:00 -- the next such local time after ``now`` (today, else tomorrow).  None
    for no keys, or keys that are not a time of day."""
    if not keys.isdigit() or len(keys) > CallbackActivity.TIME_DIGITS:
        return None
    hour, minute = (int(keys), 0) if len(keys) <= 2 else (int(keys[:-2]), int(keys[-2:]))
    if hour > 23 or minute > 59:
        return None
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= now:
        at += dt.timedelta(days=1)  # the same wall-clock time tomorrow
    return at


def _as_list(prompt: str | list[str] | tuple[str, ...]) -> list[str]:
    return [prompt] if isinstance(prompt, str) else list(prompt)


class VoicemailActivity(Activity):
    def __init__(self, run: CallRun, node: VoicemailNode) -> None:
        super().__init__(run)
        self.node = node
        self.playback: str | None = None
        self.recording: str | None = None
        self.recording_since = 0.0

    def enter(self) -> str | None:
        self.playback = self.run.play(self.node.prompt)
        return None

    def handle(self, event: Event) -> str | None:
        run = self.run
        match event:
            case PlaybackFinished() if event.playback_id == self.playback:
                self.playback = None
                self.recording = run.new_id("recording")
                self.recording_since = run.now
                run.emit(StartRecording(self.recording, self.node.max_length, self.node.beep))
                run.trace_event("record", max_length=self.node.max_length)
            case RecordingFinished() if event.recording_id == self.recording:
                self._save(event.duration)
                return "next"
        return None

    def leave(self) -> None:
        self.run.stop_playback(self.playback)
        if self.recording is not None:
            self.run.emit(StopRecording(self.recording))
            self._save(self.run.now - self.recording_since)

    def _save(self, length: float) -> None:
        run = self.run
        recording, self.recording = self.recording, None
        if recording is None:
            return
        run.emit(
            SaveMessage(
                recording_id=recording,
                caller=run.call.caller,
                called=run.call.called,
                at=self.recording_since,
                length=length,
                mailbox=self.node.mailbox,
            )
        )
        run.detail("message_length", round(length, 3))
        run.mark("voicemail")


class DialplanActivity(Activity):
    def __init__(self, run: CallRun, node: DialplanNode) -> None:
        super().__init__(run)
        self.node = node

    def enter(self) -> str | None:
        extension = self.run.render(self.node.extension)
        self.run.stop_moh()  # nothing is asked of the channel once it is back in the dialplan
        self.run.emit(ContinueInDialplan(self.node.context, extension, self.node.priority))
        self.run.detail("to", f"{self.node.context},{extension},{self.node.priority}")
        self.run.finish("dialplan", "handed to the dialplan", hang_up=False)
        return None


class HangupActivity(Activity):
    def __init__(self, run: CallRun, node: HangupNode) -> None:
        super().__init__(run)
        self.node = node
        self.playback: str | None = None

    def enter(self) -> str | None:
        if self.node.prompt is not None:
            self.playback = self.run.play(self.node.prompt)
            return None
        self.run.finish("hangup", "scenario hung up")
        return None

    def handle(self, event: Event) -> str | None:
        if isinstance(event, PlaybackFinished) and event.playback_id == self.playback:
            self.playback = None
            self.run.finish("hangup", "scenario hung up")
        return None
