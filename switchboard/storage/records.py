"""Call records and voicemail messages, written to PostgreSQL in the background.

A finished call becomes one row of ``calls`` (`record_row`), a message left by
a caller one row of ``messages`` (`message_row`).  The call's task hands the
row to a `RecordWriter` with `submit`, which only appends it to a deque: the
call path never waits for the database.  One background task takes batches
off the deque and writes each in one transaction: per table, a binary
``COPY`` into a temporary staging table (``ON COMMIT DELETE ROWS``), then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.  Encoding the rows is the
one thing the writer does on the event loop the calls share; COPY costs
about half the CPU of ``INSERT ... SELECT FROM unnest($1::text[], ...)`` and
is sent in slices of `COPY_SLICE` rows, so the loop is never held for more
than a millisecond or two at a time.  A row that is already there (same
``call_id``; same ``call_id`` and ``recording``) is left alone, so writing a
row twice -- a retry after a lost reply, a replayed spill file -- still
leaves one row.

When PostgreSQL is away
    The writer reconnects with exponential backoff.  Rows keep arriving in
    memory; while the database is unreachable every cycle (``flush_interval``)
    moves them to the spill file, a JSON-lines file at ``spill_path``.  When
    the database is back, the writer replays the spill file (interleaved with
    new rows) and removes it once every line in it is written.  At start an
    existing spill file -- from an outage or a stop while the database was
    down -- is replayed the same way.  Each running instance needs a spill
    path of its own: two writers must never share one.

Spill policy: the oldest rows go to the file
    Memory holds at most ``max_memory`` rows.  A `submit` beyond that moves the
    *oldest* row in memory to the spill file (one JSON line into a buffered
    file: no database, no waiting), so memory always holds the newest rows
    and the file is a prefix of the queue in time.  Nothing is dropped unless
    the spill file itself cannot be written (disk full): then the row is
    counted in ``dropped`` and an error is logged.

Replaying safely
    To replay, the writer renames the spill file to ``<spill>.replaying``
    (new spills start a fresh spill file), writes it batch by batch and
    deletes it at the end.  At every moment each row is in the database, in
    one of the two files, or both (and then the second write does nothing).
    A row the database refuses as bad data (a constraint, an invalid value)
    is written to ``<spill>.rejected`` for a person to look at, so one bad
    row never blocks the others.  Text from the network is never the reason:
    rows are made with `storable_row`, which keeps caller IDs as sent except
    for NUL and lone surrogates (U+FFFD instead, `switchboard.storage.pg_text`).

What a stop or a crash can lose
    `stop` writes what is still in memory, and whatever it cannot write
    (database down, ``stop_timeout`` passed) goes to the spill file, which is
    fsynced: a normal stop loses nothing.  On a crash (the process killed),
    what is lost is what was only in memory: rows submitted in the last
    ``flush_interval`` (0.2 s) plus the batch being written at that moment --
    under a second.  One exception: if PostgreSQL stops answering without
    refusing (a network black hole), rows wait in memory for up to
    ``write_timeout`` before they are spilled.  Rows in the spill file
    survive a crash of the process (they are flushed to the OS every cycle
    and fsynced at least once a second while spilling).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import asyncpg
import structlog

from switchboard.engine.actions import SaveMessage, recording_name
from switchboard.engine.trace import Outcome, Step
from switchboard.redaction import describe, redact
from switchboard.storage.pg_text import pg_text, pg_value

log = structlog.get_logger("switchboard.storage")

Table = Literal["calls", "messages"]
Row = dict[str, Any]
Connect = Callable[[], Awaitable[asyncpg.Connection]]

# the database is away (or answering nothing): keep the rows, retry later
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
# the database refused these rows: retry them one by one, set the bad ones aside.
# (ValueError: asyncpg's client-side DataError, a value it cannot encode)
ROW_REFUSED: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
)
COPY_SLICE = 100  # rows per COPY: ~1-2 ms of encoding on the event loop at a time
FSYNC_EVERY = 1.0  # seconds: the spill file is fsynced at least this often while in use


class FinishedCall(Protocol):
    """What a finished call leaves behind (``switchboard.calls.CallRecord`` is one)."""

    @property
    def call_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def called_raw(self) -> str: ...
    @property
    def called(self) -> str: ...
    @property
    def caller(self) -> str: ...
    @property
    def caller_name(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def linkedid(self) -> str: ...
    @property
    def line(self) -> int | None: ...
    @property
    def scenario(self) -> str: ...
    @property
    def started_at(self) -> dt.datetime: ...
    @property
    def steps(self) -> Sequence[Step]: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def queue_department(self) -> str | None: ...


def repeats(steps: Sequence[Step]) -> int:
    """How many times a node was passed again: every visit beyond the first, per node."""
    seen: set[tuple[str, str]] = set()
    again = 0
    for step in steps:
        key = (step.scenario, step.node)
        if key in seen:
            again += 1
        else:
            seen.add(key)
    return again


def steps_json(steps: Sequence[Step]) -> str:
    """The ``steps`` column: the trace exactly as ``switchboard simulate --json`` shows it."""
    return json.dumps([step.as_json() for step in steps], ensure_ascii=False)


def storable_row(row: Row) -> Row:
    """``row`` as PostgreSQL takes it: NUL and lone surrogates in any text become U+FFFD.

    Caller names and numbers come from the network (`switchboard.storage.pg_text`);
    a row PostgreSQL refused would be set aside whole for one character.
    """
    clean = {
        column: pg_text(value) if isinstance(value, str) else value for column, value in row.items()
    }
    steps = clean.get("steps")
    if isinstance(steps, str) and "\\u0000" in steps:  # JSON's NUL, which jsonb refuses
        clean["steps"] = json.dumps(pg_value(json.loads(steps)), ensure_ascii=False)
    return clean


def record_row(record: FinishedCall, instance: str, config_version: int | None) -> Row:
    """The ``calls`` row of a finished call (`storable_row`: hostile caller IDs kept)."""
    outcome = record.outcome
    started = record.started_at
    row = {
        "call_id": record.call_id,
        "instance": instance,
        "channel": record.channel,
        "started_at": started,
        "ended_at": started + dt.timedelta(seconds=outcome.duration),
        "called_raw": record.called_raw,
        "called": record.called,
        "caller": record.caller,
        "caller_name": record.caller_name,
        "line": record.line,
        "scenario": record.scenario,
        "config_version": config_version,
        "result": outcome.result,
        "reason": outcome.reason,
        "wait_s": outcome.wait,
        "talk_s": outcome.talk,
        "duration_s": outcome.duration,
        "agent": outcome.agent,
        "department": outcome.department,
        "queue_department": record.queue_department,
        "transfers": _count(outcome.extra.get("transfers")),  # an agent's blind transfers
        "repeats": repeats(record.steps),
        "steps": steps_json(record.steps),
        "uniqueid": record.channel_id or None,
        "linkedid": record.linkedid or None,
        "recording": _recording(record.call_id, outcome.extra.get("recording")),
    }
    return storable_row(row)


def _recording(call_id: str, recording_id: object) -> str | None:
    """The ``recording`` column: the name of the conversation's recording, if any."""
    return recording_name(call_id, recording_id) if isinstance(recording_id, str) else None


