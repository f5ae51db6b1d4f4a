"""A fault harness for ARI (issue 10): a proxy between the app and Asterisk that
delays, fails, drops and cuts at chosen points.

    plan = FaultPlan([Rule("POST /bridges", Fail(500), 0.5), Rule("any", Drop(), 0.01)], seed=7)
    async with FaultProxy(sim.url, plan) as proxy:  # proxy.url: http://127.0.0.1:PORT
        ...                                         # the app talks to proxy.url
        await proxy.cut_websocket()                 # the app must reconnect
        proxy.calm()                                # no more faults: let it settle
    proxy.counts                                    # what it did

It forwards plain HTTP requests and the events websocket (text frames, both
ways).  Requests reach Asterisk two ways -- HTTP, and ``RESTRequest`` frames on
the events websocket (`ari_app.client.WebsocketRequests`, which the app uses
whenever Asterisk answers there) -- and each request is judged the same way
whichever way it came; a fault on a websocket request is told as Asterisk tells
an answer, a ``RESTResponse`` frame with the request's ``request_id``
(res/ari/ari_websocket_requests.c, ari_websocket_send_response).

What a fault does, by transport:

=====================  ===================================  ====================================
action                 HTTP                                 RESTRequest on the websocket
=====================  ===================================  ====================================
`Fail`                 the status, not forwarded            a RESTResponse with the status
`Drop`                 the connection closed, no answer     no answer: the request times out
`Delay` (``forward``)  held, then forwarded and answered    held, then forwarded (answered late)
`Delay` (``drop``)     held, then closed, never forwarded   held, then forgotten
`FailAfterForward`     Asterisk does it; the app gets the   the same, as a RESTResponse (or
                       status, or a closed connection       none)
=====================  ===================================  ====================================

A stall longer than the app's request timeout (`ari_app.client.REQUEST_TIMEOUT`)
with ``forward`` is the case where Asterisk does what the app has given up on:
like `FailAfterForward`, the nastiest for idempotency.  The websocket upgrade
itself is an HTTP request (``GET /events``) and is judged too.

Which rule applies (`FaultPlan.judge`): the first rule whose route matches the
request picks the route; every rule of that same route is a candidate, and one
draw of the plan's seeded `random.Random` picks among them by their
probabilities, which add up (what is left passes).  So ``0.05`` split over four
actions on one route faults exactly 5 % of its requests, and a specific route
listed before ``any`` takes those requests out of ``any``'s hands.

Delays run on the asyncio loop, or on the `switchboard.clock.Clock` given (a
test's scaled clock).  Nothing here blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar, Literal

import aiohttp
import orjson
from aiohttp import WSMsgType, web
from yarl import URL

from asterisk_sim.pbx import StateSignal
from switchboard.clock import Clock

HOST = "127.0.0.1"
FAULT_MESSAGE = "fault injected by the test proxy"
INJECTED_KEPT = 100_000  # the latest faults kept for a look afterwards

# --- what may happen to a request ------------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    """Forwarded and answered as Asterisk answers."""

    kind: ClassVar[str] = "pass"


@dataclass(frozen=True)
class Fail:
    """Answered with ``status`` at once; Asterisk never hears of it."""

    status: int = 500
    message: str = FAULT_MESSAGE
    kind: ClassVar[str] = "fail"


@dataclass(frozen=True)
class Drop:
    """No answer ever: HTTP's connection is closed, a websocket request is forgotten."""

    kind: ClassVar[str] = "drop"


@dataclass(frozen=True)
class Delay:
    """Held ``seconds``, then forwarded (``then="forward"``) or dropped (``"drop"``)."""

    seconds: float
    then: Literal["forward", "drop"] = "forward"
    kind: ClassVar[str] = "delay"


@dataclass(frozen=True)
class FailAfterForward:
    """Forwarded -- Asterisk does it -- but the app is told ``status`` (None: no answer)."""

    status: int | None = 500
    message: str = FAULT_MESSAGE
    kind: ClassVar[str] = "fail_after_forward"


Action = Pass | Fail | Drop | Delay | FailAfterForward
PASS = Pass()


