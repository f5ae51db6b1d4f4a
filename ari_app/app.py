"""`switchboard run`: the ARI client, its supervisor and the call runtime, together.

The lifecycle is in one place: `serve` opens the client, starts the
supervisor and waits for the stop signal; on the way out every call task is
cancelled and awaited and the HTTP pool closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog

from ari_app.agent_codes import AgentCodeCall
from ari_app.callbacks import CallbackEvents, CallbackSettings, CallbackWorker
from ari_app.client import AriClient
from ari_app.runtime import AriRuntime, CallSession, RuntimeSettings
from ari_app.supervisor import AriSupervisor, EventSink
from switchboard.admin.metrics import AriFigures
from switchboard.admin.server import start_admin
from switchboard.admin.status import RuntimeStatus, runtime_status
from switchboard.calls import CallSink, CountingSink, MemorySink
from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.driver import CallNow, call_now
from switchboard.redaction import redact
from switchboard.serving import (
    database_dsn,
    keep_agent_states,
    keep_pruning_recordings,
    keep_shared_agents,
    keep_vips,
    open_records,
    tune_gc,
)

log = structlog.get_logger("switchboard.ari")


@dataclass(frozen=True)
class AriSettings:
    url: str
    user: str
    password: str
    app: str

    def __repr__(self) -> str:  # never print the password
        return f"AriSettings(url={self.url!r}, user={self.user!r}, app={self.app!r})"


def ari_settings(company: Company, env: dict[str, str] | None = None) -> AriSettings:
    """The `asterisk:` section of the config, environment variables winning."""
    environ = os.environ if env is None else env
    section = company.config.asterisk
    return AriSettings(
        url=environ.get("SWITCHBOARD_ARI_URL", section.ari_url),  # `run` checked it
        user=environ.get("SWITCHBOARD_ARI_USER", section.ari_user),
        password=environ.get("SWITCHBOARD_ARI_PASSWORD", section.ari_password.get_secret_value()),
        app=environ.get("SWITCHBOARD_ARI_APP", section.app),
    )


def ari_password_problem(company: Company, env: dict[str, str] | None = None) -> str | None:
    """Why `switchboard run` cannot log in to ARI with the password it has, naming where
    that password came from; None when there is one.  Asterisk takes no ARI user without
    a password (res/ari/config.c: ``user_apply`` loads none, ``ari_conf_validate_user``
    refuses an empty one): with it every attempt would be a 401."""
    environ = os.environ if env is None else env
    user = environ.get("SWITCHBOARD_ARI_USER", company.config.asterisk.ari_user)
    given = environ.get("SWITCHBOARD_ARI_PASSWORD")
    if given is not None:
        if given.strip():
            return None
        return (
            "SWITCHBOARD_ARI_PASSWORD is set but empty: Asterisk refuses an ARI user with no "
            f"password; set it to the password of [{user}] in Asterisk's ari.conf, or unset "
            "it to use the configuration's asterisk.ari_password"
        )
    if company.config.asterisk.ari_password.get_secret_value().strip():
        return None
    return (
        "no ARI password: the configuration's asterisk: section has no ari_password and "
        f"SWITCHBOARD_ARI_PASSWORD is not set; give the password of [{user}] in Asterisk's "
        "ari.conf in one of them"
    )


def runtime_settings(company: Company, app: str) -> RuntimeSettings:
    section = company.config.asterisk
    return RuntimeSettings(
        app=app,
        fallback_context=section.fallback_context,
    )


class AriApp:
    """A running Stasis application; `async with AriApp(...)` starts and stops it."""

    def __init__(
        self,
        company: Callable[[], Company],
        ari: AriSettings,
        sink: CallSink | None = None,
        clock: Clock | None = None,
        backoff_first: float = 0.2,
        wall_clock: Callable[[], dt.datetime] | None = None,
        callback_pool: asyncpg.Pool | None = None,
        callback_settings: CallbackSettings | None = None,
        instance: str = "",
    ) -> None:
        current = company()
        self.client = AriClient(ari.url, ari.user, ari.password, ari.app)
        self.sink = sink or MemorySink()
        self.counted = CountingSink(self.sink)  # the calls' results, for the metrics
        self.runtime = AriRuntime(
            self.client,
            company,
            runtime_settings(current, ari.app),
            self.counted,
            clock,
            wall_clock=wall_clock,
            instance=instance,
        )
        # durable call-backs share the ARI connection: the worker takes its own channels' events
        self.callbacks: CallbackWorker | None = None
        events: EventSink = self.runtime
        if callback_pool is not None:
            self.callbacks = CallbackWorker(
                callback_pool,
                self.client,
                company,
                instance or ari.app,
                callback_settings,
                clock=clock,
                wall_clock=wall_clock,
                agents=self.runtime.acd,
            )
            events = CallbackEvents(self.runtime, self.callbacks)
            self.runtime.desk.make_kept = self.callbacks.make_kept
        self.supervisor = AriSupervisor(
            self.client,
            events,
            backoff_first=backoff_first,
            rest_over_websocket=current.config.asterisk.rest_over_websocket,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AriApp:
        self._task = asyncio.create_task(self.supervisor.run(), name="ari-supervisor")
        if self.callbacks is not None:
            await self.callbacks.start()  # claims nothing until ARI is connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        # first, while Asterisk still hears us: calls are handed on, conversations kept
        await self.runtime.drain()
        if self.callbacks is not None:
            await self.callbacks.stop()  # first: it hangs up its legs through the client
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.runtime.close()
        await self.client.close()

    async def wait_ready(self, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await self.supervisor.ready.wait()

    def status(self) -> RuntimeStatus:
        """What the admin server says of this app: ready while connected to ARI (and the
        database answering, with one); the calls, queues, agents, records, ARI requests
        and reconnections for the metrics."""
        runtime = self.runtime
        return runtime_status(
            desk=runtime.desk,
            company=runtime.company,
            sink=self.counted,
            in_progress=self._calls_in_progress,
            checks={"ari": self._ari_ready},
            ari=self._ari_figures,
            calls_now=self._calls_now,
        )

    def _calls_now(self) -> list[CallNow]:
        """The callers' calls in their scenario or a conversation, longest first (a
        conversation adopted after a restart is left out: its run is the other process's)."""
        drivers = [
            call.driver for call in self.runtime.sessions.values()
            if isinstance(call, CallSession) and call.driver is not None
        ]  # fmt: skip
        return sorted((call_now(d) for d in drivers), key=lambda c: -c.seconds)

    def _calls_in_progress(self) -> int:
        """Callers' calls carried now: in their scenario, or a conversation (adopted ones
        too); an agent's feature-code call is no caller's."""
        return sum(not isinstance(call, AgentCodeCall) for call in self.runtime.sessions.values())

    async def _ari_ready(self) -> str | None:
        if self.runtime.draining:
            return "stopping: new calls go to the dialplan's fallback"
        if self.supervisor.replaced.is_set():
            return f"another connection took the Stasis app {self.client.app!r}: staying off"
        if not self.supervisor.ready.is_set():
            return f"not connected to ARI at {redact(self.client.base_url)}"
        return None

    def _ari_figures(self) -> AriFigures:
        supervisor = self.supervisor
        return AriFigures(
            latencies=self.client.latencies.snapshot(),
            reconnects=max(0, supervisor.connections - 1),
            connected=supervisor.ready.is_set(),
        )


