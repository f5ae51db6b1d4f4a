"""The admin API: JSON over HTTP under ``/api/``, for supervisors' tools and integrations.

Every route but ``GET /api/openapi.json`` (the OpenAPI 3.1 document,
`switchboard.admin.openapi`) asks for ``Authorization: Bearer TOKEN``: a token
`switchboard tokens create` made and nobody revoked.  Tokens live in the
database (only their SHA-256), so without one the API answers 503.  The
tokens not revoked are read at most every `TOKEN_TTL` seconds, and a
presented token's hash is compared with each by `hmac.compare_digest`; a
revoked token is refused within that time.  No token is ever logged.

What it reads is the running process's own: the ACD's agents and queues
(`RuntimeStatus.desk`), the calls it carries (`RuntimeStatus.calls_now`), the
configuration it runs (`RuntimeStatus.company`); and, from PostgreSQL,
call-backs, voicemail messages, configuration versions and reports.  An
agent's change made here is made ``by="api"`` as `switchboard agents` makes
one: with a database it is kept and sent to every running instance
(`switchboard.storage.agents.request_agent_change`), which apply it, and this
process's ACD takes it at once; without one, only this process's ACD.

Errors are JSON, ``{"error": ID, "message": TEXT}`` (and ``problems``: the
``FILE:LINE: message`` lines of a rejected configuration), with a 4xx for what
the client asked wrongly and 503 when the database cannot answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

import asyncpg
import structlog
from aiohttp import web

from switchboard.acd.agents import Agent
from switchboard.admin.openapi import OPENAPI
from switchboard.admin.status import RuntimeStatus
from switchboard.admin.tokens import (
    FAILURE_LIMIT,
    FAILURE_WINDOW,
    TOKEN_TTL,
    FailedChecks,
    TokenCheck,
)
from switchboard.config.company import Company
from switchboard.redaction import describe
from switchboard.report import GROUP_BY, parse_when, report_json
from switchboard.simulate import AgentBehaviour, SimulationError, simulate
from switchboard.storage.agents import (
    AgentLoggedOut,
    KeptAgentState,
    apply_agent_command,
    request_agent_change,
)
from switchboard.storage.call_recordings import finished_call
from switchboard.storage.callbacks import (
    CALLBACK_STATUSES,
    CallbackRow,
    callback_row,
    cancel_callback,
    list_callbacks,
    reschedule_callback,
)
from switchboard.storage.config_store import (
    ConfigRejected,
    NoSuchVersion,
    activate_config,
    import_config,
    list_versions,
    stored_config,
)
from switchboard.storage.messages import (
    STATUSES,
    Message,
    message_by_id,
    recent_messages,
    recording_file,
    set_status,
)
from switchboard.storage.messages import recordings_dir as recordings_dir_of
from switchboard.storage.records import DATABASE_DOWN
from switchboard.storage.reports import build_report, set_timezone
from switchboard.storage.shared_acd import reservations, waiting_counts

log = structlog.get_logger("switchboard.admin")

PREFIX = "/api"
OPEN_PATHS = frozenset({"/api/openapi.json"})  # asked without a token
DB_TIMEOUT = 10.0  # seconds a request's database work may take
REASON_LIMIT = 200  # characters of a pause reason, as `switchboard agents pause`
LIST_LIMIT = 500  # rows a list answers at most (and call-backs by default)
MESSAGES_LIMIT = 50  # messages a page has unless ?limit= says
NO_DATABASE = "the API needs a database (tokens are kept there)"
TOKEN_NAME = web.RequestKey("token_name", str)  # the name of the request's token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """What the client is told: an HTTP status, a stable ``error`` id and a message."""

    def __init__(
        self,
        status: int,
        error_id: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> web.Response:
        body = {"error": self.error_id, "message": self.message} | self.extra
        return web.json_response(body, status=self.status, headers=self.headers)


class Api:
    """The routes of `api_app`, over one runtime's status."""

    def __init__(self, status: RuntimeStatus, recordings_dir: str | None = None) -> None:
        self.status = status
        self.pool: asyncpg.Pool | None = (
            status.database.pool if status.database is not None else None
        )
        self.tokens = TokenCheck(self.pool, TOKEN_TTL) if self.pool is not None else None
        self.failures = FailedChecks(FAILURE_LIMIT, FAILURE_WINDOW)  # tokens refused, by client
        self.recordings = recordings_dir_of(recordings_dir)

    # --- middleware: errors as JSON, then the token -------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPException as exc:  # aiohttp's own: no route, wrong method, too big
            if exc.status < 400:
                raise
            error_id = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "bad_request")
            message = (
                f"no route {request.method} {request.path}"
                if exc.status in (404, 405)
                else exc.reason
            )
            return ApiError(exc.status, error_id, message).response()
        except asyncpg.UndefinedTableError:
            return ApiError(
                503,
                "no_schema",
                "the database has no schema for this: run `switchboard db migrate`",
            ).response()
        except DATABASE_DOWN as exc:
            log.warning("api: database not answering", path=request.path, error=describe(exc))
            return ApiError(503, "database_unavailable", "the database is not answering").response()
        except Exception:  # a bug of ours: said in JSON, logged with its traceback
            log.exception("api: request failed", path=request.path, method=request.method)
            return ApiError(500, "internal", "the request failed; the log says why").response()

    @web.middleware
    async def auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            request[TOKEN_NAME] = await self._token_name(request)
        return await handler(request)  # no token in this frame: a traceback shows its locals

    async def _token_name(self, request: web.Request) -> str:
        """The name of the request's valid bearer token; `ApiError` 401 (503: no database)."""
        if self.tokens is None:
            raise ApiError(503, "no_database", NO_DATABASE)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "give Authorization: Bearer TOKEN")
        client = request.remote or "unknown"
        wait = self.failures.retry_after(client)
        if wait is not None:
            raise ApiError(
                429,
                "too_many_failures",
                f"too many unknown or revoked tokens from {client}: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        try:
            async with asyncio.timeout(DB_TIMEOUT):
                name = await self.tokens.name_of(token)
        except Exception as exc:  # noqa: BLE001 - said here: a traceback from this frame would show the token
            log.warning("api: tokens cannot be read", error=describe(exc))
            raise ApiError(503, "database_unavailable", "the tokens cannot be read now") from None
        if name is None:
            log.info("api: token refused", path=request.path, method=request.method, client=client)
            if self.failures.failed(client):
                log.warning(
                    "api: too many tokens refused: the client's checks are refused a while",
                    client=client,
                    limit=self.failures.limit,
                    window=self.failures.window,
                )
            raise ApiError(401, "unauthorized", "the token is unknown or revoked")
        return name

    # --- open ------------------------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    # --- the desk --------------------------------------------------------------------------

    def _company(self) -> Company:
        return self.status.company()

    def _wall(self, company: Company, clock_time: float) -> str:
        """A time of the ACD's clock as an ISO time in the company's timezone."""
        clock = self.status.desk.clock
        ago = clock.real(clock.now() - clock_time)
        return dt.datetime.fromtimestamp(time.time() - ago, company.tz).isoformat()

    def _agent_json(
        self, company: Company, agent_id: str, departments: list[str]
    ) -> dict[str, Any]:
        acd = self.status.desk.acd
        now = self.status.desk.clock.now()
        agent: Agent | None = acd.agents.get(agent_id)
        if agent is None:  # not in the running ACD: a new version is loading
            return {
                "id": agent_id,
                "state": None,
                "since": None,
                "reason": None,
                "departments": departments,
                "device": None,
            }
        state = agent.shown_state(now)
        return {
            "id": agent_id,
            "state": state,
            "since": self._wall(company, agent.since) if agent.since else None,
            "reason": agent.reason or None if state == "paused" else None,
            "departments": departments,
            "device": agent.device,
            "free": agent.free(now),
        }

    async def agents(self, request: web.Request) -> web.Response:
        """The agents as this instance's ACD has them; with a database, also the call
        holding each across the instances sharing agents (``held_by``) and the callers
        waiting on each instance (``waiting``): one picture, whichever instance is asked."""
        company = self._company()
        agents = [
            self._agent_json(company, agent, departments)
            for agent, departments in _members(company).items()
        ]
        body: dict[str, Any] = {"agents": agents}
        if self.pool is not None:
            async with asyncio.timeout(DB_TIMEOUT), self.pool.acquire() as conn:
                held = {r.agent: r for r in await reservations(conn)}
                waiting = await waiting_counts(conn)
            for agent in agents:
                holder = held.get(agent["id"])
                agent["held_by"] = holder and {
                    "instance": holder.instance,
                    "call_id": holder.call_id,
                    "since": holder.reserved_at.astimezone(company.tz).isoformat(),
                }
            body["waiting"] = [
                {"department": department, "instance": instance, "waiting": count}
                for (department, instance), count in waiting.items()
            ]
        return web.json_response(body)

    async def agent_change(self, request: web.Request) -> web.Response:
        company = self._company()
        agent_id = request.match_info["agent"]
        action = request.match_info["action"]
        members = _members(company)
        if agent_id not in members:
            raise ApiError(
                404, "unknown_agent", f"unknown agent {agent_id!r}: not a member of any department"
            )
        reason = ""
        if action == "pause":
            body = await _json_body(request, required=False)
            given = body.get("reason", "")
            if not isinstance(given, str):
                raise ApiError(422, "invalid", "reason: text")
            reason = " ".join(given.split())
            if len(reason) > REASON_LIMIT:
                raise ApiError(422, "invalid", f"reason: at most {REASON_LIMIT} characters")
        acd = self.status.desk.acd
        agent = acd.agents.get(agent_id)
        if agent is None:
            raise ApiError(
                409, "agent_not_loaded", f"agent {agent_id!r} is not in the running ACD yet"
            )
        if action in ("pause", "resume") and agent.state == "logged_out":
            raise ApiError(409, "logged_out", str(AgentLoggedOut(agent_id)))
        state: KeptAgentState = (
            "logged_out" if action == "logout" else "paused" if action == "pause" else "available"
        )
        if self.pool is not None:
            await self._request_agent_change(agent_id, state, reason, resume=action == "resume")
        try:  # at once here (a second time from the notification: nothing then)
            apply_agent_command(acd, self.status.desk.clock.now(), agent_id, state, reason, "api")
        except KeyError:
            raise ApiError(
                409, "agent_not_loaded", f"agent {agent_id!r} is not in the running ACD yet"
            ) from None
        except ValueError as exc:  # pausing a logged-out agent
            raise ApiError(409, "logged_out", str(exc)) from None
        log.info("api: agent changed", agent=agent_id, action=action, token=request[TOKEN_NAME])
        return web.json_response(self._agent_json(company, agent_id, members[agent_id]))

    async def _request_agent_change(
        self, agent_id: str, state: KeptAgentState, reason: str, *, resume: bool
    ) -> None:
        """With a database, the change goes the way `switchboard agents` sends it: kept,
        recorded and told to every running instance (``NOTIFY switchboard_agents``), which
        apply it; this one applies it at once too (`agent_change`), so its answer shows it.
        `ApiError` 409 for a pause or resume of a logged-out agent."""
        try:
            async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
                await request_agent_change(
                    cast(asyncpg.Connection, conn),
                    agent_id,
                    state,
                    reason,
                    by="api",
                    resume=resume,
                )
        except AgentLoggedOut as exc:
            raise ApiError(409, "logged_out", str(exc)) from None

    async def queues(self, request: web.Request) -> web.Response:
        company = self._company()
        desk = self.status.desk
        acd = desk.acd
        now = desk.clock.now()
        callers = {call.call_id: call for call in self.status.calls_now()}
        queues: list[dict[str, Any]] = []
        for department in company.departments.values():
            waiting: list[dict[str, Any]] = []
            for call_id in acd.line(department.id):
                entry = acd.waiting(call_id)
                if entry is None:
                    continue
                call = callers.get(call_id)
                estimate = acd.estimate(call_id)
                waiting.append(
                    {
                        "call_id": call_id,
                        "caller": call.caller if call is not None else None,
                        "position": acd.position(call_id),
                        "priority": entry.priority,
                        "waited": round(max(0.0, now - entry.joined), 1),
                        "estimate": None if estimate is None else round(estimate, 1),
                    }
                )
            counts = dict.fromkeys(("free", "busy", "unreachable", "paused", "logged_out"), 0)
            for member in department.members:
                agent = acd.agents.get(member)
                if agent is not None:
                    counts[_availability(agent, now)] += 1
            queues.append(
                {
                    "department": department.id,
                    "name": department.name,
                    "waiting": waiting,
                    "agents": counts,
                }
            )
        return web.json_response({"queues": queues})

    async def calls(self, request: web.Request) -> web.Response:
        calls = [
            {
                "call_id": call.call_id,
                "called": call.called,
                "caller": call.caller,
                "scenario": call.scenario,
                "node": call.node,
                "state": call.state,
                "seconds": round(call.seconds, 1),
                "department": call.department,
                "agent": call.agent,
            }
            for call in self.status.calls_now()
        ]
        return web.json_response({"calls": calls})

    # --- the configuration it runs --------------------------------------------------------

    async def numbers(self, request: web.Request) -> web.Response:
        company = self._company()
        numbers = [
            {
                "number": company.normalize(entry.number) if entry.number is not None else None,
                "line": entry.line,
                "scenario": entry.scenario,
                "language": entry.language,
            }
            for entry in company.config.numbers
        ]
        return web.json_response(
            {
                "numbers": numbers,
                "default_scenario": company.config.default_scenario,
                "config_version": company.config_version,
            }
        )

    async def scenarios(self, request: web.Request) -> web.Response:
        company = self._company()
        scenarios = [
            {
                "name": name,
                "start": scenario.start,
                "language": scenario.language,
                "numbers": [n for n, s in company.numbers.items() if s == name],
                "nodes": {
                    node_name: {"type": node.type, "exits": company.node_exits(name, node_name)}
                    for node_name, node in scenario.nodes.items()
                },
            }
            for name, scenario in company.config.scenarios.items()
        ]
        return web.json_response({"scenarios": scenarios, "config_version": company.config_version})

    # --- the database ------------------------------------------------------------------------

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:  # the auth middleware answered 503 already
            raise ApiError(503, "no_database", NO_DATABASE)
        return self.pool

    async def callbacks(self, request: web.Request) -> web.Response:
        status = request.query.get("status") or None
        if status is not None and status not in CALLBACK_STATUSES:
            raise ApiError(400, "invalid", f"status: one of {', '.join(CALLBACK_STATUSES)}")
        limit = _int_query(request, "limit", LIST_LIMIT, 1, LIST_LIMIT)
        after = _cursor(request, "after")
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            if after is not None and await callback_row(conn, after) is None:
                raise ApiError(400, "invalid", f"after: no call-back {after}")
            rows = await list_callbacks(conn, status, limit + 1, after=after)
        page = rows[:limit]
        return web.json_response(
            {
                "callbacks": [_callback_json(row) for row in page],
                "next": _next_page(request, "after", page[-1].id, limit)
                if len(rows) > limit
                else None,
            }
        )

    async def callback_cancel(self, request: web.Request) -> web.Response:
        callback_id = _int_id(request, "id")
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            done = await cancel_callback(conn, callback_id)
            row = await callback_row(conn, callback_id)
        return self._callback_answer(row, done, "cancel", request)

    async def callback_reschedule(self, request: web.Request) -> web.Response:
        callback_id = _int_id(request, "id")
        body = await _json_body(request)
        at = _aware(body.get("at"), "at", self._company())
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            done = await reschedule_callback(conn, callback_id, at)
            row = await callback_row(conn, callback_id)
        return self._callback_answer(row, done, "reschedule", request)

    def _callback_answer(
        self, row: CallbackRow | None, done: bool, verb: str, request: web.Request
    ) -> web.Response:
        if row is None:
            raise ApiError(404, "not_found", "no such call-back")
        if not done:
            raise ApiError(
                409,
                "not_pending",
                f"call-back {row.id} is {row.status}: only a pending one can be changed",
            )
        log.info(f"api: call-back {verb}", callback=row.id, token=request[TOKEN_NAME])
        return web.json_response(_callback_json(row))

    async def messages(self, request: web.Request) -> web.Response:
        limit = _int_query(request, "limit", MESSAGES_LIMIT, 1, LIST_LIMIT)
        before = _cursor(request, "before")
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            if before is not None and await message_by_id(conn, before) is None:
                raise ApiError(400, "invalid", f"before: no message {before}")
            found = await recent_messages(conn, limit + 1, before=before)
        page = found[:limit]
        return web.json_response(
            {
                "messages": [self._message_json(m) for m in page],
                "next": _next_page(request, "before", page[-1].id, limit)
                if len(found) > limit
                else None,
            }
        )

    def _message_json(self, message: Message) -> dict[str, Any]:
        return {
            "id": message.id,
            "created_at": message.created_at.isoformat(),
            "caller": message.caller,
            "called": message.called,
            "mailbox": message.mailbox,
            "length": round(message.length, 1),
            "recording": message.recording,
            "recording_url": f"{PREFIX}/v1/messages/{message.id}/recording",
            "status": message.status,
            "status_by": message.status_by,
            "status_at": message.status_at.isoformat() if message.status_at else None,
        }

    async def message_status(self, request: web.Request) -> web.Response:
        message_id = _int_id(request, "id")
        body = await _json_body(request)
        status = body.get("status")
        if status not in STATUSES:
            raise ApiError(422, "invalid", "status: new, heard or handled")
        by = f"api:{request[TOKEN_NAME]}"
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            changed = await set_status(conn, message_id, status, by)
        if changed is None:
            raise ApiError(404, "not_found", f"no message {message_id}")
        log.info(
            "api: message marked", message=message_id, status=status, token=request[TOKEN_NAME]
        )
        return web.json_response(self._message_json(changed))

    async def message_recording(self, request: web.Request) -> web.StreamResponse:
        message_id = _int_id(request, "id")
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            message = await message_by_id(conn, message_id)
        if message is None:
            raise ApiError(404, "not_found", "no such message")
        return await self._recording(request, message.recording, f"message {message_id}")

    async def call(self, request: web.Request) -> web.Response:
        """A finished call's record: what it was, and its conversation's recording."""
        call_id = request.match_info["call_id"]
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            found = await finished_call(conn, call_id)
        if found is None:
            raise ApiError(404, "not_found", f"no call {call_id!r}")
        return web.json_response(found.as_json(f"{PREFIX}/v1/calls/{quote(call_id)}/recording"))

    async def call_recording(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            found = await finished_call(conn, call_id)
        if found is None:
            raise ApiError(404, "not_found", f"no call {call_id!r}")
        if found.recording is None:
            if found.recording_removed_at is not None:
                raise ApiError(
                    410,
                    "recording_removed",
                    f"the recording of call {call_id} was removed on "
                    f"{found.recording_removed_at:%Y-%m-%d} (recording.keep_days)",
                )
            raise ApiError(404, "no_recording", f"call {call_id} was not recorded")
        return await self._recording(request, found.recording, f"call {call_id}")

    async def _recording(self, request: web.Request, name: str, what: str) -> web.StreamResponse:
        """The WAV file of recording ``name`` (of ``what``: "message 7", "call X")."""
        path = recording_file(self.recordings, name)
        if path is None:
            raise ApiError(404, "no_recording", f"the recording of {what} is not on this machine")
        try:
            file, size, first = await asyncio.to_thread(_open_recording, path)
        except OSError as exc:
            if exc.errno not in NOT_THERE:  # not readable by this process, a disk error
                log.warning(
                    "api: recording not readable", of=what, path=str(path), error=describe(exc)
                )
                why = exc.strerror or type(exc).__name__
                raise ApiError(
                    500,
                    "recording_unreadable",
                    f"the recording of {what} ({path.name}) cannot be read: {why}",
                ) from None
            raise ApiError(
                404,
                "recording_missing",
                f"the recording of {what} ({path.name}) is not in the "
                "recordings folder (SWITCHBOARD_RECORDINGS_DIR)",
            ) from None
        try:
            return await _send_file(request, file, size, first, path.name, what)
        finally:
            await asyncio.to_thread(file.close)

    async def report(self, request: web.Request) -> web.Response:
        company = self._company()
        query = request.query
        try:
            start = parse_when(query.get("from", ""), "from")
            end = parse_when(query.get("to", ""), "to")
        except ValueError as exc:
            raise ApiError(400, "invalid", str(exc)) from None
        start, end = (t if t.tzinfo else t.replace(tzinfo=company.tz) for t in (start, end))
        if end <= start:
            raise ApiError(400, "invalid", "to must be after from")
        by = query.get("by") or None
        if by is not None and by not in GROUP_BY:
            raise ApiError(400, "invalid", f"by: one of {', '.join(GROUP_BY)}")
        zone = company.tz.key
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            raw = cast(asyncpg.Connection, conn)
            await set_timezone(raw, zone)  # the pool resets it when the connection goes back
            built = await build_report(
                raw,
                start=start,
                end=end,
                timezone=zone,
                scenario=query.get("scenario") or None,
                by=by,
            )
        return web.json_response(report_json(built))

    # --- configuration versions ----------------------------------------------------------

    async def config_versions(self, request: web.Request) -> web.Response:
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            found = await list_versions(cast(asyncpg.Connection, conn), LIST_LIMIT)
        versions = [v.as_json() for v in found]
        return web.json_response({"versions": versions})

    async def config_version(self, request: web.Request) -> web.StreamResponse:
        version = _int_id(request, "version")
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            stored = await stored_config(cast(asyncpg.Connection, conn), version)
        if stored is None:
            raise ApiError(404, "not_found", f"no version {version} stored")
        if "yaml" in request.query.get("format", ""):
            return web.Response(text=stored.yaml, content_type="application/yaml")
        return web.json_response(
            {
                "version": stored.id,
                "created_at": stored.created_at.isoformat(),
                "source": stored.source,
                "sha256": stored.sha256,
                "comment": stored.comment,
                "yaml": stored.yaml,
            }
        )

    async def config_import(self, request: web.Request) -> web.Response:
        text = await request.text()
        if not text.strip():
            raise ApiError(400, "invalid", "the body is the configuration's YAML text: it is empty")
        source = request.query.get("source") or "api"
        comment = request.query.get("comment") or None
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            try:
                result = await import_config(cast(asyncpg.Connection, conn), text, source, comment)
            except ConfigRejected as exc:
                raise ApiError(
                    422,
                    "config_rejected",
                    "the configuration has errors; nothing was stored",
                    problems=exc.lines,
                ) from None
        log.info(
            "api: config imported",
            version=result.version,
            created=result.created,
            activated=result.activated,
            token=request[TOKEN_NAME],
        )
        return web.json_response(
            {
                "version": result.version,
                "created": result.created,
                "activated": result.activated,
                "sha256": result.sha256,
                "warnings": [p.format(source) for p in result.warnings],
            },
            status=201 if result.created else 200,
        )

    async def config_activate(self, request: web.Request) -> web.Response:
        version = _int_id(request, "version")
        comment = request.query.get("comment") or None
        async with asyncio.timeout(DB_TIMEOUT), self._pool().acquire() as conn:
            try:
                done = await activate_config(
                    cast(asyncpg.Connection, conn),
                    version,
                    f"api:{request[TOKEN_NAME]}",
                    comment,
                )
            except NoSuchVersion as exc:
                raise ApiError(404, "not_found", str(exc)) from None
            except ConfigRejected as exc:
                raise ApiError(
                    422,
                    "config_rejected",
                    f"version {version} does not load with this release; nothing changed",
                    problems=exc.lines,
                ) from None
        log.info(
            "api: config activated",
            version=version,
            changed=done.changed,
            previous=done.previous,
            token=request[TOKEN_NAME],
        )
        return web.json_response(
            {"version": done.version, "changed": done.changed, "previous": done.previous}
        )

    # --- simulate --------------------------------------------------------------------------

    async def simulate(self, request: web.Request) -> web.Response:
        company = self._company()
        body = await _json_body(request)
        called = _opt_str(body, "called")
        caller = _opt_str(body, "caller")
        dtmf = _opt_str(body, "dtmf") or ""
        at = _aware(body["at"], "at", company) if body.get("at") is not None else None
        raw_agents = body.get("agents") or {}
        if not isinstance(raw_agents, dict):
            raise ApiError(
                422,
                "invalid",
                "agents: an object, employee -> behaviour (answer:3, busy, noanswer, offline)",
            )
        agents: dict[str, AgentBehaviour] = {}
        for employee, behaviour in raw_agents.items():
            try:
                agents[str(employee)] = AgentBehaviour.parse(str(behaviour))
            except (ValueError, SimulationError) as exc:
                raise ApiError(422, "invalid", f"agents.{employee}: {exc}") from None
        if called is None:
            raise ApiError(422, "invalid", "called: the number dialled")
        try:
            sim = await asyncio.to_thread(
                simulate, company, called=called, caller=caller, at=at, dtmf=dtmf, agents=agents
            )
        except SimulationError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        return web.json_response(sim.as_json())


def api_app(status: RuntimeStatus, recordings_dir: str | None = None) -> web.Application:
    """The API's routes, to mount at ``/api`` (`register_api`)."""
    api = Api(status, recordings_dir)
    app = web.Application(middlewares=[api.errors, api.auth])
    add = app.router
    add.add_get("/openapi.json", api.openapi)
    add.add_get("/v1/agents", api.agents)
    add.add_post(r"/v1/agents/{agent}/{action:login|logout|pause|resume}", api.agent_change)
    add.add_get("/v1/queues", api.queues)
    add.add_get("/v1/calls", api.calls)
    add.add_get("/v1/calls/{call_id}", api.call)
    add.add_get("/v1/calls/{call_id}/recording", api.call_recording)
    add.add_get("/v1/numbers", api.numbers)
    add.add_get("/v1/scenarios", api.scenarios)
    add.add_get("/v1/callbacks", api.callbacks)
    add.add_post("/v1/callbacks/{id}/cancel", api.callback_cancel)
    add.add_post("/v1/callbacks/{id}/reschedule", api.callback_reschedule)
    add.add_get("/v1/messages", api.messages)
    add.add_get("/v1/messages/{id}/recording", api.message_recording)
    add.add_post("/v1/messages/{id}/status", api.message_status)
    add.add_get("/v1/report", api.report)
    add.add_get("/v1/config/versions", api.config_versions)
    add.add_post("/v1/config/versions", api.config_import)
    add.add_get("/v1/config/versions/{version}", api.config_version)
    add.add_post("/v1/config/versions/{version}/activate", api.config_activate)
    add.add_post("/v1/simulate", api.simulate)
    return app


def register_api(app: web.Application, status: RuntimeStatus) -> None:
    """Mount the API under ``/api`` of the admin server's ``app``."""
    app.add_subapp(PREFIX, api_app(status))


# --- reading what the client sent ---------------------------------------------------------


async def _json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    if not request.can_read_body:
        if required:
            raise ApiError(400, "invalid", "the body must be a JSON object")
        return {}
    try:
        body = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", "the body must be a JSON object")
    return body


def _int_id(request: web.Request, key: str) -> int:
    text = request.match_info[key]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, "not_found", f"{key} {text!r} is not a number")
    return int(text)


def _int_query(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    text = request.query.get(key)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(400, "invalid", f"{key}: a whole number, {low}..{high}")
    return int(text)


def _cursor(request: web.Request, key: str) -> int | None:
    """A page's start (``?after=ID``, ``?before=ID``): a row's id, or None."""
    text = request.query.get(key)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise ApiError(400, "invalid", f"{key}: a row's id (the previous page's next)")
    return int(text)


def _next_page(request: web.Request, key: str, last_id: int, limit: int) -> str:
    """The address of the page after the one answered, which ended at row ``last_id``."""
    return str(request.rel_url.update_query({key: str(last_id), "limit": str(limit)}))


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise ApiError(422, "invalid", f"{key}: text (at most 200 characters)")
    return value


def _aware(value: Any, key: str, company: Company) -> dt.datetime:
    """An ISO time (naive: the company's timezone)."""
    if not isinstance(value, str):
        raise ApiError(422, "invalid", f"{key}: an ISO time, e.g. 2026-12-01T10:15:00+03:00")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid", f"{key}: {value!r} is not an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=company.tz)


# --- recordings ------------------------------------------------------------------------------

CHUNK = 64 * 1024  # bytes of a recording read and sent at a time
# what opening a recording that is not there raises: no such file (or folder), a name
# too long to be one, a symbolic link loop, something else than a file
NOT_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP})


