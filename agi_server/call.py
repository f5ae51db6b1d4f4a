"""One call over FastAGI: the engine's actions as AGI commands, Asterisk's answers as events.

AGI does one thing at a time: a command runs until it is done (a prompt
played, a key pressed, a dial over).  So `AgiCall` keeps what the engine has
asked for — prompts to play, legs to ring, a recording, timers, hold music —
and turns it into the one command that serves it next:

- prompts: ``STREAM FILE`` (``SAY NUMBER``/``SAY DIGITS``), interruptible by any
  key while the scenario listens;
- waiting (a menu's timeout, a queue between announcements): ``WAIT FOR DIGIT``
  until the next timer is due, with ``SET MUSIC ON`` while the caller is held;
- ringing: ``EXEC Dial`` of every leg the engine rings, ``&``-joined, for as
  long as nothing else is due; a timer that falls due (the next member of a
  one-by-one, the mobile of desk-then-mobile, a queue announcement) ends the
  Dial, and the next Dial rings the legs the engine then wants;
- voicemail: ``RECORD FILE``; hand-off: ``SET CONTEXT/EXTENSION/PRIORITY``.

Phones: before the engine decides whom to ring or offer the call, the call
reads the device state of the desk phones it is about to consider,
``GET VARIABLE DEVICE_STATE(PJSIP/201)`` (funcs/func_devstate.c), and tells
the server's ACD, so a phone busy with any call or unregistered is skipped as
over ARI.  Which phones: each engine step is first played on a throwaway copy
of the run whose ACD notes what it is asked (an employee's freedom, a
department's ranking); those employees -- all members of a department being
rung or queued for -- are read, once each per step, and the step then runs
for real.  A step that considers nobody (a prompt, a key) reads nothing.

Time is the runtime's clock, read after every answer, so timers fire when a
command ends: a timer due during a prompt fires when the prompt ends.

``route`` mode runs the same scenario only up to the first node that would
ring someone or queue the caller, and leaves the decision in channel
variables for the dialplan's own ``Dial()`` or ``Queue()`` (`agi_server.route`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import structlog

from agi_server.protocol import (
    UNKNOWN,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiResponse,
    AgiSession,
)
from agi_server.route import decision_variables, icm_variables
from agi_server.whisper import CONTEXT as WHISPER_CONTEXT
from agi_server.whisper import REFUSE_KEY, WHISPER, WHISPER_LANGUAGE, accepted, whisper_media
from switchboard.acd import Acd, Waiting, device_state
from switchboard.acd.devices import device_of, elsewhere
from switchboard.calls import CallRecord, CallSink
from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.config.model import Department, Endpoints
from switchboard.driver import CallDriver, Desk, Tell
from switchboard.engine import actions as act
from switchboard.engine import events as ev
from switchboard.engine.call import CallInfo, CallRun
from switchboard.lookups import look_up
from switchboard.numbering import dahdi_line
from switchboard.storage.messages import RECORDINGS_DIR

log = structlog.get_logger("switchboard.agi")

Mode = Literal["scenario", "route", "icm"]
ESCAPE_ALL = "0123456789*#"
SAMPLES_PER_SECOND = 8000  # `endpos` of STREAM FILE / RECORD FILE counts 8 kHz samples
PROMPT_LIMIT = 600.0  # clock seconds one prompt may take before Asterisk is deemed stuck
COMMAND_MARGIN = 30.0  # real seconds on top of what a command should take
# `caller_id_name` over FastAGI: the variable and the pre-dial handler of the shipped
# dialplan (dialplan/extensions-switchboard-agi.conf)
CALLER_ID_NAME = "_SWITCHBOARD_CALLER_ID_NAME"
CALLER_ID_CONTEXT = "switchboard-caller-id"
# an unanswered Dial cannot be shorter than Asterisk's one-second resolution
MIN_DIAL = 1
OFFER_POLL = 1.0  # clock seconds a queued caller waits before it looks for an offer again
SPIN_LIMIT = 1_000  # commands in a row that take no time at all
# look-aheads of one engine step: each reads phones the one before did not (a step may
# consider one department's members, then -- those all busy -- another's)
LOOK_AHEADS = 4


@dataclass(frozen=True)
class AgiCallSettings:
    endpoints: Endpoints = field(default_factory=Endpoints)  # of the call's config version
    sounds_prefix: str = "switchboard/"
    recordings_dir: str = RECORDINGS_DIR  # Asterisk's, where ARI keeps them too
    # employees whose desk phone is on another instance's Asterisk -> that instance
    elsewhere: Mapping[str, str] = field(default_factory=dict)
    instance: str | None = None  # SWITCHBOARD_INSTANCE

    @classmethod
    def from_company(cls, company: Company, instance: str | None = None) -> AgiCallSettings:
        homes = {
            e.id: home
            for e in company.config.employees
            if (home := elsewhere(company, e.id, instance))
        }
        return cls(company.config.asterisk.endpoints, elsewhere=homes, instance=instance)

    def endpoint(self, ring: act.Ring) -> str:
        home = self.elsewhere.get(ring.employee_id or "") if ring.device == "desk" else None
        return self.endpoints.dial(
            ring.device, ring.number, via_confirm=ring.confirm, asterisk=home
        )

    def dial_string(self, rings: Sequence[act.Ring]) -> str:
        return "&".join(self.endpoint(ring) for ring in rings)

    def media(self, prompt: str, company: Company) -> tuple[str, str]:
        """(AGI command, argument) that plays one resolved prompt."""
        kind, _, value = prompt.partition(":")
        if kind == "number" and value:
            return ("SAY NUMBER", value)
        if kind == "digits" and value:
            return ("SAY DIGITS", value)
        if kind in ("sound", "recording") and value:
            return ("STREAM FILE", value)
        return ("STREAM FILE", company.sound_file(prompt, self.sounds_prefix))


def call_info(env: AgiEnvironment, company: Company) -> CallInfo:
    """Called number, caller and line from the AGI environment.

    The called number is the first AGI argument (``AGI(agi://…/scenario,${EXTEN})``),
    else the extension, else (``s``, no line) the DNID.
    """
    called = env.args[0] if env.args and env.args[0] else env.extension
    if called in ("", "s") and dahdi_line(env.channel) is None and env.dnid != UNKNOWN:
        called = env.dnid
    caller = "" if env.callerid == UNKNOWN else env.callerid
    name = "" if env.calleridname == UNKNOWN else env.calleridname
    return CallInfo.inbound(company, called, caller, name, env.channel)


class AgiCall:
    """One AGI session's call: its engine run and what the engine asked for."""

    def __init__(
        self,
        session: AgiSession,
        company: Company,
        run: CallRun,
        info: CallInfo,
        *,
        call_id: str,
        sink: CallSink,
        clock: Clock,
        http: Callable[[], aiohttp.ClientSession],
        settings: AgiCallSettings,
        mode: Mode = "scenario",
        desk: Desk | None = None,
        tell: Tell | None = None,
    ) -> None:
        self.session = session
        self.company = company
        self.run = run
        self.info = info
        self.call_id = call_id
        self.sink = sink
        self.clock = clock
        self.http = http
        self.settings = settings
        self.mode = mode
        self.t0 = clock.now()
        self._last = 0.0
        self.plays: deque[act.Play] = deque()
        self.ringing: dict[str, act.Ring] = {}
        self.recording: act.StartRecording | None = None
        self.mixing = False  # MixMonitor records the caller's conversations (`_mix_monitor`)
        # lookups under way: the task, and what to do with its answer
        self.lookups: dict[str, tuple[asyncio.Task[str | None], Callable[[str | None], None]]] = {}
        self.events: deque[ev.Event] = deque()
        self.moh: str | None = None
        self.hang_up = False
        self.continued = False
        self.caller_gone = False
        # where `route` (or `icm`) stopped: the channel variables that say what it decided
        self.decision: dict[str, str] | None = None
        self.linkedid = ""  # Asterisk's, read at the end (the record joins the CDR)
        self.start_node = run.node_name
        self.language = session.env.language  # the channel's, until a prompt needs another
        self.desk = desk  # the server's: who waits in which queue, in what order
        self.acd = desk.acd if desk is not None else None
        self.log = log.bind(call_id=call_id, channel=session.env.channel)
        self.driver = CallDriver(
            run, call_id, self, sink, look_up=self._look_up, desk=desk,
            prepare=self._look_ahead, intercept=self._intercept, logger=self.log, tell=tell,
        )  # fmt: skip

    # --- time -------------------------------------------------------------------------

    def now(self) -> float:
        """Call time: the clock since the session began, never going backwards."""
        self._last = max(self._last, self.clock.now() - self.t0)
        return self._last

    def _real(self, seconds: float) -> float:
        return self.clock.real(max(0.0, seconds)) + COMMAND_MARGIN

    # --- the call's life ----------------------------------------------------------------

    async def run_call(self) -> None:
        run = self.run
        try:
            await self.driver.start()
            idle, before = 0, self.now()
            while not run.finished:
                if self.session.hung_up:
                    raise AgiHangup("the caller hung up")
                await self._step()
                # a guard against a scenario that never lets time pass: never spin
                idle, before = (idle + 1, before) if self.now() == before else (0, self.now())
                if idle > SPIN_LIMIT:
                    self.log.error("no progress: the call is ended", node=run.node_name)
                    run.finish("hangup", "no progress")
                    self.hang_up = True
        except AgiHangup:
            self.caller_gone = True
            if not run.finished:
                # what the hang-up still causes off the channel: a message saved, ...
                with contextlib.suppress(AgiError):
                    await self.driver.handle(ev.CallerHungUp(), self.now())
        except AgiError as exc:
            # Asterisk went away or spoke nonsense: the call still leaves its record
            self.caller_gone = True
            if not run.finished:
                run.finish("hangup", f"agi: {exc}", hang_up=False)
        except asyncio.CancelledError:
            # Switchboard is stopping with this call up: it still leaves its record
            if not run.finished:
                run.finish("hangup", "switchboard stopped", hang_up=False)
            if self.mode != "icm":
                self.driver.ended()
                await self.sink.call_finished(self.record())
            raise
        finally:
            for task, _ in self.lookups.values():
                task.cancel()
            self.driver.let_go()
        await self._finish()

    async def _step(self) -> None:
        if self.events:
            await self._handle(self.events.popleft())
            return
        due = self.driver.next_timer()
        now = self.now()
        if due is not None and due[1] <= now:
            await self._fire(due[0], due[1])
            return
        if self.lookups:
            await self._await_lookups(due)
        elif self.plays:
            await self._play(self.plays[0])
        elif self.recording is not None:
            await self._record(self.recording)
        elif self.ringing:
            await self._dial(due)
        elif due is not None:
            await self._wait(due)
        else:  # unreachable while the call's time limit runs: never spin
            self.run.finish("hangup", "nothing left to wait for")
            await self.driver.apply([act.Hangup("nothing left to wait for")])

    async def _handle(self, event: ev.Event, at: float | None = None) -> None:
        t = self.now() if at is None else max(self._last, at)
        self._last = t
        await self.driver.handle(event, t)

    # --- phones: their device states, before the engine decides -----------------------

    async def _look_ahead(self, step: Callable[[CallRun], list[act.Action]]) -> None:
        """Before one engine step (``run.start()``, ``run.handle(...)``): the device states
        of the phones it will consider, read (see the module's "Phones")."""
        acd, run = self.acd, self.run
        if (
            acd is not None
            and not run.connected
            and device_of(self.company, self.settings.instance)
        ):
            read: set[str] = set()  # this step's: each phone once
            for _ in range(LOOK_AHEADS):
                wanted = self._considered(step, acd) - read
                read |= wanted
                if not wanted or not await self._read_phones(wanted, acd):
                    break  # nothing new: the step would consider the same phones again

    def _considered(self, step: Callable[[CallRun], list[act.Action]], acd: Acd) -> set[str]:
        """The employees with a desk phone whom ``step`` would consider now: played on a
        copy of the run (the configuration, the ACD and the finished trace steps shared,
        never written) whose ACD notes what it is asked."""
        run = self.run
        asked = _Asked(acd)
        memo: dict[int, object] = {id(s): s for s in run.trace[:-1]}
        memo |= {id(run.company): run.company, id(run.acd): asked}
        fork = copy.deepcopy(run, memo)
        steps = len(run.trace)
        step(fork)
        company = self.company
        members = set(asked.asked_agents)
        for department in asked.asked_departments:
            members.update(company.departments[department].members)
        # a department rung or queued for in this step: all its members, at once (a
        # one-by-one that finds its first member busy goes on to the next one)
        for visited in fork.trace[max(0, steps - 1) :]:
            rung = _department(company, visited.scenario, visited.node)
            if rung is not None and not members.isdisjoint(rung.members):
                members.update(rung.members)
        phones = device_of(company, self.settings.instance)
        return {m for m in members if m in phones}

    async def _read_phones(self, employees: set[str], acd: Acd) -> bool:
        """Read and tell the ACD; did any phone's state change?"""
        phones = device_of(self.company, self.settings.instance)
        changed = False
        for employee in sorted(employees):
            value = await self._variable(f"DEVICE_STATE({phones[employee]})")
            # nothing (no func_devstate): "unknown", which is rung, as with no answer at all
            state = device_state(value)
            agent = acd.agents.get(employee)
            changed = changed or (agent is not None and agent.device != state)
            acd.device(employee, state, self.clock.now())
        return changed

    async def _fire(self, timer_id: str, at: float) -> None:
        when = max(at, self.now())
        await self._handle(ev.TimerFired(timer_id), when)

    # --- engine actions ---------------------------------------------------------------

    def _intercept(self, actions: list[act.Action]) -> bool:
        """`route` and `icm`: where the scenario is about to ring someone or queue the
        caller, the decision goes to the dialplan instead (channel variables)."""
        if self.mode != "scenario" and self.decision is None and self._stops_here(actions):
            self.decision = self._decide(actions)
            self.run.finish("dialplan", f"routed: {self.run.node_name}", hang_up=False)
            return True
        return False

    def _stops_here(self, actions: list[act.Action]) -> bool:
        """`route`: the scenario is about to ring someone or queue the caller;
        `icm`: ICM found whom to ring, or gave up."""
        if self.run.finished:
            return False
        rings = any(isinstance(a, act.Ring) for a in actions)
        if self.mode == "icm":
            return rings or self.run.node_name != self.start_node
        node = self.company.node(self.run.scenario, self.run.node_name)
        return rings or node.type == "queue"

    def _decide(self, actions: list[act.Action]) -> dict[str, str]:
        if self.mode == "icm":
            # rings of the node ICM handed over to (notfound) are not ICM's answer
            here = self.run.node_name == self.start_node
            rings = [a for a in actions if isinstance(a, act.Ring)] if here else []
            found = icm_variables(self.run)
            if rings:
                found["SWITCHBOARD_ICM_TARGETS"] = self.settings.dial_string(rings)
                found["SWITCHBOARD_ICM_TIMEOUT"] = str(math.ceil(max(r.timeout for r in rings)))
            return found
        return decision_variables(self.run, actions, self.settings.dial_string) | icm_variables(
            self.run
        )

    # --- the media port: what the driver asks of the channel ----------------------------

    def deliver(self, event: ev.Event) -> None:
        self.events.append(event)

    def wake_at(self, timer_id: str, at: float) -> None:
        pass  # one command at a time: the next one ends by the driver's next timer

    def unwake(self, timer_id: str) -> None:
        pass

    async def answer(self) -> None:
        if not self.caller_gone:
            await self._command("ANSWER")

    async def play(self, play: act.Play) -> None:
        self.plays.append(play)

    async def stop_playback(self, playback_id: str) -> None:
        self.plays = deque(p for p in self.plays if p.playback_id != playback_id)

    async def start_moh(self, moh_class: str) -> None:
        if not self.caller_gone:
            self.moh = moh_class
            await self._command("SET", "MUSIC", "ON", moh_class)

    async def stop_moh(self) -> None:
        if not self.caller_gone:
            self.moh = None
            await self._command("SET", "MUSIC", "OFF")

    async def ring(self, ring: act.Ring) -> None:
        self.ringing[ring.leg_id] = ring

    async def stop_ringing(self, leg_id: str) -> None:
        self.ringing.pop(leg_id, None)

    async def bridge(self, leg_id: str) -> None:
        pass  # Dial bridged the answered leg itself

    async def start_recording(self, recording: act.StartRecording) -> None:
        self.recording = recording

    async def stop_recording(self, recording_id: str) -> None:
        if self.recording is not None and self.recording.recording_id == recording_id:
            self.recording = None

    async def record_conversation(self, recording_id: str) -> None:
        # MixMonitor started before the Dial (`record: always`), or nothing records it:
        # MixMonitor failed, or `on_demand`, which needs the ARI runtime
        if not self.mixing:
            self.deliver(ev.RecordingFinished(recording_id, 0.0))

    async def continue_in_dialplan(self, to: act.ContinueInDialplan) -> None:
        if self.caller_gone:
            return
        self.continued = True
        await self._command("SET", "CONTEXT", to.context)
        await self._command("SET", "EXTENSION", to.extension)
        await self._command("SET", "PRIORITY", str(to.priority))

    async def hangup(self, reason: str) -> None:
        self.hang_up = True  # after the result variables are set

    def _look_up(self, lookup: act.Lookup, done: Callable[[str | None], None]) -> None:
        task = asyncio.create_task(look_up(lookup, self.sink, self.http(), self.clock))
        self.lookups[lookup.request_id] = (task, done)

    # --- one command each -------------------------------------------------------------

    async def _await_lookups(self, due: tuple[str, float] | None) -> None:
        limit = None if due is None else self.clock.real(due[1] - self.now())
        finished, _ = await asyncio.wait(
            [task for task, _ in self.lookups.values()],
            timeout=limit,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for request_id, (task, done) in list(self.lookups.items()):
            if task in finished:
                del self.lookups[request_id]
                done(task.result())  # its LookupResult, next in the call's events
                return
        if due is not None:
            await self._fire(*due)  # the source's timeout: the caller waits no longer

    async def _play(self, play: act.Play) -> None:
        if play.language and play.language != self.language:
            # the scenario's (or the number's) language, not the channel's: Asterisk
            # looks for sounds/<language>/switchboard/...
            await self._command("SET", "VARIABLE", "CHANNEL(language)", play.language)
            self.language = play.language
        for prompt in play.prompts:
            escape = ESCAPE_ALL if self.run.awaiting_input else ""
            command, value = self.settings.media(prompt, self.company)
            answer = await self._command(
                *command.split(), value, escape, timeout=self._real(PROMPT_LIMIT)
            )
            if answer.result > 0:
                self._played(play)
                await self._handle(ev.Digits(chr(answer.result)))
                return
            if answer.result < 0:
                await self._check_alive()
                self.log.warning("prompt could not be played", prompt=value)
        self._played(play)
        if self.moh is not None:
            # a prompt stops the hold music generator: the caller is still on hold
            await self._command("SET", "MUSIC", "ON", self.moh)
        await self._handle(ev.PlaybackFinished(play.playback_id))

    def _played(self, play: act.Play) -> None:
        if self.plays and self.plays[0] is play:
            self.plays.popleft()

    async def _wait(self, due: tuple[str, float]) -> None:
        until = due[1] - self.now()
        # a caller waiting in a queue looks for an agent freed meanwhile (offered by the
        # server's desk) every second, as app_queue does: apps/app_queue.c, wait_our_turn,
        # ast_waitfordigit(qe->chan, RECHECK * 1000) with RECHECK 1
        polling = self.desk is not None and self.call_id in self.desk.waiting
        slice_ = min(until, OFFER_POLL) if polling else until
        ms = max(0, math.ceil(slice_ * 1000))
        answer = await self._command("WAIT", "FOR", "DIGIT", str(ms), timeout=self._real(ms / 1000))
        if answer.result > 0:
            await self._handle(ev.Digits(chr(answer.result)))
        elif answer.result < 0:
            await self._check_alive()
        elif slice_ >= until:
            await self._fire(*due)
        # else: one second more waited; an agent offered meanwhile is in `events`

    async def _record(self, rec: act.StartRecording) -> None:
        name = (
            f"{self.settings.recordings_dir}/{act.recording_name(self.call_id, rec.recording_id)}"
        )
        words = ["RECORD", "FILE", name, "wav", "#", str(int(rec.max_length * 1000))]
        if rec.beep:
            words.append("BEEP")
        # a caller hanging up mid-message ends the call: the engine keeps what was
        # recorded as the message (as over ARI)
        answer = await self._command(*words, timeout=self._real(rec.max_length))
        if answer.result < 0 or answer.data == "hangup":
            await self._check_alive()
        self.recording = None
        length = (answer.endpos or 0) / SAMPLES_PER_SECOND
        await self._handle(ev.RecordingFinished(rec.recording_id, length))

    async def _mix_monitor(self) -> None:
        """`record: always`: MixMonitor on the caller's channel before the Dial, writing
        only while the caller is bridged (option b: not the ringing, not the hold
        music), into the file ARI's bridge recording would have."""
        name = act.recording_name(self.call_id, act.CONVERSATION)
        # Asterisk's recording folder, where ARI records (main/options.c: astspooldir's
        # "recording"); ASTSPOOLDIR is read as a built-in (main/pbx_variables.c)
        spool = await self._variable("ASTSPOOLDIR")
        folder = f"{spool}/recording" if spool else self.settings.recordings_dir
        answer = await self._command("EXEC", "MixMonitor", f"{folder}/{name}.wav,b")
        self.mixing = answer.result == 0
        if not self.mixing:  # -2: app_mixmonitor is not loaded
            self.log.warning("could not record the conversation: MixMonitor failed",
                             result=answer.result)  # fmt: skip

    async def _dial(self, due: tuple[str, float] | None) -> None:
        legs = list(self.ringing.values())
        now = self.now()
        longest = max(leg.timeout for leg in legs)
        until_due = math.inf if due is None else due[1] - now
        by_timer = until_due <= longest
        seconds = max(MIN_DIAL, math.ceil(min(until_due, longest)))
        options = "g" + (f"m({self.moh})" if self.moh else "")
        if any(leg.record for leg in legs) and not self.mixing:
            await self._mix_monitor()
        name = next((leg.caller_name for leg in legs if leg.caller_name is not None), None)
        if name is not None:
            # the name the phones show: inherited by each callee (one "_"), set as its
            # connected line by the pre-dial handler, after Dial copied the caller's
            # caller ID there (app_dial.c: the "b" option runs after that copy)
            await self._command("SET", "VARIABLE", CALLER_ID_NAME, name)
            options += f"b({CALLER_ID_CONTEXT}^s^1)"
        whisper = next((leg for leg in legs if leg.whisper), None)
        if whisper is not None:
            # heard by the answered phone before the bridge: `agi_server.whisper`
            media = whisper_media(self.settings.media(p, self.company) for p in whisper.whisper)
            await set_variables(
                self.session,
                {
                    WHISPER: media,
                    WHISPER_LANGUAGE: whisper.whisper_language,
                    REFUSE_KEY: whisper.refuse_key or "",
                    "GOSUB_RETVAL": "",
                },
            )
            options += f"U({WHISPER_CONTEXT})"
        targets = self.settings.dial_string(legs)
        started = now
        answer = await self._command(
            "EXEC",
            "Dial",
            f"{targets},{seconds},{options}",
            timeout=self._real(seconds + self.company.config.limits.max_call_duration),
        )
        status = await self._variable("DIALSTATUS")
        for leg in legs:
            # each leg's end is reported below (or the engine rings it again after a timer)
            self.ringing.pop(leg.leg_id, None)
        heard = 0.0
        if status == "ANSWER" and whisper is not None:
            said = accepted(await self._variable("GOSUB_RETVAL"))
            if said is None:
                await self._not_taken(legs)
                return
            heard = said
        if status == "ANSWER":
            await self._answered(legs, started, answer.result, heard)
            return
        if status == "CANCEL":
            raise AgiHangup("the caller hung up while it rang")
        await self._still_waiting()
        if status == "NOANSWER":
            if by_timer and due is not None:
                self.ringing.update((leg.leg_id, leg) for leg in legs)  # still ringing
                await self._fire(*due)
                return
            for leg in legs:
                await self._handle(ev.LegNoAnswer(leg.leg_id))
            return
        for leg in legs:
            if status == "BUSY":
                await self._handle(ev.LegBusy(leg.leg_id))
            else:
                await self._handle(ev.LegFailed(leg.leg_id, (status or "failed").lower()))

    async def _still_waiting(self) -> None:
        """A Dial ended without a conversation and the caller waits on."""
        if self.mixing:
            # the next Dial's conversation may not be one to record
            self.mixing = False
            await self._command("EXEC", "StopMixMonitor", "")
        if self.moh is not None:
            # Dial's m option stopped the hold music when it ended: the caller still waits
            await self._command("SET", "MUSIC", "ON", self.moh)

    async def _not_taken(self, legs: list[act.Ring]) -> None:
        """The answered phone refused the call during its whisper (or hung up then):
        a no-answer of its leg; Dial hung up the others, which still ring for the
        engine, so the next Dial rings them again."""
        winner = await self._winner(legs)
        self.ringing.update((leg.leg_id, leg) for leg in legs if leg is not winner)
        await self._still_waiting()
        await self._handle(ev.LegNoAnswer(winner.leg_id))

    async def _winner(self, legs: list[act.Ring]) -> act.Ring:
        peer = await self._variable("DIALEDPEERNUMBER")
        name = await self._variable("DIALEDPEERNAME")
        return _winner(legs, peer, name, self.settings)

    async def _answered(
        self, legs: list[act.Ring], started: float, result: int, whispered: float = 0.0
    ) -> None:
        """``whispered``: seconds the answering phone heard its whisper before the bridge."""
        winner = await self._winner(legs)
        talk = await self._seconds("ANSWEREDTIME")
        # not `now()`: the answer happened before the end, and is fed first, at its time
        end = max(self._last, self.clock.now() - self.t0)
        # ANSWEREDTIME is the caller's time up: from the bridge, or from before the Dial
        answered_at = min(end, max(started + whispered, end - talk))
        await self._handle(ev.LegAnswered(winner.leg_id), answered_at)
        while self.events:  # what the answer caused: a recording that is not made
            await self._handle(self.events.popleft(), answered_at)
        if result < 0 or self.session.hung_up:
            raise AgiHangup("the caller hung up")
        await self._handle(ev.LegHungUp(winner.leg_id), end)

    # --- reading Asterisk -------------------------------------------------------------

    async def _command(
        self,
        *words: str,
        timeout: float | None = None,  # noqa: ASYNC109 - passed on to AgiSession.command
    ) -> AgiResponse:
        """A command of the call; the caller hanging up meanwhile ends the call at once
        (Asterisk's HANGUP notice comes with the answer of the command that noticed it)."""
        answer = await self.session.command(*words, timeout=timeout)
        if self.session.hung_up:
            raise AgiHangup("the caller hung up")
        return answer

    async def _variable(self, name: str) -> str:
        answer = await self._command("GET", "VARIABLE", name)
        return answer.data if answer.result == 1 else ""

    async def _seconds(self, name: str) -> float:
        """ANSWEREDTIME and friends: the _MS variant (Asterisk 20+) when there is one."""
        for variable, scale in ((f"{name}_MS", 1000.0), (name, 1.0)):
            text = await self._variable(variable)
            with contextlib.suppress(ValueError):
                return float(text) / scale
        return 0.0

    async def _check_alive(self) -> None:
        """After a -1: a hang-up (raises AgiHangup) or only a missing file?"""
        if self.session.hung_up:
            raise AgiHangup("the caller hung up")
        await self._command("CHANNEL", "STATUS")

    # --- the end ----------------------------------------------------------------------

    async def _finish(self) -> None:
        run = self.run
        assert run.outcome is not None
        outcome = run.outcome
        self.log.info("call finished", result=outcome.result, reason=outcome.reason)
        variables = {"SWITCHBOARD_CALL_ID": self.call_id}
        if self.mode != "icm":
            variables["SWITCHBOARD_SCENARIO"] = run.trace[0].scenario if run.trace else run.scenario
        if self.decision is not None:
            variables |= self.decision
        else:
            variables["SWITCHBOARD_RESULT"] = outcome.result
            variables["SWITCHBOARD_AGENT"] = outcome.agent or ""
            if self.mode == "route":
                variables["SWITCHBOARD_ACTION"] = "dialplan" if self.continued else "hangup"
            variables |= icm_variables(run)
        with contextlib.suppress(AgiError):
            if not self.caller_gone and self.mode != "icm":
                # Asterisk's linkedid: the record joins its CDR and CEL
                answer = await self.session.command("GET", "VARIABLE", "CHANNEL(linkedid)")
                self.linkedid = answer.data if answer.result == 1 else ""
            await set_variables(self.session, variables)
            if self.hang_up and not self.caller_gone and self.mode == "scenario":
                await self.session.command("HANGUP")
        if self.mode != "icm":  # an ICM lookup is not a call of its own
            self.driver.ended()
            await self.sink.call_finished(self.record())

    def record(self) -> CallRecord:
        env = self.session.env
        return CallRecord.of(self.call_id, env.channel, env.uniqueid, self.run, self.linkedid)


MSET_PAIRS = 99  # pbx_builtin_setvar_multiple parses at most this many
MSET_BYTES = 4_000  # well inside Asterisk's 8192-byte AGI line
_MSET_SPECIAL = frozenset('\\,()[]"')


def mset_value(value: str) -> str:
    """``value`` as MSet's argument splitter gives it back: every character that would
    split, nest or be removed (``\\ , ( ) [ ] "``) behind a backslash."""
    return "".join(f"\\{ch}" if ch in _MSET_SPECIAL else ch for ch in value)


async def set_variables(session: AgiSession, variables: dict[str, str]) -> None:
    """Channel variables in as few commands as possible: ``EXEC MSet`` takes many pairs
    in one round trip (a `route` answer is some fifteen); ``SET VARIABLE`` for a name
    MSet cannot take."""
    batch: list[str] = []
    size = 0
    for name, value in variables.items():
        if not name.isidentifier():
            await session.command("SET", "VARIABLE", name, value)
            continue
        pair = f"{name}={mset_value(value)}"
        if batch and (len(batch) == MSET_PAIRS or size + len(pair) > MSET_BYTES):
            await session.command("EXEC", "MSet", ",".join(batch))
            batch, size = [], 0
        batch.append(pair)
        size += len(pair) + 1
    if batch:
        await session.command("EXEC", "MSet", ",".join(batch))


def _winner(legs: list[act.Ring], peer: str, name: str, settings: AgiCallSettings) -> act.Ring:
    """The leg Dial connected: DIALEDPEERNUMBER is the dialled resource (``101``,
    ``7916…@trunk``), DIALEDPEERNAME the channel (``PJSIP/101-0000002a``)."""
    for leg in legs:
        endpoint = settings.endpoint(leg)
        resource = endpoint.partition("/")[2]
        if peer and peer in (endpoint, resource):
            return leg
        if name and name.rsplit("-", 1)[0] == endpoint:
            return leg
    return legs[0]


class _Asked:
    """The server's ACD as a look-ahead's copy of the run sees it: everything passes to
    the ACD; whose freedom (``free``) and which departments' members (``ranked``,
    ``order``) were asked about is noted."""

    def __init__(self, acd: Acd) -> None:
        self.acd = acd
        self.asked_agents: set[str] = set()  # not `agents`: the ACD's own, passed on
        self.asked_departments: set[str] = set()

    def free(self, agent_id: str, now: float) -> bool:
        self.asked_agents.add(agent_id)
        return self.acd.free(agent_id, now)

    def ranked(
        self, department: str, now: float, call: str | Waiting | None = None
    ) -> list[list[str]]:
        self.asked_departments.add(department)
        return self.acd.ranked(department, now, call)

    def order(self, department: str, now: float) -> list[list[str]]:
        self.asked_departments.add(department)
        return self.acd.order(department, now)

    def __getattr__(self, name: str) -> object:
        return getattr(self.acd, name)


def _department(company: Company, scenario: str, node_name: str) -> Department | None:
    """The department a `dial` node rings, or a `queue` node queues for."""
    department = company.node_department(company.node(scenario, node_name))
    return None if department is None else company.departments.get(department)