def _count(value: object) -> int:
    """A count from an outcome's extra (JSON from another version may hold anything)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def message_row(
    call_id: str, message: SaveMessage, created_at: dt.datetime, recording: str | None = None
) -> Row:
    """The ``messages`` row of a voicemail message (`storable_row`, as for calls).

    ``recording`` is the name Asterisk stored it under (default: the engine's
    recording id).
    """
    return storable_row(
        {
            "call_id": call_id,
            "recording": recording or message.recording_id,
            "caller": message.caller,
            "called": message.called,
            "mailbox": message.mailbox,
            "created_at": created_at,
            "length_s": message.length,
        }
    )


@dataclass(frozen=True, slots=True)
class _TableSpec:
    name: Table
    columns: tuple[tuple[str, str], ...]  # column, PostgreSQL type
    conflict: str

    @property
    def times(self) -> frozenset[str]:
        return frozenset(c for c, kind in self.columns if kind == "timestamptz")

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def staging(self) -> str:
        return f"{self.name}_incoming"

    def create_staging_sql(self) -> str:
        """A temporary table of the same columns and types, emptied at every commit."""
        names = ", ".join(self.names)
        return (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.staging} ON COMMIT DELETE ROWS "  # noqa: S608 - fixed names
            f"AS SELECT {names} FROM {self.name} WITH NO DATA"
        )

    def insert_sql(self) -> str:
        names = ", ".join(self.names)
        return (
            f"INSERT INTO {self.name} ({names}) SELECT {names} "  # noqa: S608 - fixed names
            f"FROM {self.staging} ON CONFLICT ({self.conflict}) DO NOTHING"
        )


TABLES: dict[Table, _TableSpec] = {
    "calls": _TableSpec(
        "calls",
        (
            ("call_id", "text"),
            ("instance", "text"),
            ("channel", "text"),
            ("started_at", "timestamptz"),
            ("ended_at", "timestamptz"),
            ("called_raw", "text"),
            ("called", "text"),
            ("caller", "text"),
            ("caller_name", "text"),
            ("line", "int4"),
            ("scenario", "text"),
            ("config_version", "int8"),
            ("result", "text"),
            ("reason", "text"),
            ("wait_s", "float4"),
            ("talk_s", "float4"),
            ("duration_s", "float4"),
            ("agent", "text"),
            ("department", "text"),
            ("transfers", "int4"),
            ("repeats", "int4"),
            ("steps", "jsonb"),
            ("uniqueid", "text"),
            ("linkedid", "text"),
            ("queue_department", "text"),
            ("recording", "text"),
        ),
        "call_id",
    ),
    "messages": _TableSpec(
        "messages",
        (
            ("call_id", "text"),
            ("recording", "text"),
            ("caller", "text"),
            ("called", "text"),
            ("mailbox", "text"),
            ("created_at", "timestamptz"),
            ("length_s", "float4"),
        ),
        "call_id, recording",
    ),
}
_SQL = {name: spec.insert_sql() for name, spec in TABLES.items()}
_STAGING = "; ".join(spec.create_staging_sql() for spec in TABLES.values())
_TIMES = {name: spec.times for name, spec in TABLES.items()}

_Item = tuple[Table, Row]


def _encode(item: _Item) -> bytes:
    try:
        return (json.dumps(item, default=_json_default, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate from a broken caller name: escape it
        return (json.dumps(item, default=_json_default) + "\n").encode()


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot spill a {type(value).__name__}")


def _decode(line: bytes) -> _Item:
    """One spill line back into a row; ValueError (or KeyError) if it is not one."""
    table, row = json.loads(line)
    for column in _TIMES[table]:
        if row.get(column) is not None:
            row[column] = dt.datetime.fromisoformat(row[column])
    # a spill file an earlier release wrote may hold text PostgreSQL refuses
    return table, storable_row(row)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """The writer's counters, for metrics and tests."""

    submitted: int  # rows handed to `submit`
    written: int  # rows the database acknowledged (new, or there already)
    inserted: int  # of those, rows that were new
    spilled: int  # rows ever written to the spill file
    in_memory: int  # rows in memory (with the batch being written)
    in_spill: int  # rows in the spill files, not yet written
    rejected: int  # rows the database refused: in the .rejected file
    dropped: int  # rows lost: the spill file could not be written
    failures: int  # failed connects and writes
    connected: bool
    last_error: str | None

    @property
    def pending(self) -> int:
        """Rows not yet in the database."""
        return self.in_memory + self.in_spill


