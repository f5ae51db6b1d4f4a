"""The runtime's `CallSink` on PostgreSQL.

Records and messages go through the `RecordWriter`: the call hands them over
and goes on, the database is never waited for.  Two things are different
because the caller hears their answer: a call-back request is committed
before the caller is told "we will call you back" (a short timeout; False if
the database cannot take it, and the scenario says so instead of promising),
``last_agent`` asks the database who talked to this caller last and
``contact`` who is responsible for them (None when it cannot say in time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from types import TracebackType

import asyncpg
import structlog

from switchboard.engine.actions import RequestCallback, SaveMessage, recording_name
from switchboard.redaction import describe, redact
from switchboard.storage.callbacks import RequestConflict, store_request
from switchboard.storage.contacts import lookup_contact
from switchboard.storage.pg_text import pg_text
from switchboard.storage.records import (
    DATABASE_DOWN,
    FinishedCall,
    RecordWriter,
    message_row,
    record_row,
)

log = structlog.get_logger("switchboard.storage")

# a call-back request waits this long for the database before the caller is told it
# could not be taken: at 50 calls/s the pool may be busy with lookups for a moment, and
# a short wait is better than a lost promise (2 s lost 2 of 1,215 requests)
CALLBACK_COMMIT_WAIT = 5.0
POOL_SIZE = 10  # connections for call-backs and lookups (records have their own)

# days may be fractional: make_interval(days => ...) takes whole days only
LAST_AGENT = """
SELECT agent FROM calls
WHERE caller = $1 AND agent IS NOT NULL AND started_at > now() - $2::float8 * interval '1 day'
ORDER BY started_at DESC LIMIT 1
"""


class PostgresSink:
    """Call records, messages, call-back requests and the last-agent lookup, in PostgreSQL."""

    def __init__(
        self,
        writer: RecordWriter,
        pool: asyncpg.Pool,
        instance: str,
        *,
        config_version: int | None = None,
        timeout: float = 2.0,
        callback_timeout: float = CALLBACK_COMMIT_WAIT,
    ) -> None:
        self.writer = writer
        self.pool = pool
        self.instance = instance
        self.config_version = config_version
        self.timeout = timeout
        self.callback_timeout = callback_timeout

    async def call_finished(self, record: FinishedCall) -> None:
        version = getattr(record, "config_version", None) or self.config_version
        self.writer.submit(record_row(record, self.instance, version))

    async def save_message(self, call_id: str, message: SaveMessage) -> None:
        row = message_row(
            call_id,
            message,
            created_at=dt.datetime.now(dt.UTC),
            recording=recording_name(call_id, message.recording_id),
        )
        self.writer.submit(row, "messages")

    async def request_callback(
        self, call_id: str, request: RequestCallback, hold: float | None = None
    ) -> bool:
        """Commit the promise; True once it is stored (also if it was already), else False.

        The row is `callbacks.store_request`'s (``request_id`` = call id / engine
        request): a retry of the same request is stored once and still True.
        """
        try:
            async with asyncio.timeout(self.callback_timeout), self.pool.acquire() as conn:
                due_at = None
                if request.due:
                    due_at = dt.datetime.fromisoformat(request.due)  # the caller's choice
                elif hold is not None:
                    due_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=hold)
                await store_request(conn, call_id, request, due_at)
        except RequestConflict as exc:  # the same request id for another call: never overwritten
            log.error("call-back not stored", call_id=call_id, error=str(exc))
            return False
        except DATABASE_DOWN as exc:
            log.warning(
                "call-back not stored",
                call_id=call_id,
                number=request.number,
                error=describe(exc),
            )
            return False
        return True

    async def last_agent(self, caller: str, days: float) -> str | None:
        """The employee who last talked to ``caller`` within ``days``; None if unknown."""
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                # the caller as records store it (`pg_text`): a hostile one is found too
                agent = await conn.fetchval(LAST_AGENT, pg_text(caller), float(days))
        except DATABASE_DOWN as exc:
            log.warning("last agent lookup failed", error=describe(exc))
            return None
        return None if agent is None else str(agent)

    async def message_counts(
        self, mailbox: str, including: str | None = None
    ) -> tuple[int, int] | None:
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    """SELECT count(*) FILTER (WHERE status <> 'new') AS old,
                              count(*) FILTER (WHERE status = 'new') AS new
                       FROM messages WHERE mailbox = $1 AND recording IS DISTINCT FROM $2""",
                    mailbox,
                    including,
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None
        assert row is not None
        return int(row["old"]), int(row["new"]) + (1 if including else 0)

    async def contact(self, caller: str) -> str | None:
        """The employee responsible for ``caller`` (the ``contacts`` table); None if unknown."""
        try:
            async with asyncio.timeout(self.timeout):
                return await lookup_contact(self.pool, pg_text(caller))
        except DATABASE_DOWN as exc:
            log.warning("contact lookup failed", error=describe(exc))
            return None

    async def close(self) -> None:
        """Stop the writer (it writes or spills what it holds), then close the pool."""
        try:
            await self.writer.stop()
        finally:
            try:
                async with asyncio.timeout(self.timeout):
                    await self.pool.close()
            except DATABASE_DOWN:
                self.pool.terminate()

    async def __aenter__(self) -> PostgresSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def open_sink(
    dsn: str,
    spill_path: Path,
    instance: str,
    *,
    config_version: int | None = None,
    db_timeout: float = 2.0,
    max_memory: int = 10_000,
    batch_size: int = 500,
    flush_interval: float = 0.2,
) -> PostgresSink:
    """A started sink: its pool, its writer.  Works with the database down (records spill).

    Close it with ``await sink.close()``, or use it as ``async with await open_sink(...)``.
    """
    pool = await asyncpg.create_pool(
        dsn,
        # min_size 0: no connection at start, so the app starts while the database is
        # away; a connection is made on first use and kept while in use (asyncpg closes
        # it after 300 s idle)
        min_size=0,
        max_size=POOL_SIZE,
        timeout=db_timeout,
        command_timeout=db_timeout,
    )
    writer = RecordWriter(
        dsn, spill_path, max_memory, batch_size, flush_interval, connect_timeout=db_timeout
    )
    await writer.start()
    sink = PostgresSink(writer, pool, instance, config_version=config_version, timeout=db_timeout)
    try:
        async with asyncio.timeout(db_timeout), pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
    except DATABASE_DOWN as exc:
        log.warning(
            "database unreachable at start: call records are kept until it is back",
            database=redact(dsn),
            error=describe(exc),
        )
    return sink
