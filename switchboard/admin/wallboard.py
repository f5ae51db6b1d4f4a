"""The live wallboard (issue 12, part 4): ``GET /wallboard`` on the admin server.

A supervisor's screen of one process: each department's queue (callers waiting,
the longest wait, the estimated wait, today's service level), the agents (state
and for how long), the calls carried now, and today's funnel per scenario --
where callers leave.  The page is plain HTML, CSS and a small script, shipped as
package data (``switchboard/admin/static/``): no build step.  The script draws
everything from JSON snapshots pushed over server-sent events, with
``textContent`` only, so a caller's number or name full of HTML shows as text.

==========================  ===============================================
``GET /wallboard``          the page (``?lang=ru|en``; default: the
                            company's ``language``)
``GET /wallboard/events``   ``text/event-stream``: a `board` snapshot at
                            once, then each time it changes (looked at every
                            `TICK` s), and a comment every `KEEP_ALIVE` s
``GET /wallboard/static/``  its script and style sheet
==========================  ===============================================

Today's figures (the funnel and the service level) come from the database when
the calls' records go to PostgreSQL -- every call of today in the company's
timezone, whichever process carried it, asked at most every `DATABASE_TTL`
seconds -- else from the records this process kept in memory (`MemorySink`).

The page shows callers' numbers: it is served on the admin address only
(loopback by default), like ``/metrics``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

import asyncpg
import orjson
import structlog
from aiohttp import web

from switchboard.acd.agents import Agent
from switchboard.admin.status import RuntimeStatus, _inner
from switchboard.admin.tokens import TOKEN_TTL, FailedChecks, TokenCheck
from switchboard.calls import CallRecord, MemorySink, queued_in
from switchboard.config.company import Company
from switchboard.driver import CallNow

log = structlog.get_logger("switchboard.admin")

TICK = 0.25  # seconds between two looks at the runtime for a changed snapshot
KEEP_ALIVE = 15.0  # seconds of silence before a comment keeps proxies from closing the stream
DATABASE_TTL = 5.0  # seconds today's figures from the database are kept
SERVICE_LEVEL_S = 20.0  # answered within this many seconds of waiting counts as served
LANGUAGES = ("en", "ru")
COOKIE = "switchboard_wallboard"  # the admin API token a browser showed once
COOKIE_DAYS = 30  # a wallboard screen is left on: it keeps its token this long
STATIC_FILES = {  # name -> content type
    "wallboard.html": "text/html; charset=utf-8",
    "wallboard.js": "text/javascript; charset=utf-8",
    "wallboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# nothing but our own files: no inline script or style, even if some text slipped through
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class NodeCount:
    """One node of a scenario's funnel today: calls that entered it, and left there
    by hanging up (abandoned)."""

    node: str
    type: str
    calls: int
    abandoned: int


@dataclass(frozen=True, slots=True)
class Today:
    """Today's figures: each scenario's funnel, and per department the calls offered
    to its queue and those answered within `SERVICE_LEVEL_S`."""

    source: str  # "database", "process" (records kept in memory) or "none"
    funnel: dict[str, list[NodeCount]] = field(default_factory=dict)
    offered: dict[str, int] = field(default_factory=dict)
    answered_within: dict[str, int] = field(default_factory=dict)


def today_from_records(records: Iterable[CallRecord], company: Company, now: dt.datetime) -> Today:
    """Today's figures (in the company's timezone) from finished calls' records: a node
    counts each call that entered it once, and an abandoned call where it ended (as
    the database's ``call_steps`` view counts them)."""
    day = company.local_time(now).date()
    calls: dict[tuple[str, str, str], int] = defaultdict(int)
    abandoned: dict[tuple[str, str, str], int] = defaultdict(int)
    first_seen: dict[tuple[str, str, str], int] = {}
    offered: dict[str, int] = defaultdict(int)
    within: dict[str, int] = defaultdict(int)
    for record in records:
        if company.local_time(record.started_at).date() != day:
            continue
        seen: set[tuple[str, str, str]] = set()
        for position, step in enumerate(record.steps):
            key = (step.scenario, step.node, step.type)
            first_seen[key] = min(first_seen.get(key, position), position)
            if key not in seen:
                seen.add(key)
                calls[key] += 1
        if record.steps and record.outcome.result == "abandoned":
            last = record.steps[-1]
            abandoned[last.scenario, last.node, last.type] += 1
        outcome = record.outcome
        department = outcome.department or _queued_in(company, record)
        if department is not None:
            offered[department] += 1
            if outcome.result == "connected" and outcome.wait <= SERVICE_LEVEL_S:
                within[department] += 1
    funnel: dict[str, list[NodeCount]] = defaultdict(list)
    for key in sorted(calls, key=lambda k: (k[0], first_seen[k], -calls[k], k[1])):
        scenario, node, kind = key
        funnel[scenario].append(NodeCount(node, kind, calls[key], abandoned[key]))
    return Today("process", dict(funnel), dict(offered), dict(within))


def _queued_in(company: Company, record: CallRecord) -> str | None:
    """The department of the last queue a call waited in (an abandoned call's outcome
    names none); None when it waited in none the configuration still has."""
    return record.queue_department or queued_in(company, record.steps)


class TodaySource:
    """Where today's figures come from for one runtime: its database when its records
    go there, else the records it keeps in memory."""

    def __init__(self, status: RuntimeStatus, wall: Callable[[], dt.datetime]) -> None:
        self.status = status
        self.wall = wall
        self._lock = asyncio.Lock()
        self.ttl = DATABASE_TTL
        self._kept: Today | None = None
        self._at = 0.0  # monotonic time `_kept` was asked

    async def get(self) -> Today:
        company = self.status.company()
        probe = self.status.database
        if probe is None:
            sink = _inner(self.status.calls)
            if isinstance(sink, MemorySink):
                return today_from_records(sink.records, company, self.wall())
            return Today("none")
        async with self._lock:
            if self._kept is None or time.monotonic() - self._at >= self.ttl:
                self._kept = await self._from_database(probe.pool, company)
                self._at = time.monotonic()
            return self._kept

    async def _from_database(self, pool: asyncpg.Pool, company: Company) -> Today:
        # imported here: only a runtime with a database needs the report's queries
        from switchboard.storage.records import DATABASE_DOWN  # noqa: PLC0415
        from switchboard.storage.reports import build_report, set_timezone  # noqa: PLC0415

        local = company.local_time(self.wall())
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + dt.timedelta(days=1)
        try:
            async with asyncio.timeout(2.0), pool.acquire() as proxy:
                # the report's queries take a connection; the pool's proxy is one
                conn = cast(asyncpg.Connection, proxy)
                await set_timezone(conn, company.tz.key)
                report = await build_report(
                    conn,
                    start=start,
                    end=end,
                    timezone=company.tz.key,
                    by="department",
                    service_level_s=SERVICE_LEVEL_S,
                )
        except TimeoutError:
            log.warning("wallboard: today's figures not read", why="database too slow")
            return self._kept or Today("database")
        except DATABASE_DOWN:
            log.warning("wallboard: today's figures not read", why="database away")
            return self._kept or Today("database")
        offered: dict[str, int] = defaultdict(int)
        within: dict[str, int] = defaultdict(int)
        funnel: dict[str, list[NodeCount]] = {}
        for scenario in report.scenarios:
            funnel[scenario.scenario] = [
                NodeCount(n.node, n.type, n.calls, n.abandoned) for n in scenario.funnel
            ]
            # a call's department is the one that answered it, else the one whose queue
            # its caller waited in (all_calls, schema version 9): those who gave up count
            for group in scenario.groups:
                if group.group is not None:
                    offered[group.group] += group.offered or 0
                    within[group.group] += group.answered_within or 0
        return Today("database", funnel, dict(offered), dict(within))


def board(status: RuntimeStatus, today: Today) -> dict[str, Any]:
    """The wallboard's snapshot: JSON-ready, durations in whole seconds (so it changes
    at most once a second of the runtime's clock while nothing else happens)."""
    company = status.company()
    desk = status.desk
    acd = desk.acd
    now = desk.clock.now()
    calls = status.calls_now()
    return {
        "language": company.config.language if company.config.language in LANGUAGES else "en",
        "today": {"source": today.source, "service_level_s": SERVICE_LEVEL_S},
        "queues": _queues(status, company, calls, today),
        "agents": [
            _agent(acd.agents.get(employee.id), employee.id, employee.name, now)
            for employee in company.config.employees
        ],
        "calls": [_call(call) for call in calls],
        "funnel": [
            {
                "scenario": scenario,
                "nodes": [
                    {"node": n.node, "type": n.type, "calls": n.calls, "abandoned": n.abandoned}
                    for n in nodes
                ],
            }
            for scenario, nodes in sorted(today.funnel.items())
        ],
    }


def _queues(
    status: RuntimeStatus, company: Company, calls: list[CallNow], today: Today
) -> list[dict[str, Any]]:
    acd = status.desk.acd
    # the longest wait: the longest a caller waiting in the queue has been on the line
    longest: dict[str, float] = {}
    for call in calls:
        if call.state == "queue" and call.department is not None:
            longest[call.department] = max(longest.get(call.department, 0.0), call.seconds)
    queues = []
    for name, department in company.departments.items():
        line = list(acd.line(name))
        estimates = [e for e in (acd.estimate(call) for call in line) if e is not None]
        offered = today.offered.get(name, 0)
        within = today.answered_within.get(name, 0)
        queues.append(
            {
                "department": name,
                "name": department.name or name,
                "waiting": len(line),
                "longest_wait": _whole(longest.get(name)),
                # what the last caller in line may still wait: a new caller's wait
                "estimated_wait": _whole(max(estimates)) if estimates else None,
                "offered_today": offered,
                "answered_within_today": within,
                "service_level": round(within / offered, 3) if offered else None,
            }
        )
    return queues


def _agent(agent: Agent | None, agent_id: str, name: str, now: float) -> dict[str, Any]:
    if agent is None:  # dropped by a newer configuration, not yet by this list
        return {"agent": agent_id, "name": name or agent_id, "state": "logged_out", "seconds": 0}
    return {
        "agent": agent_id,
        "name": name or agent_id,
        "state": agent.shown_state(now),
        "reason": agent.reason if agent.state == "paused" else "",
        "seconds": _whole(max(0.0, now - agent.since)),
    }


def _call(call: CallNow) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "caller": call.caller,
        "called": call.called,
        "scenario": call.scenario,
        "node": call.node,
        "state": call.state,
        "department": call.department,
        "agent": call.agent,
        "seconds": _whole(call.seconds),
    }


