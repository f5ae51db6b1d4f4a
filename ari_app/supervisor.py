"""The one owner of the ARI connection: connect, subscribe, read events, reconnect.

After every (re)connection it narrows the events Asterisk sends to those the
runtime uses (`PUT /applications/{app}/eventFilter` — essential under load),
asks once over the websocket itself (``GET asterisk/ping`` as a
``RESTRequest``): when Asterisk answers, the client's requests go over the
websocket from then on (`ari_app.client.WebsocketRequests`); then it lists the
live channels and hands them to the runtime to reconcile, and only then
reports ready.  A dropped or cleanly closed websocket is followed by
exponential backoff with jitter; never a busy loop.

What an engineer must act on is said once, not at every attempt: Asterisk
refusing the ARI user (401, 403: res/res_ari.c, ``ast_ari_invoke``, the events
websocket included, since its upgrade goes through the same check) and
Asterisk out of reach (connection refused, a host name DNS does not know, no
answer) are one line naming the URL and the user (an error; a warning when out of
reach after a connection that worked: it is being made again), then a reminder every
`STILL_EVERY` seconds with the attempt count while it lasts; the attempts in
between are debug lines.  It keeps trying all along: a password fixed in
ari.conf (``module reload res_ari.so``) or an Asterisk started later is picked
up without a restart, and ``ari connected`` then says after how many attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
import orjson
import structlog

from ari_app.client import REQUEST_TIMEOUT, AriClient, AriError, WebsocketRequests
from ari_app.models import USED_EVENTS, ApplicationReplaced, AriEvent, Channel, MalformedEvent
from ari_app.models import parse_event as parse
from switchboard.redaction import redact

log = structlog.get_logger("switchboard.ari")

HEARTBEAT = 10.0  # websocket ping interval, seconds
PROBE_WAIT = 2.0  # seconds an Asterisk has to answer a request over the websocket
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 30.0
# an instance whose app was taken stays off this long (real seconds), doubling each time
# it is taken again, up to the maximum; a connection that lasts REPLACED_RESET starts over
REPLACED_WAIT = 60.0
REPLACED_WAIT_MAX = 1800.0
REPLACED_RESET = 600.0
# a websocket handshake we gave up on (timed out) may still reach Asterisk this long after
# -- a network or proxy that held it -- and take the app from the connection made since
HANDSHAKE_LINGER = 120.0
# while Asterisk stays out of reach or refuses us, a reminder this often (seconds)
STILL_EVERY = 60.0


class EventSink(Protocol):
    async def on_connected(self, channels: list[Channel]) -> None: ...

    def on_event(self, event: AriEvent) -> None: ...

    def on_disconnected(self) -> None: ...


class AriSupervisor:
    def __init__(
        self,
        client: AriClient,
        sink: EventSink,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rest_over_websocket: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: when the reminders of a lasting failure are due (`STILL_EVERY`)."""
        self.client = client
        self.sink = sink
        self.ready = asyncio.Event()
        self.connections = 0  # successful connections so far (1 + reconnects)
        self._backoff_first = backoff_first
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._replaced = False
        self.replaced = asyncio.Event()  # another connection took the app: staying off
        self._replacements = 0  # times in a row it was taken
        self._connecting = False  # a websocket handshake is on its way
        self._linger_until = 0.0  # (monotonic) a handshake given up on may still arrive
        self._retake = False  # the app was taken by what looks like our own late handshake
        self._rest_over_websocket = rest_over_websocket
        self._requests: WebsocketRequests | None = None  # answers read off this websocket
        self._clock = clock
        self._sink_connected = False  # the sink was told of a connection (and not of its end)
        self.attempts = 0  # attempts that failed since the last connection
        # the failure going on, as said once (None: none said since the last connection)
        self.trouble: str | None = None
        self._said_at = 0.0  # (clock) when it was last said

    async def run(self) -> None:
        """Stay connected until cancelled."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await self._session()
                failures = 0
                if not self._replaced and time.monotonic() - started > REPLACED_RESET:
                    self._replacements = 0
            except (aiohttp.ClientError, AriError, OSError, TimeoutError) as exc:
                if self._connecting:
                    self._linger_until = time.monotonic() + HANDSHAKE_LINGER
                failures += 1
                self.attempts += 1
                self._failed(exc)
            except Exception:  # anything else: never the end of the connection's owner
                failures += 1
                self.attempts += 1
                log.exception("ari connection failed unexpectedly", attempt=self.attempts)
            self.ready.clear()
            if self._sink_connected:  # once a connection is lost, not at each failed attempt
                self._sink_connected = False
                self.sink.on_disconnected()
            if self._replaced and not self._retake:
                await self._stay_off()
            delay = min(self._backoff_max, self._backoff_first * 2 ** max(0, failures - 1))
            await self._sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto

    def _failed(self, exc: BaseException) -> None:
        """Say why an attempt failed: a refusal or Asterisk out of reach once, then a
        reminder every `STILL_EVERY` seconds (debug lines between); anything else, each
        time, as a warning."""
        url = redact(self.client.base_url)
        user = self.client.user
        attempt = self.attempts
        refused = _refusal(exc)
        if refused is not None:
            status, reason = refused
            trouble = f"Asterisk refused ARI user {user!r} ({status})"
            first = f"Asterisk at {url} refused ARI user {user!r} ({status}): " + (
                f"check the user and its password in Asterisk's ari.conf ([{user}], then "
                "`module reload res_ari.so`) and in the configuration's asterisk: section "
                "(ari_user, ari_password) or SWITCHBOARD_ARI_USER / SWITCHBOARD_ARI_PASSWORD"
                if status == 401
                else f"{reason or 'Forbidden'}: in Asterisk's ari.conf, [{user}] needs "
                "read_only = no and an acl that lets this host in (then "
                "`module reload res_ari.so`)"
            )
            still = f"Asterisk at {url} still refuses ARI user {user!r} ({status})"
        else:
            why = _unreachable(exc)
            if why is None:
                log.warning("ari connection failed", error=redact(str(exc)), attempt=attempt)
                return
            trouble = f"cannot reach Asterisk: {why}"
            first = f"cannot reach Asterisk at {url}: {why}"
            still = f"still cannot reach Asterisk at {url}"
        now = self._clock()
        if trouble != self.trouble:
            self.trouble, self._said_at = trouble, now
            # an error until the first connection (nothing works yet) or for a refusal; a
            # warning when a connection that worked is being made again (calls may go on)
            say = log.error if refused is not None or not self.connections else log.warning
            say(f"{first}; retrying quietly", attempt=attempt)
        elif now - self._said_at >= STILL_EVERY:
            self._said_at = now
            log.warning(f"{still} (attempt {attempt})", attempt=attempt)
        else:
            log.debug("ari connection failed", error=redact(str(exc)), attempt=attempt)

    async def _stay_off(self) -> None:
        """Another connection took our Stasis app (Asterisk sent ``ApplicationReplaced``:
        ``res/stasis/app.c``, ``app_update``).  Taking it back at once would take it from
        the other one, which would take it back in turn: two instances on one app name
        replace each other over and over and drop calls each time.  So this one stays
        off (its calls were left to the other, which adopts them) for `REPLACED_WAIT`,
        doubling each time it is taken again, and says why.  It does come back: a
        connection of its own that lingered (a handshake the network delayed) can take
        the app from it too, and that must not stop the service for good."""
        self.replaced.set()
        self._replacements += 1
        wait = min(REPLACED_WAIT_MAX, REPLACED_WAIT * 2 ** (self._replacements - 1))
        log.error(
            "another connection took this instance's Stasis app: staying off",
            app=self.client.app,
            seconds=wait,
            hint="two instances use one asterisk.app: give each its own (and its own "
            "Stasis() in the dialplan), or stop one",
        )
        await self._sleep(wait)
        self.replaced.clear()

    async def _session(self) -> None:
        self._replaced = self._retake = False
        self._connecting = True
        async with self.client.session.ws_connect(
            self.client.events_url(), heartbeat=HEARTBEAT, autoping=True
        ) as ws:
            self._connecting = False
            # read at once: a call arriving while we reconcile must reach the runtime
            reader = asyncio.create_task(self._read(ws))
            try:
                await self.client.set_event_filter(USED_EVENTS)
                if self._rest_over_websocket:
                    await self._requests_over(ws)
                # not kept while connected: it is every channel Asterisk has
                channels = await self.client.list_channels()
                self._sink_connected = True  # told, even if it fails half-way
                await self.sink.on_connected(channels)
                self.connections += 1
                self.ready.set()
                # after failed attempts: when it connects at last (its attempt, counted)
                after = {"attempt": self.attempts + 1} if self.attempts else {}
                self.attempts, self.trouble = 0, None
                log.info(
                    "ari connected", url=redact(self.client.base_url), app=self.client.app, **after
                )
                await reader
            finally:
                self.ready.clear()
                self.client.over_websocket = None
                if self._requests is not None:
                    self._requests.close()
                    self._requests = None
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            log.warning("ari websocket closed", code=ws.close_code)

    async def _requests_over(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Requests go over the websocket when this Asterisk answers one there."""
        requests = self._requests = WebsocketRequests(ws)
        status = 0
        with contextlib.suppress(TimeoutError, ConnectionError, aiohttp.ClientError):
            async with asyncio.timeout(PROBE_WAIT):
                status, _ = await requests.request("GET", "/asterisk/ping", {}, None)
        if status == 200:
            self.client.over_websocket = requests
            log.info("ari requests over the websocket")
        else:
            self._requests = None
            log.info("ari requests over HTTP: Asterisk does not take them on the websocket")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self._dispatch(message.data)
                if self._replaced:
                    break  # nothing more comes for us on it: close it ourselves
            elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                break

    def _dispatch(self, text: str) -> None:
        try:
            data = orjson.loads(text)
            if isinstance(data, dict) and data.get("type") == "RESTResponse":
                if self._requests is not None:
                    self._requests.answered(data)
                return
            event = parse(data)
        except (ValueError, MalformedEvent) as exc:  # orjson.JSONDecodeError is a ValueError
            log.warning("ari event unreadable", error=str(exc), data=text[:200])
            return
        if isinstance(event, ApplicationReplaced):
            self._replaced = True
            if time.monotonic() < self._linger_until:
                # most likely the handshake we gave up on, arriving late: no other
                # instance to leave the calls to -- keep them and take the app back, as
                # after a cut (a second instance that really took it takes it again,
                # and then this one stays off)
                self._linger_until = 0.0
                self._retake = True
                log.warning(
                    "stasis app taken by a late handshake of ours: taking it back",
                    app=self.client.app,
                )
                return
        self.sink.on_event(event)


def _refusal(exc: BaseException) -> tuple[int, str] | None:
    """(401 or 403, Asterisk's reason) when Asterisk refused the ARI user: on the
    websocket's upgrade (no body read) or on a request (res/res_ari.c, ``ast_ari_invoke``:
    401 "Authentication required" for a user or password ari.conf does not have, 403
    "Access denied by ACL", 403 "Write access denied" for a ``read_only`` user)."""
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status in (401, 403):
        return exc.status, ""
    if isinstance(exc, AriError) and exc.status in (401, 403):
        return exc.status, exc.message
    return None


def _unreachable(exc: BaseException) -> str | None:
    """Why Asterisk could not be reached at all, or None for another failure."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS: {redact(str(exc))}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "its host name is not known (DNS)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        if code == errno.ECONNREFUSED:
            return "connection refused (is its HTTP server on, at that address? http.conf)"
        return os.strerror(code) if code else redact(str(exc.os_error))
    if isinstance(exc, TimeoutError):
        return f"no answer within {REQUEST_TIMEOUT:g} s"
    return None