class RecordWriter:
    """Writes rows to PostgreSQL in batches in the background; keeps them while it is away."""

    def __init__(
        self,
        connect: str | Connect,
        spill_path: Path,
        max_memory: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        *,
        write_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        backoff_first: float = 0.2,
        backoff_max: float = 5.0,
        stop_timeout: float = 5.0,
    ) -> None:
        if isinstance(connect, str):
            dsn = connect
            self._connect_db: Connect = lambda: asyncpg.connect(dsn, timeout=connect_timeout)
            target = redact(dsn)
        else:
            self._connect_db = connect
            target = "(connect function)"
        self.spill_path = spill_path
        self.replay_path = spill_path.with_name(spill_path.name + ".replaying")
        self.rejected_path = spill_path.with_name(spill_path.name + ".rejected")
        self.max_memory = max(1, max_memory)
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.write_timeout = write_timeout
        self.connect_timeout = connect_timeout
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.stop_timeout = stop_timeout
        self.log = log.bind(database=target, spill=str(spill_path))

        self._memory: deque[_Item] = deque()
        self._inflight: list[_Item] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._stopping = False
        self._closed = False
        self._backoff = backoff_first
        self._retry_at = 0.0
        self._down_since: float | None = None
        # the spill file: appended to by `submit` and the writer, replayed by the writer
        self._spill: io.BufferedWriter | None = None  # open while spilling
        self._spill_dirty = False
        self._spill_rows = 0  # rows in spill_path
        self._replay_rows = 0  # rows in replay_path not yet written
        self._replay_offset = 0  # where the next unwritten line of replay_path starts
        self._last_flush = time.monotonic()
        self._last_fsync = time.monotonic()
        self._submitted = 0
        self._written = 0
        self._inserted = 0
        self._spilled = 0
        self._rejected = 0
        self._dropped = 0
        self._failures = 0
        self._last_error: str | None = None

    # --- the call path --------------------------------------------------------------

    def submit(self, row: Row, table: Table = "calls") -> None:
        """Queue a row: O(1), never blocks, never raises, never touches the database."""
        self._submitted += 1
        if self._closed:  # after stop: straight to the spill file, for the next start
            self._to_spill((table, row))
            self._flush_spill(fsync=False)
            return
        memory = self._memory
        memory.append((table, row))
        if len(memory) > self.max_memory:
            self._to_spill(memory.popleft())  # the oldest goes to the file
            if time.monotonic() - self._last_flush > FSYNC_EVERY:
                self._flush_spill(fsync=False)
        if len(memory) >= self.batch_size:
            self._wake.set()

    def stats(self) -> WriterStats:
        return WriterStats(
            submitted=self._submitted,
            written=self._written,
            inserted=self._inserted,
            spilled=self._spilled,
            in_memory=len(self._memory) + len(self._inflight),
            in_spill=self._spill_rows + self._replay_rows,
            rejected=self._rejected,
            dropped=self._dropped,
            failures=self._failures,
            connected=self._conn is not None and not self._conn.is_closed(),
            last_error=self._last_error,
        )

    async def wait_for(self, done: Callable[[WriterStats], bool]) -> WriterStats:
        """Until ``done(stats)`` holds; the caller sets the deadline (``asyncio.timeout``)."""
        while not done(stats := self.stats()):
            await self._changed.wait()
        return stats

    async def drained(self) -> WriterStats:
        """Until every row submitted so far is in the database (or set aside as refused)."""
        return await self.wait_for(lambda s: s.pending == 0)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background writer; rows in a spill file from before are written too."""
        if self._task is not None:
            return
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_spill()  # rows spilled before the start are in the file: count them there
        _end_last_line(self.spill_path)  # a crash may have cut the last line short
        _end_last_line(self.replay_path)
        self._spill_rows = _count_lines(self.spill_path)
        self._replay_rows = _count_lines(self.replay_path)
        if self._replay_rows == 0:
            self.replay_path.unlink(missing_ok=True)
        self._replay_offset = 0
        self._closed = False
        self._stopping = False
        if self._spill_rows or self._replay_rows:
            self.log.info("records from an earlier run to write", rows=self.stats().in_spill)
        self._task = asyncio.create_task(self._run(), name="record-writer")

    async def stop(self) -> None:
        """Write what is in memory, spill what cannot be written, close: nothing is lost."""
        task = self._task
        self._stopping = True
        self._wake.set()
        if task is None:
            self._spill_memory_now()
            self._close_spill()
            self._closed = True
            return
        try:
            await task
        finally:
            self._task = None
            self._closed = True

    # --- the background task ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    await self._cycle()
                except Exception:  # a bug must not stop the records: log it, start over
                    self.log.exception("record writer failed; retrying")
                    self._lost_database(RuntimeError("record writer failed"))
                await self._sleep()
            await self._final()
        finally:
            # also on cancellation: whatever is left in memory goes to the file
            self._spill_memory_now()
            self._close_spill()
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            self._notify()

    async def _sleep(self) -> None:
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
        self._wake.clear()

    async def _cycle(self) -> None:
        if not await self._ensure_connected():
            await self._spill_memory()
            return
        try:
            await self._drain()
        except DATABASE_DOWN as exc:
            self._lost_database(exc)
            await self._spill_memory()
        self._flush_spill(fsync=time.monotonic() - self._last_fsync > FSYNC_EVERY)
        self._notify()

    async def _ensure_connected(self) -> bool:
        if self._conn is not None and not self._conn.is_closed():
            return True
        self._conn = None
        if asyncio.get_running_loop().time() < self._retry_at:
            return False
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._conn = await self._connect_db()
                await self._conn.execute(_STAGING)
        except DATABASE_DOWN as exc:  # also: the schema is not there yet (not migrated)
            self._lost_database(exc)
            return False
        self._backoff = self.backoff_first
        if self._down_since is not None:
            away = asyncio.get_running_loop().time() - self._down_since
            self.log.info("database back", away_s=round(away, 1), to_write=self.stats().pending)
            self._down_since = None
        else:
            self.log.info("database connected")
        self._notify()
        return True

    def _lost_database(self, exc: BaseException) -> None:
        loop = asyncio.get_running_loop()
        self._failures += 1
        self._last_error = describe(exc)  # asyncpg may quote the DSN
        if self._down_since is None:
            self._down_since = loop.time()
            self.log.warning("database unreachable: keeping records", error=self._last_error)
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        self._retry_at = loop.time() + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max)
        self._notify()

    async def _drain(self) -> None:
        """Write memory and spill file, a batch of each in turn, until both are empty."""
        while not self._stopping:
            wrote = False
            if self._memory:
                await self._write_memory_batch()
                wrote = True
            if self._spill_rows or self._replay_rows:
                wrote = await self._write_spill_batch() or wrote
            if not wrote:
                return

    async def _write_memory_batch(self) -> None:
        memory = self._memory
        batch = [memory.popleft() for _ in range(min(self.batch_size, len(memory)))]
        self._inflight = batch
        done = False
        try:
            await self._store(batch)
            done = True
        finally:
            self._inflight = []
            if not done:  # back to the front, in order: spilled or retried
                memory.extendleft(reversed(batch))
        self._notify()

    async def _write_spill_batch(self) -> bool:
        if self._replay_rows == 0 and not self.replay_path.exists():
            if self._spill_rows == 0:
                return False
            self._close_spill()  # new spills go to a fresh file
            os.replace(self.spill_path, self.replay_path)
            self._replay_rows, self._spill_rows = self._spill_rows, 0
            self._replay_offset = 0
        batch, offset, bad, at_end = await self._read_replay()
        if batch:
            await self._store(batch)
        if bad:  # only once the batch is in: a retry must not set them aside twice
            self._reject_lines(bad)
        self._replay_offset = offset
        self._replay_rows = max(0, self._replay_rows - len(batch) - len(bad))
        if at_end:
            self.replay_path.unlink(missing_ok=True)
            self._replay_rows = 0
            self._replay_offset = 0
            self.log.info("spilled records written")
        self._notify()
        return True

    async def _read_replay(self) -> tuple[list[_Item], int, list[bytes], bool]:
        """The replay file's next batch: rows, the offset after them, unreadable lines, at end?"""
        batch: list[_Item] = []
        bad: list[bytes] = []
        at_end = False
        try:
            with self.replay_path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(self._replay_offset)
                for n in range(self.batch_size):
                    line = file.readline()
                    if not line:
                        break
                    try:
                        batch.append(_decode(line))
                    except (ValueError, KeyError, TypeError):
                        bad.append(line)  # a line cut short by a crash, or garbage
                    if n % 100 == 99:
                        await asyncio.sleep(0)  # let the calls run
                offset = file.tell()
                at_end = offset >= size
        except FileNotFoundError:
            return [], 0, [], True
        return batch, offset, bad, at_end

    async def _store(self, batch: list[_Item]) -> None:
        """Write a batch in one transaction; refused rows are set aside one by one."""
        conn = self._conn
        assert conn is not None
        accepted = len(batch)
        try:
            inserted = await self._insert(conn, batch)
        except ROW_REFUSED as exc:
            self.log.warning("database refused a batch: writing it row by row", error=str(exc))
            inserted = 0
            for item in batch:
                try:
                    inserted += await self._insert(conn, [item])
                except ROW_REFUSED as row_exc:
                    self._reject(item, row_exc)
                    accepted -= 1
        self._written += accepted
        self._inserted += inserted

    async def _insert(self, conn: asyncpg.Connection, batch: list[_Item]) -> int:
        groups: dict[Table, list[Row]] = {}
        for table, row in batch:
            groups.setdefault(table, []).append(row)
        inserted = 0
        async with asyncio.timeout(self.write_timeout), conn.transaction():
            for table, rows in groups.items():
                spec = TABLES[table]
                names = spec.names
                # in slices: encoding a slice is what holds the event loop, so keep it short
                for start in range(0, len(rows), COPY_SLICE):
                    records = [
                        [row.get(c) for c in names] for row in rows[start : start + COPY_SLICE]
                    ]
                    await conn.copy_records_to_table(spec.staging, records=records, columns=names)
                status = await conn.execute(_SQL[table])
                inserted += int(status.rsplit(" ", 1)[-1])
        return inserted

    def _reject(self, item: _Item, exc: BaseException) -> None:
        self.log.error(
            "database refused a record: kept in the rejected file",
            table=item[0],
            key=item[1].get("call_id"),
            error=f"{type(exc).__name__}: {exc}",
        )
        try:
            line = _encode(item)
        except (TypeError, ValueError):
            line = (repr(item) + "\n").encode("utf-8", "backslashreplace")
        self._reject_lines([line], count=False)

    def _reject_lines(self, lines: list[bytes], count: bool = True) -> None:
        if count:
            self.log.error("unreadable lines in the spill file", lines=len(lines))
        self._rejected += len(lines)
        try:
            with self.rejected_path.open("ab") as file:
                file.writelines(line if line.endswith(b"\n") else line + b"\n" for line in lines)
        except OSError as exc:
            self.log.error("cannot write the rejected file", error=str(exc))

    async def _final(self) -> None:
        """On stop: write what is in memory (within ``stop_timeout``); the rest is spilled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        if self._memory:
            self._retry_at = 0.0  # one more try, whatever the backoff says
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    if await self._ensure_connected():
                        try:
                            while self._memory:
                                await self._write_memory_batch()
                        except DATABASE_DOWN as exc:
                            self._lost_database(exc)
        left = len(self._memory)
        self._spill_memory_now()
        self._flush_spill(fsync=True)
        if left:
            self.log.warning("stopped with records unwritten: kept in the spill file", rows=left)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                async with asyncio.timeout(1.0):
                    await conn.close()
            except DATABASE_DOWN:
                conn.terminate()

    # --- the spill file -----------------------------------------------------------------

    def _to_spill(self, item: _Item) -> None:
        try:
            if self._spill is None:
                self._spill = self.spill_path.open("ab")
            self._spill.write(_encode(item))
        except (OSError, TypeError, ValueError) as exc:
            self._dropped += 1
            self._last_error = f"spill: {type(exc).__name__}: {exc}"
            self.log.error("cannot spill a record: lost", error=self._last_error)
            return
        self._spill_rows += 1
        self._spilled += 1
        self._spill_dirty = True

    async def _spill_memory(self) -> None:
        """The database is away: move what is in memory to the file, yielding as it goes."""
        memory = self._memory
        if not memory:
            return
        for n in range(len(memory)):
            if not memory:
                break
            self._to_spill(memory.popleft())
            if n % 200 == 199:
                await asyncio.sleep(0)
        self._flush_spill(fsync=time.monotonic() - self._last_fsync > FSYNC_EVERY)
        self._notify()

    def _spill_memory_now(self) -> None:
        memory = self._memory
        while memory:
            self._to_spill(memory.popleft())
        if self._inflight:  # cancelled in the middle of a write
            for item in self._inflight:
                self._to_spill(item)
            self._inflight = []

    def _flush_spill(self, fsync: bool) -> None:
        if self._spill is None or not self._spill_dirty:
            return
        try:
            self._spill.flush()
            if fsync:
                os.fsync(self._spill.fileno())
                self._last_fsync = time.monotonic()
        except OSError as exc:
            self._last_error = f"spill: {type(exc).__name__}: {exc}"
            self.log.error("cannot flush the spill file", error=self._last_error)
        self._spill_dirty = False
        self._last_flush = time.monotonic()

    def _close_spill(self) -> None:
        if self._spill is None:
            return
        if self._spill_dirty:
            self._flush_spill(fsync=True)
        with contextlib.suppress(OSError):
            self._spill.close()
        self._spill = None

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def _end_last_line(path: Path) -> None:
    """Make sure the file ends with a newline, so the next line appended stays whole."""
    try:
        with path.open("rb+") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
    except FileNotFoundError:
        return
