"""One call, whatever carries it: its engine run and everything around the run.

A runtime -- ARI, FastAGI, `simulate` -- turns what Asterisk says into engine
events and does what is done *on* the call's channels: that is its `MediaPort`
(answer, play, hold music, ring a leg, bridge, record, back to the dialplan,
hang up).  Everything else the engine asks for is done here, the same way for
every runtime:

- **the engine's actions** are interpreted in one place (`CallDriver.apply`);
- **timers**: the driver keeps them; the port is only asked to wake the call
  when one falls due (FastAGI, one command at a time, asks `next_timer`);
- **the ACD** (through the runtime's `Desk`): a call joins and leaves a queue
  when the engine says so; a queue offer holds its agent while it rings (no
  other call rings them), and lets go when its leg ends without a
  conversation; the agent of a conversation is talking, then in wrap-up (from
  the end of the call, or from a transfer that hands the caller on); a call
  that leaves a queue for a call-back keeps its place for it;
- **lookups** (ICM sources, the CRM), **call-back requests**, **voicemail
  messages** and **notifications**;
- **the call's record**, written once however the call ends;
- **call ids** (`new_call_id`).

A freed agent is offered by the `Desk` to the one waiting call the ACD picks
(highest priority, then longest waiting), never to every caller at once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import ChainMap
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from switchboard.acd import ELSEWHERE, Acd, DeviceState, Waiting
from switchboard.calls import CallRecord, CallSink
from switchboard.clock import Clock, Timer
from switchboard.config.company import Company
from switchboard.engine import actions as act
from switchboard.engine import events as ev
from switchboard.engine.call import CallRun

log = structlog.get_logger("switchboard.driver")

# how long a call-back that keeps its caller's place waits for that place to come up
# before the call-back workers make it on their own (clock seconds)
KEPT_PLACE_HOLD = 900.0

Step = Callable[[CallRun], list[act.Action]]
LookUp = Callable[[act.Lookup, Callable[[str | None], None]], None]


def caller_priorities(table: dict[str, int], company: Company) -> Mapping[str, int] | None:
    """The VIP list a call reads: the database's (``table``, `switchboard vip`, followed
    live) in front of the configuration's `vip:`; None (the configuration's alone) when
    the table is empty."""
    return ChainMap(table, company.vip) if table else None


@dataclass(frozen=True, slots=True)
class CallNow:
    """One call being carried now, as a supervisor sees it."""

    call_id: str
    called: str
    caller: str
    scenario: str
    node: str
    state: str  # "scenario", "queue" (waiting in one), "talking"
    seconds: float  # since the call began
    department: str | None = None  # the queue it waits in, or whose member talks
    agent: str | None = None  # who talks to the caller


def call_now(driver: CallDriver) -> CallNow:
    """What ``driver``'s call is doing at its run's last event (its node, its state)."""
    run = driver.run
    desk = driver.desk
    waiting = desk.acd.department_of(driver.call_id) if desk is not None else None
    state = "talking" if run.connected else "queue" if waiting is not None else "scenario"
    # the run's ACD clock began with the call: the desk's clock since then
    began = run.clock - run.now
    seconds = run.now if desk is None else max(run.now, desk.clock.now() - began)
    outcome_agent = run.outcome_now("connected", "").agent if run.connected else None
    return CallNow(
        call_id=driver.call_id,
        called=run.call.called,
        caller=run.call.caller,
        scenario=run.scenario,
        node=run.node_name,
        state=state,
        seconds=round(seconds, 1),
        department=waiting if waiting is not None else run.connected_department,
        agent=outcome_agent,
    )


def new_call_id(instance: str) -> str:
    """Unique across restarts and instances: call records and call-backs are keyed by it."""
    return f"{instance}-{uuid.uuid4().hex[:12]}"


class MediaPort(Protocol):
    """What a runtime does on Asterisk for one call.  The driver asks; the port does it
    and reports back in engine events (`deliver`), as Asterisk answers."""

    def deliver(self, event: ev.Event) -> None:
        """An event for the call's queue, handled after the step now running."""

    def wake_at(self, timer_id: str, at: float) -> None:
        """A timer is due at call time ``at``: feed ``TimerFired`` then."""

    def unwake(self, timer_id: str) -> None: ...

    async def answer(self) -> None: ...

    async def play(self, play: act.Play) -> None:
        """Play it; ``PlaybackFinished(play.playback_id)`` when it ends (or cannot)."""

    async def stop_playback(self, playback_id: str) -> None: ...

    async def start_moh(self, moh_class: str) -> None: ...

    async def stop_moh(self) -> None: ...

    async def ring(self, ring: act.Ring) -> None:
        """Ring the leg; ``LegAnswered``/``LegBusy``/``LegNoAnswer``/``LegFailed``."""

    async def stop_ringing(self, leg_id: str) -> None: ...

    async def bridge(self, leg_id: str) -> None:
        """Join the caller and the answered leg; ``LegHungUp`` when the talk ends."""

    async def start_recording(self, recording: act.StartRecording) -> None:
        """``RecordingFinished`` when it ends."""

    async def stop_recording(self, recording_id: str) -> None: ...

    async def record_conversation(self, recording_id: str) -> None:
        """Record the bridged conversation (see `RecordConversation`)."""

    async def continue_in_dialplan(self, to: act.ContinueInDialplan) -> None: ...

    async def hangup(self, reason: str) -> None: ...