# --- which requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """``METHOD /path`` with ``*`` for one path segment, a final ``**`` for any rest, and
    ``*`` for any method; ``any`` is ``* /**``.  Paths are ARI's, without ``/ari``."""

    method: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Route:
        method, _, path = ("* /**" if text == "any" else text).partition(" ")
        if not method or not path.startswith("/"):
            raise ValueError(f"a route is 'METHOD /path' or 'any', not {text!r}")
        segments = tuple(s for s in path.split("/") if s)
        if "**" in segments[:-1]:
            raise ValueError(f"'**' may only end a route: {text!r}")
        return cls(method.upper(), segments)

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        parts = [p for p in path.split("/") if p]
        for i, segment in enumerate(self.segments):
            if segment == "**":
                return True
            if i >= len(parts) or segment not in ("*", parts[i]):
                return False
        return len(parts) == len(self.segments)


@dataclass(frozen=True)
class Rule:
    """Requests matching ``route`` meet ``action`` with ``probability``."""

    route: str
    action: Action
    probability: float = 1.0
    parsed: Route = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"a probability is between 0 and 1, not {self.probability}")
        object.__setattr__(self, "parsed", Route.parse(self.route))


class FaultPlan:
    """The rules, and a seeded random draw: the same requests in the same order meet
    the same faults."""

    def __init__(self, rules: Iterable[Rule] = (), seed: int | None = 0) -> None:
        self.rules = tuple(rules)
        self.random = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets

    def judge(self, method: str, path: str) -> tuple[Action, Rule | None]:
        """What happens to ``method path`` (``/channels/1/dial``), and by which rule."""
        first = next((r for r in self.rules if r.parsed.matches(method, path)), None)
        if first is None:
            return PASS, None
        draw = self.random.random()
        total = 0.0
        for rule in self.rules:
            if rule.route == first.route:
                total += rule.probability
                if draw < total:
                    return rule.action, rule
        return PASS, None


# --- the proxy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injected:
    """One fault: on which request, which way it came, by which rule."""

    transport: str  # "http" or "ws"
    method: str
    path: str  # ARI's, without /ari
    query: str  # as sent: ids may be there (``bridgeId=``)
    kind: str
    route: str


def ari_path(path: str) -> str:
    """``/ari/channels/1?x=y`` or a RESTRequest's ``channels/1?x=y`` -> ``/channels/1``."""
    path = "/" + path.partition("?")[0].lstrip("/")
    if path == "/ari" or path.startswith("/ari/"):
        path = path[len("/ari") :] or "/"
    return path


@dataclass(eq=False)
class _Link:
    """One events websocket: the app's side, Asterisk's side, and what is owed to the app."""

    app: web.WebSocketResponse
    upstream: aiohttp.ClientWebSocketResponse
    request: web.Request
    # request_id -> the answer the app gets instead of Asterisk's (fail_after_forward)
    replace: dict[str, FailAfterForward] = field(default_factory=dict)
    held: set[asyncio.Task[None]] = field(default_factory=set)

    def cut(self) -> None:
        """Drop the app's TCP connection without a close frame (a crash, a cut cable)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class FaultProxy:
    """An ARI proxy on 127.0.0.1 that injects the faults of its `plan`."""

    def __init__(
        self, upstream: str, plan: FaultPlan | None = None, clock: Clock | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan or FaultPlan()
        self.counts: Counter[str] = Counter()  # "ws requests", "http fail", "cuts" ...
        self.by_rule: Counter[str] = Counter()  # "fail POST /bridges" ...
        self.injected: deque[Injected] = deque(maxlen=INJECTED_KEPT)
        self.calmed = False
        self.holding = 0  # requests held by a `Delay` now
        self._sleep = clock.sleep if clock is not None else asyncio.sleep
        self._signal = StateSignal()
        self._links: set[_Link] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._cutter: asyncio.Task[None] | None = None
        self._url: str | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        # no timeout of its own: the app's timeouts are what is being tested
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None),
            connector=aiohttp.TCPConnector(limit=0),
            auto_decompress=False,
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        self._url = f"http://{HOST}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._cutter is not None:
            self._cutter.cancel()
            await asyncio.gather(self._cutter, return_exceptions=True)
            self._cutter = None
        for link in list(self._links):
            link.cut()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Where the app should find ARI (``http://127.0.0.1:PORT``)."""
        if self._url is None:
            raise RuntimeError("the proxy is not started")
        return self._url

    # -- control --------------------------------------------------------------------------

    def calm(self) -> None:
        """No more faults and no more cuts (requests already held finish as planned)."""
        self.calmed = True
        self._signal.notify()

    def resume(self) -> None:
        """Faults and periodic cuts again, after `calm`."""
        self.calmed = False
        self._signal.notify()

    @property
    def websockets(self) -> int:
        """Events websockets open now."""
        return len(self._links)

    async def cut_websocket(self) -> int:
        """Cut every events websocket now (how many); returns once they are gone."""
        links = list(self._links)
        for link in links:
            link.cut()
        self.counts["cuts"] += len(links)
        self._signal.notify()
        await self._signal.wait_until(lambda: self._links.isdisjoint(links), within=5.0)
        return len(links)

    def cut_every(self, seconds: float) -> None:
        """Cut the websocket every ``seconds`` (not while calm) until `stop`."""
        if self._cutter is not None:
            self._cutter.cancel()
        self._cutter = asyncio.create_task(self._cut_periodically(seconds), name="proxy-cutter")

    async def _cut_periodically(self, seconds: float) -> None:
        while True:
            await self._sleep(seconds)
            if not self.calmed:
                await self.cut_websocket()

    async def wait_for(
        self,
        predicate: Callable[[FaultProxy], bool],
        within: float = 10.0,
    ) -> None:
        """Until ``predicate(self)`` holds, re-checked at each request, websocket or cut."""
        await self._signal.wait_until(lambda: predicate(self), within=within)

    async def _stall(self, seconds: float) -> None:
        self.holding += 1
        try:
            await self._sleep(seconds)
        finally:
            self.holding -= 1
            self._signal.notify()

    # -- judging --------------------------------------------------------------------------

    def _judge(self, transport: str, method: str, target: str) -> Action:
        """The fate of ``method target`` (a path with its query, ``/ari`` or not)."""
        path, _, query = target.partition("?")
        path = ari_path(path)
        self.counts[f"{transport} requests"] += 1
        action, rule = (PASS, None) if self.calmed else self.plan.judge(method, path)
        if rule is not None and not isinstance(action, Pass):
            self.counts[f"{transport} {action.kind}"] += 1
            self.by_rule[f"{action.kind} {rule.route}"] += 1
            self.injected.append(Injected(transport, method, path, query, action.kind, rule.route))
        self._signal.notify()
        return action

    # -- HTTP -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        action = self._judge("http", request.method, request.path_qs)
        body = await request.read()
        early = await self._before_forwarding(request, action)
        if early is not None:
            return early
        try:
            response = await self._forward(request, body)
        except (aiohttp.ClientError, OSError):
            return _hang_up(request)  # Asterisk unreachable: so it is for the app
        if isinstance(action, FailAfterForward):
            return _told(request, action.status, action.message)
        return response

    async def _before_forwarding(
        self, request: web.Request, action: Action
    ) -> web.StreamResponse | None:
        """The answer to give without forwarding, if any (after a stall, if any)."""
        match action:
            case Fail(status, message):
                return _told(request, status, message)
            case Drop():
                return _hang_up(request)
            case Delay(seconds, then):
                await self._stall(seconds)
                return _hang_up(request) if then == "drop" else None
        return None

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._http is not None
        async with self._http.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=_passed_headers(request),
            data=body or None,
        ) as answer:
            data = await answer.read()
            headers = {}
            if "Content-Type" in answer.headers:
                headers["Content-Type"] = answer.headers["Content-Type"]
            return web.Response(status=answer.status, body=data, headers=headers)

    # -- the events websocket --------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """The upgrade is judged as an HTTP request; then both ways are relayed."""
        action = self._judge("http", request.method, request.path_qs)
        early = await self._before_forwarding(request, action)
        if early is not None:
            return early
        assert self._http is not None
        try:
            upstream = await self._http.ws_connect(
                URL(self.upstream + request.raw_path, encoded=True),
                headers=_passed_headers(request),
                max_msg_size=0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            return web.json_response({"message": exc.message}, status=exc.status)
        except (aiohttp.ClientError, OSError):
            return _hang_up(request)
        if isinstance(action, FailAfterForward):
            await upstream.close()
            return _told(request, action.status, action.message)
        app_side = web.WebSocketResponse(max_msg_size=0)
        try:
            await app_side.prepare(request)
        except ConnectionResetError:
            # the app gave up on a handshake held too long: Asterisk has had it (and given
            # the app to it); a proxy closes its side then
            await upstream.close()
            return app_side
        link = _Link(app_side, upstream, request)
        self._links.add(link)
        self.counts["websockets"] += 1
        self._signal.notify()
        try:
            await self._relay(link)
        finally:
            self._links.discard(link)
            for task in link.held:
                task.cancel()
            await upstream.close()
            await app_side.close()
            self._signal.notify()
        return app_side

    async def _relay(self, link: _Link) -> None:
        """Both directions until either side goes."""
        directions = [
            asyncio.create_task(self._from_app(link)),
            asyncio.create_task(self._from_asterisk(link)),
        ]
        try:
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in directions:
                task.cancel()
            await asyncio.gather(*directions, return_exceptions=True)

    async def _from_app(self, link: _Link) -> None:
        async for message in link.app:
            if message.type == WSMsgType.TEXT:
                await self._app_frame(link, message.data)
            elif message.type == WSMsgType.BINARY:
                await link.upstream.send_bytes(message.data)
            elif message.type == WSMsgType.ERROR:
                break

    async def _app_frame(self, link: _Link, text: str) -> None:
        request = _rest_request(text)
        if request is None:  # not a request: nothing to judge
            await link.upstream.send_str(text)
            return
        action = self._judge(
            "ws", str(request.get("method", "")).upper(), str(request.get("uri", ""))
        )
        match action:
            case Fail(status, message):
                await link.app.send_str(_rest_response(request, status, message))
            case Drop():
                pass
            case Delay(seconds, then):
                # held aside: the frames behind it go on (Asterisk sees them first)
                task = asyncio.create_task(self._hold(link, text, seconds, then))
                link.held.add(task)
                task.add_done_callback(link.held.discard)
            case FailAfterForward():
                link.replace[str(request.get("request_id", ""))] = action
                await link.upstream.send_str(text)
            case Pass():
                await link.upstream.send_str(text)

    async def _hold(self, link: _Link, text: str, seconds: float, then: str) -> None:
        await self._stall(seconds)
        if then == "forward" and not link.upstream.closed:
            # the websocket may go meanwhile: the request is then lost, as the app expects
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await link.upstream.send_str(text)

    async def _from_asterisk(self, link: _Link) -> None:
        async for message in link.upstream:
            if message.type == WSMsgType.TEXT:
                answer = self._instead(link, message.data)
                if answer is not None:
                    await link.app.send_str(answer)
            elif message.type == WSMsgType.BINARY:
                await link.app.send_bytes(message.data)
            elif message.type == WSMsgType.ERROR:
                break

    @staticmethod
    def _instead(link: _Link, text: str) -> str | None:
        """What the app gets for Asterisk's frame: itself, a failure in its place, or
        nothing.  Frames are parsed only while an answer is owed (the cheap test first)."""
        if not link.replace or '"RESTResponse"' not in text:
            return text
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        action = link.replace.pop(str(frame.get("request_id", "")), None)
        if action is None:
            return text
        if action.status is None:
            return None
        return _rest_response(frame, action.status, action.message)


# --- answers ------------------------------------------------------------------------------------


def _passed_headers(request: web.Request) -> dict[str, str]:
    """What Asterisk needs of the app's request: its credentials and body type."""
    return {
        k: request.headers[k] for k in ("Authorization", "Content-Type") if k in request.headers
    }


def _told(request: web.Request, status: int | None, message: str) -> web.StreamResponse:
    """``status`` with ARI's error body, or (None) no answer at all."""
    if status is None:
        return _hang_up(request)
    return web.json_response({"message": message}, status=status)


def _hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer (aiohttp drops the response it is handed)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)


def _rest_request(text: str) -> dict[str, Any] | None:
    """The ``RESTRequest`` a frame from the app carries, if it is one."""
    if '"RESTRequest"' not in text:
        return None
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(frame, dict) and frame.get("type") == "RESTRequest":
        return frame
    return None


def _rest_response(request: dict[str, Any], status: int, message: str) -> str:
    """A ``RESTResponse`` as ari_websocket_requests.c packs it, for ``request``'s ids."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return orjson.dumps(
        {
            "type": "RESTResponse",
            "transaction_id": str(request.get("transaction_id", "")),
            "request_id": str(request.get("request_id", "")),
            "status_code": status,
            "reason_phrase": reason,
            "uri": str(request.get("uri", "")),
            "content_type": "application/json",
            "message_body": orjson.dumps({"message": message}).decode(),
        }
    ).decode()
