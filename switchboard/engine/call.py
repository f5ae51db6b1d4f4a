"""One call's run through its scenario: a pure state machine.

``CallRun(company, call, started_at)`` is fed events with the call time they
happened at (seconds since the call began, from whatever clock the runtime
keeps: a real one in ARI/AGI, a virtual one in `simulate`) and answers each
with the actions to carry out.  It never sleeps, never does I/O and reads no
clock of its own, so the same inputs always give the same run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final

from switchboard.acd import Acd, DeviceState
from switchboard.config.company import Company
from switchboard.config.model import DialNode, GotoNode, IcmNode, Node, QueueNode, RecordPolicy
from switchboard.engine.actions import (
    CONVERSATION,
    Action,
    Answer,
    Bridge,
    CancelTimer,
    Hangup,
    JoinQueue,
    LeaveQueue,
    Play,
    RecordConversation,
    StartTimer,
    StopMoh,
    StopPlayback,
)
from switchboard.engine.activity import Activity
from switchboard.engine.events import (
    AgentState,
    AgentStatus,
    CallerHungUp,
    Event,
    LegDigits,
    LegHungUp,
    LegTransferred,
    PlaybackFinished,
    RecordingFinished,
    TimerFired,
)
from switchboard.engine.message import message
from switchboard.engine.nodes import activity_for
from switchboard.engine.ringing import Answered
from switchboard.engine.trace import Outcome, Result, Step
from switchboard.numbering import NumberingPlan, dahdi_line, normalize
from switchboard.templates import defer, parse_json_template, parse_template

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FALLBACK_EXITS: Final[dict[str, str]] = {
    "busy": "noanswer",
    "unavailable": "noanswer",
    "holiday": "closed",
    "extension_noanswer": "default",
}


# `AgentStatus` states (simulate's --agent, FastAGI) as the own ACD's phone states
DEVICE_OF: Final[dict[AgentState, DeviceState]] = {
    "available": "idle",
    "busy": "in_use",
    "offline": "unavailable",
}


@message
class CallInfo:
    """What Asterisk told us about the call, raw and normalised."""

    called: str
    caller: str
    called_raw: str = ""
    caller_raw: str = ""
    caller_name: str = ""
    line: int | None = None
    language: str | None = None

    @classmethod
    def from_raw(
        cls,
        plan: NumberingPlan | Company,
        called: str | None,
        caller: str | None,
        caller_name: str = "",
        line: int | None = None,
        language: str | None = None,
    ) -> CallInfo:
        numbering = plan.plan if isinstance(plan, Company) else plan
        return cls(
            called=normalize(called, numbering) if called else "",
            caller=normalize(caller, numbering),
            called_raw=called or "",
            caller_raw=caller or "",
            caller_name=caller_name,
            line=line,
            language=language,
        )

    @classmethod
    def inbound(
        cls, company: Company, called: str, caller: str, caller_name: str, channel: str
    ) -> CallInfo:
        """A new inbound call as Asterisk reports it (``channel`` is its name): an analog
        line (``DAHDI/3-1``) with no called number (``s``) stands for the number
        configured for that line."""
        line = dahdi_line(channel)
        if line is not None and (not called or called == "s"):
            called = company.line_numbers.get(line, "")
        return cls.from_raw(
            company, called or None, caller or None, caller_name=caller_name, line=line
        )


class CallRun:
    def __init__(
        self,
        company: Company,
        call: CallInfo,
        started_at: dt.datetime,
        scenario: str | None = None,
        agents: Mapping[str, AgentState] | None = None,
        start_node: str | None = None,
        *,
        acd: Acd | None = None,
        call_key: str = "call",
        acd_clock0: float | None = None,
        vip: Mapping[str, int] | None = None,
    ) -> None:
        """``acd``: the runtime's ACD, shared by its calls (who is free, who waits in
        which queue), which this run reads and never writes: it says what it does in
        actions (`JoinQueue`, `LeaveQueue`, offers in `Ring`), for the runtime to tell
        the ACD, under ``call_key``; ``acd_clock0`` is the ACD's clock at the call's
        start (default: ``started_at`` in epoch seconds).  Without one the run has an
        ACD of its own (a single call: `simulate`), where ``agents`` says who is not
        free now and `AgentStatus` events change it, and it applies its own queue
        actions.  ``vip``: callers' queue priorities (default: the configuration's
        `vip:`; a runtime passes its database list in front of it)."""
        if scenario is None and start_node is None:
            # a caller the configuration sends somewhere of their own (`callers:`)
            scenario, start_node = company.caller_routes.get(call.caller, (None, None))
        chosen = scenario or company.select_scenario(call.called or None, call.line)
        if chosen is None or chosen not in company.config.scenarios:
            raise LookupError(f"no scenario for called number {call.called_raw!r}")
        self.company = company
        self.call = call
        self.started_at = started_at
        self.scenario = chosen
        nodes = company.config.scenarios[chosen].nodes
        if start_node is not None and start_node not in nodes:
            raise LookupError(f"scenario {chosen!r} has no node {start_node!r}")
        # ``start_node``: resume a scenario part-way (a FastAGI `route` coming back)
        self.node_name = start_node or company.config.scenarios[chosen].start
        self.now = 0.0
        self.trace: list[Step] = []
        self.outcome: Outcome | None = None
        self.vars: dict[str, str] = {}
        self.digits = ""  # last keys entered, for {digits}
        self.pending_digits = ""  # keys pressed during an interruptible play
        self.answered = False
        self.notice_heard = False  # the recording notice (`recording.notice`) was played
        self.moh = False
        self.finished = False
        self.call_key = call_key
        self.vip: Mapping[str, int] = company.vip if vip is None else vip
        self._acd = acd
        self._own_acd = acd is None
        self._agents = dict(agents or {})  # the own ACD's phones, made when first needed
        self._clock0 = started_at.timestamp() if acd_clock0 is None else acd_clock0
        self._timers: set[str] = set()
        self._ids = 0
        self._out: list[Action] = []
        self._activity: Activity | None = None
        self._step: Step | None = None
        self._instant = 0
        self._connected: tuple[Answered, float, str | None] | None = None
        self._significant: Result | None = None
        self._extra: dict[str, Any] = {}
        self._max_timer = ""

    # --- the runtime's side -----------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The caller is (or was) talking to an employee."""
        return self._connected is not None

    @property
    def awaiting_input(self) -> bool:
        return self._activity is not None and self._activity.listening and not self.finished

    def start(self) -> list[Action]:
        """Begin the scenario at call time 0."""
        self._out = []
        self._max_timer = self.start_timer(self.company.config.limits.max_call_duration)
        self._enter(self.node_name)
        return self._out

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event that happened at call time ``now``; the actions it causes."""
        self._out = []
        if self.finished:
            return self._out
        self.now = now
        if isinstance(event, TimerFired):
            if event.timer_id not in self._timers:
                return self._out  # cancelled, or already fired
            self._timers.discard(event.timer_id)
            if event.timer_id == self._max_timer:
                self.trace_event("limit", what="max_call_duration")
                self._end("hangup", "max call duration", hang_up=True)
                return self._out
        elif isinstance(event, CallerHungUp):
            self.trace_event("caller hung up")
            if self._connected is not None:
                self._extra["ended_by"] = "caller"
            self._end("abandoned", "caller hung up", hang_up=False)
            return self._out
        elif isinstance(event, AgentStatus) and self._own_acd:
            self.acd.device(event.employee_id, DEVICE_OF[event.state], self.clock)
        activity = self._activity
        if activity is None:
            return self._out
        label = activity.handle(event)
        if label is not None and not self.finished:
            self._follow(label)
        return self._out

    # --- services for the node activities ---------------------------------------------

    def emit(self, action: Action) -> None:
        self._out.append(action)

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    def start_timer(self, delay: float) -> str:
        timer_id = self.new_id("timer")
        self._timers.add(timer_id)
        self._out.append(StartTimer(timer_id, self.now + delay))
        return timer_id

    def cancel_timer(self, timer_id: str) -> None:
        if timer_id in self._timers:
            self._timers.discard(timer_id)
            self._out.append(CancelTimer(timer_id))

    def takes_agent(self, employee_id: str) -> bool:
        """Would the call ring ``employee_id`` now if they were free (it waits in a queue
        they serve, rings nobody and has not just rung them)?  The runtime offers a
        freed employee to the first waiting call that would."""
        return (
            not self.finished and self._activity is not None and self._activity.takes(employee_id)
        )

    @property
    def acd(self) -> Acd:
        """The ACD this run reads (its own one, made the first time it is needed)."""
        if self._acd is None:
            self._acd = Acd.for_company(self.company)
            for employee, state in self._agents.items():
                self._acd.device(employee, DEVICE_OF[state], self.clock)
        return self._acd

    @property
    def clock(self) -> float:
        """The ACD's clock: epoch seconds (virtual ones in `simulate`)."""
        return self._clock0 + self.now

    def agent_state(self, employee_id: str) -> AgentState:
        acd = self.acd
        if acd.free(employee_id, self.clock):
            return "available"
        agent = acd.agents.get(employee_id)
        if agent is not None and (
            agent.device == "unavailable" or agent.state in ("logged_out", "paused")
        ):
            return "offline"
        return "busy"

    def join_queue(self, join: JoinQueue) -> None:
        """The call waits in a queue: the runtime tells its ACD (an own one, at once)."""
        self._out.append(join)
        if self._own_acd:
            self.acd.join(
                self.call_key, join.department, self.clock, join.priority, join.skills,
                join.widen_after,
            )  # fmt: skip

    def leave_queue(self, keep_place: bool = False) -> None:
        self._out.append(LeaveQueue(keep_place))
        if self._own_acd and self._acd is not None:
            self._acd.leave(self.call_key)

    @property
    def connected_department(self) -> str | None:
        """The department whose member is talking to the caller (None: an employee dialled
        directly, or not connected)."""
        return self._connected[2] if self._connected is not None else None

    def queue_position(self) -> int | None:
        """1 for the next caller to be offered an agent; None when not waiting (in the
        ACD this run reads)."""
        return self.acd.position(self.call_key)

    def ensure_answered(self) -> None:
        if not self.answered:
            self.answered = True
            self._out.append(Answer())

    def play(self, prompts: str | list[str] | tuple[str, ...]) -> str:
        """Play prompts on the caller's channel (answering first); the playback id."""
        self.ensure_answered()
        items = (prompts,) if isinstance(prompts, str) else tuple(prompts)
        resolved = tuple(self._resolve_prompt(p) for p in items)
        playback_id = self.new_id("playback")
        self._out.append(Play(playback_id, resolved, self.language))
        self.trace_event("play", prompts=list(resolved))
        return playback_id

    def stop_playback(self, playback_id: str | None) -> None:
        if playback_id is not None:
            self._out.append(StopPlayback(playback_id))

    def stop_moh(self) -> None:
        if self.moh:
            self.moh = False
            self._out.append(StopMoh())

    @property
    def language(self) -> str:
        """The prompts' language: the call's own, the number's, the scenario's, the company's."""
        scenario = self.company.config.scenarios[self.scenario]
        return (
            self.call.language
            or self.company.number_language(self.call.called, self.call.line)
            or scenario.language
            or self.company.config.language
        )

    def local_time(self) -> dt.datetime:
        return self.company.local_time(self.started_at + dt.timedelta(seconds=self.now))

    def render(self, template: str) -> str:
        """A template's text for this call."""
        parsed = parse_template(template)
        values = {name: self._template_value(name) for name in parsed.placeholders}
        return parsed.render(values)

    def render_request(
        self, template: str, escape: Callable[[str], str], json_body: bool = False
    ) -> str:
        """A CRM request's template for this call, each value through ``escape`` (URL,
        header or JSON encoding), its ``{env.NAME}`` left for the runtime
        (`switchboard.templates.defer`); ``json_body``: JSON's braces are its own."""
        parsed = parse_json_template(template) if json_body else parse_template(template, env=True)
        values = {
            name: self._template_value(name)
            for name in parsed.placeholders
            if not name.startswith("env.")
        }
        return defer(parsed, values, escape)

    def trace_event(self, event: str, **fields: Any) -> None:
        if self._step is not None:
            self._step.events.append({"t": self.now, "event": event, **fields})

    def detail(self, key: str, value: Any) -> None:
        if self._step is not None:
            self._step.details[key] = value

    @property
    def extra(self) -> dict[str, Any]:
        """What the outcome will say besides its fields (read-only use)."""
        return self._extra

    def mark(self, result: Result, **extra: Any) -> None:
        """Something that decides the outcome happened (a message left, a call-back taken)."""
        if self._significant != "connected":
            self._significant = result
        self._extra.update(extra)

    def connect(
        self, answered: Answered, department: str | None, since: float | None = None
    ) -> None:
        """An employee answered: bridge and stay in the conversation until one side leaves.

        ``since`` is when the caller began waiting for somebody (entering the dial or
        the queue); the outcome's ``wait`` counts from there.
        """
        self.stop_moh()
        self._out.append(Bridge(answered.leg_id))
        start = since if since is not None else (self._step.t if self._step else 0.0)
        self._connected = (answered, start, department)
        self._extra["answered_at"] = round(self.now, 3)
        self._significant = "connected"
        self.trace_event("connected", agent=answered.member.name, device=answered.device)
        policy = self.record_policy(department)
        if policy == "always":
            self.record_conversation("always")
        self._activity = _Conversation(self, answered.leg_id, on_demand=policy == "on_demand")

    def record_policy(self, department: str | None) -> RecordPolicy:
        """Whether a conversation with ``department`` (None: with no department) is
        recorded: the department's `record`, else the scenario's, else never."""
        dep = self.company.departments.get(department) if department is not None else None
        if dep is not None and dep.record is not None:
            return dep.record
        return self.company.config.scenarios[self.scenario].record or "never"

    def record_conversation(self, why: str) -> None:
        """Record the conversation from now on; the call's record links the file."""
        self._out.append(RecordConversation(CONVERSATION))
        self._extra["recording"] = CONVERSATION
        self.trace_event("recording", by=why)

    def _owes_notice(self, node: Node) -> bool:
        """Does the caller hear the recording notice before this node rings anybody?"""
        if self.notice_heard or not self.company.config.recording.notice:
            return False
        if not isinstance(node, DialNode | QueueNode | IcmNode):
            return False
        return self.record_policy(self.company.node_department(node)) != "never"

    def begin(self, activity: Activity) -> None:
        """``activity`` is the call's live state from now (it enters next)."""
        self._activity = activity

    def finish(self, result: Result, reason: str, hang_up: bool = True) -> None:
        """The scenario ends the call (a hangup node, a hand-off to the dialplan)."""
        self._end(result, reason, hang_up=hang_up)

    # --- moving through the graph -----------------------------------------------------

    def _follow(self, label: str) -> None:
        """Leave the current node by exit ``label`` and enter what it points to."""
        target = self._resolve_exit(label)
        self._close_step(target, label)
        if target is None:
            # validation makes this unreachable for checked configs; never crash a call
            self._end("hangup", f"node {self.node_name} has no exit {label!r}", hang_up=True)
            return
        self._enter(target)

    def _resolve_exit(self, label: str) -> str | None:
        exits = self.company.node_exits(self.scenario, self.node_name)
        target = exits.get(label)
        fallback = label
        while target is None and fallback in _FALLBACK_EXITS:
            fallback = _FALLBACK_EXITS[fallback]
            target = exits.get(fallback)
        if target is None and label not in {"open", "closed", "holiday"}:
            target = exits.get("closed")  # a break with no exit of its own
        return target

    def _enter(self, node_name: str) -> None:
        """Enter nodes until one waits for an event (or the call ends)."""
        while True:
            self._instant += 1
            if self._instant > self.company.config.limits.max_instant_steps:
                self._end("hangup", "loop: too many steps without waiting", hang_up=True)
                return
            self.node_name = node_name
            node: Node = self.company.node(self.scenario, node_name)
            self._step = Step(scenario=self.scenario, node=node_name, type=node.type, t=self.now)
            self.trace.append(self._step)
            if isinstance(node, GotoNode):
                self.scenario = node.scenario
                node_name = node.node or self.company.config.scenarios[node.scenario].start
                self._close_step(f"{self.scenario}.{node_name}", "goto")
                continue
            activity = activity_for(self, node)
            if self._owes_notice(node):
                activity = _Notice(self, activity)
            self._activity = activity
            label = activity.enter()
            if self.finished:
                return
            if label is None:
                self._instant = 0
                return
            target = self._resolve_exit(label)
            self._close_step(target, label)
            if target is None:
                self._end("hangup", f"node {node_name} has no exit {label!r}", hang_up=True)
                return
            node_name = target

    def _close_step(self, target: str | None, label: str | None) -> None:
        step = self._step
        if step is not None:
            step.exit = target
            step.via = label
            step.t_end = self.now

    def _end(self, result: Result, reason: str, hang_up: bool) -> None:
        if self.finished:
            return
        if self._activity is not None:
            self._activity.leave()
        self.stop_moh()
        if hang_up:
            self._out.append(Hangup(reason))
        self.finished = True
        for timer_id in sorted(self._timers):
            self._out.append(CancelTimer(timer_id))
        self._timers.clear()
        if self._step is not None and self._step.t_end is None:
            self._step.t_end = self.now
        self.outcome = self.outcome_now(result, reason)
        self._activity = None

    def outcome_now(self, result: Result, reason: str) -> Outcome:
        """The outcome the call would have if it ended now for ``reason``: a connected
        call's is "connected" whatever ends it."""
        if self._connected is not None:
            answered, since, department = self._connected
            answered_at = float(self._extra["answered_at"])
            return Outcome(
                result="connected",
                reason=reason,
                duration=self.now,
                wait=answered_at - since,
                agent=answered.member.name,
                department=department,
                talk=self.now - answered_at,
                extra=self._extra,
            )
        final: Result = self._significant or result
        return Outcome(
            result=final, reason=reason, duration=self.now, wait=self.now, extra=self._extra
        )

    def _template_value(self, name: str) -> str:
        """The value of one placeholder (`switchboard.templates.CALL_FIELDS`, ``var.X``)."""
        call = self.call
        match name:
            case "called" | "called_raw" | "caller" | "caller_raw" | "caller_name":
                value: str = getattr(call, name)
                return value
            case "line":
                return "" if call.line is None else str(call.line)
            case "digits":
                return self.digits
            case "scenario":
                return self.scenario
            case "node":
                return self.node_name
            case "language":
                return self.language
            case "time":
                return self.local_time().strftime("%H:%M")
            case "date":
                return self.local_time().strftime("%Y-%m-%d")
            case "weekday":
                return DAYS[self.local_time().weekday()]
        return self.vars.get(name.removeprefix("var."), "")

    def resolve_prompt(self, prompt: str) -> str:
        """A prompt reference as played: ``greeting`` chosen, ``number:``/``digits:``
        templates rendered."""
        return self._resolve_prompt(prompt)

    def _resolve_prompt(self, prompt: str) -> str:
        if prompt == "greeting":
            return self.company.greeting_for(self.local_time())
        if prompt.startswith(("number:", "digits:")):
            kind, _, text = prompt.partition(":")
            return f"{kind}:{self.render(text)}"
        return prompt