# what a call's driver tells (`switchboard.webhooks.CallNews`): an event, and how to
# make its payload -- made only when somebody listens (most calls have nobody)
Pop = Callable[[], dict[str, Any]]
Tell = Callable[[str, Pop], None]


class SharedAgentsPort(Protocol):
    """The agents several instances share (`switchboard.storage.shared_acd.SharedLink`):
    a queue offer holds its agent there too, so no instance rings an agent another one's
    call holds, and a caller of another instance who came first is not overtaken."""

    async def reserve(self, agent: str, call_id: str, priority: int, waiting: bool) -> bool:
        """True when ``call_id`` holds ``agent`` across instances now (False: held
        elsewhere, a caller elsewhere comes first, or the database cannot say)."""

    def release(self, agent: str, call_id: str) -> None:
        """The agent is free again here: free them for every instance (in the background)."""

    def wait(self, call_id: str, department: str, priority: int, skills: tuple[str, ...]) -> None:
        """The call waits in a queue: its place across instances (in the background)."""

    def leave(self, call_id: str) -> None:
        """The call waits no more (in the background)."""

    def hold(self, agent: str, call_id: str) -> None:
        """An adopted conversation holds ``agent`` again (in the background)."""


class Desk:
    """The calls of one runtime that wait in queues, and the ACD they share.

    A freed agent (the ACD's `on_free`) is offered to the one call the ACD picks: the
    highest priority, then the longest waiting, among those that would ring the agent
    now -- not to every caller in the queue (a thousand callers told at once made a
    thousand refused offers).  A call-back keeping its caller's place is one of them:
    when its turn comes, ``make_kept`` (the call-back workers) makes it, the agent
    held for it.  Wrap-ups end on a timer, and their agents are offered then.
    """

    def __init__(
        self,
        acd: Acd,
        clock: Clock,
        spawn: Callable[[Coroutine[Any, Any, None]], object] | None = None,
    ) -> None:
        self.acd = acd
        self.clock = clock
        self.spawn = spawn
        self.waiting: dict[str, CallDriver] = {}  # in a queue, by call id
        # ACD keys of call-backs that keep a caller's place -> "call_id/request_id"
        self.kept_places: dict[str, str] = {}
        # (request, agent, ACD key) -> made?  None: places are not kept (no worker)
        self.make_kept: Callable[[str, str, str], Awaitable[bool]] | None = None
        self._wrapup_timer: Timer | None = None
        # shared with other instances (None: this instance's agents are its own)
        self.shared: SharedAgentsPort | None = None
        self.reserved: dict[str, str] = {}  # agent -> the call holding them across instances
        acd.on_free(self.offer_agent)

    def offer_agent(self, employee: str) -> None:
        now = self.clock.now()
        if self.shared is not None:
            call_id = self.reserved.pop(employee, None)
            if call_id is not None:
                self.shared.release(employee, call_id)  # free here: free for every instance
        first = self.acd.who_takes(employee, now, self.takes_for(employee))
        if first is None:
            return
        request_id = self.kept_places.pop(first, None)
        if request_id is not None:
            self.acd.leave(first)
            if self.acd.claim(employee, first, now) and self.spawn is not None:
                self.spawn(self._make_kept(request_id, employee, first))
            return
        call = self.waiting.get(first)
        if call is not None:
            call.offer(employee)

    async def _make_kept(self, request_id: str, employee: str, key: str) -> None:
        made = False
        try:
            if self.make_kept is not None:
                made = await self.make_kept(request_id, employee, key)
        finally:
            if not made:  # made by now, or no worker: the employee goes to the next
                self.acd.release(employee, key, self.clock.now())

    def takes_for(self, employee: str) -> Callable[[str], bool]:
        def takes(call_id: str) -> bool:
            if call_id in self.kept_places:
                return True
            call = self.waiting.get(call_id)
            return call is not None and call.takes(employee)

        return takes

    def wrapups_later(self) -> None:
        """Wake when the next agent's wrap-up ends: they are offered then."""
        when = self.acd.next_change(self.clock.now())
        if when is None:
            return
        if self._wrapup_timer is not None:
            self._wrapup_timer.cancel()

        def fire() -> None:
            self._wrapup_timer = None
            self.acd.tick(self.clock.now())
            self.wrapups_later()

        self._wrapup_timer = self.clock.call_at(when, fire)

    def freed_elsewhere(self, employee: str) -> None:
        """Another instance freed ``employee`` (or let a caller of ours go first): they
        are offered to the calls here that would ring them."""
        now = self.clock.now()
        agent = self.acd.agents.get(employee)
        if agent is not None and agent.holder == ELSEWHERE:
            self.acd.release(employee, ELSEWHERE, now)  # offered, as any agent freed
        elif employee not in self.reserved and self.acd.free(employee, now):
            self.offer_agent(employee)

    def held_elsewhere(self) -> list[str]:
        return self.acd.held_elsewhere()

    def adopted(self, employee: str, call_id: str) -> None:
        """A conversation an earlier run left in Asterisk, adopted: with shared agents,
        its employee is held for it across instances again (until their wrap-up ends,
        as any conversation's)."""
        if self.shared is not None:
            self.reserved[employee] = call_id
            self.shared.hold(employee, call_id)

    def heard_device(self, agent: str, state: DeviceState) -> None:
        """Another instance told the state of ``agent``'s desk phone, on its Asterisk."""
        self.acd.device(agent, state, self.clock.now())

    def device_states(self) -> dict[str, DeviceState]:
        return {agent.id: agent.device for agent in self.acd.agents.values()}

    def queued(self) -> list[Waiting]:
        """The callers waiting in queues here (for the shared agents' store)."""
        found = (self.acd.waiting(call_id) for call_id in self.waiting)
        return [w for w in found if w is not None]

    def close(self) -> None:
        if self._wrapup_timer is not None:
            self._wrapup_timer.cancel()
            self._wrapup_timer = None


