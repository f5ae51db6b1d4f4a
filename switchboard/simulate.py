"""Dry-run a call through a scenario on a virtual clock (`switchboard simulate`).

The simulator stands in for Asterisk and for the people on the phones: it
carries out the engine's actions in virtual time (a prompt takes its length, a
timer fires when it is due, an employee answers after N seconds or is busy)
and feeds the results back, so a five-minute queue wait takes no real time.
"""

from __future__ import annotations

import datetime as dt
import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from switchboard.calls import CallRecord
from switchboard.config.company import Company
from switchboard.driver import CallDriver, run_now
from switchboard.engine.actions import (
    Action,
    ContinueInDialplan,
    Lookup,
    Play,
    RequestCallback,
    Ring,
    SaveMessage,
    StartRecording,
)
from switchboard.engine.call import CallInfo, CallRun
from switchboard.engine.events import (
    AgentState,
    AgentStatus,
    CallerHungUp,
    Digits,
    Event,
    LegAnswered,
    LegBusy,
    LegFailed,
    LegHungUp,
    LegNoAnswer,
    PlaybackFinished,
    RecordingFinished,
    TimerFired,
)
from switchboard.engine.trace import Outcome, Step

DEFAULT_ANSWER_AFTER = 2.0
DEFAULT_TALK = 60.0
REFUSE_AFTER = 1.0  # `refuse`: seconds into the whisper the employee presses its key
_AGENT = re.compile(r"^(answer|busy|noanswer|offline|refuse)(?::(\d+(?:\.\d+)?))?$")


class SimulationError(ValueError):
    """Bad simulate arguments (an unknown employee, a malformed --agent ...)."""

    error_id = "simulate.bad_arguments"


@dataclass(frozen=True, slots=True)
class AgentBehaviour:
    """How a simulated employee behaves when rung (``--agent ID=...``)."""

    # refuse: answers, then presses the whisper's refuse key a second into it
    kind: Literal["answer", "busy", "noanswer", "offline", "refuse"] = "answer"
    seconds: float = DEFAULT_ANSWER_AFTER  # answer: after this long; busy: until then
    busy_until: float | None = None

    @classmethod
    def parse(cls, text: str) -> AgentBehaviour:
        match = _AGENT.match(text.strip())
        if not match:
            raise SimulationError(
                f"agent behaviour {text!r}: use answer[:SECONDS], busy[:UNTIL], noanswer, "
                "offline, refuse[:SECONDS]"
            )
        kind = match.group(1)
        number = float(match.group(2)) if match.group(2) is not None else None
        if kind in ("answer", "refuse"):
            return cls(kind, DEFAULT_ANSWER_AFTER if number is None else number)  # type: ignore[arg-type]
        if kind == "busy":
            # busy:95 = busy until second 95 of the call, then free and answering at once
            return cls("busy", 0.0, busy_until=number)
        return cls(kind, 0.0)  # type: ignore[arg-type]  # kind is one of the two left

    def state_at(self, t: float) -> AgentState:
        if self.kind == "offline":
            return "offline"
        if self.kind == "busy" and (self.busy_until is None or t < self.busy_until):
            return "busy"
        return "available"


@dataclass(frozen=True, slots=True)
class LastAgent:
    """``--last-agent ID[:DAYS_AGO]``: who last talked to this caller, and when."""

    employee: str
    days_ago: float = 1.0


@dataclass
class Simulation:
    scenario: str
    call: CallInfo
    started_at: dt.datetime
    steps: list[Step]
    outcome: Outcome
    actions: list[tuple[float, Action]] = field(default_factory=list)
    callbacks: list[RequestCallback] = field(default_factory=list)
    messages: list[SaveMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events_fed: int = 0  # engine steps: events the virtual Asterisk fed to the run

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "called": self.call.called,
            "caller": self.call.caller,
            "at": self.started_at.isoformat(),
            "steps": [step.as_json() for step in self.steps],
            "outcome": self.outcome.as_json(),
        }
        if self.call.line is not None:
            out["line"] = self.call.line
        if self.callbacks:
            out["callbacks"] = [
                {"number": c.number, "department": c.department} | ({"at": c.due} if c.due else {})
                for c in self.callbacks
            ]
        if self.messages:
            out["messages"] = [
                {"caller": m.caller, "length": round(m.length, 3), "mailbox": m.mailbox}
                for m in self.messages
            ]
        return out


