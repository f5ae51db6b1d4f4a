"""`AsteriskSimulator`: start a simulated Asterisk on a port and drive its world from Python.

    sim = AsteriskSimulator(clock=ScaledClock(0.01))
    await sim.start()                       # sim.url -> "http://127.0.0.1:PORT"
    sim.script_endpoint("PJSIP/101", EndpointScript("busy"))
    channel_id = await sim.place_call(caller="79161112233", called="74951234567")
    await sim.wait_for(lambda s: s.channels[channel_id].state == "Up")
    await sim.stop()

The ARI client talks to ``sim.url`` over real HTTP and websockets; the test
plays the callers and the phones through this object and reads what happened
(``sim.requests``, ``sim.channels`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aiohttp import web

from asterisk_sim.errors import UnknownChannel
from asterisk_sim.model import (
    NORMAL_CLEARING,
    Bridge,
    Channel,
    Json,
    LiveRecording,
    Playback,
    RequestRecord,
    StoredRecording,
)
from asterisk_sim.pbx import DEFAULT_PHONE_CONTEXT, STASIS_DELAY, Pbx
from asterisk_sim.script import CallerScript, EndpointScript
from asterisk_sim.server import AriServer
from switchboard.clock import Clock


class AsteriskSimulator:
    """A test double of Asterisk 22 speaking ARI; every scripted delay is in ``clock`` seconds."""

    def __init__(
        self,
        clock: Clock | None = None,
        user: str = "switchboard",
        password: str = "secret",  # noqa: S107 - the test double's documented default
        app_durations: Mapping[str, float] | None = None,
        asterisk_id: str | None = None,
        stasis_delay: float = STASIS_DELAY,
        rest_over_websocket: bool = True,
        mailboxes: bool = True,
        recordings_dir: Path | None = None,
    ) -> None:
        """``stasis_delay``: clock seconds a created channel takes to enter Stasis (its
        StasisStart comes that long after the create's answer; a dial before it is 409).
        ``rest_over_websocket=False``: an Asterisk older than 20.14/21.9/22.4, which
        takes no requests on the events websocket.  ``mailboxes=False``: an Asterisk
        without res_ari_mailboxes (it needs res_mwi_external, not built by default),
        where ``/mailboxes`` is 404 ``Resource not found``.  ``recordings_dir``: stored
        recordings are written there as WAV files, as Asterisk writes them into its
        recording folder."""
        self.clock = clock if clock is not None else Clock()
        self.pbx = Pbx(self.clock, app_durations, asterisk_id, stasis_delay=stasis_delay)
        self.pbx.recordings_dir = recordings_dir
        self.server = AriServer(
            self.pbx,
            user=user,
            password=password,
            rest_over_websocket=rest_over_websocket,
            mailboxes=mailboxes,
        )
        self.user = user
        self.password = password
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: any free port); `url` tells where."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        runner = web.AppRunner(self.server.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0]
        self._url = f"http://{host}:{bound[1]}"

    async def stop(self) -> None:
        """Cut the websockets, cancel and await every scripted task, close the server."""
        if self._runner is None:
            return
        for connection in list(self.pbx.registry.connections):
            connection.abort()
        await self.pbx.cancel_all()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> AsteriskSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running simulator (ARI is under ``/ari``)."""
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ari/events"

    # -- the world: endpoints, callers ---------------------------------------------------

    def script_endpoint(self, endpoint: str, script: EndpointScript) -> None:
        """How ``endpoint`` (the exact dial string, e.g. ``PJSIP/101``) behaves when dialled.

        ``EndpointScript("offline")`` is a phone with no contact; scripting a known
        endpoint offline (or back) changes its device state like `unregister_endpoint`.
        """
        self.pbx.script_endpoint(endpoint, script)

    def unregister_endpoint(self, endpoint: str) -> None:
        """The phone at ``endpoint`` (``PJSIP/201``) loses its contact: the endpoint goes
        ``offline``, its device ``UNAVAILABLE`` (while it has no channel), and it can no
        longer be called.  An endpoint not known yet is configured so from the start."""
        self.pbx.set_registered(endpoint, False)

    def register_endpoint(self, endpoint: str) -> None:
        """The phone at ``endpoint`` registers again (undoes `unregister_endpoint`; an
        endpoint scripted ``offline`` stays offline)."""
        self.pbx.set_registered(endpoint, True)

    async def call_from(
        self,
        endpoint: str,
        called: str = "",
        *,
        to: str | None = None,
        context: str = DEFAULT_PHONE_CONTEXT,
    ) -> str:
        """The phone at ``endpoint`` (``PJSIP/201``) makes a call of its own -- internal,
        outbound, to voicemail -- that never enters Stasis; returns its channel id.

        Without ``to`` the dialplan answers it at once (state ``Up``).  With ``to``
        (``PJSIP/202``, ``PJSIP/74951234567@trunk``) the dialplan dials that
        endpoint, which rings and answers (or not) as its `EndpointScript` says, and
        the caller is answered when it answers; the callee's channel id is
        ``sim.channels[id].dial_peer_id``.  It lasts until either side hangs up
        (`hangup` on either channel id).  See `Pbx.call_from`.
        """
        return self.pbx.call_from(endpoint, called=called, to=to, context=context).id

    def mailbox(self, name: str) -> tuple[int, int] | None:
        """(old, new) messages of the mailbox ``PUT /mailboxes/{name}`` set; None: none."""
        return self.pbx.mailboxes.get(name)

    def device_state(self, device: str) -> str:
        """What ``GET /deviceStates/{device}`` answers now (``NOT_INUSE``, ``INUSE`` ...)."""
        return self.pbx.device_state(device)

    async def place_call(
        self,
        caller: str,
        called: str = "",
        *,
        caller_name: str = "",
        tech: str = "PJSIP/trunk",
        line: int | None = None,
        app_args: Sequence[str] | None = None,
        script: CallerScript | None = None,
        context: str | None = None,
        app: str | None = None,
    ) -> str:
        """An inbound call: a ``Ring`` channel that the dialplan sends to Stasis.

        ``line`` makes it analog line ``DAHDI/<line>-1`` (exten ``s`` unless
        ``called``).  StasisStart's args are ``app_args``, else ``[called]``
        (DAHDI: ``[]``).  ``app`` defaults to the most recently connected
        application; with none connected the call is kept as ``stasis_failed``
        (the dialplan's fallback) and nothing is raised.  Returns the channel id.
        """
        channel = self.pbx.place_call(
            caller=caller,
            caller_name=caller_name,
            called=called,
            tech=tech,
            line=line,
            app_args=list(app_args) if app_args is not None else None,
            script=script,
            context=context,
            app=app,
        )
        return channel.id

    async def press(self, channel_id: str, digits: str, gap: float = 0.3) -> None:
        """The far end of the channel presses ``digits`` (``gap`` clock seconds apart)."""
        await self.pbx.press(self._live(channel_id), digits, gap)

    async def hangup(self, channel_id: str, cause: int = NORMAL_CLEARING) -> None:
        """The far end of the channel hangs up."""
        self.pbx.far_end_hangup(self._live(channel_id), cause)

    async def blind_transfer(self, channel_id: str, exten: str, context: str) -> int:
        """The SIP phone on ``channel_id`` (a PJSIP channel) blind-transfers its call to
        ``exten`` in ``context``: its REFER, as res/res_pjsip_refer.c takes it
        (refer_incoming_blind_request -> main/bridge.c, ast_bridge_transfer_blind with
        ``is_external`` true).  Returns the SIP answer to the REFER
        (xfer_response_code2sip): 200 (Success), 400 (Invalid), 500 (Fail), or 404
        when the extension does not exist (``Local/exten@context`` scripted
        ``offline``; then nothing at all happens).

        In an ARI bridge (AST_BRIDGE_FLAG_TRANSFER_BRIDGE_ONLY: res_stasis.c,
        bridge_create_common) of two or more channels a Local channel
        ``Local/exten@context-N;1`` takes the transferer's place in the bridge, and
        its ``;2`` half runs the "dialplan": it behaves as the `EndpointScript` of
        ``Local/exten@context`` (rings at once, answers ``after`` seconds later,
        ``hangup_after``; busy/congestion leave ``;1`` Down).  The transferer's
        application receives, in this order (an application subscribed to all
        also hears ``;1``/``;2`` being made and their variables):

        1. ``ChannelUnhold`` (the transferer: ast_bridge_channel_write_unhold);
        2. ``ChannelVarset BLINDTRANSFER`` on each channel of the bridge, in the
           bridge's order: on the transferer its BRIDGEPEER (the others' names), on
           the others the transferer's name (set_transfer_variables_all);
        3. ``StasisStart`` for ``;1``: ``args`` ``[]``, state Down, dialplan
           ``exten@context`` running ``Stasis(<app>)``, ``replace_channel`` = the
           transferer (res/stasis/stasis_bridge.c, bridge_stasis_push_peek /
           bridge_stasis_run_cb);
        4. ``ChannelLeftBridge`` (the transferer; the bridge without it), then
           ``ChannelEnteredBridge`` (``;1``; the bridge with it, last) -- the swap
           of control.c, control_swap_channel_in_bridge;
        5. ``ChannelVarset BLINDTRANSFER ""`` on ``;1`` (bridge_channel.c,
           bridge_channel_internal_push_full clears it);
        6. ``BridgeBlindTransfer``: ``channel`` (the transferer, as it was before
           the transfer), ``exten``, ``context``, ``result`` "Success",
           ``is_external`` true, ``transferee`` (the other channel, two-party
           mixing bridge only), ``replace_channel`` (``;1`` as it was made: Down,
           in no application), ``bridge`` (before the transfer).

        This order is Asterisk's, not a race: ast_bridge_transfer_blind publishes
        BridgeBlindTransfer only when ``ast_bridge_impart`` returns, and the impart
        waits on a condition (main/bridge.c, bridge_channel_impart_wait) that is
        signalled only after ``;1``'s failed first push has run Stasis() on it and
        its second impart has swapped it in (bridge_channel_internal_join ->
        bridge_channel_impart_signal wakes every waiter on ``;1``).  Then, from the
        next clock tick, ``;1``'s ``ChannelStateChange`` Ringing, ``Dial RINGING``,
        later Up and ``Dial ANSWER`` (bridge_channel.c, bridge_handle_trip).

        The transferer stays alive and in its application, out of the bridge; the
        ``;1``'s StasisStart dropped one of the application's subscriptions to it,
        so an inbound transferer's own events (its hangup request, ChannelDestroyed)
        no longer reach the application -- only its ``StasisEnd`` -- while one the
        application created or originated is still heard.  Hang it up with
        `hangup`, as the phone does after the NOTIFY.

        Not in a bridge, or alone in one: ``BridgeBlindTransfer`` with result
        "Invalid" (400) and nothing changes (in a bridge, ``ChannelUnhold`` comes
        first).  See `Pbx.blind_transfer`.
        """
        return self.pbx.blind_transfer(self._live(channel_id), exten, context)

    def _live(self, channel_id: str) -> Channel:
        channel = self.pbx.live_channel(channel_id)
        if channel is None:
            raise UnknownChannel(f"no live channel {channel_id!r}")
        return channel

    # -- what happened -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every ARI request received, in order (``t`` in clock seconds)."""
        return self.pbx.requests

    @property
    def channels(self) -> dict[str, Channel]:
        """Every channel since the last (re)start, by id; gone ones have ``live == False``."""
        return self.pbx.channels

    @property
    def bridges(self) -> dict[str, Bridge]:
        return self.pbx.bridges

    @property
    def playbacks(self) -> dict[str, Playback]:
        return self.pbx.playbacks

    @property
    def recordings(self) -> dict[str, LiveRecording]:
        """Live recordings by name (finished ones keep their final state)."""
        return self.pbx.recordings

    @property
    def stored_recordings(self) -> dict[str, StoredRecording]:
        return self.pbx.stored_recordings

    @property
    def sent_events(self) -> list[Json]:
        """Every event delivered to an application, as it went on the wire."""
        return self.pbx.sent

    def live_channels(self) -> list[Channel]:
        return [c for c in self.pbx.channels.values() if c.live]

    def live_bridges(self) -> list[Bridge]:
        return [b for b in self.pbx.bridges.values() if b.live]

    def connected_apps(self) -> list[str]:
        return [app.name for app in self.pbx.registry.active()]

    def now(self) -> float:
        """Clock seconds since the simulator was made (the ``t`` of `requests`)."""
        return self.pbx.now()

    async def wait_for(
        self,
        predicate: Callable[[AsteriskSimulator], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - real seconds for a test to give up, not I/O
        what: str | None = None,
    ) -> None:
        """Wait (on every state change, never polling) until ``predicate(self)`` holds.

        ``timeout`` is in real seconds.  Raises TimeoutError naming ``what``
        (or the predicate) and the live channels, or the first scripted task
        that crashed.
        """
        try:
            await self.pbx.signal.wait_until(
                lambda: bool(self.pbx.task_errors) or predicate(self), within=timeout
            )
        except TimeoutError:
            live = ", ".join(f"{c.name}({c.state})" for c in self.live_channels()) or "none"
            label = what or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(
                f"timed out after {timeout} s waiting for {label}; live channels: {live}; "
                f"{len(self.requests)} ARI requests received"
            ) from None
        if self.pbx.task_errors:
            raise RuntimeError("a simulator task failed") from self.pbx.task_errors[0]

    # -- faults -------------------------------------------------------------------------------

    async def drop_websockets(self) -> None:
        """Cut every events websocket abruptly; the applications must reconnect. Calls stay up."""
        await self.server.drop_websockets()

    async def restart(self) -> None:
        """An Asterisk crash and restart: every channel, bridge and application is gone
        without an event, websockets are cut, and the server answers again at once."""
        await self.server.restart()

    def reload_ari_user(self, password: str, read_only: bool = False) -> None:
        """ari.conf's user given ``password`` (and ``read_only``), then ``module reload
        res_ari.so``: res/res_ari.c's ``reload_module`` reads the users again
        (``ari_conf_load``), and the next request or websocket upgrade is checked against
        them; websockets already open stay open."""
        self.server.password = self.password = password
        self.server.read_only = read_only

    def state(self) -> Json:
        """The same summary ``GET /_sim/state`` gives."""
        return self.server.state_json()