class CallDriver:
    """One call's run, driven: the engine's actions carried out through the runtime's
    `MediaPort`, the rest (timers, the ACD, lookups, call-backs, messages, the record)
    here.  The runtime feeds events with `handle`, in the order they happened.

    ``prepare(step)``: awaited before each engine step (FastAGI reads the phones the
    step will consider); ``intercept(actions)``: True when the runtime takes a step's
    actions over instead (FastAGI `route` stopping where the dialplan takes on)."""

    def __init__(
        self,
        run: CallRun,
        call_id: str,
        port: MediaPort,
        sink: CallSink,
        *,
        look_up: LookUp,
        desk: Desk | None = None,
        prepare: Callable[[Step], Awaitable[None]] | None = None,
        intercept: Callable[[list[act.Action]], bool] | None = None,
        logger: Any = None,
        tell: Tell | None = None,
    ) -> None:
        self.run = run
        self.call_id = call_id
        self.port = port
        self.sink = sink
        self.look_up = look_up
        self.desk = desk
        self.prepare = prepare
        self.intercept = intercept
        self.log = logger if logger is not None else log.bind(call_id=call_id)
        self.timers: dict[str, float] = {}  # timer id -> call time due
        self.rings: dict[str, act.Ring] = {}  # legs rung, by leg id
        self.bridged: set[str] = set()
        self.holding: dict[str, set[str]] = {}  # employee -> legs of our offer ringing them
        self.held: dict[str, bool] = {}  # leg -> whether its offer got its employee
        self.offered: str | None = None  # a freed employee offered to it, not yet rung
        self.agent: str | None = None  # talking to the caller
        self.talk_began = 0.0  # call time the conversation with `agent` began
        self.recorded = False
        # screen-pop (`switchboard.webhooks`): told when an employee's phone rings for the
        # call, when they answer and, once one rang, when it ends; never waited for
        self.tell = tell
        self.popped = False

    # --- feeding the run ---------------------------------------------------------------

    async def start(self) -> None:
        await self.step(CallRun.start)

    async def handle(self, event: ev.Event, now: float) -> None:
        """Feed one event that happened at call time ``now``, and carry out what follows."""
        if isinstance(event, ev.TimerFired):
            if self.timers.pop(event.timer_id, None) is None:
                return  # cancelled, or fired already
        elif isinstance(event, ev.LegBusy | ev.LegTaken | ev.LegFailed | ev.LegNoAnswer):
            self._unhold(event.leg_id)
        elif isinstance(event, ev.AgentStatus) and self.desk is not None:
            await self._offered(event, now)
            return
        await self.step(lambda run: run.handle(event, now))
        if isinstance(event, ev.LegTransferred) and event.leg_id in self.bridged:
            self._agent_done()  # handed the caller on: their talk is over, wrap-up begins

    async def step(self, step: Step) -> None:
        if self.prepare is not None:
            await self.prepare(step)
        await self.apply(step(self.run))

    def next_timer(self) -> tuple[str, float] | None:
        """The timer due first, and when."""
        if not self.timers:
            return None
        timer_id = min(self.timers, key=self.timers.__getitem__)
        return timer_id, self.timers[timer_id]

    # --- the engine's actions ----------------------------------------------------------

    async def apply(self, actions: list[act.Action]) -> None:
        if self.intercept is not None and self.intercept(actions):
            return
        # the ACD first, before any request is awaited: the engine read it just now, and
        # another call's step must not take an offered employee in between (it made a
        # refused "ring" and a rest on a free one)
        for action in actions:
            match action:
                case act.Ring(offer=True):
                    self.held[action.leg_id] = self._hold(action)
                case act.JoinQueue():
                    self._join(action)
                case act.LeaveQueue():
                    self._leave(action.keep_place)
        for action in actions:
            await self._carry_out(action)

    async def _carry_out(self, action: act.Action) -> None:
        port = self.port
        match action:
            case act.JoinQueue() | act.LeaveQueue():
                pass  # told to the ACD in `apply`, before any request
            case act.Answer():
                await port.answer()
            case act.Play():
                await port.play(action)
            case act.StopPlayback():
                await port.stop_playback(action.playback_id)
            case act.StartMoh():
                await port.start_moh(action.moh_class)
            case act.StopMoh():
                await port.stop_moh()
            case act.StartTimer():
                self.timers[action.timer_id] = action.at
                port.wake_at(action.timer_id, action.at)
            case act.CancelTimer():
                if self.timers.pop(action.timer_id, None) is not None:
                    port.unwake(action.timer_id)
            case act.Ring():
                await self._ring(action)
            case act.StopRinging():
                self._unhold(action.leg_id)
                await port.stop_ringing(action.leg_id)
            case act.Bridge():
                self.bridged.add(action.leg_id)
                await port.bridge(action.leg_id)
                self._talking(action.leg_id)
                if self.tell is not None and self.popped:
                    leg_id = action.leg_id
                    self.tell("answered", lambda: self.screen_pop(leg_id))
            case act.StartRecording():
                await port.start_recording(action)
            case act.StopRecording():
                await port.stop_recording(action.recording_id)
            case act.RecordConversation():
                await port.record_conversation(action.recording_id)
            case act.SaveMessage():
                await self.sink.save_message(self.call_id, action)
                if self.tell is not None:  # its owner is told (webhooks, e-mail)
                    left = {
                        "mailbox": action.mailbox,
                        "recording": act.recording_name(self.call_id, action.recording_id),
                        "length": round(action.length, 1),
                    }
                    self.tell("message", lambda: {**self.screen_pop(None), "message": left})
            case act.RequestCallback():
                await self._request_callback(action)
            case act.Lookup():
                request_id = action.request_id
                self.look_up(action, lambda value: port.deliver(ev.LookupResult(request_id, value)))
            case act.Notify():
                emit = self.log.warning if action.level == "warning" else self.log.info
                emit("notify", message=action.message)
            case act.ContinueInDialplan():
                await port.continue_in_dialplan(action)
            case act.Hangup():
                await port.hangup(action.reason)

    async def _ring(self, ring: act.Ring) -> None:
        held = self.held.pop(ring.leg_id, None)
        ok = self._hold(ring) if held is None else held
        if ok and ring.offer and ring.employee_id is not None:
            ok = await self._share(ring.employee_id, ring.leg_id)
        if not ok:
            # another caller's offer rings them (or they are on a call): taken
            self.port.deliver(ev.LegTaken(ring.leg_id))
            return
        self.rings[ring.leg_id] = ring
        await self.port.ring(ring)
        if self.tell is not None and ring.employee_id is not None:
            self.popped = True
            self.tell("ringing", lambda: self.screen_pop(ring.leg_id))

    async def _request_callback(self, request: act.RequestCallback) -> None:
        """Commit the promise.  A call that left its queue for it keeps its place: the
        call-back is made when that place comes up (the `Desk`), or by the workers
        after `KEPT_PLACE_HOLD`.  One for a time the caller chose is made then."""
        desk = self.desk
        parked = (
            not request.due  # a time the caller chose: made then, not when the place comes
            and desk is not None
            and desk.make_kept is not None
            and desk.acd.department_of(self.call_id) is not None
        )
        hold = desk.clock.real(KEPT_PLACE_HOLD) if desk is not None and parked else None
        ok = await self.sink.request_callback(self.call_id, request, hold)
        if ok and desk is not None and parked:
            key = f"callback:{self.call_id}/{request.request_id}"
            if desk.acd.bind(self.call_id, key):
                desk.kept_places[key] = f"{self.call_id}/{request.request_id}"
        self.port.deliver(ev.CallbackStored(request.request_id, ok))

    # --- the ACD -----------------------------------------------------------------------

    def _join(self, join: act.JoinQueue) -> None:
        """The engine says the call waits in a queue: the ACD's line, and the desk's
        (from which freed employees are offered)."""
        desk = self.desk
        if desk is None:
            return  # the run's own ACD (`simulate`): it applied it itself
        desk.acd.join(
            self.call_id, join.department, desk.clock.now(), join.priority, join.skills,
            join.widen_after,
        )  # fmt: skip
        desk.waiting[self.call_id] = self
        if desk.shared is not None:
            desk.shared.wait(self.call_id, join.department, join.priority, tuple(join.skills))

    def _leave(self, keep_place: bool = False) -> None:
        desk = self.desk
        if desk is None:
            return
        desk.waiting.pop(self.call_id, None)
        if desk.shared is not None:
            desk.shared.leave(self.call_id)
        if keep_place and desk.make_kept is not None:
            desk.acd.park(self.call_id)  # for the call-back it may ask for
        else:
            desk.acd.leave(self.call_id)

    def takes(self, employee: str) -> bool:
        """Would this call ring ``employee`` now, were they free?"""
        return not self.holding and self.offered is None and self.run.takes_agent(employee)

    def offer(self, employee: str) -> None:
        """The desk offers a freed employee: the run hears of it in its turn."""
        self.offered = employee
        self.port.deliver(ev.AgentStatus(employee, "available"))

    async def _offered(self, status: ev.AgentStatus, now: float) -> None:
        """A freed employee offered to this call: it rings them (and maybe others of
        its department).  One it did not ring is offered to the next caller."""
        assert self.desk is not None
        self.offered = None
        await self.step(lambda run: run.handle(status, now))
        employee = status.employee_id
        desk = self.desk
        if employee not in self.holding and desk.acd.free(employee, desk.clock.now()):
            desk.offer_agent(employee)

    def _hold(self, ring: act.Ring) -> bool:
        """A queue offer holds the employee for this call while it rings (the ACD's
        claim); a caller ahead (a higher priority, or waiting longer) who would ring
        them takes precedence (the desk tells it first)."""
        desk = self.desk
        if desk is None or not ring.offer or ring.employee_id is None:
            return True
        employee = ring.employee_id
        acd, now = desk.acd, desk.clock.now()
        first = acd.who_takes(employee, now, desk.takes_for(employee))
        if first is not None and first != self.call_id and acd.precedes(first, self.call_id):
            return False
        if not acd.claim(employee, self.call_id, now):
            return False
        self.holding.setdefault(employee, set()).add(ring.leg_id)
        return True

    async def _share(self, employee: str, leg_id: str) -> bool:
        """The offer held ``employee`` here: hold them across instances too.  Refused
        (held elsewhere, a caller elsewhere first, the database away), the hold here is
        given back and the employee left to the other instance until it frees them."""
        desk = self.desk
        if desk is None or desk.shared is None or employee not in self.holding:
            return True
        if desk.reserved.get(employee) == self.call_id:
            return True
        waiting = desk.acd.waiting(self.call_id)
        priority = waiting.priority if waiting is not None else 0
        got = await desk.shared.reserve(employee, self.call_id, priority, waiting is not None)
        legs = self.holding.get(employee)
        if got and not self.run.finished and legs is not None and leg_id in legs:
            desk.reserved[employee] = self.call_id
            return True
        if got:  # the call ended (or let the offer go) meanwhile
            desk.shared.release(employee, self.call_id)
        if legs is not None:
            legs.discard(leg_id)
            if not legs:
                del self.holding[employee]
                if got:
                    desk.acd.release(employee, self.call_id, desk.clock.now())
                else:  # busy here until the instance holding them frees them
                    desk.acd.hold_elsewhere(employee, self.call_id, desk.clock.now())
        return False

    def _unhold(self, leg_id: str) -> None:
        """An offer's leg ended without a conversation: the employee is free again once
        it was the last of their phones ringing for us."""
        ring = self.rings.get(leg_id)
        if self.desk is None or ring is None or leg_id in self.bridged:
            return
        employee = ring.employee_id
        legs = self.holding.get(employee) if employee is not None else None
        if employee is None or legs is None or leg_id not in legs:
            return
        legs.discard(leg_id)
        if not legs:
            del self.holding[employee]
            if employee != self.agent:
                self.desk.acd.release(employee, self.call_id, self.desk.clock.now(), ring.rest)

    def _talking(self, leg_id: str) -> None:
        ring = self.rings.get(leg_id)
        if self.desk is None or ring is None or ring.employee_id is None:
            return
        self.agent = ring.employee_id
        self.talk_began = self.run.now
        self.desk.acd.talking(self.agent, self.call_id, self.desk.clock.now())

    def leave_queue(self) -> None:
        """The call is over (or handed on): it waits in no queue."""
        desk = self.desk
        if desk is not None:
            desk.acd.leave(self.call_id)
            if desk.waiting.pop(self.call_id, None) is not None and desk.shared is not None:
                desk.shared.leave(self.call_id)

    def let_go(self) -> None:
        """The call is over: the employees its offers held are free, its agent's talk is
        counted and their wrap-up begins."""
        desk = self.desk
        if desk is None:
            return
        self.leave_queue()
        acd, now = desk.acd, desk.clock.now()
        for employee in list(self.holding):
            if employee != self.agent:
                acd.release(employee, self.call_id, now)
        self.holding.clear()
        self._agent_done()

    def _agent_done(self) -> None:
        """The agent's conversation is over: counted, and their wrap-up begins."""
        desk = self.desk
        if desk is None or self.agent is None:
            return
        agent, self.agent = self.agent, None
        talk = max(0.0, self.run.now - self.talk_began)
        desk.acd.finished(
            agent, self.call_id, desk.clock.now(), talk, self.run.connected_department
        )
        desk.wrapups_later()

    # --- the record ----------------------------------------------------------------------

    async def write_record(self, channel: str, unique_id: str, linkedid: str = "") -> None:
        """The call's record, once however the call ends."""
        run = self.run
        assert run.outcome is not None
        if self.recorded:
            return
        self.recorded = True
        self.log.info("call finished", result=run.outcome.result, reason=run.outcome.reason)
        record = CallRecord.of(self.call_id, channel, unique_id, run, linkedid)
        self.ended()
        await self.sink.call_finished(record)

    def ended(self) -> None:
        """The call is over: the screen-pop's last event, once, for a call that rang
        somebody (the runtime writes its record next)."""
        outcome = self.run.outcome
        if self.tell is not None and self.popped and outcome is not None:
            self.popped = False
            self.tell("ended", lambda: {**self.screen_pop(None), "outcome": outcome.as_json()})

    def screen_pop(self, leg_id: str | None) -> dict[str, Any]:
        """What a screen-pop webhook tells of the call now: who calls, the way through
        the scenarios so far, the menu choices, what ICM found; with ``leg_id``, the
        employee whose phone that leg rings."""
        run, company = self.run, self.run.company
        call = run.call
        menus = [
            {"scenario": s.scenario, "node": s.node, "key": s.details.get("choice")}
            if "choice" in s.details
            else {"scenario": s.scenario, "node": s.node, "extension": s.details["extension"]}
            for s in run.trace
            if s.type == "menu" and ("choice" in s.details or "extension" in s.details)
        ]
        icm = [
            {k: s.details[k] for k in ("manager", "sources", "default") if k in s.details}
            for s in run.trace
            if s.type == "icm"
        ]
        pop: dict[str, Any] = {
            "call_id": self.call_id,
            "at": run.local_time().isoformat(),
            "called": call.called,
            "caller": call.caller,
            "caller_name": call.caller_name,
            "line": call.line,
            "path": [{"scenario": s.scenario, "node": s.node, "type": s.type} for s in run.trace],
            "menu": menus,
            "icm": icm[-1] if icm else None,
            "agent": None,
        }
        ring = self.rings.get(leg_id) if leg_id is not None else None
        if ring is not None and ring.employee_id is not None:
            employee = company.employees.get(ring.employee_id)
            pop["agent"] = {
                "id": ring.employee_id,
                "name": employee.name if employee is not None else "",
                "extension": employee.extension if employee is not None else None,
                "device": ring.device,
            }
        department = run.connected_department
        if department is None and self.desk is not None:
            department = self.desk.acd.department_of(self.call_id)  # the queue it waits in
        if department is None and run.trace:
            with contextlib.suppress(KeyError):  # a node ringing a department
                department = company.node_department(
                    company.node(run.trace[-1].scenario, run.trace[-1].node)
                )
        pop["department"] = department
        return pop


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits for anything (`simulate`'s port answers at once,
    on its virtual clock) to its end, without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a virtual-clock call waited for something real")