def simulate(
    company: Company,
    *,
    called: str | None = None,
    caller: str | None = None,
    caller_name: str = "",
    line: int | None = None,
    at: dt.datetime | None = None,
    dtmf: str = "",
    agents: dict[str, AgentBehaviour] | None = None,
    hangup_after: float | None = None,
    talk: float = DEFAULT_TALK,
    last_agent: LastAgent | None = None,
    crm: str | None = None,
    scenario: str | None = None,
    keep_actions: bool = False,
    handle_time: float | None = None,
) -> Simulation:
    """Run one call to its end on a virtual clock and return what happened.
    ``handle_time``: how long a queue's recent conversations lasted (talk and wrap-up),
    for the estimated wait its announcements say."""
    agents = agents or {}
    for name in agents:
        if name not in company.employees:
            raise SimulationError(f"--agent {name}: no such employee")
    if called is None and line is not None:
        called = company.line_numbers.get(line)
    call = CallInfo.from_raw(company, called, caller, caller_name=caller_name, line=line)
    started = at or dt.datetime.now(company.tz)
    if started.tzinfo is None:
        started = started.replace(tzinfo=company.tz)
    try:
        run = CallRun(
            company,
            call,
            started,
            scenario=scenario,
            agents={emp: b.state_at(0.0) for emp, b in agents.items()},
        )
    except LookupError as exc:
        raise SimulationError(
            f"{exc}: add it under `numbers:` or set `default_scenario:`"
        ) from None
    if handle_time is not None:
        if not handle_time > 0:
            raise SimulationError(f"--handle-time {handle_time}: a number of seconds above 0")
        run.acd.seed_handle(handle_time)
    sim = _VirtualAsterisk(run, dtmf, agents, talk, last_agent, crm, keep_actions)
    return sim.run(hangup_after)


