"""The Stasis runtime: every call's scenario run, driven by ARI.

Each inbound call gets a `CallSession`: one task that feeds the engine the
call's events in order (ARI events, its own timers, lookups) and carries the
engine's actions out as ARI requests.  A session owns everything it creates —
timer tasks, ringing legs, bridges, playbacks — and releases all of it when
the call ends, however it ends.

Ringing uses ``channels/create`` + ``dial`` so a cascade can add legs while
others keep ringing; the first answer wins and the other legs are hung up.  A
created leg is dialled only once its ``StasisStart`` has arrived, and hung up
as soon as it ends without a conversation (see `ari_app.legs`).  A mobile
(``confirm``) must press 1 after "press 1 to take the call" before it is
bridged, so its voicemail cannot take the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
import structlog

from ari_app.adopt import DRAIN, STATE_VARIABLE, AdoptedCall, ConversationState, Drain
from ari_app.agent_codes import AgentCodeCall, is_agent_code
from ari_app.client import REQUEST_TIMEOUT, AriClient, AriError, AriUnavailable, CallGone
from ari_app.legs import (
    LEG_MARKER,
    STASIS_WAIT,
    RepeatedWarnings,
    RingBudget,
    finish_even_if_cancelled,
    leg_end,
)
from ari_app.models import (
    ApplicationReplaced,
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    DeviceStateChanged,
    Dial,
    RecordingFailed,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    event_channel_id,
)
from ari_app.models import PlaybackFinished as AriPlaybackFinished
from ari_app.models import RecordingFinished as AriRecordingFinished
from ari_app.mwi import Mwi
from switchboard.acd import Acd, device_state
from switchboard.acd.devices import desk_devices, elsewhere
from switchboard.calls import CallRecord, CallSink
from switchboard.clock import Clock, Timer
from switchboard.config.company import Company
from switchboard.driver import CallDriver, Desk, caller_priorities, new_call_id
from switchboard.engine import actions as act
from switchboard.engine import events as ev
from switchboard.engine.call import CallInfo, CallRun
from switchboard.engine.trace import Outcome, Result
from switchboard.lookups import look_up
from switchboard.webhooks import CallNews

log = structlog.get_logger("switchboard.ari")

CONFIRM_PROMPT = "press-1-to-accept"
CONFIRM_KEY = "1"
CONFIRM_TIMEOUT = 15.0  # seconds a mobile has to press 1
TEARDOWN_WAIT = 5.0  # seconds to wait for legs to leave a bridge before destroying it
# a hang-up or a bridge's destruction that times out (Asterisk overloaded, the connection
# lost) is tried again after these clock seconds: what we created must not stay behind
CLEANUP_RETRIES = (1.0, 2.0, 4.0)
# the requests that connect caller and employee, tried again after these clock seconds
# when Asterisk answered 5xx or not at all (the two wait a moment rather than lose the call)
BRIDGE_RETRIES = (0.5, 1.0)
# engine events the session's own tasks, the agent pool and the queue deliver as they are
_PASSED_ON = (
    ev.AgentStatus, ev.TimerFired, ev.LookupResult, ev.CallbackStored,
    # the driver's: an offer whose employee another call had taken, never rung
    ev.LegTaken,
    # what the session itself tells when a request failed: a playback or a recording
    # that will never finish, a conversation Asterisk could not connect
    ev.PlaybackFinished, ev.RecordingFinished, ev.LegHungUp,
)  # fmt: skip
ORPHAN_GRACE = 0.5  # real seconds a parked channel's StasisStart has to arrive
# real seconds after a call's end when a bridge whose create timed out is destroyed again
LATE_SWEEPS = (2 * REQUEST_TIMEOUT, 6 * REQUEST_TIMEOUT)
DEVICES_PER_REQUEST = 50  # deviceState: sources in one subscription request
DEVICE_READS_AT_ONCE = 10  # device states read at once after a connect
RECORDED_KEPT = 10_000  # callers whose call was recorded here, remembered (the latest)


class Call(Protocol):
    """What the runtime routes a channel's events to: a call it runs (`CallSession`)
    or a conversation it adopted after a restart (`AdoptedCall`)."""

    channel: Channel  # the caller's

    def channel_ids(self) -> Iterable[str]: ...

    def deliver(self, event: AriEvent | ev.Event | Drain) -> None: ...

    def drain(self) -> None: ...

    def unlisted(self, live: set[str]) -> list[str]:
        """Its channels that are up as far as it knows, missing from ``live``."""
        ...


@dataclass(frozen=True)
class RuntimeSettings:
    app: str = "switchboard"
    fallback_context: str = "switchboard-fallback"
    sounds_prefix: str = "switchboard/"


class AriRuntime:
    """Routes ARI events to call sessions; starts a session for every new call."""

    def __init__(
        self,
        client: AriClient,
        company: Callable[[], Company],
        settings: RuntimeSettings,
        sink: CallSink,
        clock: Clock | None = None,
        http: aiohttp.ClientSession | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
        instance: str = "",
    ) -> None:
        self.client = client
        self.instance = instance or settings.app
        # when calls start, in local time: schedules and greetings read it (tests fix it)
        self.wall_clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
        self.company = company
        self.settings = settings
        self.sink = sink
        self.clock = clock or Clock()
        # agents (who is free, wrap-up, statistics) and the callers waiting in queues
        self.acd = Acd.for_company(company())
        self._acd_company = company()
        self.devices: dict[str, str] = {}  # employees' desk phones watched: device -> employee
        self._device_news: dict[str, int] = {}  # device -> DeviceStateChanged events heard
        self.sessions: dict[str, Call] = {}  # by caller channel id
        self.owners: dict[str, Call] = {}  # every channel a call owns
        self.draining = False  # stopping: new calls go to the fallback
        # callers whose call this runtime recorded, and how it let them go ("fallback":
        # continued into the dialplan, "hung up"): a reconnect that still lists one never
        # records it again
        self.recorded: OrderedDict[str, Literal["fallback", "hung up"]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http = http
        self.warnings = RepeatedWarnings(log)  # a storm of one failure: a line and a count
        self.unknown_events = 0
        self.failures = 0  # calls ended by a bug in their task (logged with the traceback)
        self.shed = 0  # calls sent to the fallback because `limits.max_calls` were up
        # the calls waiting in queues: a freed agent is offered to the first; a call-back
        # keeping its caller's place is made (`desk.make_kept`: the call-back worker's)
        # when the place comes up
        self.desk = Desk(self.acd, self.clock, lambda kept: self._background(kept, "ari-kept"))
        self.vips: dict[str, int] = {}  # the database's VIP list (`switchboard vip`)
        self.mwi = Mwi(client, company, lambda: self.sink)  # message waiting lamps
        # webhooks, voicemail e-mails; a message lights its owner's lamp
        self.news = CallNews(company, self.http, self.clock, on_message=self.mwi.message)
        # seconds from a call's StasisStart reaching the runtime to its answer request
        # being sent (the last 100,000 calls): bench/real_asterisk_load.py reads them
        self.answer_delays: deque[float] = deque(maxlen=100_000)

    # --- EventSink --------------------------------------------------------------------

    async def on_connected(self, channels: list[Channel]) -> None:
        """After a (re)connect: known calls go on; unknown channels in our app are sent on."""
        live = {c.id for c in channels}
        self._background(self.watch_devices(), "ari-devices")
        self.mwi.connected()
        orphans = [
            c for c in channels if c.id not in self.owners and c.in_stasis_app(self.settings.app)
        ]
        if orphans:
            self._background(self._send_on(orphans), "ari-orphans")
        for session in list(self.sessions.values()):
            missing = session.unlisted(live)
            if missing:
                self._background(self._confirm_gone(session, missing), "ari-reconcile")
            if isinstance(session, CallSession) and (session.playbacks or session.recordings):
                self._background(session.catch_up(), "ari-catch-up")

    async def _confirm_gone(self, call: Call, channel_ids: list[str]) -> None:
        """Channels a call has that the list after a reconnect lacks: hung up while we
        were away — or made after the list was taken (a call arriving meanwhile), so
        each is asked for before its call hears it is gone."""
        for channel_id in channel_ids:
            try:
                await self.client.get_channel(channel_id)
            except CallGone:
                call.deliver(ChannelDestroyed(Channel(channel_id, "", ""), 16, "gone"))
            except AriError:
                continue  # Asterisk away again: the next connect asks again

    async def _send_on(self, channels: list[Channel]) -> None:
        """Channels parked in our app that no call owns: a conversation an earlier
        process connected is adopted (`ari_app.adopt`); other callers go to the
        dialplan's fallback, with a record; legs we created to ring someone (for a
        call that is over) are hung up.

        A call that entered the app while we reconnected has its StasisStart on
        the way: give it `ORPHAN_GRACE` seconds to arrive before judging.
        """
        await asyncio.sleep(ORPHAN_GRACE)
        legs = [c for c in channels if c.app_data.split(",")[1:2] == [LEG_MARKER]]
        leg_ids = {c.id for c in legs}
        for channel in channels:
            if channel.id in self.owners or channel.id in leg_ids:
                continue
            if self.recorded.get(channel.id) == "hung up":
                # its call ended here and hung it up (the list was taken before it went)
                await self.clean_up(self.client.hangup, channel.id, "")
                continue
            if await self._adopt(channel):
                continue
            log.warning("unknown channel in the app: sent to the fallback", channel=channel.name)
            call_id = self._call_id()
            reason = "found in the app without its call (a restart?): sent to the fallback"
            await self._to_fallback(
                channel, tuple(channel.app_data.split(",")[1:]), call_id, reason
            )
        for channel in legs:
            if channel.id not in self.owners:
                log.warning("a ringing leg nobody owns: hung up", channel=channel.name)
                with contextlib.suppress(AriError):
                    await self.client.hangup(channel.id)

    async def _adopt(self, channel: Channel) -> bool:
        """Adopt the conversation ``channel`` is in, if a call left its state on it."""
        try:
            text = await self.client.get_variable(channel.id, STATE_VARIABLE)
        except AriError:
            return False  # 404: no such variable (or the channel is gone)
        if not text:
            return False
        try:
            state = ConversationState.from_json(text)
        except ValueError as exc:
            log.warning(
                "a conversation's state is unreadable", channel=channel.name, error=str(exc)
            )
            return False
        if channel.id in self.owners or state.leg_channel in self.owners:
            return True  # its StasisStart (or another adoption) came meanwhile
        call = AdoptedCall(self, channel, state)
        self.sessions[channel.id] = call
        for channel_id in call.channel_ids():
            self.owners[channel_id] = call
        self._background(call.run(), f"adopted-{state.call_id}")
        return True

    async def _hang_up_stray(self, channel: Channel) -> None:
        """A leg whose call ended before it entered the app (its create was in flight)."""
        log.info("a leg entered the app after its call ended: hung up", channel=channel.name)
        with contextlib.suppress(AriError):
            await self.client.hangup(channel.id)

    def _background(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def on_event(self, event: AriEvent) -> None:
        if isinstance(event, ApplicationReplaced):
            self._abandon()
            return
        if isinstance(event, DeviceStateChanged):
            employee = self.devices.get(event.name)
            if employee is not None:
                self._device_news[event.name] = self._device_news.get(event.name, 0) + 1
                self.acd.device(employee, device_state(event.state), self.clock.now())
            return
        if isinstance(event, UnknownEvent):
            self.unknown_events += 1
            log.debug("ari event ignored", type=event.type)
            return
        if isinstance(event, StasisStart):
            if event.args and event.args[0] == LEG_MARKER:
                owner = self.owners.get(event.channel.id)
                if owner is not None:
                    owner.deliver(event)
                else:
                    self._background(self._hang_up_stray(event.channel), "ari-stray-leg")
                return
            replaced = event.replace_channel
            owner = self.owners.get(replaced.id) if replaced is not None else None
            if owner is not None:
                # a transfer swapped a channel of ours out of its bridge: the channel that
                # took its place (res/stasis/stasis_bridge.c, bridge_stasis_push_peek) is
                # that call's, not a new call
                self.owners[event.channel.id] = owner
                owner.deliver(event)
                return
            if event.channel.id not in self.owners:
                self._start_call(event)
            return
        channel_id = event_channel_id(event)
        owner = self.owners.get(channel_id) if channel_id else None
        if owner is not None and not _news_to_nobody(event, owner):
            owner.deliver(event)

    def _abandon(self) -> None:
        """Another connection took our Stasis app: its events (and its channels) are
        the other's now, which adopts or sends on our calls and records them.  Ours
        are dropped without a request or a record, so nothing is done twice."""
        log.error(
            "stasis app taken over: calls left to the other connection", calls=len(self.sessions)
        )
        for call in list(self.sessions.values()):
            if isinstance(call, CallSession):
                call.abandon()
            else:
                call.drain()  # an adopted conversation: left as it is

    async def watch_devices(self) -> None:
        """Follow the device state of every employee's desk phone (``deviceState:``
        subscriptions, then each one's state now, since subscribing tells nothing):
        a phone busy with any call, or unregistered, is not offered a call."""
        devices = desk_devices(self.company(), self.instance)
        self.devices = devices
        names = list(devices)
        try:
            for start in range(0, len(names), DEVICES_PER_REQUEST):
                chunk = names[start : start + DEVICES_PER_REQUEST]
                await self.client.subscribe([f"deviceState:{name}" for name in chunk])
        except AriError as exc:
            log.warning("device states not followed: phones count as free", error=str(exc))
            return
        limit = asyncio.Semaphore(DEVICE_READS_AT_ONCE)

        async def read(name: str) -> None:
            async with limit:
                heard = self._device_news.get(name, 0)
                with contextlib.suppress(AriError):
                    state = await self.client.device_state(name)
                    if self._device_news.get(name, 0) == heard:  # else an event is newer
                        self.acd.device(devices[name], device_state(state), self.clock.now())

        await asyncio.gather(*(read(name) for name in names))

    def current_acd(self) -> Acd:
        """The ACD, following a new configuration version (agents keep their states)."""
        company = self.company()
        if company is not self._acd_company:
            self._acd_company = company
            self.acd.reconfigure(company)
            if desk_devices(company, self.instance).keys() != self.devices.keys():
                self._background(self.watch_devices(), "ari-devices")
        return self.acd

    def on_disconnected(self) -> None:
        log.warning("ari disconnected: calls keep their state until Asterisk is back")

    # --- sessions ---------------------------------------------------------------------

    def _call_id(self) -> str:
        return new_call_id(self.instance)

    def _start_call(self, event: StasisStart) -> None:
        call_id = self._call_id()
        if is_agent_code(event.args):
            # an agent's *71/*72/*73: no scenario, no record; served even when stopping
            # or overloaded (the fallback would ring the reception for it)
            code = AgentCodeCall(
                self,
                call_id,
                event.channel,
                event.args,
                desk_devices(self.company(), self.instance),
            )
            self.sessions[event.channel.id] = code
            self.owners[event.channel.id] = code
            self._background(code.run(), f"agent-code-{call_id}")
            return
        if self.draining:
            reason = "switchboard stopping: sent to the fallback"
            self._background(
                self._to_fallback(event.channel, event.args, call_id, reason), "ari-drain"
            )
            return
        company = self.company()
        if len(self.sessions) >= company.config.limits.max_calls:
            self.shed += 1
            self._background(self._shed(event, call_id, company), "ari-shed")
            return
        session = CallSession(self, call_id, event.channel, event.args)
        self.sessions[event.channel.id] = session
        self.owners[event.channel.id] = session
        session.task = self._background(session.run(), f"call-{call_id}")

    async def _shed(self, event: StasisStart, call_id: str, company: Company) -> None:
        """Over `limits.max_calls`: the dialplan's fallback serves the call, which is
        recorded as handed to the dialplan (supervisors see it was not run)."""
        reason = f"too many calls ({company.config.limits.max_calls}): sent to the fallback"
        log.warning("overloaded: call sent to the fallback", channel=event.channel.name)
        await self._to_fallback(event.channel, event.args, call_id, reason)

    async def _to_fallback(
        self, channel: Channel, args: tuple[str, ...], call_id: str, reason: str
    ) -> None:
        """A caller Switchboard does not run a scenario for: the dialplan's fallback
        serves it, and its record says why."""
        info = inbound_info(channel, args, self.company())
        with contextlib.suppress(AriError):
            await self.client.continue_in_dialplan(
                channel.id, self.settings.fallback_context, info.called_raw or "s", 1
            )
        if channel.id in self.recorded:
            return  # tried before (its continue failed): recorded then
        self.remember(channel.id, "fallback")
        await self.sink.call_finished(self.bare_record(call_id, channel, args, "dialplan", reason))

    def bare_record(
        self, call_id: str, channel: Channel, args: tuple[str, ...], result: Result, reason: str
    ) -> CallRecord:
        """The record of a call no scenario ran for (or whose run was lost): what its
        channel tells."""
        company = self.company()
        info = inbound_info(channel, args, company)
        return CallRecord.for_call(
            call_id,
            channel.name,
            channel.id,
            info,
            company,
            started_at=self.wall_clock().astimezone(company.tz),
            scenario=company.select_scenario(info.called or None, info.line) or "",
            steps=[],
            outcome=Outcome(result=result, reason=reason, duration=0.0, wait=0.0),
        )

    def remember(self, channel_id: str, how: Literal["fallback", "hung up"]) -> None:
        """A caller whose call was recorded here (`recorded`): one still listed at a
        reconnect is hung up again, or sent on again, never recorded twice."""
        self.recorded[channel_id] = how
        if len(self.recorded) > RECORDED_KEPT:
            self.recorded.popitem(last=False)

    def forget(self, session: Call) -> None:
        self.sessions.pop(session.channel.id, None)
        for channel_id in session.channel_ids():
            if self.owners.get(channel_id) is session:
                del self.owners[channel_id]

    async def clean_up(
        self, request: Callable[[str], Awaitable[None]], target: str, call_id: str
    ) -> None:
        """A request that releases something in Asterisk (``client.hangup``,
        ``client.destroy_bridge``): gone already is done, and a timeout, a lost
        connection or a 5xx is tried again (`CLEANUP_RETRIES`) before it is given up."""
        try:
            await retried(lambda: request(target), CLEANUP_RETRIES, self.clock.sleep)
        except CallGone:
            return
        except AriError as exc:
            if not transient(exc):
                self.request_failed(exc, call_id)
                return
            self.warnings.warning(
                ("could not release", str(exc.status), str(exc.message)),
                "could not release a channel or bridge", target=target, error=str(exc),
            )  # fmt: skip

    def release_later(
        self, request: Callable[[str], Awaitable[None]], target: str, call_id: str
    ) -> None:
        """A channel or bridge whose create timed out may reach Asterisk after the call
        released it (a request stalled on the way): release it again when such a
        request would have arrived (real seconds: the network's time, not the call's).
        A leg that comes so late and finds its StasisStart heard is hung up at once
        anyway; this is for one whose StasisStart fell in a websocket cut."""

        async def sweep() -> None:
            for delay in LATE_SWEEPS:
                await asyncio.sleep(delay)
                await self.clean_up(request, target, call_id)

        self._background(sweep(), f"late-{target}")

    def request_failed(self, exc: AriError, call_id: str) -> None:
        self.warnings.warning(
            ("ari request failed", str(exc.status), exc.message),
            "ari request failed", call_id=call_id, error=str(exc),
        )  # fmt: skip

    async def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def drain(self, within: float = 5.0) -> None:
        """Stop taking calls (SIGTERM): new ones go to the fallback; calls still in the
        scenario are handed to the dialplan's fallback with their record; conversations
        stay up in Asterisk for the next instance to adopt (`ari_app.adopt`).  Waits up
        to ``within`` real seconds for the calls to let go."""
        self.draining = True
        calls = list(self.sessions.values())
        log.info("stopping: calls handed on", calls=len(calls))
        for call in calls:
            call.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self.sessions:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop every call task and wait for it (on shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.warnings.flush()
        await self.news.close()
        await self.mwi.close()
        if self._http is not None:
            await self._http.close()

    async def wait_idle(self) -> None:
        """Until no call is running (tests, the demo)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def endpoint(self, ring: act.Ring, company: Company) -> str:
        # the call's own configuration version: a new one may name other trunks
        home = (
            elsewhere(company, ring.employee_id, self.instance) if ring.device == "desk" else None
        )
        return company.config.asterisk.endpoints.dial(ring.device, ring.number, asterisk=home)

    def media(self, prompt: str, company: Company) -> str:
        if prompt.startswith(("number:", "digits:", "sound:", "tone:", "recording:")):
            return prompt
        return f"sound:{company.sound_file(prompt, self.settings.sounds_prefix)}"


