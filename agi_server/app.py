"""`switchboard agi`: the FastAGI services on one socket, and their lifecycle.

============================================  ===========================================
``AGI(agi://host/scenario,${EXTEN})``         the whole scenario over AGI commands
``AGI(agi://host/route,${EXTEN})``            decide only: ``SWITCHBOARD_*`` variables
``AGI(agi://host/route?scenario=S&node=N)``   decide again from node N (a Dial that
                                              nobody answered, a Queue() that timed
                                              out come back here)
``AGI(agi://host/schedule?name=office)``      ``SWITCHBOARD_OPEN`` = 1 or 0
``AGI(agi://host/icm)``                       the caller's responsible employee
``AGI(agi://host/agent?action=login)``        an agent's feature code from their phone
                                              (login, logout, pause[&reason=R], resume,
                                              toggle): ``SWITCHBOARD_AGENT_STATE``
============================================  ===========================================

Every call that runs a scenario (``scenario`` and ``route``) leaves the same
record as an ARI call; ``schedule`` and ``icm`` are lookups and leave none, and
``agent`` leaves its change in the agents' changes (``by = phone``), not a call record.
A request the server cannot serve sets ``SWITCHBOARD_ERROR`` and returns, so
the dialplan carries on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack

import aiohttp
import structlog

from agi_server.call import AgiCall, AgiCallSettings, Mode, call_info, set_variables
from agi_server.protocol import AgiCommandError, AgiError, AgiLimits, AgiSession
from agi_server.route import schedule_variables
from agi_server.server import AgiServer
from agi_server.whisper import whisper
from switchboard.acd import Acd
from switchboard.acd.devices import desk_devices
from switchboard.acd.phone import (
    AGENT_ACTIONS,
    UNKNOWN_PROMPT,
    apply_phone_code,
    calling_employee,
    parse_action,
)
from switchboard.admin.metrics import AgiFigures
from switchboard.admin.server import AdminCannotListen, start_admin
from switchboard.admin.status import RuntimeStatus, runtime_status
from switchboard.calls import CallSink, CountingSink, MemorySink
from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.config.model import CallbackNode, IcmNode, parse_listen
from switchboard.driver import Desk, call_now, caller_priorities, new_call_id
from switchboard.engine.call import CallRun
from switchboard.engine.nodes import CALLBACK_DEPARTMENT
from switchboard.serving import (
    database_dsn,
    keep_agent_states,
    keep_pruning_recordings,
    keep_shared_agents,
    keep_vips,
    open_records,
    tune_gc,
)
from switchboard.webhooks import CallNews

log = structlog.get_logger("switchboard.agi")

SERVICES = ("scenario", "route", "schedule", "icm", "agent", "whisper")


class CannotListen(Exception):
    """The listening address is taken or not ours."""


def listen_address(
    company: Company, listen: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[str, int]:
    """Where to listen: ``--listen``, else ``SWITCHBOARD_AGI_LISTEN``, else
    `asterisk.agi_listen` (loopback by default); ValueError naming the bad one."""
    environ = os.environ if env is None else env
    if listen is not None:
        return parse_listen(listen, "--listen")
    if "SWITCHBOARD_AGI_LISTEN" in environ:
        return parse_listen(environ["SWITCHBOARD_AGI_LISTEN"], "SWITCHBOARD_AGI_LISTEN")
    return parse_listen(company.config.asterisk.agi_listen, "asterisk.agi_listen")


def agi_limits(company: Company) -> AgiLimits:
    """The server's bounds from `limits`; read once, when it starts listening."""
    limits = company.config.limits
    return AgiLimits(
        header_timeout=limits.agi_header_timeout,
        max_pending=limits.agi_max_pending,
        max_pending_per_peer=limits.agi_max_pending_per_peer,
    )