class _VirtualAsterisk:
    """Asterisk and the people on the phones, on a virtual clock: the call's `MediaPort`
    (and its store of call-backs and messages) for a `CallDriver`."""

    def __init__(
        self,
        run: CallRun,
        dtmf: str,
        agents: dict[str, AgentBehaviour],
        talk: float,
        last_agent: LastAgent | None,
        crm: str | None,
        keep_actions: bool,
    ) -> None:
        self.call = run
        self.dtmf = dtmf
        self.agents = agents
        self.talk = talk
        self.last_agent = last_agent
        self.crm = crm
        self.keep = keep_actions
        # (time, order, event, key): a None event is the timer named by key
        self.heap: list[tuple[float, int, Event | str | None, str]] = []
        self.seq = 0
        self.t = 0.0
        self.cancelled: set[str] = set()  # timers, playbacks and legs that no longer count
        self.key_due = False
        self.fed = 0
        self.actions: list[tuple[float, Action]] = []
        self.callbacks: list[RequestCallback] = []
        self.messages: list[SaveMessage] = []
        self.notes: list[str] = []
        self.driver = CallDriver(
            run, "simulate", self, _Store(self), look_up=self._lookup, intercept=self._seen
        )

    def push(self, t: float, event: Event | str | None, key: str = "") -> None:
        """Schedule ``event`` at ``t``; it is dropped if ``key`` is cancelled before then."""
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, event, key))

    def run(self, hangup_after: float | None) -> Simulation:
        call = self.call
        for emp, behaviour in self.agents.items():
            if behaviour.kind == "busy" and behaviour.busy_until is not None:
                self.push(behaviour.busy_until, AgentStatus(emp, "available"))
        if hangup_after is not None:
            self.push(hangup_after, CallerHungUp())
        run_now(self.driver.start())
        self.ask_for_keys(0.0)
        heap, cancelled = self.heap, self.cancelled
        while heap and not call.finished:
            t, _, item, key = heapq.heappop(heap)
            self.t = t
            if isinstance(item, str):  # a key press falling due
                self.key_due = False
                if call.awaiting_input:
                    self.fed += 1
                    run_now(self.driver.handle(Digits(item), t))
                else:
                    self.dtmf = item + self.dtmf  # not listening: keep it for the next ask
                self.ask_for_keys(t)
                continue
            if key and key in cancelled:
                continue
            self.fed += 1
            run_now(self.driver.handle(item or TimerFired(key), t))
            if self.dtmf:
                self.ask_for_keys(t)
        if not call.finished:
            # nothing left to happen: the caller, in silence, gives up
            self.notes.append("the call had nothing left to wait for")
            run_now(self.driver.handle(CallerHungUp(), call.now))
        assert call.outcome is not None
        return Simulation(
            scenario=call.trace[0].scenario if call.trace else call.scenario,
            call=call.call,
            started_at=call.started_at,
            steps=call.trace,
            outcome=call.outcome,
            actions=self.actions,
            callbacks=self.callbacks,
            messages=self.messages,
            notes=self.notes,
            events_fed=self.fed,
        )

    def ask_for_keys(self, t: float) -> None:
        """When the call listens and no key is on its way, send the next one (after its w's)."""
        if self.key_due or not self.dtmf or not self.call.awaiting_input:
            return
        waits = len(self.dtmf) - len(self.dtmf.lstrip("wW"))
        self.dtmf = self.dtmf[waits:]
        if not self.dtmf:
            return
        key, self.dtmf = self.dtmf[0], self.dtmf[1:]
        self.key_due = True
        self.push(t + waits, key)

    def _seen(self, actions: list[Action]) -> bool:
        if self.keep:
            self.actions.extend((self.t, action) for action in actions)
        return False  # the driver carries them out

    # --- the media port: what Asterisk and the people on the phones do -------------------

    def deliver(self, event: Event) -> None:
        self.push(self.t, event)

    def wake_at(self, timer_id: str, at: float) -> None:
        self.push(at, None, timer_id)

    def unwake(self, timer_id: str) -> None:
        self.cancelled.add(timer_id)

    async def answer(self) -> None:
        pass

    async def play(self, play: Play) -> None:
        length = sum(self.call.company.prompt_duration(p) for p in play.prompts)
        self.push(self.t + length, PlaybackFinished(play.playback_id), play.playback_id)

    async def stop_playback(self, playback_id: str) -> None:
        self.cancelled.add(playback_id)

    async def start_moh(self, moh_class: str) -> None:
        pass

    async def stop_moh(self) -> None:
        pass

    async def ring(self, ring: Ring) -> None:
        behaviour = self.agents.get(ring.employee_id or "", AgentBehaviour())
        if ring.employee_id is None:
            behaviour = AgentBehaviour()
        t = self.t
        state = behaviour.state_at(t)
        leg = ring.leg_id
        if state == "offline":
            self.push(t, LegFailed(leg, "offline"), leg)
        elif state == "busy":
            self.push(t, LegBusy(leg), leg)
        elif behaviour.kind != "noanswer":
            answered = t + behaviour.seconds
            # a whisper first (the caller still waits): its prompts' length, or a refusal
            # a second into it (`refuse`, or answer when there is no whisper to refuse)
            whisper = sum(self.call.company.prompt_duration(p) for p in ring.whisper)
            if ring.whisper and behaviour.kind == "refuse" and ring.refuse_key is not None:
                self.push(answered + min(REFUSE_AFTER, whisper), LegNoAnswer(leg), leg)
            else:
                self.push(answered + whisper, LegAnswered(leg), leg)

    async def stop_ringing(self, leg_id: str) -> None:
        self.cancelled.add(leg_id)

    async def bridge(self, leg_id: str) -> None:
        self.push(self.t + self.talk, LegHungUp(leg_id), leg_id)

    async def start_recording(self, recording: StartRecording) -> None:
        finished = RecordingFinished(recording.recording_id, recording.max_length)
        self.push(self.t + recording.max_length, finished, recording.recording_id)

    async def stop_recording(self, recording_id: str) -> None:
        self.cancelled.add(recording_id)

    async def record_conversation(self, recording_id: str) -> None:
        pass  # the trace says the conversation is recorded; it ends with the call

    async def continue_in_dialplan(self, to: ContinueInDialplan) -> None:
        pass

    async def hangup(self, reason: str) -> None:
        pass

    def _lookup(self, lookup: Lookup, done: Callable[[str | None], None]) -> None:
        if lookup.source == "contacts":
            # the runtime's contacts table: simulate knows only the config's `contacts:`
            done(None)
            return
        if lookup.source == "last_agent":
            found = self.last_agent
            done(found.employee if found and found.days_ago <= lookup.days else None)
            return
        if self.crm == "timeout":
            return  # the engine's own timeout moves on
        done(None if self.crm in (None, "error", "none") else self.crm)


class _Store:
    """Where the simulated call's promises and messages go: into the `Simulation`."""

    def __init__(self, sim: _VirtualAsterisk) -> None:
        self.sim = sim

    async def call_finished(self, record: CallRecord) -> None:
        pass  # `simulate` returns its trace; it keeps no record

    async def save_message(self, call_id: str, message: SaveMessage) -> None:
        self.sim.messages.append(message)

    async def request_callback(
        self, call_id: str, request: RequestCallback, hold: float | None = None
    ) -> bool:
        self.sim.callbacks.append(request)
        return True

    async def last_agent(self, caller: str, days: float) -> str | None:
        return None  # lookups are answered by `_VirtualAsterisk._lookup`

    async def contact(self, caller: str) -> str | None:
        return None

    async def message_counts(
        self, mailbox: str, including: str | None = None
    ) -> tuple[int, int] | None:
        return None  # a dry run lights no lamp