def _open_recording(path: Path) -> tuple[BinaryIO, int, bytes]:
    """``path`` opened for reading, its size and its first chunk, read here so that a
    file that cannot be read is said before anything is sent.  OSError as opening or
    reading raises; EISDIR for anything but a regular file (never blocking on a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    try:
        return file, info.st_size, file.read(min(CHUNK, info.st_size))
    except BaseException:
        file.close()
        raise


async def _send_file(
    request: web.Request, file: BinaryIO, size: int, first: bytes, name: str, what: str
) -> web.StreamResponse:
    """The opened WAV (``first``, then the rest in chunks); a read that fails half-way
    cuts the connection -- the client sees a body shorter than its Content-Length --
    and is logged."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "audio/wav",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    response.content_length = size
    await response.prepare(request)
    if first:
        await response.write(first)
    sent = len(first)
    while sent < size:
        try:
            chunk = await asyncio.to_thread(file.read, min(CHUNK, size - sent))
        except OSError as exc:
            log.warning("api: recording read failed", of=what, error=describe(exc))
            response.force_close()
            break
        if not chunk:  # the file got shorter
            response.force_close()
            break
        await response.write(chunk)
        sent += len(chunk)
    return response


# --- answers --------------------------------------------------------------------------------


def _members(company: Company) -> dict[str, list[str]]:
    """Every member of a department -> the departments they serve, in the config's order."""
    members: dict[str, list[str]] = {}
    for department in company.config.departments:
        for member in department.members:
            members.setdefault(member, []).append(department.id)
    return members


def _availability(agent: Agent, now: float) -> str:
    """``free`` to be offered a call, ``busy`` (ringing, talking, wrap-up, the phone in
    use), ``unreachable`` (available, the phone not), ``paused`` or ``logged_out``."""
    state = agent.shown_state(now)
    if state in ("paused", "logged_out"):
        return state
    if agent.free(now):
        return "free"
    return "unreachable" if state == "available" and agent.device == "unavailable" else "busy"


def _callback_json(row: CallbackRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "call_id": row.call_id,
        "number": row.number,
        "caller": row.caller,
        "department": row.department,
        "scenario": row.scenario,
        "created_at": row.created_at.isoformat(),
        "due_at": row.due_at.isoformat(),
        "status": row.status,
        "attempts": row.attempts,
        "last_result": row.last_result,
    }


__all__ = ["OPEN_PATHS", "PREFIX", "TOKEN_TTL", "Api", "ApiError", "api_app", "register_api"]
