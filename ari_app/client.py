"""An asyncio ARI client: the REST calls Switchboard needs, each returning typed objects.

Why our own: the ready-made clients each failed a basic need on Python 3.11
(see issue 3).  This one is small: one aiohttp session with a bounded pool
(about 50 connections worked best against Asterisk 22), typed results, and
ARI's errors as exceptions a call can handle:

- `CallGone` — 404 on a channel (the caller hung up meanwhile): expected, handled;
- `NotInStasis` — 409/422: the channel is not in our application any more;
- `AriUnavailable` — Asterisk cannot be reached;
- `AriError` — anything else ARI refused.

Credentials go in the Authorization header, never in a URL or a log line.

Requests travel over HTTP, or -- once the supervisor has found that Asterisk
answers them (20.14, 21.9, 22.4 and later: res/ari/ari_websocket_requests.c) --
over the events websocket as ``RESTRequest`` messages answered by
``RESTResponse`` events (`WebsocketRequests`).  Measured on a real Asterisk
with bench/real_asterisk_load.py, that takes about a quarter off the app's CPU
per call: no HTTP request and response to build and parse for each of a call's
eight requests.  Asterisk runs them one at a time, in order, on the websocket's
thread, so past `WEBSOCKET_IN_FLIGHT` waiting there, requests go over HTTP
(a thread per connection in Asterisk) until the queue is shorter.  A request in
flight when the websocket goes is failed as `AriUnavailable`; later ones go over
HTTP until the websocket is back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from ari_app.models import (
    AsteriskInfo,
    Bridge,
    Channel,
    LiveRecording,
    MalformedEvent,
    Playback,
    parse_bridge,
    parse_channel,
    parse_playback,
    parse_recording,
)
from switchboard.admin.metrics import Latencies

POOL_SIZE = 50
# the supervisor's own requests (event filter, channel list) have connections of their
# own: after a reconnect they must not queue behind calls' requests stalled in the pool
CONTROL_POOL_SIZE = 2
REQUEST_TIMEOUT = 10.0
# requests waiting for Asterisk on the websocket at most; more go over HTTP meanwhile.
# Asterisk runs websocket requests one by one on one thread, and those it runs
# synchronously with the channel's own thread (answer, addChannel) hold up the rest:
# a deep queue there would delay every call, while HTTP has a thread per connection.
WEBSOCKET_IN_FLIGHT = 4


class AriError(Exception):
    error_id = "ari.error"

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: {status} {message}".strip())
        self.status = status
        self.message = message


class CallGone(AriError):
    """The channel (or bridge, playback) no longer exists: somebody hung up."""

    error_id = "ari.gone"


class NotInStasis(AriError):
    error_id = "ari.not_in_stasis"


class AriUnavailable(AriError):
    error_id = "ari.unavailable"


Params = Mapping[str, str | int | float | bool | None]


class WebsocketRequests:
    """ARI requests as ``RESTRequest`` messages on the events websocket.

    The websocket's reader hands each ``RESTResponse`` to `answered`; a request waits
    for the answer with its ``request_id``.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[tuple[int, str]]] = {}

    @property
    def open(self) -> bool:
        return not self.ws.closed

    @property
    def free(self) -> bool:
        """Open, and not so busy that a request had better go over HTTP."""
        return not self.ws.closed and len(self._waiting) < WEBSOCKET_IN_FLIGHT

    async def request(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, str]:
        """(status, body) of one request; TimeoutError, or ConnectionError when lost."""
        request_id = str(next(self._ids))
        uri = path.lstrip("/") + (f"?{urlencode(query)}" if query else "")
        message: dict[str, Any] = {
            "type": "RESTRequest",
            "transaction_id": request_id,
            "request_id": request_id,
            "method": method,
            "uri": uri,
        }
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = orjson.dumps(body).decode()
        answer: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            await self.ws.send_str(orjson.dumps(message).decode())
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await answer
        finally:
            self._waiting.pop(request_id, None)

    def answered(self, response: dict[str, Any]) -> None:
        answer = self._waiting.get(str(response.get("request_id", "")))
        if answer is None or answer.done():
            return  # given up on (timed out) meanwhile
        status = response.get("status_code")
        body = response.get("message_body")
        answer.set_result(
            (status if isinstance(status, int) else 500, body if isinstance(body, str) else "")
        )

    def close(self) -> None:
        """The websocket is gone: what waits for an answer will get none."""
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the ARI websocket closed"))
        self._waiting.clear()