class AgiApp:
    """What each FastAGI session runs, by the path of its ``agi://`` URL."""

    def __init__(
        self,
        company: Callable[[], Company],
        sink: CallSink | None = None,
        clock: Clock | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
        instance: str = "agi",
    ) -> None:
        self.company = company
        self.sink = sink or MemorySink()
        self.counted = CountingSink(self.sink)  # the calls' results, for the metrics
        self.clock = clock or Clock()
        self.wall_clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
        self.instance = instance
        self._http: aiohttp.ClientSession | None = None
        # callers of this server's calls waiting in queues (their positions); agents'
        # own states, and their phones' as each call reads them (DEVICE_STATE())
        self.acd = Acd.for_company(company())
        self._acd_company = company()
        # the calls waiting in its queues: a freed agent is offered to the first
        self.desk = Desk(self.acd, self.clock)
        self.vips: dict[str, int] = {}  # the database's VIP list (`switchboard vip`)
        self.news = CallNews(company, self._session, self.clock)  # webhooks, e-mails
        self.calls = 0
        self.in_progress = 0  # `scenario` and `route` calls running now
        self.active: dict[str, AgiCall] = {}  # the calls running now, by call id

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def _session(self) -> aiohttp.ClientSession:
        return self.http()

    async def close(self) -> None:
        self.desk.close()
        await self.news.close()
        if self._http is not None:
            await self._http.close()

    async def handle(self, session: AgiSession) -> None:
        env = session.env
        service = env.script
        company = self.company()
        if service in ("scenario", "route", "icm"):
            await self._call(session, company, service)  # type: ignore[arg-type]
        elif service == "schedule":
            await self._schedule(session, company)
        elif service == "agent":
            await self._agent(session, company)
        elif service == "whisper":
            await whisper(session, self.clock)
        else:
            await self._refuse(
                session, f"unknown service {service!r}: use one of {', '.join(SERVICES)}"
            )

    async def _call(self, session: AgiSession, company: Company, mode: Mode) -> None:
        env = session.env
        info = call_info(env, company)
        query = env.query
        scenario = query.get("scenario") or None
        node = query.get("node") or None
        if mode == "icm" and node is None:
            found = _first_icm(company, scenario)
            if found is None:
                await self._refuse(session, "no icm node in the configuration")
                return
            scenario, node = found
        started = self.wall_clock().astimezone(company.tz)
        try:
            self._current_acd(company)
            call_id = new_call_id(self.instance)
            run = CallRun(
                company, info, started, scenario=scenario, start_node=node, acd=self.acd,
                call_key=call_id, acd_clock0=self.clock.now(),
                vip=caller_priorities(self.vips, company),
            )  # fmt: skip
        except LookupError as exc:
            await self._no_scenario(session, company, mode, str(exc))
            return
        if mode == "route" and node is not None:
            await _queue_department(session, company, run)
        call = AgiCall(
            session,
            company,
            run,
            info,
            call_id=call_id,
            sink=self.counted,
            clock=self.clock,
            http=self.http,
            settings=AgiCallSettings.from_company(company, self.instance),
            mode=mode,
            desk=self.desk,
            tell=self.news.tell,
        )
        self.calls += 1
        self.in_progress += 1
        self.active[call_id] = call
        call.log.info("call started", service=mode, called=info.called, caller=info.caller)
        try:
            await call.run_call()
        finally:
            self.in_progress -= 1
            self.active.pop(call_id, None)

    def status(self, server: AgiServer) -> RuntimeStatus:
        """What the admin server says of this app served by ``server``: ready while it
        listens (and the database answers, with one); the calls, queues, agents, records
        and sessions for the metrics."""

        async def listening() -> str | None:
            return None if server.listening else "not listening for FastAGI"

        def figures() -> AgiFigures:
            stats = server.stats
            return AgiFigures(sessions=stats.accepted, in_progress=stats.sessions)

        return runtime_status(
            desk=self.desk,
            company=self.company,
            sink=self.counted,
            in_progress=lambda: self.in_progress,
            checks={"agi": listening},
            agi=figures,
            calls_now=lambda: sorted(
                (call_now(c.driver) for c in self.active.values() if c.mode != "icm"),
                key=lambda c: -c.seconds,
            ),
        )

    async def _no_scenario(
        self, session: AgiSession, company: Company, mode: Mode, reason: str
    ) -> None:
        log.warning("no scenario for this call", service=mode, reason=reason)
        await self._refuse(session, reason)
        if mode == "scenario":
            # as over ARI: the dialplan's fallback serves a number we do not know
            fallback = company.config.asterisk.fallback_context
            await session.command("SET", "CONTEXT", fallback)
            await session.command("SET", "EXTENSION", "s")
            await session.command("SET", "PRIORITY", "1")

    def _current_acd(self, company: Company) -> Acd:
        """The ACD, following a new configuration version (agents keep their states)."""
        if company is not self._acd_company:
            self._acd_company = company
            self.acd.reconfigure(company)
        return self.acd

    async def _agent(self, session: AgiSession, company: Company) -> None:
        """An agent's feature code (``*71`` / ``*72`` / ``*73``): the change applied to
        the server's ACD (``by="phone"``) for the employee whose desk phone is calling
        (the channel's device, else the caller ID), the confirmation played, and
        ``SWITCHBOARD_AGENT`` / ``SWITCHBOARD_AGENT_STATE`` (available, paused,
        logged_out) set; the dialplan hangs up.  A phone that is no employee's hears
        ``agent-unknown`` and gets ``SWITCHBOARD_ERROR``."""
        env = session.env
        query = env.query
        action = parse_action(query.get("action") or (env.args[0] if env.args else ""))
        if action is None:
            await self._refuse(
                session, f"unknown agent action: use one of {', '.join(AGENT_ACTIONS)}"
            )
            return
        acd = self._current_acd(company)
        employee = calling_employee(
            company, env.callerid, env.channel, desk_devices(company, self.instance)
        )
        if employee is None or employee not in acd.agents:
            await self._confirm(session, company, UNKNOWN_PROMPT)
            await self._refuse(session, f"caller {env.callerid!r} is no employee's phone")
            return
        reason = query.get("reason") or (env.args[1] if len(env.args) > 1 else "")
        done = apply_phone_code(acd, employee, action, self.clock.now(), reason)
        log.info("agent code", agent=employee, action=action, state=done.state)
        await self._confirm(session, company, done.prompt)
        await set_variables(
            session, {"SWITCHBOARD_AGENT": employee, "SWITCHBOARD_AGENT_STATE": done.state}
        )

    async def _confirm(self, session: AgiSession, company: Company, prompt: str) -> None:
        """Answer and play ``prompt`` in the company's language."""
        await session.command("ANSWER")
        language = company.config.language
        if session.env.language != language:
            await session.command("SET", "VARIABLE", "CHANNEL(language)", language)
        _, sound = AgiCallSettings.from_company(company).media(prompt, company)
        await session.command("STREAM", "FILE", sound, "")

    async def _schedule(self, session: AgiSession, company: Company) -> None:
        env = session.env
        name = env.query.get("name") or (env.args[0] if env.args else "")
        try:
            variables = schedule_variables(company, name, self.wall_clock())
        except LookupError as exc:
            await self._refuse(session, str(exc))
            return
        await set_variables(session, variables)

    async def _refuse(self, session: AgiSession, reason: str) -> None:
        log.warning("request refused", service=session.env.script, reason=reason)
        await set_variables(session, {"SWITCHBOARD_ERROR": reason})


