"""The admin server's questions to PostgreSQL: is it answering, how many call-backs wait.

Both are cheap and bounded: each is asked within `ASK_TIMEOUT` seconds, and at
most once per its time to live however often `/readyz` and `/metrics` are
scraped (several scrapes at once share one question), so a monitoring system
polling every second costs the database nothing worth counting and a database
that hangs delays a scrape by a second at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

from switchboard.redaction import describe
from switchboard.storage.callbacks import count_pending
from switchboard.storage.records import DATABASE_DOWN

T = TypeVar("T")

ASK_TIMEOUT = 1.0  # seconds a question has, connecting included
READY_TTL = 2.0  # seconds a "ready" answer (yes or no) is kept
PENDING_TTL = 10.0  # seconds the count of pending call-backs is kept


class _Kept(Generic[T]):
    """An answer asked again once it is ``ttl`` seconds old; askers meanwhile share one."""

    def __init__(self, ask: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._ask = ask
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._value: T | None = None
        self._at: float | None = None  # monotonic; None: never asked

    def _fresh(self) -> bool:
        return self._at is not None and time.monotonic() - self._at < self._ttl

    async def get(self) -> T:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():  # another asker may have asked while we waited
                    self._value = await self._ask()
                    self._at = time.monotonic()
        return self._value  # type: ignore[return-value] # asked at least once by now


class DatabaseProbe:
    """`ready` and `pending_callbacks` over the runtime's own pool (`PostgresSink.pool`)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        timeout: float = ASK_TIMEOUT,
        ready_ttl: float = READY_TTL,
        pending_ttl: float = PENDING_TTL,
    ) -> None:
        self.pool = pool
        self.timeout = timeout
        self._ready = _Kept(self._ping, ready_ttl)
        self._pending = _Kept(self._count_pending, pending_ttl)

    async def ready(self) -> str | None:
        """None while the database answers ``SELECT 1``; else what is wrong, in a line."""
        return await self._ready.get()

    async def pending_callbacks(self) -> int | None:
        """Call-backs waiting to be made; None when the database cannot say (away, or
        not migrated)."""
        return await self._pending.get()

    async def _ping(self) -> str | None:
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except TimeoutError:
            return f"database not answering within {self.timeout:g} s"
        except DATABASE_DOWN as exc:
            return f"database not answering: {describe(exc)}"
        return None

    async def _count_pending(self) -> int | None:
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                return await count_pending(conn)
        except DATABASE_DOWN:
            return None