# Dial statuses that only say a leg is on its way: a call waits for the final one
_DIAL_PROGRESS = frozenset({"", "RINGING", "PROGRESS", "PROCEEDING"})


def transient(exc: AriError) -> bool:
    """A failure worth trying again: no answer, a lost connection, a 5xx."""
    return isinstance(exc, AriUnavailable) or exc.status >= 500


async def retried(
    request: Callable[[], Awaitable[object]],
    delays: tuple[float, ...],
    sleep: Callable[[float], Awaitable[None]],
    on_retry: Callable[[AriError], None] | None = None,
) -> None:
    """``request()``, tried again after each of ``delays`` while it fails `transient`ly;
    the last failure (or the first that is not transient) is raised."""
    for delay in (*delays, None):
        try:
            await request()
            return
        except AriError as exc:
            if delay is None or not transient(exc):
                raise
            if on_retry is not None:
                on_retry(exc)
        await sleep(delay)


def _news_to_nobody(event: AriEvent, owner: Call) -> bool:
    """Events a call would read and drop (most of them, on every call): not worth waking
    its task for.  A leg's hang-up request (its ChannelDestroyed follows; but not
    while the leg hears its whisper, whose end it precedes) and a dial's progress."""
    match event:
        case ChannelHangupRequest():
            if event.channel.id == owner.channel.id:
                return False
            return not (isinstance(owner, CallSession) and owner.whispering(event.channel.id))
        case Dial():
            return event.dialstatus in _DIAL_PROGRESS
    return False


