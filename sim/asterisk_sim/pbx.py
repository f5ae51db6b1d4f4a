"""The simulated PBX: channels, bridges, media, and who hears which event.

`Pbx` holds the state of one simulated Asterisk and every operation on it,
synchronous and in one place: the HTTP layer (`asterisk_sim.server`) turns
ARI requests into these calls, the scripts (`asterisk_sim.script`) drive the
far ends, and the simulator facade starts and stops it all.  Every change
notifies `StateSignal`, which is what ``wait_for`` waits on.

Who receives an event follows Asterisk's subscriptions: an application hears
about a channel while the channel is in its Stasis application, after it
created or originated the channel, or after an explicit subscription; about a
bridge while one of its channels is in it or after a subscription; and about
everything when it connected with ``subscribeAll=true``.  ``StasisStart`` and
``StasisEnd`` go only to the channel's own application.  The application's
``eventFilter`` is applied last.

Device states (the computation is in `asterisk_sim.devices`) are re-evaluated
where Asterisk queues a device state change -- a channel's state change or
end, a hold or ringing indication on a PJSIP channel, an endpoint going
offline or online -- cached, and published as ``DeviceStateChanged`` to the
applications subscribed to the device only when the state differs from the
cached one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
import time
import uuid
import wave
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import structlog

from asterisk_sim import devices, events
from asterisk_sim.applications import Application, ApplicationRegistry
from asterisk_sim.errors import AllocationFailed, AriError
from asterisk_sim.model import (
    DOWN,
    NO_ANSWER,
    NO_ROUTE_DESTINATION,
    NORMAL_CLEARING,
    RING,
    RINGING,
    SOFTHANGUP_EXPLICIT,
    UP,
    Bridge,
    CallerId,
    Channel,
    DialplanLocation,
    Json,
    LiveRecording,
    MediaEvent,
    Playback,
    RequestRecord,
    StoredRecording,
    parse_endpoint,
)
from asterisk_sim.script import (
    DEFAULT_ENDPOINT,
    CallerScript,
    EndpointScript,
    check_digits,
    run_caller_hangup,
    run_confirm,
    run_outgoing,
    run_presses,
)
from switchboard.clock import Clock

log = structlog.get_logger("asterisk_sim")

ASTERISK_VERSION = "22.10.1"
DEFAULT_MEDIA_SECONDS = 3.0
SECONDS_PER_DIGIT = 0.6
TONE_SECONDS = 1.0
BEEP_SECONDS = 0.5
DEFAULT_TRUNK = "PJSIP/trunk"
DEFAULT_PHONE_CONTEXT = "from-internal"  # where the phones' own calls run in the dialplan
RECORDED_MAX = 600.0  # seconds of silence at most in a recording's file (`recordings_dir`)
RECORDING_FORMATS = frozenset({"wav", "wav16", "gsm", "ulaw", "alaw", "sln", "g722", "ogg"})
SNOOP_DIRECTIONS = ("none", "both", "out", "in")
ACTIVE_PLAYBACK = ("queued", "playing", "continuing")
ACTIVE_RECORDING = ("queued", "recording", "paused")
# clock seconds between a created channel's HTTP answer and its StasisStart: Asterisk runs
# Stasis() for it on a thread of its own (resource_channels.c, ari_channel_thread)
STASIS_DELAY = 0.01
# a blind transfer's result as BridgeBlindTransfer reports it (main/stasis_bridges.c, result_strs)
TRANSFER_SUCCESS = "Success"
TRANSFER_INVALID = "Invalid"
TRANSFER_FAIL = "Fail"
# the answer to the REFER for each result (res/res_pjsip_refer.c, xfer_response_code2sip)
REFER_RESPONSES = {
    TRANSFER_INVALID: 400,
    "Not Permitted": 403,
    TRANSFER_FAIL: 500,
    TRANSFER_SUCCESS: 200,
}
REFER_NO_SUCH_EXTENSION = 404  # res_pjsip_refer.c, refer_incoming_blind_request
MAX_BRIDGEPEER_CHANS = 10 + 1  # main/bridge.c, set_bridge_peer_vars_multiparty
BUSY = "Busy"  # ast_state2str(AST_STATE_BUSY): what Busy() and Congestion() set


class StateSignal:
    """A condition every state change notifies; waiters re-check their predicate.

    It is `asyncio.Condition` without the lock dance: `notify` is callable
    from synchronous code, and no waiter ever polls.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait_until(self, predicate: Callable[[], bool], within: float | None = None) -> None:
        """Return once ``predicate()`` is true; TimeoutError after ``within`` real seconds."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            while not predicate():
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)


def _random_entity_id() -> str:
    rng = random.Random()  # noqa: S311 - an id for display, not a secret
    return ":".join(f"{rng.randrange(256):02x}" for _ in range(6))


class Pbx:
    """One simulated Asterisk: its state, its operations and its event delivery."""

    def __init__(
        self,
        clock: Clock,
        app_durations: Mapping[str, float] | None = None,
        asterisk_id: str | None = None,
        stasis_delay: float = STASIS_DELAY,
    ) -> None:
        self.clock = clock
        self.stasis_delay = stasis_delay
        # where stored recordings are written as files (None: kept in memory only)
        self.recordings_dir: Path | None = None
        self.app_durations = dict(app_durations or {})
        self.asterisk_id = asterisk_id or _random_entity_id()
        self.signal = StateSignal()
        self.registry = ApplicationRegistry()
        self.endpoint_scripts: dict[str, EndpointScript] = {}
        self.stored_recordings: dict[str, StoredRecording] = {}
        self.requests: list[RequestRecord] = []
        self.sent: list[Json] = []
        self.task_errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.clock_zero = clock.now()  # the clock's time `now` counts from
        self._wall_zero = dt.datetime.now(dt.UTC)
        self._id_base = int(time.time())
        self._ids = itertools.count(1)
        self._names = itertools.count(1)
        self._media_seq = 0
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.recordings: dict[str, LiveRecording] = {}
        self.device_states: dict[str, str] = {}  # Stasis: devices set over ARI (astdb)
        self.mailboxes: dict[str, tuple[int, int]] = {}  # PUT /mailboxes: (old, new)
        self.registrations: dict[str, bool] = {}  # endpoints (un)registered by the control API
        self.device_cache: dict[str, str] = {}  # the last published state of each device
        self._device_channels: dict[str, list[Channel]] = {}  # live channels by device
        self._channel_endpoints: set[str] = set()  # endpoints channels were made on
        # (app, channel id) -> subscriptions ARI made when it created or originated the
        # channel (resource_channels.c, stasis_app_subscribe_channel): each is one
        # "interested" count of res/stasis/app.c's channel forward, on top of StasisStart's
        self._request_interest: Counter[tuple[str, str]] = Counter()
        self._load_device_states()
        self.startup_time = self.timestamp()

    # -- time, tasks, notification -----------------------------------------------

    def now(self) -> float:
        """Clock seconds since the simulator was made."""
        return self.clock.now() - self.clock_zero

    def timestamp(self) -> str:
        """ARI's ``Date`` for now, on a wall clock that runs at the simulator clock's pace."""
        wall = self._wall_zero + dt.timedelta(seconds=self.now())
        return wall.strftime("%Y-%m-%dT%H:%M:%S.") + f"{wall.microsecond // 1000:03d}+0000"

    def changed(self) -> None:
        self.signal.notify()

    def spawn(
        self, coro: Coroutine[Any, Any, None], owner: Channel | Bridge | None = None
    ) -> asyncio.Task[None]:
        """Run ``coro`` as a task the simulator tracks (and its owner cancels when it ends)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if owner is not None:
            owner.tasks.add(task)
            task.add_done_callback(owner.tasks.discard)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            self.task_errors.append(error)
            log.error("simulator task failed", task=task.get_name(), error=repr(error))
            self.changed()

    @staticmethod
    def cancel_owned(owner: Channel | Bridge) -> None:
        current = asyncio.current_task()
        for task in list(owner.tasks):
            if task is not current:
                task.cancel()

    def running_tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in self._tasks if not t.done()]

    async def cancel_all(self) -> None:
        """Cancel every simulator task and wait for them to end."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def reset(self) -> None:
        """Forget every call, bridge and application (an Asterisk restart); ``Stasis:``
        device states stay (astdb).

        Channel names count from 1 again (``PJSIP/trunk-00000001`` may come
        back); unique ids do not repeat, their epoch part moves on.
        """
        self.registry.clear()
        self._names = itertools.count(1)
        self._id_base = max(int(time.time()), self._id_base + 1)
        self._ids = itertools.count(1)
        self.channels = {}
        self.bridges = {}
        self.playbacks = {}
        self.recordings = {}
        self.device_cache = {}
        self._device_channels = {}
        self._channel_endpoints = set()
        self._request_interest = Counter()
        self._load_device_states()
        self.startup_time = self.timestamp()
        self.changed()

    # -- event delivery ---------------------------------------------------------

    def send(self, app_name: str, event: Json) -> None:
        """Deliver ``event`` to one application, if it is connected and its filter allows."""
        app = self.registry.get(app_name)
        if app is None or app.connection is None or not app.active:
            return
        if not app.allows(event["type"]):
            return
        message = events.envelope(
            event, application=app_name, asterisk_id=self.asterisk_id, timestamp=self.timestamp()
        )
        app.connection.send(message)
        self.sent.append(message)

    def emit(
        self, event: Json, *, channels: Iterable[Channel] = (), bridges: Iterable[Bridge] = ()
    ) -> None:
        """Deliver ``event`` to every application subscribed to one of its sources."""
        names: set[str] = set()
        for channel in channels:
            names |= channel.subscribers
        for bridge in bridges:
            names |= self.bridge_subscribers(bridge)
        names |= self.registry.subscribed_to_all()
        for name in sorted(names):
            self.send(name, event)

    def bridge_subscribers(self, bridge: Bridge) -> set[str]:
        names = set(bridge.subscribers)
        for channel_id in bridge.channel_ids:
            channel = self.channels.get(channel_id)
            if channel is not None and channel.stasis_app is not None:
                names.add(channel.stasis_app)
        return names

    def application_replaced(self, name: str) -> Json:
        return events.envelope(
            events.application_replaced(),
            application=name,
            asterisk_id=self.asterisk_id,
            timestamp=self.timestamp(),
        )

    # -- lookups ------------------------------------------------------------------

    def live_channel(self, channel_id: str) -> Channel | None:
        channel = self.channels.get(channel_id)
        return channel if channel is not None and channel.live else None

    def live_bridge(self, bridge_id: str) -> Bridge | None:
        bridge = self.bridges.get(bridge_id)
        return bridge if bridge is not None and bridge.live else None

    def active_playback(self, playback_id: str) -> Playback | None:
        playback = self.playbacks.get(playback_id)
        return playback if playback is not None and playback.state in ACTIVE_PLAYBACK else None

    def active_recording(self, name: str) -> LiveRecording | None:
        rec = self.recordings.get(name)
        return rec if rec is not None and rec.state in ACTIVE_RECORDING else None

    def script_for(self, endpoint: str) -> EndpointScript:
        return self.endpoint_scripts.get(endpoint, DEFAULT_ENDPOINT)

    def dialplan_app(self) -> str | None:
        """The application the inbound dialplan hands calls to: the latest connected."""
        active = self.registry.active()
        return active[-1].name if active else None

    # -- media heard by the far ends ---------------------------------------------

    def media_seq(self) -> int:
        return self._media_seq

    def _heard(self, channel: Channel, kind: Literal["playback", "moh"], media: str) -> None:
        self._media_seq += 1
        channel.media_events.append(MediaEvent(self._media_seq, self.now(), kind, media))

    def _heard_by(
        self, target: Channel | Bridge, kind: Literal["playback", "moh"], media: str
    ) -> None:
        if isinstance(target, Channel):
            self._heard(target, kind, media)
            return
        for channel_id in target.channel_ids:
            self._heard(self.channels[channel_id], kind, media)

    async def wait_media(
        self,
        channel: Channel,
        *,
        after_seq: int,
        kind: Literal["playback", "moh"],
        contains: str | None,
    ) -> MediaEvent:
        """Wait until ``channel`` starts hearing matching media later than ``after_seq``."""
        found: list[MediaEvent] = []

        def heard() -> bool:
            for event in channel.media_events:
                wanted = contains is None or contains in event.media
                if event.seq > after_seq and event.kind == kind and wanted:
                    found.append(event)
                    return True
            return False

        await self.signal.wait_until(heard)
        return found[0]

    def media_duration(self, media: str) -> float:
        """Clock seconds ``media`` plays: `app_durations`, else by its URI scheme."""
        if media in self.app_durations:
            return self.app_durations[media]
        scheme, _, value = media.partition(":")
        match scheme:
            case "number" | "digits" | "characters":
                return SECONDS_PER_DIGIT * max(1, len(value.lstrip("-")))
            case "tone":
                return TONE_SECONDS
            case "recording" if value in self.stored_recordings:
                return self.stored_recordings[value].duration
            case _:
                return DEFAULT_MEDIA_SECONDS

    # -- channels -------------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            candidate = f"{self._id_base}.{next(self._ids)}"
            if candidate not in self.channels:
                return candidate

    def _check_new_id(self, channel_id: str | None) -> None:
        if channel_id and self.live_channel(channel_id) is not None:
            raise AriError(409, "Channel with given unique ID already exists")

    def _channel_name(self, tech: str, resource: str) -> str:
        number = next(self._names)
        if tech == "DAHDI":
            return f"DAHDI/{resource}-1"
        device = resource.rpartition("@")[2] if tech in ("PJSIP", "SIP") else resource
        return f"{tech}/{device}-{number:08x}"

    def new_channel(
        self,
        *,
        endpoint: str,
        name: str,
        state: str,
        caller: CallerId,
        dialplan: DialplanLocation,
        direction: Literal["inbound", "outbound"],
        channel_id: str | None = None,
    ) -> Channel:
        channel = Channel(
            id=channel_id or self._new_id(),
            name=name,
            endpoint=endpoint,
            state=state,
            caller=caller,
            dialplan=dialplan,
            created_at=self.now(),
            creationtime=self.timestamp(),
            direction=direction,
            protocol_id=str(uuid.uuid4()) if endpoint.startswith("PJSIP/") else "",
        )
        self._configured(channel.device)
        self.channels[channel.id] = channel
        self._device_channels.setdefault(channel.device, []).append(channel)
        if channel.tech in ("PJSIP", "SIP", "DAHDI"):
            self._channel_endpoints.add(endpoint)
        self.emit(events.channel_created(channel))
        return channel

    def enter_stasis(
        self, channel: Channel, app: str, args: list[str], replace_channel: Json | None = None
    ) -> None:
        """``Stasis(app, args)`` starts on ``channel``: StasisStart to ``app``.

        ``replace_channel``: the snapshot of the channel this one takes the place of
        (a blind transfer's Local channel, `blind_transfer`): res_stasis.c,
        send_start_msg_snapshots puts it in the StasisStart and, just before
        publishing it, drops one of the application's subscriptions to that channel
        (``app_unsubscribe_channel_id``).
        """
        channel.stasis_app = app
        channel.app_args = list(args)
        channel.subscribers.add(app)
        channel.dialplan.app_name = "Stasis"
        channel.dialplan.app_data = ",".join([app, *args])
        event = events.stasis_start(channel, args)
        if replace_channel is not None:
            event["replace_channel"] = replace_channel
            self._unsubscribe_replaced(app, str(replace_channel["id"]))
        self.send(app, event)
        self.changed()

    def leave_stasis(self, channel: Channel, *, keep_subscription: bool) -> None:
        app = channel.stasis_app
        if app is None:
            return
        self.send(app, events.stasis_end(channel))
        channel.stasis_app = None
        registered = self.registry.get(app)
        explicit = registered is not None and channel.id in registered.channel_ids
        if not keep_subscription and not explicit:
            channel.subscribers.discard(app)

    def place_call(
        self,
        *,
        caller: str,
        caller_name: str,
        called: str,
        tech: str,
        line: int | None,
        app_args: list[str] | None,
        script: CallerScript | None,
        context: str | None = None,
        app: str | None = None,
    ) -> Channel:
        """An inbound call reaches the dialplan, which runs ``Stasis(app, args)``."""
        if line is not None:
            endpoint = f"DAHDI/{line}"
            name = self._channel_name("DAHDI", str(line))
            default_args: list[str] = []
            default_context = "from-analog"
        else:
            kind, resource = parse_endpoint(tech)
            endpoint = tech
            name = self._channel_name(kind, resource)
            default_args = [called] if called else []
            default_context = "from-trunk"
        args = list(app_args) if app_args is not None else default_args
        target = app or self.dialplan_app()
        channel = self.new_channel(
            endpoint=endpoint,
            name=name,
            state=RING,
            caller=CallerId(caller_name, caller),
            dialplan=DialplanLocation(context or default_context, called or "s", 1),
            direction="inbound",
        )
        registered = self.registry.get(target) if target else None
        if target and registered is not None and registered.active:
            self.enter_stasis(channel, target, args)
        else:
            # res_stasis.c, stasis_app_exec: "Stasis app '%s' not registered" / "not
            # active" and -1; app_stasis.c sets STASISSTATUS=FAILED and the dialplan goes
            # on to its next priority (the fallback): the channel is in no Stasis app,
            # and `GET /channels` shows it running that next application, not Stasis
            channel.stasis_failed = True
            channel.dialplan.app_name = ""
            channel.dialplan.app_data = ""
            log.info("stasis failed: no application connected", channel=channel.name)
        if script is not None:
            channel.silent_after = script.silent_after
            if script.presses:
                self.spawn(run_presses(self, channel, script.presses), owner=channel)
            if script.hangup_after is not None:
                self.spawn(run_caller_hangup(self, channel, script.hangup_after), owner=channel)
        self.changed()
        return channel

    def answer(self, channel: Channel) -> None:
        if channel.state == UP or channel.direction == "outbound":
            return
        self._set_state(channel, UP)
        channel.answered_at = self.now()
        self.changed()

    def _set_state(self, channel: Channel, state: str) -> None:
        if channel.state == state:
            return
        channel.state = state
        self.emit(events.channel_state_change(channel), channels=[channel])
        self.devstate_changed(channel)  # main/channel.c, ast_setstate
        peer = self.live_channel(channel.local_peer_id or "")
        if peer is not None and peer.state != state:
            peer.state = state
            self.emit(events.channel_state_change(peer), channels=[peer])
            self.devstate_changed(peer)

    def _dialled_by(self, channel: Channel) -> Channel | None:
        """The channel whose dialplan ``Dial()`` called ``channel``, if one did."""
        if channel.direction != "outbound":
            return None
        return self.live_channel(channel.dial_peer_id or "")

    def _dial_event(self, channel: Channel, status: str) -> None:
        caller = self._dialled_by(channel)
        self.emit(events.dial(channel, status, caller=caller), channels=[channel])

    def far_end_ringing(self, channel: Channel) -> None:
        if not channel.live:
            return
        self._set_state(channel, RINGING)
        self._dial_event(channel, "RINGING")
        caller = self._dialled_by(channel)
        if caller is not None:
            # app_dial.c, wait_for_answer: ast_indicate(in, AST_CONTROL_RINGING) -- and
            # chan_pjsip_indicate then re-evaluates the caller's device
            self.indicate(caller, "ringing")
        self.changed()

    def far_end_answer(self, channel: Channel) -> None:
        if not channel.live:
            return
        self._set_state(channel, UP)
        channel.answered_at = self.now()
        self._dial_event(channel, "ANSWER")
        self.changed()

    def dial_failed(self, channel: Channel, status: str, cause: int) -> None:
        """The far end refused the call (busy, congestion).

        A channel dialled with ``/dial`` (created by ARI): over PJSIP the SIP
        session ends and chan_pjsip queues a hangup with the cause of the SIP
        code (chan_pjsip.c, chan_pjsip_session_end) -- no final Dial status,
        the channel leaves Stasis and is destroyed by itself; a Local channel
        gets only the BUSY/CONGESTION control frame (its ``;2`` half runs
        ``Busy()``, which waits for a hangup): ``Dial {status}`` and the
        channel stays in Stasis until the app hangs it up
        (bridge_channel.c, bridge_handle_trip: publish, then ``break``).
        An originated channel (main/dial.c): the hangup request, ``Dial
        {status}``, then it is destroyed.
        """
        if not channel.live:
            return
        if channel.created_by_ari:
            if channel.tech == "Local":
                self.emit(events.dial(channel, status), channels=[channel])
                self.changed()
                return
            self.far_end_hangup(channel, cause)
            return
        self.emit(events.channel_hangup_request(channel, cause), channels=[channel])
        self._dial_event(channel, status)
        self.destroy(channel, cause)

    def dial_timed_out(self, channel: Channel) -> None:
        """The dial's ``timeout`` passed unanswered: Asterisk hangs the channel up itself
        with cause 19 and publishes no Dial NOANSWER.  ``/dial`` (control.c,
        bridge_timeout -> hangup_channel): a soft hangup request (``cause`` 32), StasisEnd,
        ChannelDestroyed; originate (main/dial.c, handle_timeout_trip): only
        ChannelDestroyed."""
        if not channel.live:
            return
        if channel.created_by_ari:
            self.app_hangup(channel, NO_ANSWER)
            return
        self.destroy(channel, NO_ANSWER)

    def call_failed(self, channel: Channel) -> None:
        """``ast_call`` failed on a dialled channel (a Local channel to no extension):
        control.c, app_control_dial soft-hangs it up without an event and publishes no
        Dial; it leaves Stasis and is destroyed."""
        if channel.live:
            self.destroy(channel, NORMAL_CLEARING)

    def far_end_hangup(self, channel: Channel, cause: int = NORMAL_CLEARING) -> None:
        """The other party hangs up (or the network ends the call) with ``cause``."""
        if not channel.live:
            return
        self.emit(events.channel_hangup_request(channel, cause), channels=[channel])
        self.destroy(channel, cause)

    def app_hangup(self, channel: Channel, cause: int) -> None:
        """``DELETE /channels/{id}``: a soft hangup, then the channel goes with ``cause``.

        A created channel not yet in Stasis still gets its StasisStart, then
        StasisEnd and ChannelDestroyed (nothing in app_stasis.c/res_stasis.c
        checks for a hangup before ``send_start_msg``).
        """
        self.emit(
            events.channel_hangup_request(channel, SOFTHANGUP_EXPLICIT, soft=True),
            channels=[channel],
        )
        if channel.entering_stasis:
            channel.hangup_pending = cause
            return
        self.destroy(channel, cause)

    def destroy(self, channel: Channel, cause: int) -> None:
        """Tear a channel down in Asterisk's order: media, bridge, StasisEnd, ChannelDestroyed."""
        if channel.destroyed:
            return
        channel.destroyed = True
        self.cancel_owned(channel)
        channel.playback_queue.clear()
        if channel.current_playback is not None:
            self.finish_playback(channel.current_playback)
        if channel.recording is not None:
            self.finish_recording(channel.recording)
        if channel.bridge_id is not None:
            self.leave_bridge(channel)
        self.leave_stasis(channel, keep_subscription=True)
        channel.hangup_cause = cause
        channel.destroyed_at = self.now()
        self.emit(events.channel_destroyed(channel, cause), channels=[channel])
        channel.subscribers.clear()
        for app in self.registry.apps.values():
            app.channel_ids.discard(channel.id)
        # chan_pjsip_session_end drops the channel from the hold list; the channel's
        # destructor queues a state change of its device (main/channel.c)
        channel.on_hold = False
        on_device = self._device_channels.get(channel.device, [])
        if channel in on_device:
            on_device.remove(channel)
        self.devstate_changed(channel)
        for linked_id in [channel.local_peer_id, channel.dial_peer_id, *channel.snoop_ids]:
            linked = self.live_channel(linked_id or "")
            if linked is not None:
                self.far_end_hangup(linked, cause)
        self.changed()

    async def press(self, channel: Channel, digits: str, gap: float = 0.3) -> None:
        """The far end of ``channel`` presses ``digits``, ``gap`` clock seconds apart."""
        check_digits(digits)
        for i, digit in enumerate(digits):
            if i:
                await self.clock.sleep(gap)
            if not channel.live:
                return
            self.receive_dtmf(channel, digit)

    def receive_dtmf(self, channel: Channel, digit: str) -> None:
        channel.dtmf_received.append(digit)
        self.emit(events.channel_dtmf_received(channel, digit), channels=[channel])
        rec = channel.recording
        if rec is not None and rec.state == "recording" and rec.terminate_on in ("any", digit):
            self.finish_recording(rec)
        self.changed()

    # -- outgoing channels: create + dial, originate, snoop --------------------------

    def _outgoing(
        self,
        endpoint: str,
        *,
        channel_id: str | None,
        other_channel_id: str | None,
        caller: CallerId,
    ) -> Channel:
        try:
            tech, resource = parse_endpoint(endpoint)
        except ValueError:
            raise AriError(400, "Invalid endpoint specified") from None
        self._check_new_id(channel_id)
        self._check_new_id(other_channel_id)
        if tech != "Local" and self.endpoint_offline(endpoint):
            # chan_pjsip cannot make a channel to an endpoint with no contact: ast_request
            # fails, and create/originate answer ast_ari_response_alloc_failed
            raise AllocationFailed
        if tech != "Local":
            return self.new_channel(
                endpoint=endpoint,
                name=self._channel_name(tech, resource),
                state=DOWN,
                caller=caller,
                dialplan=DialplanLocation("default", "s", 1),
                direction="outbound",
                channel_id=channel_id,
            )
        target = resource.split("/", 1)[0]
        exten, _, context = target.partition("@")
        name = self._channel_name("Local", target)
        first = self.new_channel(
            endpoint=f"Local/{target}",
            name=f"{name};1",
            state=DOWN,
            caller=caller,
            dialplan=DialplanLocation("default", "s", 1),
            direction="outbound",
            channel_id=channel_id,
        )
        second = self.new_channel(
            endpoint=f"Local/{target}",
            name=f"{name};2",
            state=DOWN,
            caller=CallerId(caller.name, caller.number),
            dialplan=DialplanLocation(context or "default", exten, 1),
            direction="inbound",
            channel_id=other_channel_id,
        )
        first.local_peer_id, second.local_peer_id = second.id, first.id
        return first

    def _apply_variables(self, channel: Channel, variables: Mapping[str, Any]) -> None:
        for name, raw in variables.items():
            if isinstance(raw, dict):
                value = str(raw.get("value", ""))
                report = bool(raw.get("report_events", False))
            else:
                value, report = str(raw), False
            self._store_variable(channel, name, value, report)

    def create_channel(
        self,
        *,
        endpoint: str,
        app: str,
        app_args: str | None,
        channel_id: str | None,
        other_channel_id: str | None,
        originator: str | None,
        variables: Mapping[str, Any],
    ) -> Json:
        """``POST /channels/create``: a Down channel, not yet dialled, that enters Stasis
        on a thread of its own (resource_channels.c, ast_ari_channels_create ->
        ari_channel_thread): `stasis_delay` clock seconds later.

        Answers the snapshot taken before that thread starts (``app_name`` "");
        ``StasisStart`` follows on the websocket, after or before the answer.
        A PJSIP endpoint that cannot be called (no contact: the ``offline``
        script) is refused by the channel driver: 500 ``Allocation failed``.
        """
        channel = self._outgoing(
            endpoint, channel_id=channel_id, other_channel_id=other_channel_id, caller=CallerId()
        )
        channel.created_by_ari = True
        channel.dialstring = parse_endpoint(endpoint)[1]
        origin = self.live_channel(originator or "")
        if origin is not None:
            origin.subscribers.add(app)
            channel.language = origin.language
            # the originator is the request's requestor (resource_channels.c): its linkedid
            channel.linkedid = origin.linkedid or origin.id
        self._apply_variables(channel, variables)
        channel.subscribers.add(app)
        # ast_ari_channels_create subscribes the app to the channel and the originator
        self._request_interest[(app, channel.id)] += 1
        if origin is not None:
            self._request_interest[(app, origin.id)] += 1
        snapshot = channel.snapshot()
        channel.entering_stasis = True
        self.spawn(self._enter_created(channel, app, app_args.split(",") if app_args else []))
        self.changed()
        return snapshot

    async def _enter_created(self, channel: Channel, app: str, args: list[str]) -> None:
        """The created channel's Stasis thread: StasisStart (res_stasis.c,
        stasis_app_exec), or a hangup when the app is not connected by then."""
        await self.clock.sleep(self.stasis_delay)
        channel.entering_stasis = False
        if not channel.live:
            return
        registered = self.registry.get(app)
        if registered is None or not registered.active:
            log.info("stasis failed for a created channel", app=app, channel=channel.name)
            self.destroy(channel, NORMAL_CLEARING)
            return
        self.enter_stasis(channel, app, args)
        if channel.hangup_pending is not None:  # hung up before it got here
            self.destroy(channel, channel.hangup_pending)

    def dial(self, channel: Channel, caller_id: str | None, timeout: int) -> None:
        """``POST /channels/{id}/dial``: call the created channel's endpoint.

        resource_channels.c, ast_ari_channels_dial: the state is checked before
        the dial string.  (Asterisk accepts a second dial while the channel is
        still Down and calls it again; what then happens is the driver's: the
        simulator refuses it.)
        """
        if channel.state not in (DOWN, "Reserved") or channel.dialed:
            raise AriError(409, "Channel is not in the 'Down' state")
        if not channel.created_by_ari:
            raise AriError(409, "Dialing a channel not created by ARI")
        caller = self.live_channel(caller_id or "")
        if caller is not None:
            channel.connected = CallerId(caller.caller.name, caller.caller.number)
            channel.language = caller.language
        channel.dialed = True
        if channel.tech == "Local" and self.script_for(channel.endpoint).kind == "offline":
            self.spawn(self._fail_call(channel), owner=channel)
            return
        self.emit(events.dial(channel, "", dialstring=channel.dialstring), channels=[channel])
        self._run_endpoint(channel, timeout if timeout > 0 else None, lambda _: None)
        self.changed()

    async def _fail_call(self, channel: Channel) -> None:
        await self.clock.sleep(0)
        self.call_failed(channel)

    def _run_endpoint(
        self, channel: Channel, timeout: float | None, on_answer: Callable[[Channel], None]
    ) -> None:
        script = self.script_for(channel.endpoint)
        self.spawn(run_outgoing(self, channel, script, timeout, on_answer), owner=channel)
        if script.confirm_key is not None:
            self.spawn(run_confirm(self, channel, script), owner=channel)

    def originate(
        self,
        *,
        endpoint: str,
        app: str | None,
        app_args: str | None,
        caller_id: str | None,
        timeout: int,
        channel_id: str | None,
        other_channel_id: str | None,
        extension: str | None,
        context: str | None,
        priority: int | None,
        label: str | None,
        originator: str | None,
        variables: Mapping[str, Any],
    ) -> Json:
        """``POST /channels``: dial now; into Stasis (or the dialplan) once answered."""
        if app and (extension or context or priority or label):
            raise AriError(400, "'app' is mutually exclusive with dialplan parameters")
        channel = self._outgoing(
            endpoint,
            channel_id=channel_id,
            other_channel_id=other_channel_id,
            caller=CallerId.parse(caller_id) if caller_id else CallerId(),
        )
        origin = self.live_channel(originator or "")
        if origin is not None:
            channel.language = origin.language
            if app:
                origin.subscribers.add(app)
        self._apply_variables(channel, variables)
        if app:
            channel.subscribers.add(app)
            # ari_channels_handle_originate_with_id subscribes the app to the channel
            # and to a Local channel's other half
            self._request_interest[(app, channel.id)] += 1
            if channel.local_peer_id is not None:
                self._request_interest[(app, channel.local_peer_id)] += 1
        snapshot = channel.snapshot()
        resource = parse_endpoint(endpoint)[1]
        self.emit(events.dial(channel, "", dialstring=resource), channels=[channel])
        args = app_args.split(",") if app_args else []
        where = DialplanLocation(context or "default", extension or "s", priority or 1, label=label)

        def answered(ch: Channel) -> None:
            if not app:
                self._continue_to(ch, where)
                return
            registered = self.registry.get(app)
            if registered is not None and registered.active:
                self.enter_stasis(ch, app, args)
            else:
                self.destroy(ch, NORMAL_CLEARING)

        self._run_endpoint(channel, None if timeout < 0 else float(timeout or 30), answered)
        self.changed()
        return snapshot

    def snoop(
        self,
        target: Channel,
        *,
        app: str | None,
        app_args: str | None,
        spy: str,
        whisper: str,
        snoop_id: str | None,
    ) -> Json:
        """``POST /channels/{id}/snoop``: a ``Snoop/...`` channel, Up, in ``app``."""
        if spy not in SNOOP_DIRECTIONS:
            raise AriError(400, "Invalid direction specified for spy")
        if whisper not in SNOOP_DIRECTIONS:
            raise AriError(400, "Invalid direction specified for whisper")
        if spy == "none" and whisper == "none":
            raise AriError(400, "Direction must be specified for at least spy or whisper")
        if not app:
            raise AriError(400, "Application name is required")
        self._check_new_id(snoop_id)
        channel = self.new_channel(
            endpoint=f"Snoop/{target.id}",
            name=self._channel_name("Snoop", target.id),
            state=UP,
            caller=CallerId(),
            dialplan=DialplanLocation("default", "s", 1),
            direction="outbound",
            channel_id=snoop_id,
        )
        target.snoop_ids.append(channel.id)
        snapshot = channel.snapshot()
        registered = self.registry.get(app)
        if registered is not None and registered.active:
            self.enter_stasis(channel, app, app_args.split(",") if app_args else [])
        self.changed()
        return snapshot

    # -- dialplan --------------------------------------------------------------------

    def continue_in_dialplan(
        self,
        channel: Channel,
        *,
        context: str | None,
        extension: str | None,
        priority: int | None,
        label: str | None,
    ) -> None:
        """``POST /channels/{id}/continue``: leave Stasis for a place in the dialplan."""
        here = channel.dialplan
        if priority is None or priority <= 0:
            priority = 1 if (context or extension) else here.priority + 1
        where = DialplanLocation(context or here.context, extension or here.exten, priority)
        where.label = label
        channel.playback_queue.clear()
        if channel.current_playback is not None:
            self.finish_playback(channel.current_playback)
        if channel.bridge_id is not None:
            self.leave_bridge(channel)
        self.leave_stasis(channel, keep_subscription=False)
        self._continue_to(channel, where)

    def _continue_to(self, channel: Channel, where: DialplanLocation) -> None:
        channel.continued_to = where
        channel.dialplan = DialplanLocation(where.context, where.exten, where.priority)
        self.changed()

    # -- variables ---------------------------------------------------------------------

    def _store_variable(self, channel: Channel, name: str, value: str, report: bool) -> None:
        match name:
            case "CALLERID(name)":
                channel.caller.name = value
            case "CALLERID(num)" | "CALLERID(number)":
                channel.caller.number = value
            case "CHANNEL(language)":
                channel.language = value
            # func_callerid.c, connectedline_write: the party's name or number (option
            # "i": set without sending an update to the other side)
            case "CONNECTEDLINE(name)" | "CONNECTEDLINE(name,i)":
                channel.connected.name = value
            case "CONNECTEDLINE(num)" | "CONNECTEDLINE(num,i)":
                channel.connected.number = value
        channel.variables[name] = value
        if report:
            channel.reported_variables.add(name)

    async def set_variable_in_turn(
        self, channel: Channel, name: str, value: str, report: bool
    ) -> None:
        """``POST /channels/{id}/variable``: Asterisk sets it on the channel's Stasis
        control thread (res/stasis/control.c, ``stasis_app_control_set_channel_var`` ->
        ``stasis_app_send_command``, which waits for the command), after the commands
        queued before it -- a playback among them runs until its media ends
        (``stasis_app_control_play_uri`` queues ``play_uri``).  So a variable set while
        a prompt plays is set when that prompt and those queued behind it are done, or
        when the channel leaves: the command fails then, and resource_channels.c's
        ``ast_ari_channels_set_channel_var`` answers 400 "Failed to execute function"."""
        ahead = [p for p in (channel.current_playback, *channel.playback_queue) if p is not None]
        if ahead:
            await self.signal.wait_until(
                lambda: not channel.live or all(p.state not in ACTIVE_PLAYBACK for p in ahead)
            )
        if not channel.live:
            raise AriError(400, "Failed to execute function")
        self.set_variable(channel, name, value, report)
        self.changed()

    def set_variable(self, channel: Channel, name: str, value: str, report: bool) -> None:
        self._store_variable(channel, name, value, report)
        self.emit(events.channel_varset(channel, name, value), channels=[channel])
        self.changed()

    @staticmethod
    def get_variable(channel: Channel, name: str) -> str | None:
        builtin = {
            "CALLERID(num)": channel.caller.number,
            "CALLERID(number)": channel.caller.number,
            "CALLERID(name)": channel.caller.name,
            "CONNECTEDLINE(num)": channel.connected.number,
            "CONNECTEDLINE(name)": channel.connected.name,
            "CHANNEL(name)": channel.name,
            "CHANNEL(state)": channel.state,
            "CHANNEL(language)": channel.language,
            "UNIQUEID": channel.id,
            # funcs/func_channel.c: the linkedid if available, otherwise the uniqueid
            "CHANNEL(linkedid)": channel.linkedid or channel.id,
            "EXTEN": channel.dialplan.exten,
            "CONTEXT": channel.dialplan.context,
        }
        if name in channel.variables:
            return channel.variables[name]
        return builtin.get(name)

    # -- music on hold -------------------------------------------------------------------

    def start_moh(self, target: Channel | Bridge, moh_class: str | None) -> None:
        target.moh_class = moh_class or "default"
        self._heard_by(target, "moh", f"moh:{target.moh_class}")
        self.changed()

    def stop_moh(self, target: Channel | Bridge) -> None:
        target.moh_class = None
        self.changed()

    # -- playbacks -----------------------------------------------------------------------

    def play(
        self,
        target: Channel | Bridge,
        media: list[str],
        *,
        lang: str | None,
        playback_id: str | None,
    ) -> Playback:
        """Queue ``media`` on a channel or bridge; plays when earlier playbacks are done."""
        kind: Literal["channel", "bridge"] = "channel" if isinstance(target, Channel) else "bridge"
        language = lang or (target.language if isinstance(target, Channel) else "en")
        playback = Playback(
            id=playback_id or str(uuid.uuid4()),
            media=list(media),
            target_kind=kind,
            target_id=target.id,
            language=language,
        )
        self.playbacks[playback.id] = playback
        target.playback_queue.append(playback)
        self._start_next_playback(target)
        self.changed()
        return playback

    def _start_next_playback(self, target: Channel | Bridge) -> None:
        if target.current_playback is not None or not target.playback_queue or not target.live:
            return
        playback = target.playback_queue.pop(0)
        target.current_playback = playback
        playback.task = self.spawn(self._run_playback(playback, target), owner=target)

    async def _run_playback(self, playback: Playback, target: Channel | Bridge) -> None:
        for index in range(len(playback.media)):
            playback.index = index
            playback.state = "playing"
            if playback.started_at is None:
                playback.started_at = self.now()
            if isinstance(target, Channel):
                target.moh_class = None  # playing media stops a channel's music on hold
            self._emit_playback(playback, target)
            self._heard_by(target, "playback", playback.media_uri)
            self.changed()
            await self.clock.sleep(self.media_duration(playback.media_uri))
            if index + 1 < len(playback.media):
                playback.state = "continuing"
                self._emit_playback(playback, target)
        self.finish_playback(playback)

    def _playback_target(self, playback: Playback) -> Channel | Bridge | None:
        if playback.target_kind == "channel":
            return self.channels.get(playback.target_id)
        return self.bridges.get(playback.target_id)

    def _emit_playback(self, playback: Playback, target: Channel | Bridge) -> None:
        if isinstance(target, Channel):
            self.emit(events.playback(playback), channels=[target])
        else:
            self.emit(events.playback(playback), bridges=[target])

    def finish_playback(self, playback: Playback, *, stopped: bool = False) -> None:
        """End a playback (done, stopped or its target gone): ``PlaybackFinished``."""
        if playback.state not in ACTIVE_PLAYBACK:
            return
        playback.stopped = stopped
        if playback.task is not None and playback.task is not asyncio.current_task():
            playback.task.cancel()
        target = self._playback_target(playback)
        playback.state = "done"
        playback.finished_at = self.now()
        if target is None:
            return
        if target.current_playback is playback:
            target.current_playback = None
        elif playback in target.playback_queue:
            target.playback_queue.remove(playback)
        self._emit_playback(playback, target)
        self._start_next_playback(target)
        self.changed()

    # -- recordings ------------------------------------------------------------------------

    def record(
        self,
        channel: Channel,
        *,
        name: str,
        fmt: str,
        max_duration: int,
        max_silence: int,
        if_exists: str,
        beep: bool,
        terminate_on: str,
    ) -> LiveRecording:
        """``POST /channels/{id}/record``: starts after the beep, ends by limit, key or stop."""
        if max_duration < 0 or max_silence < 0:
            raise AriError(400, "maxDurationSeconds and maxSilenceSeconds cannot be negative")
        if if_exists not in ("fail", "overwrite", "append"):
            raise AriError(400, f"ifExists invalid: {if_exists}")
        if terminate_on not in ("none", "any", "*", "#"):
            raise AriError(400, f"terminateOn invalid: {terminate_on}")
        if fmt not in RECORDING_FORMATS:
            raise AriError(422, f"Unknown format: {fmt}")
        bridge = self.live_bridge(channel.bridge_id or "")
        if bridge is not None and len(bridge.channel_ids) > 1:
            raise AriError(409, "Channel is currently bridged with other channels")
        if self.active_recording(name) is not None or channel.recording is not None:
            raise AriError(409, f"Recording '{name}' already in progress")
        if name in self.stored_recordings and if_exists == "fail":
            raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
        rec = LiveRecording(
            name=name,
            format=fmt,
            channel_id=channel.id,
            max_duration=max_duration,
            max_silence=max_silence,
            if_exists=if_exists,
            beep=beep,
            terminate_on=terminate_on,
        )
        self.recordings[name] = rec
        channel.recording = rec
        rec.task = self.spawn(self._run_recording(rec, channel), owner=channel)
        self.changed()
        return rec

    async def _run_recording(
        self, rec: LiveRecording, channel: Channel | None, bridge: Bridge | None = None
    ) -> None:
        """A channel's recording, or a bridge's (its Recorder has no silence to end on)."""
        if rec.beep:
            await self.clock.sleep(BEEP_SECONDS)
        rec.state = "recording"
        rec.started_at = self.now()
        self.emit(
            events.recording(rec),
            channels=[channel] if channel is not None else [],
            bridges=[bridge] if bridge is not None else [],
        )
        self.changed()
        limits: list[float] = []
        if rec.max_duration > 0:
            limits.append(rec.max_duration)
        if rec.max_silence > 0 and channel is not None and channel.silent_after is not None:
            limits.append(channel.silent_after + rec.max_silence)
        if not limits:
            return  # records until stopped or the channel hangs up
        await self.clock.sleep(min(limits))
        self.finish_recording(rec)

    def record_bridge(
        self, bridge: Bridge, *, name: str, fmt: str, max_duration: int, if_exists: str,
        beep: bool, terminate_on: str,
    ) -> LiveRecording:  # fmt: skip
        """``POST /bridges/{id}/record`` (res/ari/resource_bridges.c, ast_ari_bridges_record).

        The format is checked first (422 "specified format is unknown on this
        system"), then terminateOn and ifExists (400), then the name
        (res/res_stasis_recording.c, stasis_app_control_record: 409 when a recording of
        that name is live, or stored and ``ifExists=fail``).  Asterisk puts a
        ``Recorder/`` channel into the bridge, IMMOVABLE and LONELY: it records
        until the bridge is destroyed, or until it is alone there (main/bridge_channel.c,
        bridge_channel_dissolve_check: lonely channels leave when no other is left).
        Its events go to the bridge's subscribers (the Recorder's topic is forwarded
        to the bridge's)."""
        if fmt not in RECORDING_FORMATS:
            raise AriError(422, "specified format is unknown on this system")
        if terminate_on not in ("none", "any", "*", "#"):
            raise AriError(400, "terminateOn invalid")
        if if_exists not in ("fail", "overwrite", "append"):
            raise AriError(400, "ifExists invalid")
        if self.active_recording(name) is not None or (
            name in self.stored_recordings and if_exists == "fail"
        ):
            raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
        rec = LiveRecording(
            name=name,
            format=fmt,
            channel_id="",
            max_duration=max_duration,
            max_silence=0,
            if_exists=if_exists,
            beep=beep,
            terminate_on=terminate_on,
            bridge_id=bridge.id,
        )
        self.recordings[name] = rec
        bridge.recording = rec
        rec.task = self.spawn(self._run_recording(rec, None, bridge), owner=bridge)
        self.changed()
        return rec

    def finish_recording(
        self, rec: LiveRecording, state: Literal["done", "canceled"] = "done"
    ) -> None:
        """End a recording: ``RecordingFinished`` and, unless canceled, a stored recording."""
        if rec.state not in ACTIVE_RECORDING:
            return
        if rec.task is not None and rec.task is not asyncio.current_task():
            rec.task.cancel()
        channel = self.channels.get(rec.channel_id)
        elapsed = 0.0 if rec.started_at is None else self.now() - rec.started_at
        rec.state = state
        rec.finished_at = self.now()
        rec.duration = round(elapsed)
        if channel is not None and rec.max_silence > 0 and channel.silent_after is not None:
            rec.talking_duration = min(rec.duration, round(channel.silent_after))
        if channel is not None and channel.recording is rec:
            channel.recording = None
        bridge = self.bridges.get(rec.bridge_id) if rec.bridge_id is not None else None
        if bridge is not None and bridge.recording is rec:
            bridge.recording = None
        self.emit(
            events.recording(rec),
            channels=[channel] if channel is not None else [],
            bridges=[bridge] if bridge is not None else [],
        )
        if state == "done":
            kept = self.stored_recordings.get(rec.name)
            previous = kept.duration if kept is not None and rec.if_exists == "append" else 0.0
            self.stored_recordings[rec.name] = StoredRecording(
                rec.name, rec.format, previous + elapsed
            )
            self._write_recording(rec.name, rec.format, previous + elapsed)
        self.changed()

    def _write_recording(self, name: str, fmt: str, seconds: float) -> None:
        """With a `recordings_dir`, a stored recording is a file there, as Asterisk's
        is in its recording folder (res/res_stasis_recording.c, stasis_app_control_record:
        ``ast_config_AST_RECORDING_DIR``/name.format).  The simulator's is silence, at
        most `RECORDED_MAX` seconds of it."""
        if self.recordings_dir is None or fmt != "wav":
            return
        frames = int(min(seconds, RECORDED_MAX) * 8000)
        path = self.recordings_dir / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(bytes(2 * frames))

    # -- bridges -----------------------------------------------------------------------------

    def create_bridge(self, *, types: list[str], bridge_id: str | None, name: str) -> Bridge:
        known = {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single"}
        unknown = [t for t in types if t not in known | {"sdp_label"}]
        if unknown:
            raise AriError(400, f"Invalid bridge type: {','.join(unknown)}")
        if bridge_id and self.live_bridge(bridge_id) is not None:
            raise AriError(409, "Bridge with the same bridgeId already exists")
        bridge = Bridge(
            id=bridge_id or str(uuid.uuid4()),
            bridge_type="holding" if "holding" in types else "mixing",
            name=name,
            created_at=self.now(),
            creationtime=self.timestamp(),
            attributes=list(types),
        )
        self.bridges[bridge.id] = bridge
        self.emit(events.bridge_created(bridge))
        self.changed()
        return bridge

    def destroy_bridge(self, bridge: Bridge) -> None:
        """``DELETE /bridges/{id}``: its channels leave first, then ``BridgeDestroyed``."""
        subscribers = self.bridge_subscribers(bridge) | self.registry.subscribed_to_all()
        self.cancel_owned(bridge)
        bridge.playback_queue.clear()
        if bridge.current_playback is not None:
            self.finish_playback(bridge.current_playback)
        for channel_id in list(bridge.channel_ids):
            self.leave_bridge(self.channels[channel_id])
        if bridge.recording is not None:
            self.finish_recording(bridge.recording)  # its Recorder is hung up with it
        bridge.destroyed = True
        event = events.bridge_destroyed(bridge)
        for name in sorted(subscribers):
            self.send(name, event)
        for app in self.registry.apps.values():
            app.bridge_ids.discard(bridge.id)
        self.changed()

    def add_to_bridge(self, bridge: Bridge, channel: Channel) -> None:
        if channel.bridge_id == bridge.id:
            return
        if channel.bridge_id is not None:
            self.leave_bridge(channel)
        bridge.channel_ids.append(channel.id)
        channel.bridge_id = bridge.id
        self.emit(
            events.channel_entered_bridge(bridge, channel), channels=[channel], bridges=[bridge]
        )
        if bridge.moh_class is not None:
            self._heard(channel, "moh", f"moh:{bridge.moh_class}")
        self.changed()

    def leave_bridge(self, channel: Channel) -> None:
        bridge = self.bridges.get(channel.bridge_id or "")
        channel.bridge_id = None
        if bridge is None or channel.id not in bridge.channel_ids:
            return
        bridge.channel_ids.remove(channel.id)
        self.emit(events.channel_left_bridge(bridge, channel), channels=[channel], bridges=[bridge])
        if not bridge.channel_ids and bridge.recording is not None:
            # the Recorder is LONELY: alone in the bridge, it leaves and its recording ends
            self.finish_recording(bridge.recording)
        self.changed()

    # -- blind transfer (a phone's REFER) ----------------------------------------------------

    def blind_transfer(self, transferer: Channel, exten: str, context: str) -> int:
        """A SIP phone on ``transferer`` sends REFER to ``exten`` in ``context``: Asterisk's
        blind transfer.  Returns the SIP answer the phone gets (res_pjsip_refer.c,
        xfer_response_code2sip): 200 Success, 400 Invalid, 500 Fail, and 404 when the
        extension does not exist.

        res_pjsip_refer.c, refer_incoming_blind_request: the target must exist
        (``ast_exists_extension``; in the simulator every extension whose
        ``Local/exten@context`` is not scripted ``offline``), else 404 and nothing
        else happens; then ``ast_bridge_transfer_blind(1, ...)`` (``is_external``
        true), `_transfer_blind`.  What the phone does afterwards (it hangs up after
        the NOTIFY 200) is the test's: `far_end_hangup`.
        """
        if transferer.tech != "PJSIP":
            raise ValueError("a REFER comes from a PJSIP channel")
        if self.script_for(f"Local/{exten}@{context}").kind == "offline":
            return REFER_NO_SUCH_EXTENSION
        result = self._transfer_blind(transferer, exten, context)
        self.changed()
        return REFER_RESPONSES[result]

    def _transfer_blind(self, transferer: Channel, exten: str, context: str) -> str:
        """main/bridge.c, ast_bridge_transfer_blind, for a bridge made over ARI.

        The message is made first (ast_blind_transfer_message_create: the
        transferer's snapshot now).  No bridge: result Invalid.  Else the bridge's
        snapshot and, on a two-party 1TO1MIX bridge, the transferee's
        (``ast_bridge_peer``); the transferer is taken off hold
        (`_write_unhold`: ``ChannelUnhold``); parking is tried (try_parking: the
        simulator has no parking lot, so it fails and the transfer goes on); fewer
        than two channels: result Invalid.  ARI bridges carry
        AST_BRIDGE_FLAG_TRANSFER_BRIDGE_ONLY (res_stasis.c, bridge_create_common),
        so after ``set_transfer_variables_all`` the bridge path runs
        (`_blind_transfer_bridge`) whatever the number of channels.  At the end the
        message is published whatever the result (label ``publish``):
        ``BridgeBlindTransfer`` (stasis_bridges.c, blind_transfer_to_json), which
        res/stasis/app.c, bridge_blind_transfer_handler passes to an application
        subscribed to the transferer, or to the bridge or one of the channels of the
        bridge's snapshot (and the simulator to ``subscribeAll`` applications).
        """
        transferer_snapshot = transferer.snapshot()
        bridge = self.live_bridge(transferer.bridge_id or "")
        result = TRANSFER_INVALID
        bridge_snapshot: Json | None = None
        transferee: Json | None = None
        replace: Json | None = None
        members: list[Channel] = []
        if bridge is not None:
            bridge_snapshot = bridge.snapshot()
            members = [self.channels[i] for i in bridge.channel_ids]
            peer = self._bridge_peer(bridge, transferer)
            transferee = peer.snapshot() if peer is not None else None
            self._write_unhold(bridge, transferer)
            if len(bridge.channel_ids) > 1:
                self._set_transfer_variables_all(bridge, transferer)
                result, replace = self._blind_transfer_bridge(bridge, transferer, exten, context)
        event = _bridge_blind_transfer(
            transferer_snapshot,
            exten=exten,
            context=context,
            result=result,
            transferee=transferee,
            replace_channel=replace,
            bridge=bridge_snapshot,
        )
        self.emit(
            event,
            channels=[transferer, *members],
            bridges=[bridge] if bridge is not None else [],
        )
        return result

    def _blind_transfer_bridge(
        self, bridge: Bridge, transferer: Channel, exten: str, context: str
    ) -> tuple[str, Json]:
        """main/bridge.c, blind_transfer_bridge: a Local channel to ``exten@context`` is
        requested, called and imparted into the bridge in the transferer's place.

        ``ast_request("Local", ...)`` makes ``;1`` (Down) and ``;2`` (Ring), both at
        ``exten@context`` priority 1 (core_local.c, local_request ->
        core_unreal.c, ast_unreal_new_channels); ``;1`` takes the transferer's
        accountcode (ast_channel_req_accountcodes, REPLACEMENT).  The message's
        ``replace_channel`` is ``;1``'s snapshot now.  ``BLINDTRANSFER`` =
        the transferer's name is set on ``;1``, then res_pjsip_refer.c,
        refer_blind_callback sets ``SIPTRANSFER`` = ``yes``.  ``ast_call`` (core_local.c,
        local_call -> ast_unreal_call_setup: ``;2`` gets ``;1``'s caller id crossed
        over, its language and a copy of every variable) starts the dialplan on
        ``;2`` (`_run_transfer_target`).  Until ``;1`` is in Stasis no application
        hears these channels but one subscribed to all.

        ``ast_bridge_impart(bridge, local, transferer, ..._INDEPENDENT)``:
        res/stasis/stasis_bridge.c, bridge_stasis_push_peek stores the transferer's
        application and snapshot on ``;1``; ``;1`` is not in Stasis, so
        bridge_stasis_push refuses the push, queues the join to come and makes the
        after-bridge callback ``bridge_stasis_run_cb``: ``Stasis(<app>)`` with no
        arguments.  StasisStart carries ``replace_channel`` = that snapshot
        (res_stasis.c, send_start_msg_snapshots, which first drops one of the
        application's subscriptions to the transferer: `_unsubscribe_replaced`).
        The queued join (stasis_bridge.c, defer_bridge_add -> control.c,
        control_swap_channel_in_bridge) imparts ``;1`` swapping out the transferer
        (main/bridge_channel.c, bridge_channel_internal_push_full):
        ``ChannelLeftBridge`` (transferer), ``ChannelEnteredBridge`` (``;1``), then
        ``BLINDTRANSFER``, ``ATTENDEDTRANSFER`` and ``FORWARDERNAME`` are cleared on
        ``;1`` (a cleared non-empty variable publishes ``ChannelVarset`` ""). The
        transferer stays in its application, out of the bridge (control.c,
        internal_bridge_after_cb only forgets the bridge).

        An application that is not connected: ``Stasis()`` fails on ``;1``
        (stasis_app_exec: not active), ``bridge_channel_ind_thread`` finds no
        after-bridge goto and hangs it up; the impart itself succeeded, so the
        result is still Success and the transferer stays in the bridge.
        """
        target = f"{exten}@{context}"
        endpoint = f"Local/{target}"
        name = self._channel_name("Local", target)
        first = self.new_channel(
            endpoint=endpoint,
            name=f"{name};1",
            state=DOWN,
            caller=CallerId(),
            dialplan=DialplanLocation(context, exten, 1),
            direction="outbound",
        )
        second = self.new_channel(
            endpoint=endpoint,
            name=f"{name};2",
            state=RING,
            caller=CallerId(),
            dialplan=DialplanLocation(context, exten, 1),
            direction="inbound",
        )
        first.local_peer_id, second.local_peer_id = second.id, first.id
        if transferer.accountcode:
            first.accountcode = transferer.accountcode
        replace = first.snapshot()
        self._setvar_helper(first, "BLINDTRANSFER", transferer.name)
        self._setvar_helper(first, "SIPTRANSFER", "yes")
        # ast_unreal_call_setup: caller id and connected line cross over; the variables are
        # copied in the order of ;1's list, where pbx_builtin_setvar_helper inserts at the head
        second.caller = CallerId(first.connected.name, first.connected.number)
        second.connected = CallerId(first.caller.name, first.caller.number)
        second.language = first.language
        for variable, value in reversed(list(first.variables.items())):
            self._setvar_helper(second, variable, value)
        self.spawn(
            self._run_transfer_target(first, second, self.script_for(endpoint)), owner=second
        )
        app = transferer.stasis_app
        if app is None:  # push_peek finds no Stasis control for the swap: the impart fails
            self.destroy(first, 0)
            return TRANSFER_FAIL, replace
        replaced = transferer.snapshot()  # bridge_stasis_push_peek
        registered = self.registry.get(app)
        if registered is None or not registered.active:
            self.destroy(first, 0)  # ast_hangup: no hangup cause was ever set on ;1
            return TRANSFER_SUCCESS, replace
        self.enter_stasis(first, app, [], replace_channel=replaced)
        self.leave_bridge(transferer)
        self.add_to_bridge(bridge, first)
        for variable in ("BLINDTRANSFER", "ATTENDEDTRANSFER", "FORWARDERNAME"):
            self._setvar_helper(first, variable, None)
        return TRANSFER_SUCCESS, replace

    async def _run_transfer_target(
        self, first: Channel, second: Channel, script: EndpointScript
    ) -> None:
        """The dialplan the transfer's ``;2`` runs, as the `EndpointScript` of
        ``Local/exten@context`` says, heard through ``;1`` in the bridge.

        It starts on the next clock tick, after the swap: the far end's first
        answer takes a network round trip, the swap only Asterisk's own threads.

        - ``answer`` / ``noanswer``: the far end rings; ``;2`` indicates RINGING,
          core_unreal.c, unreal_queue_frame sets ``;1`` Ringing and queues the
          frame to it.  ``answer``: ``after`` seconds later ``;2`` is answered
          (main/channel.c, ast_raw_answer: the ANSWER frame is queued to ``;1``,
          then ``;2`` goes Up) and ``;1`` reads the ANSWER (__ast_read:
          ast_setstate Up).  With ``hangup_after`` the far end hangs up that long
          after: the dialplan ends, ``;2`` is hung up and with it ``;1``.
        - ``busy`` / ``congestion``: ``Busy()`` / ``Congestion()`` (main/pbx_builtins.c,
          indicate_busy, indicate_congestion): the BUSY / CONGESTION frame crosses to
          ``;1``, ``;2`` goes to state Busy and waits for a hangup; ``;1`` stays Down.

        Each control frame ``;1`` reads in the bridge is handled by `_bridge_control`.
        """
        await self.clock.sleep(0)
        if script.kind in ("busy", "congestion"):
            self._set_own_state(second, BUSY)
            self._bridge_control(first, "BUSY" if script.kind == "busy" else "CONGESTION")
            self.changed()
            return
        self._set_own_state(first, RINGING)
        self._bridge_control(first, "RINGING")
        self.changed()
        if script.kind != "answer":
            return  # rings until someone hangs up
        await self.clock.sleep(script.after)
        self._set_own_state(second, UP)
        second.answered_at = self.now()
        self._set_own_state(first, UP)
        first.answered_at = self.now()
        self._bridge_control(first, "ANSWER")
        self.changed()
        if script.hangup_after is not None:
            await self.clock.sleep(script.hangup_after)
            self.far_end_hangup(second, NORMAL_CLEARING)

    def _bridge_control(self, channel: Channel, status: str) -> None:
        """A RINGING, ANSWER, BUSY or CONGESTION frame ``channel`` reads in its bridge
        (main/bridge_channel.c, bridge_handle_trip): ``Dial`` with the channel as peer,
        no caller and no dialstring (ast_channel_publish_dial(NULL, chan, NULL, ...)),
        then the frame goes into the bridge.  simple_bridge gives it to the other
        channel (bridge_simple.c, simple_bridge_write), which indicates it
        (bridge_channel_handle_control): RINGING to a PJSIP channel re-evaluates its
        device (`indicate`), ANSWER answers one not yet Up; softmix and holding
        bridges drop control frames.  Outside a bridge the frame is read and dropped
        by the Stasis loop (res_stasis.c, stasis_app_exec): nothing."""
        bridge = self.live_bridge(channel.bridge_id or "")
        if bridge is None or not channel.live:
            return
        self.emit(events.dial(channel, status), channels=[channel])
        if bridge.technology != "simple_bridge":
            return
        for other in self._others_in(bridge, channel):
            if status == "RINGING":
                self.indicate(other, "ringing")
            elif status == "ANSWER" and other.state != UP:
                self._set_own_state(other, UP)
                other.answered_at = self.now()

    def _set_own_state(self, channel: Channel, state: str) -> None:
        """``ast_setstate`` on this one channel (main/channel.c): ``ChannelStateChange``,
        and its device re-evaluated -- unlike `_set_state`, the Local peer is left as
        it is."""
        if channel.state == state:
            return
        channel.state = state
        self.emit(events.channel_state_change(channel), channels=[channel])
        self.devstate_changed(channel)

    def _write_unhold(self, bridge: Bridge, transferer: Channel) -> None:
        """main/bridge_channel.c, ast_bridge_channel_write_unhold: ``ChannelUnhold`` for the
        transferer (ast_channel_publish_cached_blob, whether or not it was held), and an
        UNHOLD frame into the bridge.  simple_bridge hands it to the other channel
        (bridge_simple.c, simple_bridge_write), which indicates it
        (bridge_channel_handle_control): no longer held, and a PJSIP channel's device is
        re-evaluated (chan_pjsip_indicate); softmix and holding bridges drop it."""
        self.emit(
            {"type": "ChannelUnhold", "channel": transferer.snapshot()}, channels=[transferer]
        )
        if bridge.technology == "simple_bridge":
            for other in self._others_in(bridge, transferer):
                self.hold(other, False)

    def _set_transfer_variables_all(self, bridge: Bridge, transferer: Channel) -> None:
        """main/bridge.c, set_transfer_variables_all (blind): on every channel of the bridge
        ``BLINDTRANSFER`` is set -- on the transferer to its ``BRIDGEPEER``
        (`_bridgepeer`), on the others to the transferer's name -- and
        ``ATTENDEDTRANSFER`` cleared (ast_bridge_set_transfer_variables).  The
        simulator goes through the channels in the bridge's order (Asterisk's
        container of them is a hash: its order is not defined)."""
        bridgepeer = self._bridgepeer(bridge, transferer)
        for channel in [self.channels[i] for i in bridge.channel_ids]:
            value = bridgepeer if channel is transferer else transferer.name
            self._setvar_helper(channel, "BLINDTRANSFER", value)
            self._setvar_helper(channel, "ATTENDEDTRANSFER", None)

    def _bridgepeer(self, bridge: Bridge, channel: Channel) -> str:
        """``BRIDGEPEER`` of ``channel`` as main/bridge.c, set_bridge_peer_vars last set it
        (the simulator does not keep the variable, nor publish its ``ChannelVarset``):
        in a holding bridge none (set_bridge_peer_vars_holding; read as ""), with
        two channels the other's name, with more the names of the first
        ``MAX_BRIDGEPEER_CHANS`` but its own, comma separated
        (set_bridge_peer_vars_multiparty, fill_bridgepeer_buf)."""
        if bridge.bridge_type == "holding":
            return ""
        ids = bridge.channel_ids
        count = min(len(ids), MAX_BRIDGEPEER_CHANS)
        names = [self.channels[i].name for i in ids[:count]]
        own = min(ids.index(channel.id), count - 1)
        return ",".join(n for i, n in enumerate(names) if i != own)

    def _bridge_peer(self, bridge: Bridge, channel: Channel) -> Channel | None:
        """main/bridge.c, ast_bridge_peer_nolock: the other channel of a two-party bridge
        whose technology is 1TO1MIX or NATIVE (simple_bridge; not softmix, not
        holding_bridge), else none."""
        if bridge.technology != "simple_bridge" or len(bridge.channel_ids) != 2:
            return None
        if channel.id not in bridge.channel_ids:
            return None
        return self._others_in(bridge, channel)[0]

    def _others_in(self, bridge: Bridge, channel: Channel) -> list[Channel]:
        return [self.channels[i] for i in bridge.channel_ids if i != channel.id]

    def _setvar_helper(self, channel: Channel, name: str, value: str | None) -> None:
        """main/pbx_variables.c, pbx_builtin_setvar_helper: set ``name`` (``ChannelVarset``),
        or with no value delete it -- a ``ChannelVarset`` with "" only when it had a
        non-empty value."""
        old = channel.variables.pop(name, None)
        if value is not None:
            self._store_variable(channel, name, value, report=False)
            self.emit(events.channel_varset(channel, name, value), channels=[channel])
        elif old:
            self.emit(events.channel_varset(channel, name, ""), channels=[channel])

    def _unsubscribe_replaced(self, app: str, channel_id: str) -> None:
        """res/stasis/app.c, app_unsubscribe_channel_id -> unsubscribe: one "interested"
        count of the application's forward of the channel goes; at none the forward is
        cancelled and the application hears no more of the channel's own events
        (ChannelHangupRequest, ChannelStateChange, ChannelDestroyed ...).  Its
        ``StasisEnd`` still comes (res_stasis.c, app_send_end_msg publishes to the
        application's own topic), and so do the bridge's events while the application
        hears the bridge.  The counts: the channel's own StasisStart
        (send_start_msg_snapshots), each create/originate request that subscribed the
        application (`_request_interest`), an explicit subscription.  An application
        subscribed to all channels has no per-channel forward and keeps hearing it."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        self._request_interest[(app, channel_id)] -= 1
        registered = self.registry.get(app)
        explicit = registered is not None and channel_id in registered.channel_ids
        interest = (
            int(channel.stasis_app == app)
            + self._request_interest[(app, channel_id)]
            + int(explicit)
        )
        if interest <= 0:
            channel.subscribers.discard(app)

    # -- applications ---------------------------------------------------------------------------

    def application_json(self, app: Application) -> Json:
        """The application as ARI's ``Application`` model shows it."""
        return {
            "name": app.name,
            "channel_ids": sorted(
                c.id for c in self.channels.values() if c.live and app.name in c.subscribers
            ),
            "bridge_ids": sorted(
                b.id
                for b in self.bridges.values()
                if b.live and app.name in self.bridge_subscribers(b)
            ),
            "endpoint_ids": sorted(app.endpoint_ids),
            "device_names": sorted(app.device_names),
            "events_allowed": [{"type": t} for t in app.allowed],
            "events_disallowed": [{"type": t} for t in app.disallowed],
        }

    def subscribe(self, app: Application, source: str) -> None:
        """One ``eventSource`` of ``POST /applications/{app}/subscription`` (res_stasis.c,
        app_subscribe: the source's ``find`` failing is 422 ``Event source does not
        exist``, resource_applications.c).

        ``deviceState:<name>`` never fails: res_stasis_device_state.c's
        ``find_device_state`` makes a subscription object for any name, a device
        that does not exist included, and ``deviceState:`` with no name subscribes
        to every device (``DEVICE_STATE_ALL``); subscribing again by the same name,
        or by any name while subscribed to every device, changes nothing
        (subscribe_device_state).
        """
        scheme, _, ident = source.partition(":")
        match scheme:
            case "channel":
                channel = self.live_channel(ident)
                if channel is None:
                    raise AriError(422, "Event source does not exist")
                channel.subscribers.add(app.name)
                app.channel_ids.add(ident)
            case "bridge":
                bridge = self.live_bridge(ident)
                if bridge is None:
                    raise AriError(422, "Event source does not exist")
                bridge.subscribers.add(app.name)
                app.bridge_ids.add(ident)
            case "endpoint":
                if not ident or ("/" in ident and self.endpoint_json(ident) is None):
                    raise AriError(422, "Event source does not exist")
                app.endpoint_ids.add(ident)
            case "deviceState":
                if not app.subscribed_to_device(ident or devices.DEVICE_STATE_ALL):
                    app.device_names.add(ident or devices.DEVICE_STATE_ALL)
            case _:
                raise AriError(400, "Invalid event source URI scheme")
        self.changed()

    def unsubscribe(self, app: Application, source: str) -> None:
        """One ``eventSource`` of ``DELETE /applications/{app}/subscription``: a source the
        application is not subscribed to is 422 ``Event source was not subscribed to``
        (res_stasis.c, app_unsubscribe: ``is_subscribed`` fails ->
        STASIS_ASR_EVENT_SOURCE_NOT_FOUND; resource_applications.c).  A device counts
        as subscribed when the application hears every device; then only a
        subscription by that very name is removed (res_stasis_device_state.c,
        is_subscribed_device_state, unsubscribe_device_state)."""
        scheme, _, ident = source.partition(":")
        match scheme:
            case "channel":
                if ident not in app.channel_ids:
                    raise AriError(422, "Event source was not subscribed to")
                app.channel_ids.discard(ident)
                channel = self.live_channel(ident)
                if channel is not None and channel.stasis_app != app.name:
                    channel.subscribers.discard(app.name)
            case "bridge":
                if ident not in app.bridge_ids:
                    raise AriError(422, "Event source was not subscribed to")
                app.bridge_ids.discard(ident)
                bridge = self.bridges.get(ident)
                if bridge is not None:
                    bridge.subscribers.discard(app.name)
            case "endpoint":
                if ident not in app.endpoint_ids:
                    raise AriError(422, "Event source was not subscribed to")
                app.endpoint_ids.discard(ident)
            case "deviceState":
                name = ident or devices.DEVICE_STATE_ALL
                if not app.subscribed_to_device(name):
                    raise AriError(422, "Event source was not subscribed to")
                app.device_names.discard(name)
            case _:
                raise AriError(400, "Invalid event source URI scheme")
        self.changed()

    # -- endpoints and device states ---------------------------------------------------------------

    def endpoint_names(self) -> list[str]:
        """The endpoints the simulated Asterisk has: the trunk, every scripted or
        (un)registered one, and every one a channel was made on since the (re)start."""
        names = {DEFAULT_TRUNK, *self.endpoint_scripts, *self.registrations}
        names |= self._channel_endpoints
        return sorted(names)

    def endpoint_offline(self, endpoint: str) -> bool:
        """No contact to call: scripted ``offline``, or unregistered (`set_registered`)."""
        if self.script_for(endpoint).kind == "offline":
            return True
        return self.registrations.get(self._endpoint_device(endpoint)) is False

    @staticmethod
    def _endpoint_device(endpoint: str) -> str:
        """``PJSIP/201`` for ``PJSIP/201``, ``PJSIP/trunk`` for ``PJSIP/7916...@trunk``."""
        tech, _, resource = endpoint.partition("/")
        if tech in ("PJSIP", "SIP"):
            resource = resource.rpartition("@")[2]
        return f"{tech}/{resource}"

    def endpoint_json(self, endpoint: str) -> Json | None:
        if endpoint not in self.endpoint_names():
            return None
        tech, resource = parse_endpoint(endpoint)
        return {
            "technology": tech,
            "resource": resource,
            "state": "offline" if self.endpoint_offline(endpoint) else "online",
            "channel_ids": [
                c.id for c in self.channels.values() if c.live and c.endpoint == endpoint
            ],
        }

    def script_endpoint(self, endpoint: str, script: EndpointScript) -> None:
        """How ``endpoint`` behaves when dialled.  ``offline`` is an endpoint with no
        contact: scripting a known endpoint ``offline`` (or back) changes its device
        state as `set_registered` does; a new endpoint is configured so from the start."""
        self.endpoint_scripts[endpoint] = script
        self._endpoint_state_maybe_changed(endpoint)
        self.changed()

    def set_registered(self, endpoint: str, registered: bool) -> None:
        """The phone at ``endpoint`` registers (has a contact) or unregisters (has none).

        res_pjsip/pjsip_options.c: an endpoint is online while one of its AORs has
        an available contact, offline otherwise; on a change
        ``ast_sip_persistent_endpoint_update_state`` (res_pjsip/pjsip_configuration.c)
        sets the endpoint's state and queues a state change of ``PJSIP/<endpoint>``
        (``ast_devstate_changed``).  An offline endpoint cannot be called (create and
        originate answer 500 ``Allocation failed``; a dialplan ``Dial()`` fails).
        An endpoint the simulator did not know yet is configured so from the start
        (no state change).
        """
        parse_endpoint(endpoint)
        self.registrations[endpoint] = registered
        self._endpoint_state_maybe_changed(endpoint)
        self.changed()

    def _endpoint_state_maybe_changed(self, endpoint: str) -> None:
        device = self._endpoint_device(endpoint)
        if not device.startswith("PJSIP/"):
            return
        if device not in self.device_cache:
            self._configured(device)  # a new endpoint: as it would have been at load
            return
        self.devstate_changed_literal(device)

    # -- device states ------------------------------------------------------------------------

    def _load_device_states(self) -> None:
        """At load chan_pjsip queues a state change of every endpoint (chan_pjsip.c,
        load_module -> update_devstate) and res_stasis_device_state.c publishes the
        ``Stasis:`` states kept in astdb (populate_cache, so they outlive a restart):
        the cache starts with their states; no application is there to hear them."""
        for name in self.endpoint_names():
            self._configured(self._endpoint_device(name))
        self.device_cache.update(self.device_states)

    def _configured(self, device: str) -> None:
        """An endpoint the simulator had not seen yet counts as configured from the start:
        its state is in the cache (as `_load_device_states` puts it) before the change
        that made it known, so that change is compared with it, not with nothing."""
        if device in self.device_cache or not device.startswith("PJSIP/"):
            return
        resource = device.partition("/")[2]
        if "@" in resource or "/" in resource or not resource:
            return
        self.device_cache[device] = (
            devices.UNAVAILABLE if self.endpoint_offline(device) else devices.NOT_INUSE
        )

    def device_state(self, name: str) -> str:
        """``GET /deviceStates/{name}`` (resource_device_states.c -> ``ast_device_state``,
        main/devicestate.c): the cached state of the device if there is one other than
        UNKNOWN, else the state computed now (`compute_device_state`)."""
        cached = self.device_cache.get(name, devices.UNKNOWN)
        if cached != devices.UNKNOWN:
            return cached
        return self.compute_device_state(name)

    def compute_device_state(self, name: str) -> str:
        """``_ast_device_state(name, 0)`` (main/devicestate.c).

        ``Tech/resource``: the channel driver's ``devicestate`` callback (a
        technology Asterisk does not have: INVALID), and when that says UNKNOWN,
        ``ast_parse_device_state``.  ``Provider:name`` (no ``/``): the provider's
        callback -- ``Stasis:`` (res_stasis_device_state.c: the state stored by
        ``PUT /deviceStates``), ``Custom:`` (func_devstate.c: astdb, which ARI
        cannot set: UNKNOWN); another provider, or neither ``/`` nor ``:``: INVALID.
        """
        tech, slash, number = name.partition("/")
        if not slash:
            provider, colon, address = name.partition(":")
            if not colon:
                return devices.INVALID
            match provider.lower():
                case "stasis":
                    return devices.devstate_val(self.device_states.get(f"Stasis:{address}", ""))
                case "custom":
                    return devices.UNKNOWN
                case _:
                    return devices.INVALID
        match tech.lower():
            case "pjsip":
                state = self._pjsip_devicestate(number)
            case "local":
                state = self._local_devicestate(number)
            case "dahdi":
                state = devices.UNKNOWN  # chan_dahdi.c, dahdi_devicestate: not an ISDN span
            case _:
                return devices.INVALID  # ast_get_channel_tech finds no such driver
        if state == devices.UNKNOWN:
            first = next(
                (c for c in self.channels.values() if c.live and c.name.startswith(f"{name}-")),
                None,
            )
            found = None if first is None else (first.state, first.on_hold)
            state = devices.parse_device_state(found)
        return state

    def _pjsip_devicestate(self, resource: str) -> str:
        """chan_pjsip.c, chan_pjsip_devicestate, for the endpoint ``resource``: its
        registration, and the state and hold of every channel on it."""
        endpoint = f"PJSIP/{resource}"
        known = endpoint in self.device_cache or endpoint in self.endpoint_names()
        exists = "@" not in resource and "/" not in resource and known
        return devices.pjsip_devicestate(
            exists=exists,
            online=not self.endpoint_offline(endpoint),
            channels=[(c.state, c.on_hold) for c in self._device_channels.get(endpoint, [])],
        )

    def _local_devicestate(self, data: str) -> str:
        """main/core_local.c, local_devicestate: INVALID without ``@context``; INUSE while a
        Local channel to that exten@context has been called (its ``;2`` half runs the
        dialplan), NOT_INUSE while one exists or the extension exists -- in the
        simulator every extension not scripted ``offline``."""
        exten, at, context = data.partition("@")
        if not at:
            return devices.INVALID
        target = f"Local/{exten}@{context.split('/', 1)[0]}"
        halves = [
            c
            for c in self._device_channels.get(target, [])
            if c.tech == "Local" and c.name.endswith(";1")
        ]
        if any(c.dialed or not c.created_by_ari for c in halves):
            return devices.INUSE
        if halves or self.script_for(target).kind != "offline":
            return devices.NOT_INUSE
        return devices.INVALID

    def devstate_changed(self, channel: Channel) -> None:
        """A change on ``channel`` that Asterisk follows with a state change of its device
        (main/channel.c: ast_setstate, the channel destructor; chan_pjsip_indicate).
        chan_dahdi's channels do not cache device states
        (AST_FLAG_DISABLE_DEVSTATE_CACHE): nothing is published for them."""
        if channel.tech == "DAHDI":
            return
        self.devstate_changed_literal(channel.device)

    def devstate_changed_literal(self, device: str) -> None:
        """``ast_devstate_changed_literal(AST_DEVICE_UNKNOWN, AST_DEVSTATE_CACHABLE, device)``
        (main/devicestate.c): the state is computed (do_state_change) and published."""
        self.publish_device_state(device, self.compute_device_state(device))

    def publish_device_state(self, device: str, state: str) -> None:
        """``ast_publish_device_state_full`` (main/devicestate.c): a state equal to the
        cached one (UNKNOWN when none is cached) is not published.  A published state
        becomes the device's aggregate (one Asterisk: ``device_state_aggregate_calc``
        of a single state) and reaches, as ``DeviceStateChanged``, every application
        subscribed to the device or to all devices, once per subscription that hears
        it (res_stasis_device_state.c, device_state_cb -> send_device_state)."""
        if self.device_cache.get(device, devices.UNKNOWN) == state:
            return
        self.device_cache[device] = state
        event = events.device_state_changed(device, state)
        for app in sorted(self.registry.apps.values(), key=lambda a: a.name):
            for _ in range(app.device_subscriptions(device)):
                self.send(app.name, event)
        self.changed()

    def set_stasis_device_state(self, name: str, value: str) -> None:
        """``PUT /deviceStates/{name}`` (res_stasis_device_state.c,
        stasis_app_device_state_update): only ``Stasis:`` devices (any case), 409
        ``Uncontrolled device specified``; no name after the scheme, 404 ``Device name
        is missing``; a value ``ast_devstate_val`` does not know (UNKNOWN too), 500
        ``Unknown device``.  Stored, then published as that state."""
        prefix, address = name[: len("Stasis:")], name[len("Stasis:") :]
        if prefix.lower() != "stasis:":
            raise AriError(409, "Uncontrolled device specified")
        if not address:
            raise AriError(404, "Device name is missing")
        state = devices.devstate_val(value)
        if state == devices.UNKNOWN:
            raise AriError(500, "Unknown device")
        device = f"Stasis:{address}"
        self.device_states[device] = state
        self.publish_device_state(device, state)
        self.changed()

    def delete_stasis_device_state(self, name: str) -> None:
        """``DELETE /deviceStates/{name}`` (stasis_app_device_state_delete): 409 and 404 as
        for PUT; the cached state is cleared (``ast_device_state_clear_cache``; none
        cached: nothing else happens, 204), the stored one deleted; the state change
        it then queues computes UNKNOWN, equal to the (now empty) cache: no event."""
        prefix, address = name[: len("Stasis:")], name[len("Stasis:") :]
        if prefix.lower() != "stasis:":
            raise AriError(409, "Uncontrolled device specified")
        if not address:
            raise AriError(404, "Device name is missing")
        device = f"Stasis:{address}"
        if self.device_cache.pop(device, None) is None:
            return
        self.device_states.pop(device, None)
        self.changed()

    # -- calls the phones make -----------------------------------------------------------------

    def call_from(
        self,
        endpoint: str,
        *,
        called: str,
        to: str | None,
        context: str,
    ) -> Channel:
        """The phone at ``endpoint`` makes a call that is not Switchboard's: a channel on
        that endpoint that never enters Stasis.

        chan_pjsip.c, chan_pjsip_incoming_request: the channel is made in state
        ``Ring`` (``PJSIP/201-0000000N``) and runs the dialplan at ``context``,
        ``called`` (``s`` if empty).  Without ``to`` the dialplan answers it
        itself (``Answer()``, voicemail, a conference): Up at once.  With ``to``
        (``PJSIP/202``, ``PJSIP/7495...@trunk``) it runs ``Dial(to)`` (app_dial.c,
        dial_exec_full): the callee is made ``Down`` and behaves as its
        `EndpointScript` says (``Dial`` events name the caller); its ringing is
        indicated to the caller (chan_pjsip_indicate re-evaluates the caller's
        device); when it answers the caller is answered before the two are bridged
        (main/features.c, pre_bridge_setup); when either hangs up so does the other.
        A callee that cannot be made (an offline PJSIP endpoint: chan_pjsip_request
        fails with AST_CAUSE_NO_ROUTE_DESTINATION) or that refuses the call ends
        the caller's call with that cause (``Dial()`` returns, the dialplan ends).
        Hang the phone up with `far_end_hangup`.
        """
        tech, resource = parse_endpoint(endpoint)
        if tech != "PJSIP" or (to is not None and parse_endpoint(to)[0] != "PJSIP"):
            raise ValueError("a phone's call is from and to PJSIP endpoints")
        number = resource.rpartition("@")[2]
        caller = self.new_channel(
            endpoint=endpoint,
            name=self._channel_name(tech, resource),
            state=RING,
            caller=CallerId("", number),
            dialplan=DialplanLocation(
                context, called or "s", 1, app_name="Dial" if to else "", app_data=to or ""
            ),
            direction="inbound",
        )
        if to is None:
            self._set_state(caller, UP)  # the dialplan's Answer()
            caller.answered_at = self.now()
            self.changed()
            return caller
        peer_tech, peer_resource = parse_endpoint(to)
        if self.endpoint_offline(to):
            self.spawn(self._end_call_soon(caller, NO_ROUTE_DESTINATION), owner=caller)
            self.changed()
            return caller
        peer = self.new_channel(
            endpoint=to,
            name=self._channel_name(peer_tech, peer_resource),
            state=DOWN,
            caller=CallerId("", number),
            dialplan=DialplanLocation(context, called or "s", 1),
            direction="outbound",
        )
        peer.dialstring = peer_resource
        peer.dialed = True
        caller.dial_peer_id, peer.dial_peer_id = peer.id, caller.id
        self.emit(events.dial(peer, "", dialstring=peer_resource, caller=caller), channels=[peer])

        def answered(_: Channel) -> None:
            if caller.live and caller.state != UP:
                self._set_state(caller, UP)
                caller.answered_at = self.now()
                self.changed()

        self._run_endpoint(peer, None, answered)
        self.changed()
        return caller

    async def _end_call_soon(self, channel: Channel, cause: int) -> None:
        await self.clock.sleep(0)
        self.far_end_hangup(channel, cause)

    # -- indications -----------------------------------------------------------------------

    def hold(self, channel: Channel, on: bool) -> None:
        """``POST``/``DELETE /channels/{id}/hold`` (control.c, app_control_hold/unhold:
        ast_indicate HOLD/UNHOLD; no ChannelHold event -- that is ast_queue_hold's).
        channel.c keeps the hold state; chan_pjsip_indicate adds the channel to (or
        removes it from) its hold list and queues a state change of its device,
        which counts it ONHOLD.  (chan_pjsip also starts music on hold on it; not
        modelled.)"""
        channel.on_hold = on
        if channel.tech == "PJSIP":
            self.devstate_changed(channel)
        self.changed()

    def indicate(self, channel: Channel, condition: Literal["ringing", "progress"]) -> None:
        """``ast_indicate`` RINGING or PROGRESS (ARI ``/ring``, ``/progress``, a Dial()'s
        ringback): chan_pjsip_indicate queues a state change of the endpoint's device."""
        if channel.live and channel.tech == "PJSIP":
            self.devstate_changed(channel)

    def asterisk_info(self) -> Json:
        return {
            "build": {
                "os": "Linux",
                "kernel": "6.1.0-sim",
                "options": "",
                "machine": "x86_64",
                "date": "2025-01-01 00:00:00 UTC",
                "user": "asterisk-sim",
            },
            "system": {"version": ASTERISK_VERSION, "entity_id": self.asterisk_id},
            "config": {
                "name": "",
                "default_language": "en",
                "setid": {"user": "", "group": ""},
            },
            "status": {"startup_time": self.startup_time, "last_reload_time": self.startup_time},
        }


def _bridge_blind_transfer(
    transferer: Json,
    *,
    exten: str,
    context: str,
    result: str,
    transferee: Json | None,
    replace_channel: Json | None,
    bridge: Json | None,
) -> Json:
    """``BridgeBlindTransfer`` as main/stasis_bridges.c, blind_transfer_to_json builds it:
    ``channel`` (the transferer), ``exten``, ``context``, ``result``, ``is_external``
    (true: a REFER), then ``transferee``, ``replace_channel`` and ``bridge`` when the
    message has them.  (Here, not in `asterisk_sim.events`, only because that module was
    out of this change's reach.)"""
    event: Json = {
        "type": "BridgeBlindTransfer",
        "channel": transferer,
        "exten": exten,
        "context": context,
        "result": result,
        "is_external": True,
    }
    if transferee is not None:
        event["transferee"] = transferee
    if replace_channel is not None:
        event["replace_channel"] = replace_channel
    if bridge is not None:
        event["bridge"] = bridge
    return event
