"""A PostgreSQL LISTEN connection owned by one task, for what a running app follows.

`Listener` connects and LISTENs on its ``channel``, hands each notification to
`_handle`, checks the connection's health when nothing comes (a connection cut
without a FIN only shows when used), and reconnects with a jittered backoff when
it is lost -- then `_resync`s, since a notification may have come while it was
away.  ``changed`` is notified whenever ``connected`` or ``connect_failures``
change, and whenever a subclass says so (`wait_until`).  `ConfigWatcher`
(configuration versions) and `AgentCommands` (``switchboard agents`` requests)
are its two users.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import asyncpg
import structlog

from switchboard.redaction import redact

log = structlog.get_logger("switchboard.storage")

CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
L = TypeVar("L", bound="Listener")


class Listener:
    channel: ClassVar[str]  # what it LISTENs on
    name: ClassVar[str]  # how its log lines call it ("config listener")

    def __init__(
        self,
        *,
        backoff_first: float = 0.5,
        backoff_max: float = 30.0,
        health_every: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.connected = False
        self.connections = 0  # listen connections opened so far
        self.connect_failures = 0  # reconnections that failed so far
        self.changed = asyncio.Condition()
        self._dsn = ""
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()  # None: connection lost
        self._task: asyncio.Task[None] | None = None
        self._backoff_first = backoff_first
        self._backoff_max = backoff_max
        self._health_every = health_every
        self._connect_timeout = connect_timeout

    async def stop(self) -> None:
        """Stop following and close the connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def wait_until(self: L, predicate: Callable[[L], bool]) -> None:
        """Until ``predicate(self)`` holds; bound it with a timeout."""
        async with self.changed:
            await self.changed.wait_for(lambda: predicate(self))

    # --- for the subclasses -----------------------------------------------------------

    async def _resync(self, conn: asyncpg.Connection) -> None:
        """After a reconnection: catch up with what was notified meanwhile."""

    async def _handle(self, conn: asyncpg.Connection, payload: str) -> None:
        """One notification."""

    def _reconnected_fields(self) -> dict[str, Any]:
        """What the "reconnected" log line says besides."""
        return {}

    def _follow_in_background(self, conn: asyncpg.Connection | None, task_name: str) -> None:
        """Follow ``conn`` (None: connect first, retrying with the backoff)."""
        self._task = asyncio.create_task(self._follow(conn), name=task_name)

    # --- the connection, owned by one task ----------------------------------------------

    async def _listen(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        try:
            conn.add_termination_listener(self._on_lost)
            await conn.add_listener(self.channel, self._on_notify)
        except CONNECTION_ERRORS:
            await self._discard(conn)
            raise
        self.connections += 1
        self.connected = True
        await self._notify()
        return conn

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self._inbox.put_nowait(str(payload))

    def _on_lost(self, conn: Any) -> None:
        self._inbox.put_nowait(None)

    async def _follow(self, first: asyncpg.Connection | None) -> None:
        conn: asyncpg.Connection | None = first
        failures = 0
        try:
            while True:
                if conn is None:
                    try:
                        conn = await self._listen()
                        await self._resync(conn)
                    except CONNECTION_ERRORS as exc:
                        if conn is not None:
                            await self._discard(conn)
                            conn = None
                        failures += 1
                        self.connect_failures += 1
                        await self._notify()
                        log.warning(
                            f"{self.name} cannot connect", error=redact(str(exc)), attempt=failures
                        )
                        delay = min(self._backoff_max, self._backoff_first * 2 ** (failures - 1))
                        await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                        continue
                    log.info(f"{self.name} reconnected", **self._reconnected_fields())
                failures = 0
                try:
                    await self._serve(conn)
                    log.warning(f"{self.name} connection lost: reconnecting")
                except CONNECTION_ERRORS as exc:
                    log.warning(
                        f"{self.name} connection failed: reconnecting", error=redact(str(exc))
                    )
                await self._discard(conn)
                conn = None
                await asyncio.sleep(self._backoff_first * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
        finally:
            if conn is not None:
                await self._discard(conn)

    async def _serve(self, conn: asyncpg.Connection) -> None:
        """Hand on each notification; return when the connection is gone."""
        while not conn.is_closed():
            try:
                async with asyncio.timeout(self._health_every):
                    payload = await self._inbox.get()
            except TimeoutError:
                # a connection cut without a FIN only shows when used
                await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
                continue
            if payload is not None and not conn.is_closed():
                await self._handle(conn, payload)

    async def _discard(self, conn: asyncpg.Connection) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            conn.remove_termination_listener(self._on_lost)
            await conn.close(timeout=self._connect_timeout)
        if not conn.is_closed():
            conn.terminate()
        if self.connected:
            self.connected = False
            await self._notify()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()