def _whole(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds)


class Access:
    """Who may see the wallboard.  With no database, or no admin API token ever created,
    anyone who reaches the admin address (loopback by default); once one was (even if
    all are revoked since), a browser holding a token not revoked: given once as
    ``?token=``, kept in an HttpOnly cookie, checked at each request by the API's
    `TokenCheck` (read again every ``ttl`` s, so a revoked token stops working within
    seconds).  Tokens refused to one address are counted as the API counts them
    (`FailedChecks`): past the limit that address gets 429 for a while."""

    def __init__(self, status: RuntimeStatus) -> None:
        self.status = status
        self.ttl = TOKEN_TTL
        self.failures = FailedChecks()
        self._check: TokenCheck | None = None

    def _tokens(self) -> TokenCheck | None:
        probe = self.status.database
        if probe is None:
            return None
        if self._check is None or self._check.pool is not probe.pool:
            self._check = TokenCheck(probe.pool)
        self._check.ttl = self.ttl
        return self._check

    async def allows(self, token: str | None, client: str) -> bool:
        """`web.HTTPServiceUnavailable` when the database cannot say (closed, not open);
        `web.HTTPTooManyRequests` when ``client`` presented too many refused tokens."""
        check = self._tokens()
        if check is None:
            return True
        if token:
            wait = self.failures.retry_after(client)
            if wait is not None:
                raise web.HTTPTooManyRequests(
                    text=f"too many unknown or revoked tokens: try again in {wait} s\n",
                    headers={"Retry-After": str(wait), **SECURITY_HEADERS},
                )
        try:
            async with asyncio.timeout(2.0):
                if not await check.ever_made():
                    return True
                if not token:
                    return False
                if await check.name_of(token) is not None:
                    return True
                log.info("wallboard: token refused", client=client)
                self.failures.failed(client)
                return False
        except asyncpg.UndefinedTableError:  # a database not migrated to 0007: no tokens
            return True
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("wallboard: the admin API's tokens not read: refusing")
            raise web.HTTPServiceUnavailable(
                text="the database does not answer: cannot check the wallboard's token\n",
                headers=SECURITY_HEADERS,
            ) from None