ATTENDED_LOCAL = "Local/_attended@transfer"  # main/bridge.c, attended_transfer_bridge


def transfer_of(name: str) -> tuple[Literal["blind", "attended"], str]:
    """The kind of transfer whose channel is ``name``, and its target as far as the name
    tells: a blind transfer's Local channel is ``Local/<exten>@<context>-0000002a;1``
    (main/bridge.c blind_transfer_bridge); an attended transfer's is
    ``Local/_attended@transfer-...;1`` (attended_transfer_bridge), whose target -- the
    colleague the employee consulted -- its name does not tell."""
    if name.startswith(ATTENDED_LOCAL):
        return "attended", ""
    if name.startswith("Local/"):
        return "blind", name[len("Local/") :].rsplit("-", 1)[0]
    return "blind", name


def inbound_info(channel: Channel, args: tuple[str, ...], company: Company) -> CallInfo:
    """The call a StasisStart brings: the called number is the first Stasis argument
    (``Stasis(switchboard,${EXTEN})``), else the channel's extension."""
    called = args[0] if args else channel.exten
    return CallInfo.inbound(
        company, called, channel.caller_number, channel.caller_name, channel.name
    )


@dataclass
class LegChannel:
    """A channel this call created to ring one of the engine's legs."""

    leg_id: str
    channel_id: str
    ring: act.Ring
    created: bool = False  # Asterisk answered the create
    in_stasis: bool = False  # its StasisStart arrived: it may be dialled
    dialled: bool = False
    stasis_timer: Timer | None = None  # gives up on a StasisStart that never comes
    answered: bool = False  # the far end answered (maybe still to confirm)
    reported: bool = False  # the engine was told how it ended
    bridged: bool = False
    confirm_playback: str | None = None
    confirm_timer: asyncio.Task[None] | None = None
    whisper_playback: str | None = None  # the whisper playing to the employee
    gone: bool = False  # destroyed, or hung up by us: nothing more to release


