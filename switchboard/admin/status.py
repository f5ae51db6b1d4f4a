"""What a runtime hands its admin server: `RuntimeStatus`.

A runtime builds one with `runtime_status` from what it keeps anyway -- its
`Desk` (the ACD's agents and the callers in its queues), the `CountingSink`
its calls finish through, its own readiness checks (connected to ARI,
listening for FastAGI) and figures (`AriFigures`, `AgiFigures`) -- and this
module adds what both runtimes share: the database's readiness and count of
pending call-backs when there is one, and where the records stand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from switchboard.admin.metrics import AgiFigures, AriFigures, RecordCounts, Snapshot
from switchboard.calls import CallSink, CountingSink, MemorySink
from switchboard.config.company import Company
from switchboard.driver import CallNow, Desk
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.sink import PostgresSink

log = structlog.get_logger("switchboard.admin")

# None: ready; otherwise what is not, in a few words (`/readyz` shows it)
ReadyCheck = Callable[[], Awaitable[str | None]]


@dataclass
class RuntimeStatus:
    """Readiness checks by name, and a `Snapshot` of the runtime for each scrape."""

    desk: Desk
    company: Callable[[], Company]
    calls: CountingSink  # the calls' results are counted where they finish
    in_progress: Callable[[], int]  # calls being carried now
    records: Callable[[], RecordCounts]
    checks: Mapping[str, ReadyCheck]
    database: DatabaseProbe | None = None
    ari: Callable[[], AriFigures] | None = None
    agi: Callable[[], AgiFigures] | None = None
    # the calls carried now (number, scenario, node, state, how long), longest first
    calls_now: Callable[[], list[CallNow]] = list
    pending_callbacks: int | None = field(default=None, init=False)  # as last `refresh`ed

    async def readiness(self) -> dict[str, str | None]:
        """Every check's answer, asked at once."""
        names = list(self.checks)
        answers = await asyncio.gather(*(self._ask(name) for name in names))
        return dict(zip(names, answers, strict=True))

    async def _ask(self, name: str) -> str | None:
        try:
            return await self.checks[name]()
        except Exception as exc:  # a check's bug says "not ready", never fails the probe
            log.exception("readiness check failed", check=name)
            return f"the check failed: {type(exc).__name__}"

    async def refresh(self) -> None:
        """Before a scrape: what only the database knows (kept a few seconds)."""
        if self.database is not None:
            self.pending_callbacks = await self.database.pending_callbacks()

    def snapshot(self) -> Snapshot:
        desk = self.desk
        return Snapshot(
            calls=dict(self.calls.results),
            in_progress=self.in_progress(),
            waiting=waiting_callers(desk, self.company()),
            agents=desk.acd.state_counts(desk.clock.now()),
            records=self.records(),
            callbacks_pending=self.pending_callbacks,
            ari=self.ari() if self.ari is not None else None,
            agi=self.agi() if self.agi is not None else None,
        )


def runtime_status(
    *,
    desk: Desk,
    company: Callable[[], Company],
    sink: CountingSink,
    in_progress: Callable[[], int],
    checks: Mapping[str, ReadyCheck],
    ari: Callable[[], AriFigures] | None = None,
    agi: Callable[[], AgiFigures] | None = None,
    calls_now: Callable[[], list[CallNow]] = list,
) -> RuntimeStatus:
    """A runtime's status: its own ``checks`` and figures, and, when its calls' records go
    to PostgreSQL, the database's readiness (``database``) and pending call-backs."""
    stored = _postgres(sink)
    database = DatabaseProbe(stored.pool) if stored is not None else None
    all_checks = dict(checks)
    if database is not None:
        all_checks["database"] = database.ready
    return RuntimeStatus(
        desk=desk,
        company=company,
        calls=sink,
        in_progress=in_progress,
        records=record_counts(sink),
        checks=all_checks,
        database=database,
        ari=ari,
        agi=agi,
        calls_now=calls_now,
    )


def waiting_callers(desk: Desk, company: Company) -> dict[str, int]:
    """Callers waiting in each department's queue; every department named."""
    counts = dict.fromkeys(company.departments, 0)
    acd = desk.acd
    for call_id in desk.waiting:
        department = acd.department_of(call_id)
        if department is not None:
            counts[department] = counts.get(department, 0) + 1
    return counts


def record_counts(sink: CallSink) -> Callable[[], RecordCounts]:
    """Where the records of ``sink`` stand: the PostgreSQL writer's counters, or the
    records kept in memory."""
    stored = _postgres(sink)
    if stored is not None:
        writer = stored.writer

        def written() -> RecordCounts:
            stats = writer.stats()
            return RecordCounts(stats.pending, stats.written, stats.spilled)

        return written
    memory = _inner(sink)
    if isinstance(memory, MemorySink):
        kept = memory
        return lambda: RecordCounts(0, len(kept.records) + len(kept.messages), 0)
    return lambda: RecordCounts(0, 0, 0)


def _inner(sink: CallSink) -> CallSink:
    while isinstance(sink, CountingSink):
        sink = sink.inner
    return sink


def _postgres(sink: CallSink) -> PostgresSink | None:
    inner = _inner(sink)
    return inner if isinstance(inner, PostgresSink) else None