async def serve(
    company: Callable[[], Company],
    stop: asyncio.Event,
    *,
    started: Callable[[], object] | None = None,
) -> None:
    """Run the Stasis application until ``stop`` is set; each new call takes ``company()``.
    ``started`` is called once the admin server listens and the app is connecting (it
    does not wait for Asterisk: `switchboard.systemd`'s ``READY=1``).

    With a database (`database.dsn` / ``SWITCHBOARD_DSN``) every call leaves its
    record there (written in the background, spilled to `database.spill_dir`
    while the database is away) and promised call-backs are made; without one,
    records stay in memory and are lost at exit (a warning says so).  The admin
    server (`switchboard.admin`: health, readiness, metrics) listens from before
    the first connection to Asterisk until the app has stopped.
    """
    current = company()
    tune_gc()
    settings = ari_settings(current)
    instance = os.environ.get("SWITCHBOARD_INSTANCE", settings.app)
    log.info("starting", ari=redact(settings.url), app=settings.app, instance=instance)
    # the sink closes after the app: records of calls ending at shutdown still get written
    async with open_records(current, instance) as (sink, stored):
        pool = stored.pool if stored is not None else None
        app = AriApp(
            company,
            settings,
            sink=sink,
            callback_pool=pool,
            instance=instance,
            callback_settings=CallbackSettings.from_company(current),
        )
        # listening before Asterisk is asked anything: a port that is taken stops the start
        # (one line, exit 1: `switchboard run`) before this instance takes the Stasis app
        admin = await start_admin(current, "run", app.status())
        runtime = app.runtime
        dsn = database_dsn(current)
        async with (
            admin,
            keep_agent_states(runtime.acd, runtime.clock, stored, dsn, instance),
            keep_vips(runtime.vips, stored, dsn),
            keep_shared_agents(runtime.desk, company, stored, dsn, instance),
            keep_pruning_recordings(company, stored),
            app,
        ):
            if started is not None:
                started()
            await stop.wait()
