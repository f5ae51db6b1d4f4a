"""Call records written per second, and what the writer costs a call.

Runs against a throwaway PostgreSQL cluster (the one the tests use) unless
``--dsn`` names a database (it must be migrated; rows are added to ``calls``).
The records are those of simulated calls of examples/call-centre.yaml and
examples/office.yaml (steps, events, outcome: about 2 KB of JSON each).

1. Sustained: calls finish at ``--rate`` a second for ``--seconds``; each hands
   its record over the way `PostgresSink.call_finished` does (`record_row` +
   `RecordWriter.submit`).  Printed: records written per second, the most
   that waited in memory, the time `submit` and `record_row` take per call
   (p50/p99/max, microseconds), and how late a 1 ms timer on the same event
   loop fires (what the writer's own work adds to every call's events).
2. Flat out: ``--burst`` records submitted at once; how fast they are written.

    .venv/bin/python bench/records_throughput.py [--seconds 10] [--rate 2000] [--batch 500]

Target (issue 4): nothing on the call path waits for the database (submit in
microseconds); >= 2,000 records/s sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import gc
import statistics
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import asyncpg

from switchboard.calls import CallRecord
from switchboard.config.load import load_company
from switchboard.logs import configure_logging
from switchboard.simulate import AgentBehaviour, simulate
from switchboard.storage.migrate import migrate
from switchboard.storage.records import RecordWriter, record_row

ROOT = Path(__file__).resolve().parent.parent


def call_records() -> list[CallRecord]:
    """A mix of finished calls, as the runtime hands them to the sink."""
    centre = load_company(ROOT / "examples" / "call-centre.yaml")
    office = load_company(ROOT / "examples" / "office.yaml")
    busy = AgentBehaviour.parse("busy:95")
    noanswer = AgentBehaviour.parse("noanswer")
    all_busy = {"sidorova": busy, "kuznetsova": busy, "smirnov": busy}
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=centre.tz)
    sims = [
        simulate(centre, caller="79161112233", at=at),
        simulate(centre, caller="79161112233", at=at, agents={"ivanov": noanswer}),
        simulate(centre, caller="79035550000", at=at, agents=all_busy),
        simulate(centre, caller="79035550001", at=at, agents=all_busy, dtmf="w" * 50 + "1"),
        simulate(office, called="74951234567", at=at, dtmf="2"),
        simulate(office, called="74951234567", at=at.replace(hour=20)),
        simulate(office, called="74951234567", at=at, agents={"ivanov": noanswer}),
    ]
    return [
        CallRecord(
            call_id="",
            channel="PJSIP/trunk-00000001",
            channel_id="1764000000.1",
            called_raw=s.call.called_raw,
            called=s.call.called,
            caller=s.call.caller,
            line=s.call.line,
            scenario=s.scenario,
            started_at=s.started_at,
            steps=s.steps,
            outcome=s.outcome,
        )
        for s in sims
    ]


def percentiles(values_ns: list[int]) -> str:
    values = sorted(values_ns)
    if not values:
        return "-"
    p50 = values[len(values) // 2] / 1e3
    p99 = values[int(len(values) * 0.99)] / 1e3
    return f"p50 {p50:.1f} us, p99 {p99:.1f} us, max {values[-1] / 1e3:.0f} us"


async def loop_lag(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - began - 0.001)


def lateness(lags: list[float]) -> str:
    ms = sorted(x * 1e3 for x in lags)
    return (
        f"p50 {statistics.median(ms):.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.2f} ms, "
        f"max {ms[-1]:.1f} ms"
    )


async def baseline(seconds: float = 2.0) -> None:
    """How late the timer is with nothing else running: the machine's own noise."""
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lag(lags, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await probe
    print(f"idle loop: a 1 ms timer fires late by {lateness(lags)}")


async def sustained(dsn: str, spill: Path, rate: float, seconds: float, batch: int) -> None:
    records = call_records()
    sizes = [len(record_row(r, "bench", 1)["steps"]) for r in records]
    writer = RecordWriter(dsn, spill, batch_size=batch)
    await writer.start()
    async with asyncio.timeout(10):
        await writer.wait_for(lambda s: s.connected)
    submit_ns: list[int] = []
    row_ns: list[int] = []
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lag(lags, stop))
    most_waiting = 0
    n = 0
    began = time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        while n < int(elapsed * rate):
            record = dataclasses.replace(records[n % len(records)], call_id=f"s{n}")
            t0 = time.perf_counter_ns()
            row = record_row(record, "bench", 1)
            t1 = time.perf_counter_ns()
            writer.submit(row)
            t2 = time.perf_counter_ns()
            row_ns.append(t1 - t0)
            submit_ns.append(t2 - t1)
            n += 1
        most_waiting = max(most_waiting, writer.stats().in_memory)
        await asyncio.sleep(0.001)
    during = writer.stats()
    phase = time.perf_counter() - began
    async with asyncio.timeout(60):
        stats = await writer.drained()
    drain = time.perf_counter() - began - phase
    stop.set()
    await probe
    await writer.stop()
    print(
        f"sustained: {n} records offered at {rate:,.0f}/s for {phase:.1f} s "
        f"(steps JSON {min(sizes)}-{max(sizes)} bytes), batch {batch}"
    )
    print(
        f"  written {during.written / phase:,.0f} records/s while offered; all {stats.written} "
        f"written {drain * 1e3:.0f} ms after the last; at most {most_waiting} waiting in memory; "
        f"spilled {stats.spilled}, failures {stats.failures}"
    )
    print(f"  submit():     {percentiles(submit_ns)}")
    print(f"  record_row(): {percentiles(row_ns)}")
    print(f"  a 1 ms timer on the same loop fires late by {lateness(lags)}")


async def flat_out(dsn: str, spill: Path, count: int, batch: int) -> None:
    records = call_records()
    rows = [
        record_row(dataclasses.replace(records[n % len(records)], call_id=f"f{n}"), "bench", 1)
        for n in range(count)
    ]
    writer = RecordWriter(dsn, spill, max_memory=count + 1, batch_size=batch)
    await writer.start()
    async with asyncio.timeout(10):
        await writer.wait_for(lambda s: s.connected)
    began = time.perf_counter()
    for row in rows:
        writer.submit(row)
    async with asyncio.timeout(120):
        stats = await writer.drained()
    took = time.perf_counter() - began
    await writer.stop()
    print(
        f"flat out: {stats.written} records submitted at once, written in {took:.2f} s: "
        f"{stats.written / took:,.0f} records/s (batch {batch})"
    )


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute("DELETE FROM calls WHERE instance = 'bench'")
    finally:
        await conn.close()
    with tempfile.TemporaryDirectory() as folder:
        spill = Path(folder) / "spill.jsonl"
        await baseline()
        await sustained(dsn, spill, args.rate, args.seconds, args.batch)
        await flat_out(dsn, spill, args.burst, args.batch)


def database(dsn: str | None) -> AbstractContextManager[str]:
    """``--dsn``, else the tests' throwaway cluster."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres import given_or_throwaway  # noqa: PLC0415

    return given_or_throwaway(dsn)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="records offered per second")
    parser.add_argument("--burst", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dsn", help="a migrated database instead of a throwaway cluster")
    args = parser.parse_args()
    configure_logging(json_output=False, level="warning")
    gc.freeze()
    with database(args.dsn) as dsn:
        asyncio.run(run(dsn, args))


if __name__ == "__main__":
    main()
