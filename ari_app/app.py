"""`switchboard run`: the ARI client, its supervisor and the call runtime, together.

The lifecycle is in one place: `serve` opens the client, starts the
supervisor and waits for the stop signal; on the way out every call task is
cancelled and awaited and the HTTP pool closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from ari_app.callbacks import CallbackEvents, CallbackSettings, CallbackWorker
from ari_app.client import AriClient
from ari_app.runtime import AriRuntime, CallSink, MemorySink, RuntimeSettings
from ari_app.supervisor import AriSupervisor, EventSink
from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.storage.sink import open_sink

log = structlog.get_logger("switchboard.ari")


# A call allocates many short-lived objects.  With the default (700, 10, 10), full
# collections over a thousand live calls paused every call for 100-200 ms; a
# 50,000 young generation paused 70-80 ms per collection.  Measured with
# bench/ari_load.py: p99 StasisStart -> first command 9.6-9.9 ms at 50 calls/s.
RUN_GC_THRESHOLDS = (5_000, 20, 1_000)


def tune_gc() -> None:
    """Once the configuration is loaded: what lives as long as the process leaves
    every collection (a full one over it paused calls ~120 ms), and the
    thresholds above apply."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*RUN_GC_THRESHOLDS)


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
        url=environ.get("SWITCHBOARD_ARI_URL", section.ari_url),
        user=environ.get("SWITCHBOARD_ARI_USER", section.ari_user),
        password=environ.get("SWITCHBOARD_ARI_PASSWORD", section.ari_password.get_secret_value()),
        app=environ.get("SWITCHBOARD_ARI_APP", section.app),
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
        self.runtime = AriRuntime(
            self.client,
            company,
            runtime_settings(current, ari.app),
            self.sink,
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
                agents=self.runtime.pool,
            )
            events = CallbackEvents(self.runtime, self.callbacks)
        self.supervisor = AriSupervisor(self.client, events, backoff_first=backoff_first)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AriApp:
        self._task = asyncio.create_task(self.supervisor.run(), name="ari-supervisor")
        if self.callbacks is not None:
            await self.callbacks.start()  # claims nothing until ARI is connected
        return self

    async def __aexit__(self, *exc: object) -> None:
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


def database_dsn(company: Company, env: dict[str, str] | None = None) -> str | None:
    """`database.dsn` of the config, ``SWITCHBOARD_DSN`` winning; None: run without storage."""
    environ = os.environ if env is None else env
    configured = company.config.database.dsn
    return environ.get("SWITCHBOARD_DSN") or (
        configured.get_secret_value() if configured is not None else None
    )


async def serve(company: Callable[[], Company], stop: asyncio.Event) -> None:
    """Run the Stasis application until ``stop`` is set; each new call takes ``company()``.

    With a database (`database.dsn` / ``SWITCHBOARD_DSN``) every call leaves its
    record there (written in the background, spilled to `database.spill_dir`
    while the database is away) and promised call-backs are made; without one,
    records stay in memory and are lost at exit (a warning says so).
    """
    current = company()
    tune_gc()
    settings = ari_settings(current)
    instance = os.environ.get("SWITCHBOARD_INSTANCE", settings.app)
    dsn = database_dsn(current)
    log.info("starting", ari=settings.url, app=settings.app, instance=instance)
    if dsn is None:
        log.warning("no database configured: call records are kept in memory only")
        async with AriApp(company, settings, instance=instance):
            await stop.wait()
        return
    spill = Path(current.config.database.spill_dir) / f"records-{instance}.jsonl"
    spill.parent.mkdir(parents=True, exist_ok=True)
    # the sink closes after the app: records of calls ending at shutdown still get written
    async with (
        await open_sink(dsn, spill, instance) as sink,
        AriApp(company, settings, sink=sink, callback_pool=sink.pool, instance=instance),
    ):
        await stop.wait()