class AriClient:
    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user  # named when Asterisk refuses it (the password never is)
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._control: aiohttp.ClientSession | None = None
        self.over_websocket: WebsocketRequests | None = None  # set by the supervisor
        self.latencies = Latencies()  # every request's time, by method (the admin's metrics)

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            )
        return self._session

    @property
    def control_session(self) -> aiohttp.ClientSession:
        if self._control is None or self._control.closed:
            self._control = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=CONTROL_POOL_SIZE),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            )
        return self._control

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._control is not None:
            await self._control.close()
            self._control = None

    def events_url(self) -> str:
        url = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{url}/ari/events?app={quote(self.app)}"

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        *,
        control: bool = False,
    ) -> Any:
        """One ARI request; ``control``: the supervisor's, on connections of its own.
        Its time, answered or failed, is counted in `latencies`."""
        started = time.perf_counter()
        try:
            return await self._request(method, path, params, body, control)
        finally:
            self.latencies.observe(method, time.perf_counter() - started)

    async def _request(
        self, method: str, path: str, params: Params | None, body: Any, control: bool
    ) -> Any:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        ws = self.over_websocket
        if ws is not None and ws.free and not control:
            try:
                status, text = await ws.request(method, path, query, body)
            except TimeoutError as exc:
                raise AriUnavailable(0, "timed out", method, path) from exc
            except (ConnectionError, aiohttp.ClientError) as exc:
                raise AriUnavailable(0, str(exc) or type(exc).__name__, method, path) from exc
            if status >= 400:
                raise _error(status, text, method, path)
            return orjson.loads(text) if text else None
        try:
            session = self.control_session if control else self.session
            async with session.request(
                method,
                f"{self.base_url}/ari{path}",
                params=query or None,
                json=body,
            ) as response:
                data = await response.read()  # ARI answers UTF-8 JSON: no charset sniffing
                if response.status >= 400:
                    raise _error(response.status, data.decode(errors="replace"), method, path)
                if response.status == 204 or not data:
                    return None
                return orjson.loads(data)
        except aiohttp.ClientError as exc:
            raise AriUnavailable(0, str(exc) or type(exc).__name__, method, path) from exc
        except TimeoutError as exc:
            raise AriUnavailable(0, "timed out", method, path) from exc

    # --- asterisk ---------------------------------------------------------------------

    async def asterisk_info(self) -> AsteriskInfo:
        data = await self.request("GET", "/asterisk/info")
        system = data.get("system", {}) if isinstance(data, dict) else {}
        build = data.get("build", {}) if isinstance(data, dict) else {}
        version = system.get("version", "") or build.get("version", "")
        return AsteriskInfo(version=str(version), system_name=str(system.get("entity_id", "")))

    async def set_event_filter(self, allowed: Iterable[str]) -> None:
        body = {"allowed": [{"type": t} for t in allowed], "disallowed": []}
        await self.request(
            "PUT", f"/applications/{quote(self.app)}/eventFilter", body=body, control=True
        )

    # --- channels -----------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        """The live channels; an item that is no channel (no id) is left out."""
        data = await self.request("GET", "/channels", control=True)
        channels = []
        for item in data if isinstance(data, list) else []:
            with contextlib.suppress(MalformedEvent):
                channels.append(parse_channel(item))
        return channels

    async def get_channel(self, channel_id: str) -> Channel:
        return parse_channel(await self.request("GET", f"/channels/{quote(channel_id)}"))

    async def create_channel(
        self,
        endpoint: str,
        channel_id: str,
        app_args: str = "",
        originator: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        """``variables`` are set on the channel as it is made (resource_channels.c:
        ``ast_set_variables``), before it is dialled."""
        data = await self.request(
            "POST",
            "/channels/create",
            {
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": app_args,
                "channelId": channel_id,
                "originator": originator,
            },
            body={"variables": variables} if variables else None,
        )
        return parse_channel(data)

    async def dial(self, channel_id: str, caller: str | None = None, ring_for: int = 0) -> None:
        """Dial a created channel; Asterisk gives up after ``ring_for`` seconds (0: never)."""
        await self.request(
            "POST", f"/channels/{quote(channel_id)}/dial", {"caller": caller, "timeout": ring_for}
        )

    async def originate(
        self,
        endpoint: str,
        channel_id: str,
        app_args: str = "",
        caller_id: str | None = None,
        ring_for: int = 30,
    ) -> Channel:
        data = await self.request(
            "POST",
            "/channels",
            {
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": app_args,
                "channelId": channel_id,
                "callerId": caller_id,
                "timeout": ring_for,
            },
        )
        return parse_channel(data)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{quote(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{quote(channel_id)}/ring")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{quote(channel_id)}", {"reason": reason})

    async def play(
        self, channel_id: str, media: Iterable[str], playback_id: str, lang: str | None = None
    ) -> Playback:
        data = await self.request(
            "POST",
            f"/channels/{quote(channel_id)}/play/{quote(playback_id)}",
            {"media": ",".join(media), "lang": lang},
        )
        return parse_playback(data)

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{quote(playback_id)}")

    async def start_moh(self, channel_id: str, moh_class: str = "default") -> None:
        await self.request("POST", f"/channels/{quote(channel_id)}/moh", {"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{quote(channel_id)}/moh")

    async def send_dtmf(self, channel_id: str, dtmf: str) -> None:
        await self.request("POST", f"/channels/{quote(channel_id)}/dtmf", {"dtmf": dtmf})

    async def get_variable(self, channel_id: str, name: str) -> str:
        data = await self.request(
            "GET", f"/channels/{quote(channel_id)}/variable", {"variable": name}
        )
        return str(data.get("value", "")) if isinstance(data, dict) else ""

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST", f"/channels/{quote(channel_id)}/variable", {"variable": name, "value": value}
        )

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{quote(channel_id)}/continue",
            {"context": context, "extension": extension, "priority": priority},
        )

    async def record(
        self,
        channel_id: str,
        name: str,
        max_duration: int,
        beep: bool,
        fmt: str = "wav",
        terminate_on: str = "#",
    ) -> LiveRecording:
        data = await self.request(
            "POST",
            f"/channels/{quote(channel_id)}/record",
            {
                "name": name,
                "format": fmt,
                "maxDurationSeconds": max_duration,
                "beep": beep,
                "ifExists": "overwrite",
                "terminateOn": terminate_on,
            },
        )
        return parse_recording(data)

    async def record_bridge(self, bridge_id: str, name: str, fmt: str = "wav") -> LiveRecording:
        """Record everything said in the bridge until it ends (Asterisk puts a
        ``Recorder/`` channel into it: res/ari/resource_bridges.c); never over a
        recording of the same name (409)."""
        data = await self.request(
            "POST",
            f"/bridges/{quote(bridge_id)}/record",
            {"name": name, "format": fmt, "ifExists": "fail"},
        )
        return parse_recording(data)

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{quote(name)}/stop")

    async def snoop(self, channel_id: str, snoop_id: str, spy: str = "both") -> Channel:
        data = await self.request(
            "POST",
            f"/channels/{quote(channel_id)}/snoop",
            {"app": self.app, "spy": spy, "snoopId": snoop_id},
        )
        return parse_channel(data)

    # --- bridges ------------------------------------------------------------------------

    async def create_bridge(self, bridge_id: str, bridge_type: str = "mixing") -> Bridge:
        data = await self.request(
            "POST", "/bridges", {"type": bridge_type, "bridgeId": bridge_id, "name": bridge_id}
        )
        return parse_bridge(data)

    async def add_channel(self, bridge_id: str, channel_ids: Iterable[str]) -> None:
        await self.request(
            "POST",
            f"/bridges/{quote(bridge_id)}/addChannel",
            {"channel": ",".join(channel_ids)},
        )

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request(
            "POST", f"/bridges/{quote(bridge_id)}/removeChannel", {"channel": channel_id}
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{quote(bridge_id)}")

    async def list_bridges(self) -> list[Bridge]:
        data = await self.request("GET", "/bridges")
        return [parse_bridge(b) for b in data or []]

    # --- devices ------------------------------------------------------------------------

    async def subscribe(self, sources: Iterable[str]) -> None:
        """Subscribe the app to event sources (``deviceState:PJSIP/201``, ...)."""
        await self.request(
            "POST",
            f"/applications/{quote(self.app)}/subscription",
            params={"eventSource": ",".join(sources)},
        )

    async def device_state(self, name: str) -> str:
        """One device's state (``NOT_INUSE``, ``INUSE``, ``UNAVAILABLE``, ...).  The ``/`` in
        its name is encoded: Asterisk splits the path before decoding it (res_ari.c)."""
        data = await self.request("GET", f"/deviceStates/{quote(name, safe='')}")
        return str(data.get("state", "UNKNOWN")) if isinstance(data, dict) else "UNKNOWN"

    async def device_states(self) -> dict[str, str]:
        data = await self.request("GET", "/deviceStates")
        return {str(d.get("name")): str(d.get("state")) for d in data or [] if isinstance(d, dict)}

    async def update_mailbox(self, name: str, old: int, new: int) -> None:
        """A mailbox's message counts, for the phones that subscribe to it (message
        waiting indication: res_ari_mailboxes over res_mwi_external)."""
        await self.request(
            "PUT",
            f"/mailboxes/{quote(name, safe='')}",
            params={"oldMessages": old, "newMessages": new},
        )

    async def endpoints(self) -> list[dict[str, Any]]:
        data = await self.request("GET", "/endpoints")
        return [e for e in data or [] if isinstance(e, dict)]


def _param(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error(status: int, text: str, method: str, path: str) -> AriError:
    try:
        message = str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        message = text[:200]
    if status == 404:
        return CallGone(status, message, method, path)
    if status in (409, 422):
        return NotInStasis(status, message, method, path)
    return AriError(status, message, method, path)
