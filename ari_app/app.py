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

import structlog

from ari_app.client import AriClient
from ari_app.runtime import AriRuntime, CallSink, MemorySink, RuntimeSettings
from ari_app.supervisor import AriSupervisor
from switchboard.clock import Clock
from switchboard.config.company import Company

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
        url=environ.get("SWITCHBOARD_ARI_URL", section.ari_url),
        user=environ.get("SWITCHBOARD_ARI_USER", section.ari_user),
        password=environ.get("SWITCHBOARD_ARI_PASSWORD", section.ari_password.get_secret_value()),
        app=environ.get("SWITCHBOARD_ARI_APP", section.app),
    )


def runtime_settings(company: Company, app: str) -> RuntimeSettings:
    section = company.config.asterisk
    return RuntimeSettings(
        app=app,
        employee_endpoint=section.endpoints.employee,
        mobile_endpoint=section.endpoints.mobile,
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
        )
        self.supervisor = AriSupervisor(self.client, self.runtime, backoff_first=backoff_first)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AriApp:
        self._task = asyncio.create_task(self.supervisor.run(), name="ari-supervisor")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.runtime.close()
        await self.client.close()

    async def wait_ready(self, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await self.supervisor.ready.wait()


async def serve(company: Callable[[], Company], stop: asyncio.Event) -> None:
    """Run the Stasis application until ``stop`` is set; each new call takes ``company()``."""
    settings = ari_settings(company())
    log.info("starting", ari=settings.url, app=settings.app)
    async with AriApp(company, settings):
        await stop.wait()
