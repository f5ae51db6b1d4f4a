"""The admin web server: ``/healthz``, ``/readyz`` and ``/metrics`` of one process.

==================  ==========================================================
``GET /healthz``    200 ``{"status": "ok"}`` while the process runs (its event
                    loop answers)
``GET /readyz``     200 when the runtime can take calls -- connected to ARI
                    (``run``) or listening for FastAGI (``agi``), and the
                    database answering when one is configured -- else 503;
                    the JSON body gives each check's answer, ``"ok"`` or what
                    is not ready
``GET /metrics``    Prometheus's text format: the ``switchboard_*`` metrics
                    (`switchboard.admin.metrics`) and the process's own
==================  ==========================================================

It listens on loopback by default (``admin.listen`` for `switchboard run`,
``admin.agi_listen`` for `switchboard agi`: each command its own port, so both
may run on one machine; ``SWITCHBOARD_ADMIN_LISTEN`` and
``SWITCHBOARD_ADMIN_AGI_LISTEN`` win).  Each server has a registry of its own,
never prometheus-client's global one, so several can run in one process.

The admin API and the wallboard (issue 12, parts 3 and 4) are routes of the
same `AdminServer.app`, added before `start`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Literal, NamedTuple

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from switchboard.admin.api import register_api
from switchboard.admin.metrics import SwitchboardCollector
from switchboard.admin.status import RuntimeStatus
from switchboard.admin.wallboard import add_wallboard
from switchboard.config.company import Company
from switchboard.config.model import DEFAULT_ADMIN_AGI_LISTEN, DEFAULT_ADMIN_LISTEN, parse_listen

log = structlog.get_logger("switchboard.admin")

Command = Literal["run", "agi"]
# where each command listens: its configuration key, the environment variable that wins
# over it, and its default
WHERE: dict[Command, tuple[str, str, str]] = {
    "run": ("admin.listen", "SWITCHBOARD_ADMIN_LISTEN", DEFAULT_ADMIN_LISTEN),
    "agi": ("admin.agi_listen", "SWITCHBOARD_ADMIN_AGI_LISTEN", DEFAULT_ADMIN_AGI_LISTEN),
}
SHUTDOWN_WAIT = 1.0  # seconds a scrape under way has to finish when the process stops


class AdminCannotListen(Exception):
    """The admin server's address is not HOST:PORT, taken or not ours: one line."""

    error_id = "admin.listen"


class Listen(NamedTuple):
    host: str
    port: int
    source: str  # what said it: the configuration key or the environment variable


def admin_address(
    company: Company, command: Command, env: Mapping[str, str] | None = None
) -> Listen | None:
    """Where ``command``'s admin server listens: its environment variable, else the
    configuration; None when ``admin.enabled`` is false (and no variable is set).
    `AdminCannotListen` when the address is not HOST:PORT."""
    environ = os.environ if env is None else env
    key, variable, example = WHERE[command]
    section = company.config.admin
    if variable in environ:
        given, source = environ[variable], variable
    elif not section.enabled:
        return None
    else:
        given, source = (section.listen if command == "run" else section.agi_listen), key
    try:
        host, port = parse_listen(given, source, example)
    except ValueError as exc:
        raise AdminCannotListen(str(exc)) from None
    return Listen(host, port, source)


class AdminServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` over ``status``; `start`, then `close`
    (or ``async with``, once started)."""

    def __init__(self, status: RuntimeStatus) -> None:
        self.status = status
        self.registry = CollectorRegistry()
        self.registry.register(SwitchboardCollector(status.snapshot))
        ProcessCollector(registry=self.registry)
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        register_api(self.app, status)  # /api/: the admin API (switchboard/admin/api.py)
        self.wallboard = add_wallboard(self.app, status)  # /wallboard (issue 12, part 4)
        self.address: tuple[str, int] | None = None  # once listening
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int, source: str = "admin") -> tuple[str, int]:
        """Listen on ``host:port`` (0: any free port); the bound address.
        `AdminCannotListen` (naming ``source``) when the address is taken or not ours."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_WAIT)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            why = os.strerror(exc.errno) if exc.errno else str(exc)  # uvloop's is wordier
            raise AdminCannotListen(f"cannot listen on {host}:{port} ({source}): {why}") from None
        self._runner = runner
        bound = runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        return self.address

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AdminServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self.address is None:
            raise RuntimeError("the admin server is not listening")
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        answers = await self.status.readiness()
        ready = all(answer is None for answer in answers.values())
        return web.json_response(
            {
                "ready": ready,
                "checks": {name: answer or "ok" for name, answer in answers.items()},
            },
            status=200 if ready else 503,
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.status.refresh()
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        )


async def start_admin(company: Company, command: Command, status: RuntimeStatus) -> AdminServer:
    """``command``'s admin server, listening where the configuration and environment say
    (not at all when ``admin.enabled`` is false); `AdminCannotListen` in one line when
    it cannot.  Close it with `AdminServer.close`, or ``async with`` it."""
    server = AdminServer(status)
    address = admin_address(company, command)
    if address is None:
        log.info("admin server off (admin.enabled: false)")
        return server
    host, port = await server.start(*address)
    log.info("admin listening", host=host, port=port, url=server.url)
    if not _loopback(address.host):
        log.warning(
            "admin server reachable from other machines: it asks for no password",
            host=address.host,
            source=address.source,
            hint="keep it on 127.0.0.1, or let only your monitoring reach the port",
        )
    return server


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