async def _queue_department(session: AgiSession, company: Company, run: CallRun) -> None:
    """A `route` coming back part-way (``node=``) is a new run: the department of the
    queue the caller waited in, which a `callback` node without `department:` calls
    back for, is the ``SWITCHBOARD_QUEUE`` an earlier `route` of this channel set (a
    whole-scenario call keeps it in the run itself)."""
    try:
        answer = await session.command("GET", "VARIABLE", "SWITCHBOARD_QUEUE")
    except AgiCommandError:
        return
    if answer.result == 1 and answer.data in company.departments:
        run.vars[CALLBACK_DEPARTMENT] = answer.data


def _takes_callbacks(company: Company) -> bool:
    return any(
        isinstance(node, CallbackNode)
        for scenario in company.config.scenarios.values()
        for node in scenario.nodes.values()
    )


def _first_icm(company: Company, scenario: str | None) -> tuple[str, str] | None:
    for name, sc in company.config.scenarios.items():
        if scenario not in (None, name):
            continue
        for node_name, node in sc.nodes.items():
            if isinstance(node, IcmNode):
                return name, node_name
    return None


async def serve(
    company: Callable[[], Company],
    stop: asyncio.Event,
    listen: str | None = None,
    *,
    started: Callable[[], object] | None = None,
) -> None:
    """Serve FastAGI on ``listen`` (default: the config's, loopback) until ``stop`` is set;
    ``started`` is called once it listens (`switchboard.systemd`'s ``READY=1``).

    With a database (`database.dsn` / ``SWITCHBOARD_DSN``) every call leaves its
    record there and call-back requests are stored for `switchboard run`'s
    worker to make; without one, records stay in memory (a warning says so).  The
    admin server (`switchboard.admin`: health, readiness, metrics) listens on an
    address of its own (`admin.agi_listen`) from before the FastAGI port opens.
    """
    current = company()
    tune_gc()
    host, port = listen_address(current, listen)
    if _takes_callbacks(current):
        # AGI cannot place calls: the promise is kept by `switchboard run`'s worker
        log.warning(
            "scenarios take call-back requests: they are stored in the database and "
            "made by `switchboard run` (ARI); run it too, or callers wait in vain"
        )
    instance = os.environ.get("SWITCHBOARD_INSTANCE", "agi")
    # closed in reverse: the server (its calls leave their records), then the sink
    async with AsyncExitStack() as stack:
        sink, stored = await stack.enter_async_context(open_records(current, instance))
        app = AgiApp(company, sink, instance=instance)
        stack.push_async_callback(app.close)
        await stack.enter_async_context(
            keep_agent_states(app.acd, app.clock, stored, database_dsn(current), instance)
        )
        await stack.enter_async_context(keep_vips(app.vips, stored, database_dsn(current)))
        await stack.enter_async_context(
            keep_shared_agents(app.desk, company, stored, database_dsn(current), instance)
        )
        await stack.enter_async_context(keep_pruning_recordings(company, stored))
        server = AgiServer(app.handle, agi_limits(current))
        try:
            admin = await start_admin(current, "agi", app.status(server))
        except AdminCannotListen as exc:
            raise CannotListen(str(exc)) from None
        stack.push_async_callback(admin.close)
        try:
            bound = await server.start(host, port)
        except OSError as exc:
            raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        log.info("listening", host=bound[0], port=bound[1], instance=instance)
        stack.push_async_callback(server.close)
        if started is not None:
            started()
        await stop.wait()


__all__ = ["AgiApp", "AgiError", "CannotListen", "agi_limits", "listen_address", "serve"]