class Wallboard:
    """The wallboard's routes over one runtime's ``status``."""

    def __init__(
        self,
        status: RuntimeStatus,
        *,
        tick: float = TICK,
        keep_alive: float = KEEP_ALIVE,
        wall: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.status = status
        self.tick = tick
        self.keep_alive = keep_alive
        self.today = TodaySource(status, wall or (lambda: dt.datetime.now(dt.UTC)))
        self.access = Access(status)
        folder = resources.files("switchboard.admin") / "static"
        self.files = {name: (folder / name).read_bytes() for name in STATIC_FILES}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/wallboard", self._page)
        app.router.add_get("/wallboard/events", self._events)
        app.router.add_get("/wallboard/static/{name}", self._static)

    async def snapshot(self) -> dict[str, Any]:
        return board(self.status, await self.today.get())

    async def _page(self, request: web.Request) -> web.Response:
        given = request.query.get("token")
        if given is not None:
            if not await self.access.allows(given, _client(request)):
                return _refused()
            # the token leaves the address bar (and the history) for a cookie
            lang = request.query.get("lang")
            where = "/wallboard" + (f"?lang={lang}" if lang in LANGUAGES else "")
            response = web.Response(status=303, headers={"Location": where, **SECURITY_HEADERS})
            response.set_cookie(
                COOKIE,
                given,
                path="/wallboard",
                max_age=COOKIE_DAYS * 86400,
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
            return response
        if not await self.access.allows(request.cookies.get(COOKIE), _client(request)):
            return _refused()
        return self._file("wallboard.html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES or name.endswith(".html"):
            raise web.HTTPNotFound
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        return web.Response(
            body=self.files[name],
            headers={"Content-Type": STATIC_FILES[name], **SECURITY_HEADERS},
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not await self.access.allows(request.cookies.get(COOKIE), _client(request)):
            return _refused()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
                "X-Content-Type-Options": "nosniff",
            }
        )
        await response.prepare(request)
        await stream(self.snapshot, response.write, tick=self.tick, keep_alive=self.keep_alive)
        return response


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


def _refused() -> web.Response:
    return web.Response(
        status=401,
        text=(
            "The wallboard needs an admin API token: open /wallboard?token=TOKEN once "
            "(switchboard tokens create).\n"
        ),
        headers=SECURITY_HEADERS,
    )


async def stream(
    snapshot: Callable[[], Awaitable[dict[str, Any]]],
    write: Callable[[bytes], Awaitable[None]],
    *,
    tick: float,
    keep_alive: float,
) -> None:
    """Write ``snapshot()`` as an event at once, then whenever it differs from the last
    one written (looked at every ``tick`` s), and a comment after ``keep_alive`` s of
    silence; returns when the client has gone."""
    last: bytes | None = None
    data: bytes | None
    quiet_since = time.monotonic()
    try:
        while True:
            try:
                data = orjson.dumps(await snapshot())
            except Exception:  # a snapshot's bug must not end every screen's stream
                log.exception("wallboard snapshot failed")
                data = last
            if data is not None and data != last:
                await write(b"data: " + data + b"\n\n")
                last, quiet_since = data, time.monotonic()
            elif time.monotonic() - quiet_since >= keep_alive:
                await write(b": keep-alive\n\n")
                quiet_since = time.monotonic()
            await asyncio.sleep(tick)  # pacing the looks, not waiting for a change
    except (ConnectionResetError, ConnectionError):
        return


def add_wallboard(app: web.Application, status: RuntimeStatus) -> Wallboard:
    """Serve the wallboard over ``status`` on ``app`` (the admin server's)."""
    wallboard = Wallboard(status)
    wallboard.add_routes(app)
    return wallboard