class _Conversation(Activity):
    """Caller and employee are bridged; the call ends when either hangs up.  The
    employee may hand the caller on with a transfer: the conversation goes on with
    the transfer target, counted (``transfers``, ``transferred_to``), and ends when
    the caller or the target hangs up (``ended_by``)."""

    def __init__(self, run: CallRun, leg_id: str, on_demand: bool = False) -> None:
        super().__init__(run)
        self.leg_id = leg_id
        self.talking_to = "agent"  # who the caller talks to: "agent", "transfer target"
        # `record: on_demand`: the keys the employee pressed last, until they make
        # `recording.on_demand_key` (None: not on demand, or recording already)
        self.keys: str | None = "" if on_demand else None

    def enter(self) -> str | None:
        return None

    def handle(self, event: Event) -> str | None:
        run = self.run
        if isinstance(event, LegDigits) and event.leg_id == self.leg_id and self.keys is not None:
            key = run.company.config.recording.on_demand_key
            self.keys = (self.keys + event.keys)[-len(key) :]
            if self.keys == key:
                self.keys = None
                run.record_conversation("on_demand")
        elif isinstance(event, RecordingFinished) and event.recording_id == CONVERSATION:
            if event.duration == 0.0 and run.extra.get("recording") is not None:
                run.trace_event("recording failed")
                run.mark("connected", recording=None)
        elif isinstance(event, LegTransferred) and event.leg_id == self.leg_id:
            run.trace_event("transferred", to=event.to, kind=event.kind)
            run.mark("connected", transfers=int(run.extra.get("transfers", 0)) + 1)
            if event.to:
                run.mark("connected", transferred_to=event.to)
            self.talking_to = "transfer target"
        elif isinstance(event, LegHungUp) and event.leg_id == self.leg_id:
            run.trace_event(f"{self.talking_to} hung up")
            run.mark("connected", ended_by=self.talking_to)
            run.finish("connected", f"{self.talking_to} hung up")
        return None


class _Notice(Activity):
    """The recording notice (`recording.notice`), once per call, before the first node
    whose conversation may be recorded rings anybody; then that node, ``then``."""

    def __init__(self, run: CallRun, then: Activity) -> None:
        super().__init__(run)
        self.then = then
        self.playback: str | None = None

    def enter(self) -> str | None:
        run = self.run
        run.notice_heard = True
        run.trace_event("recording notice")
        self.playback = run.play(run.company.config.recording.notice)
        return None

    def handle(self, event: Event) -> str | None:
        if isinstance(event, PlaybackFinished) and event.playback_id == self.playback:
            self.playback = None
            self.run.begin(self.then)
            return self.then.enter()
        return None

    def leave(self) -> None:
        self.run.stop_playback(self.playback)
