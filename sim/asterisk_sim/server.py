"""The simulator's HTTP face: ARI under ``/ari`` and a small control API under ``/_sim``.

ARI requests are authenticated like Asterisk's ``ari.conf`` users (HTTP Basic
or ``?api_key=user:password``; anything else is 401), logged in
`Pbx.requests`, and answered with the status codes and bodies the spec's
operations declare: a resource snapshot, 204 for operations without a body,
``{"message": ...}`` for errors (404 ``Resource not found`` for unknown
routes, 405 ``Invalid method``).  Parameters may come in the query string or,
as Asterisk allows, as keys of a JSON body (``variables`` is always the body's).

``/ari/events`` upgrades to the events websocket.  ``/_sim/...`` (no
authentication) lets a demo or another process drive the simulated world:
place calls, press keys, hang up, script endpoints, register and unregister
them, make a phone call of its own (``/_sim/endpoints/{tech}/{resource}/call``),
read the request log and the state, drop the websockets, restart Asterisk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypedDict

import aiohttp
from aiohttp import WSMsgType, web

from asterisk_sim.applications import Application, Connection
from asterisk_sim.errors import AriError
from asterisk_sim.model import (
    DOWN,
    HANGUP_REASONS,
    NORMAL_CLEARING,
    RINGING,
    Bridge,
    Channel,
    Json,
    RequestRecord,
)
from asterisk_sim.pbx import DEFAULT_PHONE_CONTEXT, Pbx
from asterisk_sim.script import DTMF_DIGITS, CallerScript, EndpointScript

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


# marks the simulator's own request for a RESTRequest on a websocket (for the request log)
VIA_WEBSOCKET = "X-Asterisk-Sim-Via-Websocket"


def _json_or_none(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _failed(error: AriError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


class Params:
    """An ARI request's parameters: query string first, then the JSON body's keys."""

    def __init__(self, request: web.Request, body: Any) -> None:
        self._values: dict[str, list[str]] = {}
        for key in request.query:
            self._values[key] = list(request.query.getall(key))
        self.variables: dict[str, Any] = {}
        if isinstance(body, dict):
            for key, value in body.items():
                if key == "variables" and isinstance(value, dict):
                    self.variables = value
                elif key not in self._values and not isinstance(value, dict | list):
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                    self._values[key] = [text]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[0] if values else default

    def require(self, name: str, message: str | None = None) -> str:
        value = self.get(name)
        if not value:
            raise AriError(400, message or f"Missing parameter {name}")
        return value

    def many(self, name: str) -> list[str]:
        """A list parameter: repeated and/or comma separated."""
        items: list[str] = []
        for value in self._values.get(name, []):
            items.extend(part for part in value.split(",") if part)
        return items

    def integer(self, name: str, default: int) -> int:
        value = self.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise AriError(400, f"{name} must be an integer") from None

    def optional_int(self, name: str) -> int | None:
        return None if self.get(name) in (None, "") else self.integer(name, 0)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None or value == "":
            return default
        lowered = value.lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise AriError(400, f"{name} must be a boolean")


PARAMS = web.RequestKey("ari_params", Params)
BODY = web.RequestKey("ari_body", object)
RECORD = web.RequestKey("ari_record", RequestRecord)


class AriServer:
    """Routes ARI and control requests to a `Pbx` and owns the events websockets."""

    def __init__(
        self,
        pbx: Pbx,
        *,
        user: str,
        password: str,
        rest_over_websocket: bool = True,
        mailboxes: bool = True,
    ) -> None:
        # REST over the events websocket came with 20.14, 21.9 and 22.4; older Asterisks
        # read nothing the client sends there (False models them)
        self.rest_over_websocket = rest_over_websocket
        self.mailboxes = mailboxes
        self.pbx = pbx
        self.user = user
        self.password = password
        self.read_only = False  # ari.conf's read_only = yes for the user

    # -- application ----------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._ari_middleware])
        r = app.router
        ari = "/ari"
        ch = f"{ari}/channels/{{channelId}}"
        br = f"{ari}/bridges/{{bridgeId}}"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", f"{ari}/events", self.events_websocket),
            ("GET", f"{ari}/asterisk/info", self.asterisk_info),
            ("GET", f"{ari}/asterisk/ping", self.asterisk_ping),
            ("GET", f"{ari}/channels", self.list_channels),
            ("POST", f"{ari}/channels", self.originate),
            ("POST", f"{ari}/channels/create", self.create_channel),
            ("GET", ch, self.get_channel),
            ("POST", ch, self.originate),
            ("DELETE", ch, self.hangup),
            ("POST", f"{ch}/continue", self.continue_in_dialplan),
            ("POST", f"{ch}/answer", self.answer),
            ("POST", f"{ch}/ring", self.indicate),
            ("DELETE", f"{ch}/ring", self.no_op_control),
            ("POST", f"{ch}/progress", self.indicate),
            ("POST", f"{ch}/hold", self.hold),
            ("DELETE", f"{ch}/hold", self.hold),
            ("POST", f"{ch}/mute", self.no_op_control),
            ("DELETE", f"{ch}/mute", self.no_op_control),
            ("POST", f"{ch}/silence", self.no_op_control),
            ("DELETE", f"{ch}/silence", self.no_op_control),
            ("POST", f"{ch}/moh", self.channel_moh_start),
            ("DELETE", f"{ch}/moh", self.channel_moh_stop),
            ("POST", f"{ch}/dtmf", self.send_dtmf),
            ("POST", f"{ch}/play", self.channel_play),
            ("POST", f"{ch}/play/{{playbackId}}", self.channel_play),
            ("POST", f"{ch}/record", self.channel_record),
            ("GET", f"{ch}/variable", self.get_variable),
            ("POST", f"{ch}/variable", self.set_variable),
            ("POST", f"{ch}/snoop", self.snoop),
            ("POST", f"{ch}/snoop/{{snoopId}}", self.snoop),
            ("POST", f"{ch}/dial", self.dial),
            ("GET", f"{ari}/bridges", self.list_bridges),
            ("POST", f"{ari}/bridges", self.create_bridge),
            ("GET", br, self.get_bridge),
            ("POST", br, self.create_bridge),
            ("DELETE", br, self.destroy_bridge),
            ("POST", f"{br}/addChannel", self.add_channel),
            ("POST", f"{br}/removeChannel", self.remove_channel),
            ("POST", f"{br}/moh", self.bridge_moh_start),
            ("DELETE", f"{br}/moh", self.bridge_moh_stop),
            ("POST", f"{br}/play", self.bridge_play),
            ("POST", f"{br}/play/{{playbackId}}", self.bridge_play),
            ("POST", f"{br}/record", self.bridge_record),
            ("GET", f"{ari}/playbacks/{{playbackId}}", self.get_playback),
            ("DELETE", f"{ari}/playbacks/{{playbackId}}", self.stop_playback),
            ("GET", f"{ari}/recordings/stored", self.list_stored),
            ("GET", f"{ari}/recordings/stored/{{recordingName}}", self.get_stored),
            ("DELETE", f"{ari}/recordings/stored/{{recordingName}}", self.delete_stored),
            ("GET", f"{ari}/recordings/live/{{recordingName}}", self.get_live),
            ("DELETE", f"{ari}/recordings/live/{{recordingName}}", self.cancel_live),
            ("POST", f"{ari}/recordings/live/{{recordingName}}/stop", self.stop_live),
            ("GET", f"{ari}/deviceStates", self.list_device_states),
            # one path segment, decoded after the split (res_ari.c, ast_ari_invoke): a
            # device name's "/" must come as %2F -- /deviceStates/PJSIP/201 is 404
            ("GET", f"{ari}/deviceStates/{{deviceName}}", self.get_device_state),
            ("PUT", f"{ari}/deviceStates/{{deviceName}}", self.put_device_state),
            ("DELETE", f"{ari}/deviceStates/{{deviceName}}", self.delete_device_state),
            ("GET", f"{ari}/endpoints", self.list_endpoints),
            ("GET", f"{ari}/endpoints/{{tech}}", self.list_endpoints_by_tech),
            ("GET", f"{ari}/endpoints/{{tech}}/{{resource}}", self.get_endpoint),
            ("GET", f"{ari}/applications", self.list_applications),
            ("GET", f"{ari}/applications/{{applicationName}}", self.get_application),
            ("PUT", f"{ari}/applications/{{applicationName}}/eventFilter", self.event_filter),
            ("POST", f"{ari}/applications/{{applicationName}}/subscription", self.subscribe),
            ("DELETE", f"{ari}/applications/{{applicationName}}/subscription", self.unsubscribe),
            ("POST", "/_sim/calls", self.sim_place_call),
            ("POST", "/_sim/channels/{channelId}/dtmf", self.sim_press),
            ("POST", "/_sim/channels/{channelId}/hangup", self.sim_hangup),
            ("POST", "/_sim/endpoints", self.sim_script_endpoint),
            ("POST", "/_sim/endpoints/{tech}/{resource}/register", self.sim_register),
            ("POST", "/_sim/endpoints/{tech}/{resource}/unregister", self.sim_register),
            ("POST", "/_sim/endpoints/{tech}/{resource}/call", self.sim_call_from),
            ("GET", "/_sim/requests", self.sim_requests),
            ("GET", "/_sim/state", self.sim_state),
            ("POST", "/_sim/drop", self.sim_drop),
            ("POST", "/_sim/restart", self.sim_restart),
        ]
        if self.mailboxes:  # res_ari_mailboxes.so, with res_stasis_mailbox and res_mwi_external
            mailbox = f"{ari}/mailboxes/{{mailboxName}}"
            routes += [
                ("GET", f"{ari}/mailboxes", self.list_mailboxes),
                ("GET", mailbox, self.get_mailbox),
                ("PUT", mailbox, self.put_mailbox),
                ("DELETE", mailbox, self.delete_mailbox),
            ]
        for method, path, handler in routes:
            r.add_route(method, path, handler)
        return app

    # -- lifecycle of the websockets ----------------------------------------------------

    async def drop_websockets(self) -> None:
        """Cut every events websocket at once; applications stay registered, calls stay up."""
        for connection in list(self.pbx.registry.connections):
            connection.abort()
        await self.pbx.signal.wait_until(lambda: not self.pbx.registry.connections, within=5.0)

    async def restart(self) -> None:
        """An Asterisk crash and restart: connections cut, every call and bridge gone."""
        for connection in list(self.pbx.registry.connections):
            connection.abort()
        await self.pbx.cancel_all()
        self.pbx.reset()

    # -- middleware: auth, log, errors ----------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        """As res/res_ari.c's ``authenticate_user``: HTTP Basic first, else ``api_key``
        (``parse_api_keys``: ``user:password``), checked by res/ari/config.c's
        ``ari_conf_validate_user``, which refuses an empty user or password whatever
        ari.conf says (and ``user_apply`` loads no user without a password)."""
        given = ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):  # main/http.c, ast_http_get_auth
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                given = base64.b64decode(header[6:], validate=True).decode("utf-8")
        if ":" not in given:  # no usable Basic credentials: the api_key, if any
            given = request.query.get("api_key", "")
        user, _, password = given.partition(":")
        if not user or not password:
            return False
        return hmac.compare_digest(given.encode(), f"{self.user}:{self.password}".encode())

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, bool]:
        """The JSON body (None when empty) and whether it parsed."""
        if not request.body_exists:
            return None, True
        raw = await request.read()
        if not raw.strip():
            return None, True
        try:
            return json.loads(raw), True
        except (UnicodeDecodeError, json.JSONDecodeError):
            return raw.decode("utf-8", "replace"), False

    @web.middleware
    async def _ari_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/ari/") and request.path != "/ari":
            try:
                return await handler(request)
            except AriError as error:
                return _failed(error)
        body, parsed = await self._read_body(request)
        record = RequestRecord(
            t=self.pbx.now(),
            method=request.method,
            path=request.path,
            query={
                key: ",".join(request.query.getall(key))
                for key in dict.fromkeys(request.query)
                if key != "api_key"
            },
            body=body,
            via="websocket" if VIA_WEBSOCKET in request.headers else "http",
        )
        self.pbx.requests.append(record)
        response: web.StreamResponse
        if not self._authorized(request):
            # res/res_ari.c, ast_ari_invoke: 401 "Authentication required" with a Basic
            # challenge (auth_realm, "Asterisk REST Interface" by default) -- before any
            # route, so the events websocket's upgrade is refused the same way (its
            # handler, ari_handle_websocket, is reached only past this check)
            response = _error(401, "Authentication required")
            response.headers["WWW-Authenticate"] = 'Basic realm="Asterisk REST Interface"'
        elif self.read_only and request.method not in ("GET", "OPTIONS"):
            # ast_ari_invoke, next: a read_only user may only GET (over HTTP or the websocket)
            response = _error(403, "Write access denied")
        elif not parsed:
            response = _error(400, "Request body is not valid JSON")
        else:
            request[PARAMS] = Params(request, body)
            request[BODY] = body
            request[RECORD] = record
            try:
                response = await handler(request)
            except AriError as error:
                response = _failed(error)
            except web.HTTPMethodNotAllowed:
                response = _error(405, "Invalid method")
            except web.HTTPNotFound:
                response = _error(404, "Resource not found")
        record.status = response.status
        self.pbx.changed()
        return response

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _params(request: web.Request) -> Params:
        return request[PARAMS]

    def _channel(self, request: web.Request) -> Channel:
        channel = self.pbx.live_channel(request.match_info["channelId"])
        if channel is None:
            raise AriError(404, "Channel not found")
        return channel

    def _control(self, request: web.Request) -> Channel:
        """The channel, which must be in a Stasis application (Asterisk's find_control)."""
        channel = self._channel(request)
        if channel.stasis_app is None:
            raise AriError(409, "Channel not in Stasis application")
        return channel

    def _control_in_state(self, request: web.Request) -> Channel:
        """`_control`, for the operations resource_channels.c gates with
        ``channel_state_invalid``: not on a channel that is Down, Reserved or Ringing."""
        channel = self._control(request)
        if channel.state in (DOWN, "Reserved", RINGING):
            raise AriError(412, "Channel in invalid state")
        return channel

    def _bridge(self, request: web.Request) -> Bridge:
        bridge = self.pbx.live_bridge(request.match_info["bridgeId"])
        if bridge is None:
            raise AriError(404, "Bridge not found")
        return bridge

    # -- events websocket -------------------------------------------------------------------

    async def events_websocket(self, request: web.Request) -> web.StreamResponse:
        params = self._params(request)
        apps = params.many("app")
        if not apps:
            raise AriError(400, "Missing param 'app'")
        subscribe_all = params.boolean("subscribeAll", False)
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        request[RECORD].status = ws.status
        connection = Connection(ws, request, apps, subscribe_all)
        self.pbx.registry.register(connection, self.pbx.application_replaced)
        writer = self.pbx.spawn(connection.write_loop())
        self.pbx.changed()
        http: aiohttp.ClientSession | None = None
        try:
            async for message in ws:
                data = _json_or_none(message.data) if message.type == WSMsgType.TEXT else None
                if isinstance(data, dict) and self.rest_over_websocket:
                    http = http or aiohttp.ClientSession()
                    await self._rest_over_websocket(connection, http, data)
        finally:
            self.pbx.registry.unregister(connection)
            connection.close_after_sending()
            self.pbx.changed()
            if http is not None:
                await http.close()
        await asyncio.wait([writer])
        return ws

    async def _rest_over_websocket(
        self, connection: Connection, http: aiohttp.ClientSession, message: Json
    ) -> None:
        """A ``RESTRequest`` on the events websocket (res/ari/ari_websocket_requests.c,
        ari_websocket_process_request): run as the HTTP request it stands for, one at a
        time in the order received (Asterisk runs them on the websocket's thread), and
        answered by a ``RESTResponse`` event, which the event filter applies to.  The
        request goes through this server's own routes (and its request log)."""
        request_id = str(message.get("request_id", ""))
        answer: Json = {
            "type": "RESTResponse",
            "transaction_id": str(message.get("transaction_id", "")),
            "request_id": request_id,
            "uri": str(message.get("uri", "")),
        }
        uri, method = message.get("uri"), message.get("method")
        if message.get("type") != "RESTRequest":
            status, body = 400, {"message": "Unknown request type."}
        elif not isinstance(uri, str) or not uri:
            status, body = 400, {"message": "Empty or missing 'uri' property."}
        elif method not in ("GET", "POST", "PUT", "DELETE"):
            status, body = 400, {"message": "Unknown or missing 'method' property."}
        else:
            status, body = await self._run_request(connection, http, method, uri, message)
        answer["status_code"] = status
        answer["reason_phrase"] = HTTPStatus(status).phrase
        if body is not None:
            answer["content_type"] = "application/json"
            answer["message_body"] = json.dumps(body)
        self.pbx.send(connection.apps[0], answer)

    async def _run_request(
        self,
        connection: Connection,
        http: aiohttp.ClientSession,
        method: str,
        uri: str,
        message: Json,
    ) -> tuple[int, Any]:
        upgrade = connection.request
        query: list[tuple[str, str]] = []
        for item in message.get("query_strings") or []:
            if isinstance(item, dict):
                query.append((str(item.get("name", "")), str(item.get("value", ""))))
        api_key = upgrade.query.get("api_key")
        if api_key is not None:  # Asterisk appends the websocket's api_key to each request
            query.append(("api_key", api_key))
        headers = {VIA_WEBSOCKET: "1"}
        if "Authorization" in upgrade.headers:
            headers["Authorization"] = upgrade.headers["Authorization"]
        body = message.get("message_body")
        kwargs: dict[str, Any] = {}
        if isinstance(body, str) and body:
            headers["Content-Type"] = str(message.get("content_type") or "application/json")
            kwargs["data"] = body.encode()
        url = f"{upgrade.scheme}://{upgrade.host}/ari/{uri.lstrip('/')}"
        async with http.request(method, url, params=query, headers=headers, **kwargs) as answer:
            text = await answer.text()
            return answer.status, _json_or_none(text) if text else None

    # -- asterisk ----------------------------------------------------------------------------

    async def asterisk_info(self, request: web.Request) -> web.StreamResponse:
        info = self.pbx.asterisk_info()
        only = self._params(request).many("only")
        if only:
            info = {k: v for k, v in info.items() if k in only}
        return _ok(info)

    async def asterisk_ping(self, request: web.Request) -> web.StreamResponse:
        return _ok(
            {"asterisk_id": self.pbx.asterisk_id, "ping": "pong", "timestamp": self.pbx.timestamp()}
        )

    # -- channels ----------------------------------------------------------------------------

    async def list_channels(self, request: web.Request) -> web.StreamResponse:
        return _ok([c.snapshot() for c in self.pbx.channels.values() if c.live])

    async def get_channel(self, request: web.Request) -> web.StreamResponse:
        return _ok(self._channel(request).snapshot())

    async def originate(self, request: web.Request) -> web.StreamResponse:
        params = self._params(request)
        endpoint = params.require("endpoint", "Endpoint must be specified")
        snapshot = self.pbx.originate(
            endpoint=endpoint,
            app=params.get("app"),
            app_args=params.get("appArgs"),
            caller_id=params.get("callerId"),
            timeout=params.integer("timeout", 30),
            channel_id=request.match_info.get("channelId") or params.get("channelId"),
            other_channel_id=params.get("otherChannelId"),
            extension=params.get("extension"),
            context=params.get("context"),
            priority=params.optional_int("priority"),
            label=params.get("label"),
            originator=params.get("originator"),
            variables=params.variables,
        )
        return _ok(snapshot)

    async def create_channel(self, request: web.Request) -> web.StreamResponse:
        params = self._params(request)
        if params.get("originator") and params.get("formats"):
            raise AriError(400, "Originator and formats can't both be specified")
        endpoint = params.require("endpoint", "Endpoint must be specified")
        app = params.require("app", "Application must be specified")
        snapshot = self.pbx.create_channel(
            endpoint=endpoint,
            app=app,
            app_args=params.get("appArgs"),
            channel_id=params.get("channelId"),
            other_channel_id=params.get("otherChannelId"),
            originator=params.get("originator"),
            variables=params.variables,
        )
        return _ok(snapshot)

    async def hangup(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel(request)
        params = self._params(request)
        reason, code = params.get("reason"), params.get("reason_code")
        if reason and code:
            raise AriError(400, "The reason and reason_code can't both be specified")
        cause = NORMAL_CLEARING
        if code:
            try:
                cause = int(code)
            except ValueError:
                raise AriError(400, "Invalid reason for hangup reason code provided") from None
        elif reason:
            if reason not in HANGUP_REASONS:
                raise AriError(400, "Invalid reason for hangup reason provided")
            cause = HANGUP_REASONS[reason]
        self.pbx.app_hangup(channel, cause)
        return _no_content()

    async def continue_in_dialplan(self, request: web.Request) -> web.StreamResponse:
        channel = self._control_in_state(request)
        params = self._params(request)
        self.pbx.continue_in_dialplan(
            channel,
            context=params.get("context"),
            extension=params.get("extension"),
            priority=params.optional_int("priority"),
            label=params.get("label"),
        )
        return _no_content()

    async def answer(self, request: web.Request) -> web.StreamResponse:
        self.pbx.answer(self._control_in_state(request))
        return _no_content()

    async def no_op_control(self, request: web.Request) -> web.StreamResponse:
        """Indications with no effect on the simulated far end (ring stop, mute, silence)."""
        self._control_in_state(request)
        return _no_content()

    async def indicate(self, request: web.Request) -> web.StreamResponse:
        """``/ring``, ``/progress``: nothing the far end shows, but chan_pjsip_indicate
        re-evaluates the device state of a PJSIP channel's endpoint."""
        channel = self._control_in_state(request)
        self.pbx.indicate(channel, "ringing" if request.path.endswith("/ring") else "progress")
        return _no_content()

    async def hold(self, request: web.Request) -> web.StreamResponse:
        """``POST``/``DELETE /hold``: the channel is (no longer) held; see `Pbx.hold`."""
        self.pbx.hold(self._control_in_state(request), request.method == "POST")
        return _no_content()

    async def channel_moh_start(self, request: web.Request) -> web.StreamResponse:
        self.pbx.start_moh(self._control_in_state(request), self._params(request).get("mohClass"))
        return _no_content()

    async def channel_moh_stop(self, request: web.Request) -> web.StreamResponse:
        self.pbx.stop_moh(self._control_in_state(request))
        return _no_content()

    async def send_dtmf(self, request: web.Request) -> web.StreamResponse:
        channel = self._control_in_state(request)
        dtmf = self._params(request).require("dtmf", "DTMF is required")
        if any(d not in DTMF_DIGITS and d != "," for d in dtmf):
            raise AriError(400, f"Invalid DTMF: {dtmf}")
        channel.dtmf_sent.append(dtmf)
        self.pbx.changed()
        return _no_content()

    async def channel_play(self, request: web.Request) -> web.StreamResponse:
        channel = self._control_in_state(request)
        params = self._params(request)
        media = params.many("media")
        if not media:
            raise AriError(400, "Missing parameter media")
        playback = self.pbx.play(
            channel,
            media,
            lang=params.get("lang"),
            playback_id=request.match_info.get("playbackId") or params.get("playbackId"),
        )
        return _ok(playback.snapshot())

    async def channel_record(self, request: web.Request) -> web.StreamResponse:
        channel = self._control(request)
        params = self._params(request)
        rec = self.pbx.record(
            channel, max_silence=params.integer("maxSilenceSeconds", 0), **_record_options(params)
        )
        return _ok(rec.snapshot())

    async def get_variable(self, request: web.Request) -> web.StreamResponse:
        channel = self._control(request)
        name = self._params(request).require("variable", "Missing variable parameter.")
        value = self.pbx.get_variable(channel, name)
        if value is None:
            raise AriError(404, "Provided variable was not found")
        return _ok({"value": value})

    async def set_variable(self, request: web.Request) -> web.StreamResponse:
        channel = self._control(request)
        params = self._params(request)
        name = params.require("variable", "Missing variable parameter.")
        value = params.get("value", "") or ""
        report = params.boolean("report_events", False)
        await self.pbx.set_variable_in_turn(channel, name, value, report)
        return _no_content()

    async def snoop(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel(request)
        params = self._params(request)
        snapshot = self.pbx.snoop(
            channel,
            app=params.get("app"),
            app_args=params.get("appArgs"),
            spy=params.get("spy") or "none",
            whisper=params.get("whisper") or "none",
            snoop_id=request.match_info.get("snoopId") or params.get("snoopId"),
        )
        return _ok(snapshot)

    async def dial(self, request: web.Request) -> web.StreamResponse:
        channel = self._control(request)
        params = self._params(request)
        timeout = params.integer("timeout", 0)
        if timeout < 0:
            raise AriError(400, "timeout cannot be negative")
        self.pbx.dial(channel, params.get("caller"), timeout)
        return _no_content()

    # -- bridges -------------------------------------------------------------------------------

    async def list_bridges(self, request: web.Request) -> web.StreamResponse:
        return _ok([b.snapshot() for b in self.pbx.bridges.values() if b.live])

    async def get_bridge(self, request: web.Request) -> web.StreamResponse:
        return _ok(self._bridge(request).snapshot())

    async def create_bridge(self, request: web.Request) -> web.StreamResponse:
        params = self._params(request)
        bridge = self.pbx.create_bridge(
            types=params.many("type") or ["mixing"],
            bridge_id=request.match_info.get("bridgeId") or params.get("bridgeId"),
            name=params.get("name") or "",
        )
        return _ok(bridge.snapshot())

    async def destroy_bridge(self, request: web.Request) -> web.StreamResponse:
        self.pbx.destroy_bridge(self._bridge(request))
        return _no_content()

    def _bridge_channels(self, request: web.Request) -> list[Channel]:
        ids = self._params(request).many("channel")
        if not ids:
            raise AriError(400, "Missing parameter channel")
        channels: list[Channel] = []
        for channel_id in ids:
            channel = self.pbx.live_channel(channel_id)
            if channel is None:
                raise AriError(400, "Channel not found")
            if channel.stasis_app is None:
                raise AriError(422, "Channel not in Stasis application")
            channels.append(channel)
        return channels

    async def add_channel(self, request: web.Request) -> web.StreamResponse:
        bridge = self._bridge(request)
        channels = self._bridge_channels(request)
        if any(c.recording is not None for c in channels):
            raise AriError(409, "Channel currently recording")
        for channel in channels:
            self.pbx.add_to_bridge(bridge, channel)
        return _no_content()

    async def remove_channel(self, request: web.Request) -> web.StreamResponse:
        bridge = self._bridge(request)
        channels = self._bridge_channels(request)
        if any(c.id not in bridge.channel_ids for c in channels):
            raise AriError(422, "Channel not in this bridge")
        for channel in channels:
            self.pbx.leave_bridge(channel)
        return _no_content()

    async def bridge_moh_start(self, request: web.Request) -> web.StreamResponse:
        self.pbx.start_moh(self._bridge(request), self._params(request).get("mohClass"))
        return _no_content()

    async def bridge_moh_stop(self, request: web.Request) -> web.StreamResponse:
        self.pbx.stop_moh(self._bridge(request))
        return _no_content()

    async def bridge_play(self, request: web.Request) -> web.StreamResponse:
        bridge = self._bridge(request)
        params = self._params(request)
        media = params.many("media")
        if not media:
            raise AriError(400, "Missing parameter media")
        playback = self.pbx.play(
            bridge,
            media,
            lang=params.get("lang"),
            playback_id=request.match_info.get("playbackId") or params.get("playbackId"),
        )
        return _ok(playback.snapshot())

    async def bridge_record(self, request: web.Request) -> web.StreamResponse:
        bridge = self._bridge(request)
        params = self._params(request)
        rec = self.pbx.record_bridge(bridge, **_record_options(params))
        return _ok(rec.snapshot())

    # -- playbacks and recordings ----------------------------------------------------------------

    async def get_playback(self, request: web.Request) -> web.StreamResponse:
        playback = self.pbx.active_playback(request.match_info["playbackId"])
        if playback is None:
            raise AriError(404, "Playback not found")
        return _ok(playback.snapshot())

    async def stop_playback(self, request: web.Request) -> web.StreamResponse:
        playback = self.pbx.active_playback(request.match_info["playbackId"])
        if playback is None:
            raise AriError(404, "Playback not found")
        self.pbx.finish_playback(playback, stopped=True)
        return _no_content()

    async def list_stored(self, request: web.Request) -> web.StreamResponse:
        return _ok([r.snapshot() for r in self.pbx.stored_recordings.values()])

    async def get_stored(self, request: web.Request) -> web.StreamResponse:
        stored = self.pbx.stored_recordings.get(request.match_info["recordingName"])
        if stored is None:
            raise AriError(404, "Recording not found")
        return _ok(stored.snapshot())

    async def delete_stored(self, request: web.Request) -> web.StreamResponse:
        if self.pbx.stored_recordings.pop(request.match_info["recordingName"], None) is None:
            raise AriError(404, "Recording not found")
        self.pbx.changed()
        return _no_content()

    async def get_live(self, request: web.Request) -> web.StreamResponse:
        rec = self.pbx.active_recording(request.match_info["recordingName"])
        if rec is None:
            raise AriError(404, "Recording not found")
        return _ok(rec.snapshot())

    async def cancel_live(self, request: web.Request) -> web.StreamResponse:
        rec = self.pbx.active_recording(request.match_info["recordingName"])
        if rec is None:
            raise AriError(404, "Recording not found")
        self.pbx.finish_recording(rec, "canceled")
        return _no_content()

    async def stop_live(self, request: web.Request) -> web.StreamResponse:
        rec = self.pbx.active_recording(request.match_info["recordingName"])
        if rec is None:
            raise AriError(404, "Recording not found")
        self.pbx.finish_recording(rec)
        return _no_content()

    # -- device states and endpoints ------------------------------------------------------------

    async def list_device_states(self, request: web.Request) -> web.StreamResponse:
        """Only the ``Stasis:`` devices set over ARI (res_stasis_device_state.c,
        stasis_app_device_states_to_json reads them back from astdb), never a phone."""
        names = sorted(self.pbx.device_states)
        return _ok([{"name": name, "state": self.pbx.device_state(name)} for name in names])

    async def get_device_state(self, request: web.Request) -> web.StreamResponse:
        """Any device name answers 200 (resource_device_states.c, ast_ari_device_states_get):
        an endpoint or technology Asterisk does not have is state ``INVALID``."""
        name = request.match_info["deviceName"]
        return _ok({"name": name, "state": self.pbx.device_state(name)})

    # res/ari/resource_mailboxes.c over res/res_stasis_mailbox.c (res_mwi_external's
    # mailboxes): a mailbox is {"name", "old_messages", "new_messages"}
    # (mailbox_to_json); PUT makes or updates one, 204 (stasis_app_mailbox_update);
    # GET and DELETE of one never set are 404 "Mailbox is does not exist" / "Mailbox
    # does not exist" (sic, ast_ari_mailboxes_get / _delete)

    async def list_mailboxes(self, request: web.Request) -> web.StreamResponse:
        return _ok([self._mailbox_json(name) for name in sorted(self.pbx.mailboxes)])

    async def get_mailbox(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["mailboxName"]
        if name not in self.pbx.mailboxes:
            raise AriError(404, "Mailbox is does not exist")
        return _ok(self._mailbox_json(name))

    async def put_mailbox(self, request: web.Request) -> web.StreamResponse:
        params = self._params(request)
        params.require("oldMessages")
        params.require("newMessages")
        old, new = params.integer("oldMessages", 0), params.integer("newMessages", 0)
        self.pbx.mailboxes[request.match_info["mailboxName"]] = (old, new)
        return _no_content()

    async def delete_mailbox(self, request: web.Request) -> web.StreamResponse:
        if self.pbx.mailboxes.pop(request.match_info["mailboxName"], None) is None:
            raise AriError(404, "Mailbox does not exist")
        return _no_content()

    def _mailbox_json(self, name: str) -> dict[str, Any]:
        old, new = self.pbx.mailboxes[name]
        return {"name": name, "old_messages": old, "new_messages": new}

    async def put_device_state(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["deviceName"]
        self.pbx.set_stasis_device_state(name, self._params(request).get("deviceState") or "")
        return _no_content()

    async def delete_device_state(self, request: web.Request) -> web.StreamResponse:
        self.pbx.delete_stasis_device_state(request.match_info["deviceName"])
        return _no_content()

    async def list_endpoints(self, request: web.Request) -> web.StreamResponse:
        found = [self.pbx.endpoint_json(name) for name in self.pbx.endpoint_names()]
        return _ok([e for e in found if e is not None])

    async def list_endpoints_by_tech(self, request: web.Request) -> web.StreamResponse:
        tech = request.match_info["tech"]
        found = [
            self.pbx.endpoint_json(name)
            for name in self.pbx.endpoint_names()
            if name.partition("/")[0] == tech
        ]
        if not found:
            raise AriError(404, "Endpoints not found")
        return _ok([e for e in found if e is not None])

    async def get_endpoint(self, request: web.Request) -> web.StreamResponse:
        endpoint = self.pbx.endpoint_json(
            f"{request.match_info['tech']}/{request.match_info['resource']}"
        )
        if endpoint is None:
            raise AriError(404, "Endpoint not found")
        return _ok(endpoint)

    # -- applications ------------------------------------------------------------------------

    def _application(self, request: web.Request) -> Application:
        app = self.pbx.registry.get(request.match_info["applicationName"])
        if app is None:
            raise AriError(404, "Application not found")  # resource_applications.c
        return app

    async def list_applications(self, request: web.Request) -> web.StreamResponse:
        return _ok([self.pbx.application_json(a) for a in self.pbx.registry.apps.values()])

    async def get_application(self, request: web.Request) -> web.StreamResponse:
        return _ok(self.pbx.application_json(self._application(request)))

    async def event_filter(self, request: web.Request) -> web.StreamResponse:
        app = self._application(request)
        body = request[BODY]
        if body is None:
            app.set_filter([], [])
        elif not isinstance(body, dict) or set(body) - {"allowed", "disallowed"}:
            raise AriError(400, "Bad request.")
        else:
            lists: dict[str, list[str] | None] = {}
            for key in ("allowed", "disallowed"):
                if key not in body:
                    lists[key] = None
                    continue
                items = body[key]
                if not isinstance(items, list) or not all(
                    isinstance(i, dict) and isinstance(i.get("type"), str) for i in items
                ):
                    raise AriError(400, "Bad request.")
                lists[key] = [i["type"] for i in items]
            app.set_filter(lists["allowed"], lists["disallowed"])
        self.pbx.changed()
        return _ok(self.pbx.application_json(app))

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        app = self._application(request)
        sources = self._params(request).many("eventSource")
        if not sources:
            raise AriError(400, "Missing parameter eventSource")
        for source in sources:
            self.pbx.subscribe(app, source)
        return _ok(self.pbx.application_json(app))

    async def unsubscribe(self, request: web.Request) -> web.StreamResponse:
        app = self._application(request)
        sources = self._params(request).many("eventSource")
        if not sources:
            raise AriError(400, "Missing parameter eventSource")
        for source in sources:
            self.pbx.unsubscribe(app, source)
        return _ok(self.pbx.application_json(app))

    # -- control API ----------------------------------------------------------------------------

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        if not request.body_exists:
            return {}
        try:
            data = await request.json()
        except json.JSONDecodeError:
            raise AriError(400, "body is not JSON") from None
        if not isinstance(data, dict):
            raise AriError(400, "body must be a JSON object")
        return data

    def _sim_channel(self, request: web.Request) -> Channel:
        channel = self.pbx.live_channel(request.match_info["channelId"])
        if channel is None:
            raise AriError(404, "Channel not found")
        return channel

    async def sim_place_call(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        try:
            script = CallerScript.from_json(data["script"]) if data.get("script") else None
            line = data.get("line")
            channel = self.pbx.place_call(
                caller=str(data.get("caller", "")),
                caller_name=str(data.get("caller_name", "")),
                called=str(data.get("called", "")),
                tech=str(data.get("tech", "PJSIP/trunk")),
                line=int(line) if line is not None else None,
                app_args=data.get("app_args"),
                script=script,
                context=data.get("context"),
                app=data.get("app"),
            )
        except (TypeError, ValueError) as error:
            raise AriError(400, str(error)) from None
        return _ok({"channel_id": channel.id, "name": channel.name}, status=201)

    async def sim_press(self, request: web.Request) -> web.StreamResponse:
        channel = self._sim_channel(request)
        data = await self._json_body(request)
        try:
            await self.pbx.press(channel, str(data.get("digits", "")), float(data.get("gap", 0.3)))
        except ValueError as error:
            raise AriError(400, str(error)) from None
        return _no_content()

    async def sim_hangup(self, request: web.Request) -> web.StreamResponse:
        channel = self._sim_channel(request)
        data = await self._json_body(request)
        self.pbx.far_end_hangup(channel, int(data.get("cause", NORMAL_CLEARING)))
        return _no_content()

    async def sim_script_endpoint(self, request: web.Request) -> web.StreamResponse:
        data = await self._json_body(request)
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str) or "/" not in endpoint:
            raise AriError(400, "endpoint (e.g. PJSIP/101) is required")
        try:
            script = EndpointScript.from_json(data)
        except (TypeError, ValueError) as error:
            raise AriError(400, str(error)) from None
        self.pbx.script_endpoint(endpoint, script)
        return _no_content()

    @staticmethod
    def _sim_endpoint(request: web.Request) -> str:
        return f"{request.match_info['tech']}/{request.match_info['resource']}"

    async def sim_register(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/endpoints/{tech}/{resource}/register`` or ``.../unregister``: the
        phone gains or loses its contact (`Pbx.set_registered`)."""
        registered = request.path.endswith("/register")
        self.pbx.set_registered(self._sim_endpoint(request), registered)
        return _no_content()

    async def sim_call_from(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/endpoints/{tech}/{resource}/call`` ``{"called": "...", "to":
        "PJSIP/202", "context": "from-internal"}`` (all optional): the phone makes a call
        that never enters Stasis (`Pbx.call_from`).  201 ``{"channel_id", "name",
        "peer_id"}`` (``peer_id`` null without ``to``); end it with
        ``/_sim/channels/{id}/hangup``."""
        data = await self._json_body(request)
        to = data.get("to")
        if to is not None and not isinstance(to, str):
            raise AriError(400, "to must be an endpoint such as PJSIP/202")
        try:
            channel = self.pbx.call_from(
                self._sim_endpoint(request),
                called=str(data.get("called", "")),
                to=to,
                context=str(data.get("context", DEFAULT_PHONE_CONTEXT)),
            )
        except ValueError as error:
            raise AriError(400, str(error)) from None
        body = {"channel_id": channel.id, "name": channel.name, "peer_id": channel.dial_peer_id}
        return _ok(body, status=201)

    async def sim_requests(self, request: web.Request) -> web.StreamResponse:
        return _ok(
            [
                {
                    "t": r.t,
                    "method": r.method,
                    "path": r.path,
                    "query": r.query,
                    "body": r.body,
                    "status": r.status,
                    "via": r.via,
                }
                for r in self.pbx.requests
            ]
        )

    async def sim_state(self, request: web.Request) -> web.StreamResponse:
        return _ok(self.state_json())

    async def sim_drop(self, request: web.Request) -> web.StreamResponse:
        await self.drop_websockets()
        return _no_content()

    async def sim_restart(self, request: web.Request) -> web.StreamResponse:
        await self.restart()
        return _no_content()

    def state_json(self) -> Json:
        """Everything the simulator knows, live and gone, for ``GET /_sim/state``."""
        pbx = self.pbx

        def channel(c: Channel) -> Json:
            return {
                **c.snapshot(),
                "live": c.live,
                "endpoint": c.endpoint,
                "stasis_app": c.stasis_app,
                "bridge_id": c.bridge_id,
                "hangup_cause": c.hangup_cause,
                "stasis_failed": c.stasis_failed,
                "continued_to": c.continued_to.to_json() if c.continued_to else None,
                "dtmf_received": "".join(c.dtmf_received),
                "dtmf_sent": c.dtmf_sent,
                "moh_class": c.moh_class,
                "on_hold": c.on_hold,
                "dial_peer_id": c.dial_peer_id,
            }

        return {
            "now": pbx.now(),
            "channels": [channel(c) for c in pbx.channels.values()],
            "bridges": [{**b.snapshot(), "live": b.live} for b in pbx.bridges.values()],
            "playbacks": [p.snapshot() for p in pbx.playbacks.values()],
            "recordings": {
                "live": [r.snapshot() for r in pbx.recordings.values()],
                "stored": [r.snapshot() for r in pbx.stored_recordings.values()],
            },
            "applications": [
                {**pbx.application_json(a), "connected": a.active}
                for a in pbx.registry.apps.values()
            ],
            "device_states": dict(sorted(pbx.device_cache.items())),
            "registrations": dict(sorted(pbx.registrations.items())),
        }


class _RecordOptions(TypedDict):
    name: str
    fmt: str
    max_duration: int
    if_exists: str
    beep: bool
    terminate_on: str


def _record_options(params: Params) -> _RecordOptions:
    """A channel's or a bridge's ``/record`` parameters (the two take the same; a
    channel's also ``maxSilenceSeconds``)."""
    return {
        "name": params.require("name", "Invalid parameters: name is required"),
        "fmt": params.require("format", "Invalid parameters: format is required"),
        "max_duration": params.integer("maxDurationSeconds", 0),
        "if_exists": params.get("ifExists") or "fail",
        "beep": params.boolean("beep", False),
        "terminate_on": params.get("terminateOn") or "none",
    }