class CallSession:
    """One call: its engine run, its queue of events, everything it created."""

    def __init__(
        self, runtime: AriRuntime, call_id: str, channel: Channel, args: tuple[str, ...]
    ) -> None:
        self.runtime = runtime
        self.call_id = call_id
        self.channel = channel
        self.args = args
        self.client = runtime.client
        self.arrived = time.perf_counter()  # its StasisStart reached the runtime
        self.queue: asyncio.Queue[AriEvent | ev.Event | Drain] = asyncio.Queue()
        self.t0 = runtime.clock.now()
        self.company = runtime.company()
        self.run_: CallRun | None = None
        self.driver: CallDriver | None = None  # the run's, once it has one
        self.timers: dict[str, Timer] = {}  # the driver's timers' wake-ups
        self.tasks: set[asyncio.Task[None]] = set()
        self.legs: dict[str, LegChannel] = {}
        self.leg_by_channel: dict[str, LegChannel] = {}
        self.playbacks: dict[str, str] = {}  # ARI playback id -> engine playback id
        self.recordings: dict[str, str] = {}  # ARI recording name -> engine recording id
        self.recording_since: dict[str, float] = {}  # ARI recording name -> call time begun
        self.bridge_id: str | None = None
        self.bridge_unsure = False  # a create of it timed out: it may come late
        self.caller_gone = False
        self.continued = False  # sent back to the dialplan: no more requests on its channel
        self.left_stasis = False
        self.hung_up = False  # the caller's hang-up was asked
        self.recorded = False  # its record is written (once, however the call ends)
        self.left_to_asterisk = False  # a conversation kept up while Switchboard stops
        self.abandoned = False  # another connection took the app: hands off everything
        self.linkedid = ""  # Asterisk's, of the caller's channel (the record joins the CDR)
        self.task: asyncio.Task[None] | None = None
        self.ring_budget = RingBudget(runtime.clock.now())
        self.log = log.bind(call_id=call_id, channel=channel.name)

    def now(self) -> float:
        return self.runtime.clock.now() - self.t0

    def deliver(self, event: AriEvent | ev.Event | Drain) -> None:
        self.queue.put_nowait(event)

    def channel_ids(self) -> Iterable[str]:
        return (self.channel.id, *self.leg_by_channel)

    def drain(self) -> None:
        self.deliver(DRAIN)

    def abandon(self) -> None:
        """Stop at once, asking nothing of Asterisk and writing no record (`_abandon`)."""
        self.abandoned = True
        self.recorded = True
        if self.task is not None:
            self.task.cancel()

    async def catch_up(self) -> None:
        """After a reconnect: a playback or a recording that ended while the websocket
        was down told nobody (the call would wait for it for ever).  Each one the call
        waits for is asked for; one Asterisk no longer has has ended."""
        for ari_id, engine_id in list(self.playbacks.items()):
            gone = await self._gone(f"/playbacks/{quote(ari_id)}")
            if gone and self.playbacks.pop(ari_id, None) is not None:
                self.deliver(ev.PlaybackFinished(engine_id))
        for name, recording_id in list(self.recordings.items()):
            gone = await self._gone(f"/recordings/live/{quote(name)}")
            if gone and self.recordings.pop(name, None) is not None:
                # its length is lost with its event: at most the time since it began
                length = self.now() - self.recording_since.pop(name, self.now())
                self.deliver(ev.RecordingFinished(recording_id, length))

    async def _gone(self, path: str) -> bool:
        """Has Asterisk no ``path`` any more?  Asked again (`CLEANUP_RETRIES`) when it
        does not answer: a call must not wait for ever on one lost answer."""
        try:
            await retried(
                lambda: self.client.request("GET", path), CLEANUP_RETRIES, self.runtime.clock.sleep
            )
        except CallGone:
            return True
        except AriError:
            return False  # the next reconnect asks again
        return False

    def unlisted(self, live: set[str]) -> list[str]:
        missing = [self.channel.id] if self.channel.id not in live and not self.caller_gone else []
        missing += [
            leg.channel_id
            for leg in self.legs.values()
            if leg.created and leg.channel_id not in live and not leg.gone
        ]
        return missing

    # --- the call's life --------------------------------------------------------------

    async def run(self) -> None:
        structlog.contextvars.bind_contextvars(call_id=self.call_id, channel=self.channel.name)
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end this call cleanly, never the runtime
            self.runtime.failures += 1
            self.log.exception("call failed")
            if not (self.caller_gone or self.hung_up or self.continued):
                self.hung_up = True
                await self._clean_up(self.client.hangup, self.channel.id)
            await self._record_failure(f"switchboard error: {type(exc).__name__}")
        finally:
            await finish_even_if_cancelled(self._teardown())
            if self.recorded and not (self.continued or self.abandoned or self.left_to_asterisk):
                self.runtime.remember(self.channel.id, "hung up")
            self.runtime.forget(self)

    async def _run(self) -> None:
        company = self.company
        info = inbound_info(self.channel, self.args, company)
        line = info.line
        started = self.runtime.wall_clock().astimezone(company.tz)
        try:
            run = CallRun(
                company, info, started, acd=self.runtime.current_acd(), call_key=self.call_id,
                acd_clock0=self.t0, vip=caller_priorities(self.runtime.vips, company),
            )  # fmt: skip
        except LookupError:
            self.log.warning(
                "no scenario for this number: sent to the fallback", called=info.called_raw
            )
            self.continued = True
            await self._safe(
                self.client.continue_in_dialplan(
                    self.channel.id, self.runtime.settings.fallback_context, "s", 1
                )
            )
            return
        self.run_ = run
        self.log = self.log.bind(scenario=run.scenario)
        driver = self.driver = CallDriver(
            run, self.call_id, self, self.runtime.sink, look_up=self._look_up,
            desk=self.runtime.desk, logger=self.log, tell=self.runtime.news.tell,
        )  # fmt: skip
        self.log.info("call started", called=info.called, caller=info.caller, line=line)
        try:
            # before the first step: Asterisk sets a variable on the channel's Stasis
            # control thread, in turn behind a prompt that plays (res/stasis/control.c),
            # and runs websocket requests one at a time -- a mark sent after the first
            # prompt would wait for its end and hold up every call's requests meanwhile
            await self._mark_channel(run.scenario)
            await driver.start()
            while not run.finished:
                item = await self.queue.get()
                if isinstance(item, Drain):
                    if await self._let_go(run):
                        return
                    continue
                event = await self._translate(item)
                if event is not None:
                    before = run.node_name
                    await driver.handle(event, self.now())
                    if run.node_name != before:
                        self.log.info(
                            "transition", from_node=before, trigger=type(event).__name__,
                            to_node=run.node_name,
                        )  # fmt: skip
        except asyncio.CancelledError:
            # Switchboard is stopping with this call up: it still leaves its record
            run.finish("hangup", "switchboard stopped", hang_up=False)
            await self._record(run)
            raise
        finally:
            driver.leave_queue()
        await self._record(run)

    async def _let_go(self, run: CallRun) -> bool:
        """Switchboard stops: a conversation stays up in Asterisk (its state is on the
        caller's channel: the next instance adopts it and writes its record); a call
        still in its scenario is handed to the dialplan's fallback and recorded.
        False: the call is ending anyway, let it."""
        if run.connected and self.bridge_id is not None:
            if not any(leg.bridged and not leg.gone for leg in self.legs.values()):
                return False  # the employee just left: the call ends and is recorded here
            self.left_to_asterisk = True
            self.log.info("stopping: the conversation stays up for the next instance")
            return True
        moh = run.moh
        run.now = self.now()
        run.finish("dialplan", "switchboard stopping: handed to the dialplan", hang_up=False)
        if not (self.caller_gone or self.continued):
            if moh:
                await self._safe(self.client.stop_moh(self.channel.id))
            self.continued = True
            called = run.call.called_raw or "s"
            await self._safe(
                self.client.continue_in_dialplan(
                    self.channel.id, self.runtime.settings.fallback_context, called, 1
                )
            )
        return False

    async def _record(self, run: CallRun) -> None:
        if self.recorded or self.driver is None:
            return
        self.recorded = True
        await self.driver.write_record(self.channel.name, self.channel.id, self.linkedid)

    async def _record_failure(self, reason: str) -> None:
        """A call ended by a bug in its task still leaves one record: what its run
        knew, or (a bug before the run began) what its channel says."""
        run = self.run_
        if run is None:
            if not self.continued:
                self.recorded = True
                await self.runtime.sink.call_finished(
                    self.runtime.bare_record(
                        self.call_id, self.channel, self.args, "hangup", reason
                    )
                )
            return
        run.finish("hangup", reason, hang_up=False)
        await self._record(run)

    # --- ARI events -> engine events --------------------------------------------------

    async def _translate(self, item: AriEvent | ev.Event) -> ev.Event | None:
        match item:
            case ChannelDtmfReceived():
                if item.channel.id == self.channel.id:
                    return ev.Digits(item.digit)
                leg = self.leg_by_channel.get(item.channel.id)
                if (
                    leg is not None
                    and leg.confirm_playback is not None
                    and item.digit == CONFIRM_KEY
                ):
                    return await self._confirmed(leg)
                if (
                    leg is not None
                    and leg.whisper_playback is not None
                    and item.digit == leg.ring.refuse_key
                ):
                    return await self._refused(leg)
                if leg is not None and leg.bridged and not leg.gone:
                    return ev.LegDigits(leg.leg_id, item.digit)  # `record: on_demand`
                return None
            case AriPlaybackFinished():
                leg = self._whisper_leg(item.playback.id)
                if leg is not None:
                    return await self._whispered(leg)
                engine_id = self.playbacks.pop(item.playback.id, None)
                return ev.PlaybackFinished(engine_id) if engine_id else None
            case AriRecordingFinished() | RecordingFailed():
                rec = self.recordings.pop(item.recording.name, None)
                self.recording_since.pop(item.recording.name, None)
                return ev.RecordingFinished(rec, item.recording.duration) if rec else None
            case Dial():
                leg = self.leg_by_channel.get(item.peer.id)
                return await self._dial_status(leg, item.dialstatus) if leg else None
            case StasisEnd() | ChannelDestroyed() | ChannelHangupRequest():
                return await self._channel_gone(item)
            case StasisStart():
                replaced = item.replace_channel
                if replaced is not None and replaced.id in self.leg_by_channel:
                    return self._transferred(self.leg_by_channel[replaced.id], item.channel)
                leg = self.leg_by_channel.get(item.channel.id)
                if leg is not None:
                    await self._entered(leg)
                return None  # a leg entering the app: its Dial event says what happened
        if isinstance(item, _PASSED_ON):
            return item
        if isinstance(item, ev.LegAnswered | ev.LegBusy | ev.LegFailed | ev.LegNoAnswer):
            leg = self.legs.get(item.leg_id)
            if leg is None:
                return item  # the driver's: an offer whose employee was taken, never rung
            if not leg.reported:
                leg.reported = True
                return item
            return None
        return None

    def _transferred(self, leg: LegChannel, target: Channel) -> ev.Event | None:
        """The employee on ``leg`` transferred the caller with their phone's REFER: blind
        (main/bridge.c ast_bridge_transfer_blind) or attended (ast_bridge_transfer_attended;
        an ARI bridge inhibits merges and swaps, so both go through a Local channel).
        Asterisk swapped that Local channel into our bridge in place of the employee's
        channel (res/stasis/stasis_bridge.c). The leg is that channel from now on; the
        employee's, out of the bridge and still in the app, is hung up (its phone is
        done with the call)."""
        if not leg.bridged or leg.gone:
            return None
        transferer = leg.channel_id
        del self.leg_by_channel[transferer]
        self.runtime.owners.pop(transferer, None)
        leg.channel_id = target.id
        leg.in_stasis = leg.created = True
        self.leg_by_channel[target.id] = leg
        self.runtime.owners[target.id] = self
        self._spawn(self._clean_up(self.client.hangup, transferer))
        self._spawn(self._remember(leg))  # the conversation's state names the new channel
        self.log.info("transferred", transferer=transferer, target=target.name)
        kind, to = transfer_of(target.name)
        return ev.LegTransferred(leg.leg_id, to, kind)

    async def _channel_gone(
        self, item: StasisEnd | ChannelDestroyed | ChannelHangupRequest
    ) -> ev.Event | None:
        channel_id = item.channel.id
        if channel_id == self.channel.id:
            if isinstance(item, StasisEnd):
                self.left_stasis = True
            if self.caller_gone:
                return None
            if isinstance(item, ChannelDestroyed | ChannelHangupRequest) or not self.continued:
                self.caller_gone = True
                return ev.CallerHungUp()
            return None
        leg = self.leg_by_channel.get(channel_id)
        if leg is None or leg.gone:
            return None
        if isinstance(item, ChannelHangupRequest):
            if leg.whisper_playback is not None and not leg.reported:
                # the employee hung up during the whisper (its PlaybackFinished comes
                # next, and must not put the caller through to nobody): not taken
                leg.whisper_playback = None
                leg.reported = True
                return ev.LegNoAnswer(leg.leg_id)
            return None  # ChannelDestroyed follows
        leg.gone = True
        if leg.bridged:
            return ev.LegHungUp(leg.leg_id)
        if leg.reported:
            return None
        leg.reported = True
        # a real PJSIP leg often ends with no final Dial status: the cause is the truth
        cause = item.cause if isinstance(item, ChannelDestroyed) else 0
        match leg_end(cause, leg.answered):
            case "busy":
                return ev.LegBusy(leg.leg_id)
            case "noanswer":
                return ev.LegNoAnswer(leg.leg_id)
        return ev.LegFailed(
            leg.leg_id, item.cause_txt if isinstance(item, ChannelDestroyed) else ""
        )

    async def _dial_status(self, leg: LegChannel, status: str) -> ev.Event | None:
        if leg.reported or leg.gone or status in _DIAL_PROGRESS:
            # a leg we hung up (its dial looked failed) that answered meanwhile is moot
            return None
        if status == "ANSWER":
            leg.answered = True
            if leg.ring.whisper:
                await self._whisper(leg)
                return None
            if leg.ring.confirm:
                await self._ask_to_confirm(leg)
                return None
            leg.reported = True
            return ev.LegAnswered(leg.leg_id)
        leg.reported = True
        if status == "CANCEL":
            return None  # we hung it up
        # the dial is over but the channel we created stays in Asterisk until hung up
        await self._release(leg)
        if status == "BUSY":
            return ev.LegBusy(leg.leg_id)
        if status == "NOANSWER":
            return ev.LegNoAnswer(leg.leg_id)
        return ev.LegFailed(leg.leg_id, status.lower())

    async def _whisper(self, leg: LegChannel) -> None:
        """The employee answered: they hear the whisper first (the caller still hears
        ringing or hold music); its end puts them through, or asks a mobile to press 1."""
        playback_id = f"{self.call_id}-whisper-{leg.leg_id}"
        leg.whisper_playback = playback_id
        media = [self.runtime.media(p, self.company) for p in leg.ring.whisper]
        lang = leg.ring.whisper_language or None
        try:
            await self.client.play(leg.channel_id, media, playback_id, lang=lang)
        except AriError as exc:  # no whisper: put through as without one
            self.runtime.request_failed(exc, self.call_id)
            event = await self._whispered(leg)
            if event is not None:
                self.deliver(event)

    def _whisper_leg(self, playback_id: str) -> LegChannel | None:
        """The leg whose whisper ``playback_id`` is (its id names the leg: `_whisper`)."""
        leg = self.legs.get(playback_id.removeprefix(f"{self.call_id}-whisper-"))
        return leg if leg is not None and leg.whisper_playback == playback_id else None

    def whispering(self, channel_id: str) -> bool:
        """Is the leg on ``channel_id`` hearing its whisper now?"""
        leg = self.leg_by_channel.get(channel_id)
        return leg is not None and leg.whisper_playback is not None

    async def _whispered(self, leg: LegChannel) -> ev.Event | None:
        """The whisper played to its end."""
        if leg.whisper_playback is None or leg.reported or leg.gone:
            return None
        leg.whisper_playback = None
        if leg.ring.confirm:
            await self._ask_to_confirm(leg)
            return None
        leg.reported = True
        return ev.LegAnswered(leg.leg_id)

    async def _refused(self, leg: LegChannel) -> ev.Event | None:
        """The employee pressed the refuse key during the whisper: not taken."""
        if leg.reported:
            return None
        leg.reported = True
        leg.whisper_playback = None
        await self._release(leg)
        return ev.LegNoAnswer(leg.leg_id)

    async def _ask_to_confirm(self, leg: LegChannel) -> None:
        playback_id = f"{self.call_id}-confirm-{leg.leg_id}"
        leg.confirm_playback = playback_id
        media = self.runtime.media(CONFIRM_PROMPT, self.company)
        await self._safe(self.client.play(leg.channel_id, [media], playback_id))
        leg.confirm_timer = self._spawn(self._confirm_timeout(leg))

    async def _confirm_timeout(self, leg: LegChannel) -> None:
        await self.runtime.clock.sleep(CONFIRM_TIMEOUT)
        # nobody pressed 1: a voicemail or a pocket answered; it does not get the call
        await self._release(leg)
        self.deliver(ev.LegNoAnswer(leg.leg_id))

    async def _confirmed(self, leg: LegChannel) -> ev.Event | None:
        if leg.reported:
            return None
        leg.reported = True
        if leg.confirm_timer is not None:
            leg.confirm_timer.cancel()
        if leg.confirm_playback is not None:
            await self._safe(self.client.stop_playback(leg.confirm_playback))
            leg.confirm_playback = None
        return ev.LegAnswered(leg.leg_id)

    # --- engine actions -> ARI requests -----------------------------------------------

    # --- the media port: what the driver asks of Asterisk -------------------------------

    def _skip(self) -> bool:
        """Nothing more on the caller's channel: gone (Asterisk would answer 404), or back in
        the dialplan (409, or a 2xx for a request it then drops: control.c runs no command
        after continue)."""
        return self.caller_gone or self.continued

    def wake_at(self, timer_id: str, at: float) -> None:
        self.timers[timer_id] = self.runtime.clock.call_at(
            self.t0 + at, functools.partial(self._fired, timer_id)
        )

    def unwake(self, timer_id: str) -> None:
        timer = self.timers.pop(timer_id, None)
        if timer is not None:
            timer.cancel()

    def _fired(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)
        self.deliver(ev.TimerFired(timer_id))

    async def answer(self) -> None:
        if not self._skip():
            self.runtime.answer_delays.append(time.perf_counter() - self.arrived)
            await self._safe(self.client.answer(self.channel.id))

    async def play(self, play: act.Play) -> None:
        if self._skip():
            return
        media = [self.runtime.media(p, self.company) for p in play.prompts]
        ari_id = f"{self.call_id}-{play.playback_id}"
        self.playbacks[ari_id] = play.playback_id
        try:
            await self.client.play(self.channel.id, media, ari_id, lang=play.language)
        except AriError:
            # nothing to play (or the caller is gone): the engine must not wait for it
            self.playbacks.pop(ari_id, None)
            self.deliver(ev.PlaybackFinished(play.playback_id))

    async def stop_playback(self, playback_id: str) -> None:
        ari_id = f"{self.call_id}-{playback_id}"
        if not self._skip() and self.playbacks.pop(ari_id, None) is not None:
            await self._safe(self.client.stop_playback(ari_id))

    async def start_moh(self, moh_class: str) -> None:
        if not self._skip():
            await self._safe(self.client.start_moh(self.channel.id, moh_class))

    async def stop_moh(self) -> None:
        if not self._skip():
            await self._safe(self.client.stop_moh(self.channel.id))

    async def stop_ringing(self, leg_id: str) -> None:
        leg = self.legs.get(leg_id)
        if leg is not None and not leg.gone:
            leg.reported = True
            if leg.created:
                await self._release(leg)
            else:
                leg.gone = True  # still being created: `_create` hangs it up

    async def bridge(self, leg_id: str) -> None:
        await self._bridge(leg_id)

    async def start_recording(self, recording: act.StartRecording) -> None:
        if self._skip():
            return
        name = act.recording_name(self.call_id, recording.recording_id)
        self.recordings[name] = recording.recording_id
        self.recording_since[name] = self.now()
        try:
            await self.client.record(
                self.channel.id, name, int(recording.max_length), recording.beep
            )
        except AriError:
            self.recordings.pop(name, None)
            self.deliver(ev.RecordingFinished(recording.recording_id, 0.0))

    async def stop_recording(self, recording_id: str) -> None:
        name = act.recording_name(self.call_id, recording_id)
        await self._safe(self.client.stop_recording(name))

    async def record_conversation(self, recording_id: str) -> None:
        if self.bridge_id is None or self._skip():
            self.deliver(ev.RecordingFinished(recording_id, 0.0))
            return
        name = act.recording_name(self.call_id, recording_id)
        try:
            await self.client.record_bridge(self.bridge_id, name)
        except CallGone:
            pass  # the conversation just ended: nothing to record
        except AriError as exc:
            if exc.status == 409:
                return  # a try that timed out was made all the same: it records already
            self.runtime.warnings.warning(
                ("could not record", str(exc.status), exc.message),
                "could not record the conversation", error=str(exc),
            )  # fmt: skip
            self.deliver(ev.RecordingFinished(recording_id, 0.0))
        else:
            self.log.info("recording the conversation", recording=name)
            talking = next(
                (leg for leg in self.legs.values() if leg.bridged and not leg.gone), None
            )
            if talking is not None:
                await self._remember(talking)  # an instance adopting the call links it too

    async def continue_in_dialplan(self, to: act.ContinueInDialplan) -> None:
        if self._skip():
            return
        await self._mark_result()
        self.continued = True
        await self._safe(
            self.client.continue_in_dialplan(self.channel.id, to.context, to.extension, to.priority)
        )

    async def hangup(self, reason: str) -> None:
        if not self._skip() and not self.hung_up:
            await self._mark_result()
            self.hung_up = True
            await self._clean_up(self.client.hangup, self.channel.id)

    async def _mark_channel(self, scenario: str) -> None:
        """The call's id and scenario on the caller's channel, for Asterisk's CDR and CEL
        and the dialplan (``SWITCHBOARD_CALL_ID``, ``SWITCHBOARD_SCENARIO``), and its
        linkedid for the record.  A failure costs the record only its linkedid."""
        channel = self.channel.id

        async def linkedid() -> None:
            with contextlib.suppress(AriError):
                self.linkedid = await self.client.get_variable(channel, "CHANNEL(linkedid)")

        # at once: one round trip before the answer
        await asyncio.gather(
            self._safe(self.client.set_variable(channel, "SWITCHBOARD_CALL_ID", self.call_id)),
            self._safe(self.client.set_variable(channel, "SWITCHBOARD_SCENARIO", scenario)),
            linkedid(),
        )

    async def _mark_result(self) -> None:
        """``SWITCHBOARD_RESULT`` on the caller's channel before Switchboard lets it go (a
        caller who hung up first has no channel left to mark)."""
        run = self.run_
        if run is not None and run.outcome is not None:
            await self._safe(
                self.client.set_variable(self.channel.id, "SWITCHBOARD_RESULT", run.outcome.result)
            )

    def _look_up(self, lookup: act.Lookup, done: Callable[[str | None], None]) -> None:
        self._spawn(self._lookup(lookup, done))

    async def _lookup(self, lookup: act.Lookup, done: Callable[[str | None], None]) -> None:
        http = await self.runtime.http()
        done(await look_up(lookup, self.runtime.sink, http, self.runtime.clock))

    async def ring(self, ring: act.Ring) -> None:
        channel_id = f"{self.call_id}-{ring.leg_id}"
        leg = LegChannel(ring.leg_id, channel_id, ring)
        self.legs[ring.leg_id] = leg
        self.leg_by_channel[channel_id] = leg
        self.runtime.owners[channel_id] = self  # before the create: its events may come first
        wait = self.ring_budget.wait(self.runtime.clock.now())
        if wait > 0:
            self._spawn(self._create_later(leg, wait))
        else:
            await self._create(leg)

    async def _create_later(self, leg: LegChannel, wait: float) -> None:
        """Past the call's ring rate (`RingBudget`): start the leg when its turn comes."""
        await self.runtime.clock.sleep(wait)
        if not leg.gone:
            await self._create(leg)

    async def _create(self, leg: LegChannel) -> None:
        """Create the leg's channel; it is dialled once it has entered the app."""
        endpoint = self.runtime.endpoint(leg.ring, self.company)
        variables = None
        if leg.ring.caller_name is not None:
            # the name the phone shows: its connected line, set as the channel is made
            # (``i``: no update is sent, func_callerid.c) -- and then dialled without
            # the caller, whose caller ID the dial would copy over it (resource_channels.c)
            variables = {
                "CONNECTEDLINE(name,i)": leg.ring.caller_name,
                "CONNECTEDLINE(num,i)": self.channel.caller_number,
            }
            if self.driver is not None:  # the call's language, as the dial would copy it
                variables["CHANNEL(language)"] = self.driver.run.language
        try:
            await self.client.create_channel(
                endpoint,
                leg.channel_id,
                app_args=LEG_MARKER,
                originator=self.channel.id,
                variables=variables,
            )
        except AriError as exc:
            self._could_not_ring(leg, endpoint, exc)
            leg.gone = True
            if isinstance(exc, AriUnavailable):
                # no answer in time: Asterisk may have made it all the same, or make it yet
                await self._clean_up(self.client.hangup, leg.channel_id)
                self.runtime.release_later(self.client.hangup, leg.channel_id, self.call_id)
            return
        leg.created = True
        if leg.gone:  # stopped while it was being created
            await self._clean_up(self.client.hangup, leg.channel_id)
        elif leg.in_stasis:  # its StasisStart beat the answer to the create
            await self._dial(leg)
        else:
            clock = self.runtime.clock
            leg.stasis_timer = clock.call_at(
                clock.now() + STASIS_WAIT, functools.partial(self._stasis_timeout, leg)
            )

    async def _entered(self, leg: LegChannel) -> None:
        """A leg's StasisStart: now Asterisk accepts its dial."""
        leg.in_stasis = True
        if leg.stasis_timer is not None:
            leg.stasis_timer.cancel()
            leg.stasis_timer = None
        if leg.gone:  # stopped (or given up) before it arrived
            await self._clean_up(self.client.hangup, leg.channel_id)
        elif leg.created and not leg.dialled:
            await self._dial(leg)

    async def _dial(self, leg: LegChannel) -> None:
        leg.dialled = True
        try:
            caller = self.channel.id if leg.ring.caller_name is None else None
            await self.client.dial(leg.channel_id, caller=caller, ring_for=int(leg.ring.timeout))
        except AriError as exc:
            self._could_not_ring(leg, self.runtime.endpoint(leg.ring, self.company), exc)
            await self._release(leg)

    def _stasis_timeout(self, leg: LegChannel) -> None:
        leg.stasis_timer = None
        if not (leg.in_stasis or leg.gone):
            self._spawn(self._give_up(leg))

    async def _give_up(self, leg: LegChannel) -> None:
        """A created leg whose StasisStart has not come in `STASIS_WAIT`: hung up, failed."""
        if leg.in_stasis or leg.gone:
            return
        self.runtime.warnings.warning(
            ("leg never entered the app", self.runtime.endpoint(leg.ring, self.company)),
            "a created leg never entered the app: hung up", channel=leg.channel_id,
        )  # fmt: skip
        await self._release(leg)
        self.deliver(ev.LegFailed(leg.leg_id, "unavailable"))

    def _could_not_ring(self, leg: LegChannel, endpoint: str, exc: AriError) -> None:
        """The leg failed before it could ring: the engine hears so, the log once a storm."""
        self.runtime.warnings.warning(
            ("could not ring", endpoint, str(exc.status), exc.message),
            "could not ring", call_id=self.call_id, endpoint=endpoint, error=str(exc),
        )  # fmt: skip
        self.deliver(ev.LegFailed(leg.leg_id, "unavailable"))

    async def _release(self, leg: LegChannel) -> None:
        """Hang up a leg that ended without a conversation (once)."""
        if leg.gone:
            return
        leg.gone = True
        if leg.stasis_timer is not None:
            leg.stasis_timer.cancel()
            leg.stasis_timer = None
        await self._clean_up(self.client.hangup, leg.channel_id)

    async def _bridge(self, leg_id: str) -> None:
        leg = self.legs[leg_id]
        bridge_id = f"{self.call_id}-bridge"
        self.bridge_id = bridge_id  # destroyed at the end even if the create timed out
        try:
            await self._retried(self._create_bridge, bridge_id)
            await self._retried(
                functools.partial(
                    self.client.add_channel, channel_ids=[self.channel.id, leg.channel_id]
                ),
                bridge_id,
            )
            leg.bridged = True
            await self._remember(leg)
        except AriError as exc:
            leg.bridged = True
            # a side that just hung up: 404 for the bridge, 400 "Channel not found" or 422
            # "Channel not in Stasis application" from addChannel; its end ends the talk —
            # unless its end was already told (or lost with a websocket cut): then now
            if isinstance(exc, CallGone) or exc.status in (400, 422):
                if leg.gone or not await self._exists(leg.channel_id):
                    leg.gone = True
                    self.deliver(ev.LegHungUp(leg.leg_id))
            else:
                # Asterisk could not connect them (overloaded, unreachable): the call ends
                # as if the employee had hung up, and leaves its record
                self.runtime.warnings.warning(
                    ("could not connect", str(exc.status), exc.message),
                    "could not connect the caller and the employee", error=str(exc),
                )  # fmt: skip
                self.deliver(ev.LegHungUp(leg.leg_id))

    async def _exists(self, channel_id: str) -> bool:
        try:
            await self.client.get_channel(channel_id)
        except CallGone:
            return False
        except AriError:
            return True  # cannot tell: its events decide
        return True

    async def _remember(self, leg: LegChannel) -> None:
        """Leave the conversation's state on the caller's channel: whatever happens to
        this process, the next instance can end the call and write its record."""
        run = self.run_
        if run is None or self.bridge_id is None:
            return
        outcome = run.outcome_now("connected", "in conversation")
        state = ConversationState(
            call_id=self.call_id,
            bridge_id=self.bridge_id,
            leg_channel=leg.channel_id,
            employee=leg.ring.employee_id,
            answered_at=float(outcome.extra.get("answered_at", run.now)),
            record=CallRecord.for_call(
                self.call_id,
                self.channel.name,
                self.channel.id,
                run.call,
                run.company,
                started_at=run.started_at,
                scenario=run.trace[0].scenario if run.trace else run.scenario,
                steps=run.trace,
                outcome=outcome,
            ),
        )
        await self._safe(self.client.set_variable(self.channel.id, STATE_VARIABLE, state.to_json()))

    async def _create_bridge(self, bridge_id: str) -> None:
        try:
            await self.client.create_bridge(bridge_id)
        except AriUnavailable:
            self.bridge_unsure = True  # it may still reach Asterisk, after we destroyed it
            raise
        except AriError as exc:
            # a try that timed out was made all the same: "Bridge with id ... already
            # exists" (res/ari/resource_bridges.c, ast_ari_bridges_create) is ours
            if exc.status != 409:
                raise

    async def _retried(self, request: Callable[[str], Awaitable[object]], target: str) -> None:
        """A request the conversation needs (a bridge's create, adding the two to it):
        a timeout, a lost connection or a 5xx is tried again after `BRIDGE_RETRIES`.
        Each may be repeated: the bridge's id is the call's, and a channel added again
        departs and rejoins the same bridge (``res/stasis/control.c``,
        ``control_swap_channel_in_bridge``): a blip, not a lost call."""
        await retried(
            lambda: request(target), BRIDGE_RETRIES, self.runtime.clock.sleep, self._request_failed
        )

    # --- the end --------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _safe(self, request: Any) -> None:
        """An ARI request whose failure the call survives (the channel may be gone)."""
        try:
            await request
        except CallGone:
            pass
        except AriError as exc:
            self._request_failed(exc)

    def _request_failed(self, exc: AriError) -> None:
        self.runtime.request_failed(exc, self.call_id)

    async def _clean_up(self, request: Callable[[str], Awaitable[None]], target: str) -> None:
        await self.runtime.clean_up(request, target, self.call_id)

    async def _teardown(self) -> None:
        """Release everything the call created: timers, legs, the bridge."""
        for timer in [*self.timers.values(), *(leg.stasis_timer for leg in self.legs.values())]:
            if timer is not None:
                timer.cancel()
        self.timers.clear()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.abandoned:
            return  # the channels are the other connection's now
        kept = self.left_to_asterisk
        for leg in self.legs.values():
            if not leg.gone and not (kept and leg.bridged):
                await self._clean_up(self.client.hangup, leg.channel_id)
        if kept:
            return  # the caller, the employee and their bridge stay: the next instance's
        if self.driver is not None:
            self.driver.let_go()  # the ACD: its offers' employees free, its agent's wrap-up
        if not (self.caller_gone or self.left_stasis or self.continued or self.hung_up):
            await self._clean_up(self.client.hangup, self.channel.id)
        if self.bridge_id is not None:
            # Asterisk 22: destroying a bridge while its legs hang up can strand a channel;
            # wait (briefly) until every leg has gone, then destroy it.
            await self._wait_gone()
            await self._clean_up(self.client.destroy_bridge, self.bridge_id)
            if self.bridge_unsure:
                self.runtime.release_later(self.client.destroy_bridge, self.bridge_id, self.call_id)

    async def _wait_gone(self) -> None:
        deadline = self.runtime.clock.real(TEARDOWN_WAIT)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                while not (self.caller_gone or self.left_stasis) or any(
                    not leg.gone for leg in self.legs.values() if leg.bridged
                ):
                    item = await self.queue.get()
                    if isinstance(item, StasisEnd | ChannelDestroyed):
                        await self._channel_gone(item)
