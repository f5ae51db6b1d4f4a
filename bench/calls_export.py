"""`switchboard calls export`: rows per second, and memory that does not grow with the rows.

Fills a throwaway PostgreSQL cluster (the one the tests use; or ``--dsn``, a
migrated database whose ``calls`` it adds to) with ``--rows`` call records of
simulated calls of examples/office.yaml and examples/call-centre.yaml (steps,
events, outcome: 1-2.5 KB of JSON each), spread evenly over ``--days`` days,
written with one binary COPY per 5,000 rows as the record writer makes them
(`record_row`).  Then it runs the real command, ``switchboard calls export``, in
a process of its own with its output to /dev/null, for one day (a tenth of the
rows) and for all of them, in each format, ``--repeat`` times, and prints per
run: rows, seconds (the export itself, after the imports), rows/s, and the
process's peak RSS growth over the export (VmHWM after minus VmHWM before).

    .venv/bin/python bench/calls_export.py [--rows 100000] [--days 10] [--repeat 3]

Target (issue 12): >= 20,000 rows/s, and the same peak RSS for 10,000 rows as
for 100,000 (a server-side cursor; one batch in memory at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import asyncpg

from switchboard.calls import CallRecord
from switchboard.config.load import load_company
from switchboard.simulate import AgentBehaviour, simulate
from switchboard.storage.migrate import migrate
from switchboard.storage.records import TABLES, record_row

ROOT = Path(__file__).resolve().parent.parent
COPY_ROWS = 5000
FIRST_DAY = dt.date(2026, 12, 1)

# The child: the real CLI, its stdout to /dev/null; on stderr one JSON line of what it took.
CHILD = """
import json, sys, time
import asyncpg  # imported before the baseline, as the command imports it anyway
from switchboard.cli import main

def hwm_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

before = hwm_kb()
began = time.perf_counter()
code = main(sys.argv[1:])
took = time.perf_counter() - began
print(json.dumps({"code": code, "seconds": took, "hwm_before_kb": before,
                  "hwm_after_kb": hwm_kb()}), file=sys.stderr)
"""


def call_mix() -> list[CallRecord]:
    """Finished calls of both examples, as the runtime hands them to the sink."""
    office = load_company(ROOT / "examples" / "office.yaml")
    centre = load_company(ROOT / "examples" / "call-centre.yaml")
    busy = {k: AgentBehaviour.parse("busy") for k in ("sidorova", "kuznetsova", "smirnov")}
    noanswer = {"ivanov": AgentBehaviour.parse("noanswer")}
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=office.tz)
    sims = [
        simulate(office, called="74951234567", caller="79161000001", at=at, dtmf="1"),
        simulate(office, called="74951234567", caller="79161000002", at=at, dtmf="2"),
        simulate(office, called="74951234567", caller="79161000003", at=at, agents=noanswer),
        simulate(office, called="74951234567", caller="79161000004", at=at.replace(hour=20)),
        simulate(office, called="74951234567", caller="79161000005", at=at, hangup_after=3),
        simulate(centre, caller="79035550000", at=at, agents=busy, hangup_after=50),
        simulate(centre, caller="79035550001", at=at, agents=busy, dtmf="w" * 30 + "1"),
        simulate(centre, caller="79161112233", at=at),
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


async def fill(dsn: str, rows: int, days: int) -> None:
    """``rows`` records, ``rows / days`` a day from FIRST_DAY, each with a call id of its own."""
    mix = call_mix()
    spec = TABLES["calls"]
    names = spec.names
    zone = mix[0].started_at.tzinfo
    midnight = dt.datetime.combine(FIRST_DAY, dt.time(), tzinfo=zone)
    spacing = days * 86400.0 / rows
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute("DELETE FROM calls WHERE instance = 'bench-export'")
        began = time.perf_counter()
        for first in range(0, rows, COPY_ROWS):
            batch = []
            for n in range(first, min(first + COPY_ROWS, rows)):
                record = dataclasses.replace(
                    mix[n % len(mix)],
                    call_id=f"export-{n}",
                    started_at=midnight + dt.timedelta(seconds=n * spacing),
                )
                row = record_row(record, "bench-export", 1)
                batch.append([row[c] for c in names])
            await conn.copy_records_to_table("calls", records=batch, columns=names)
        took = time.perf_counter() - began
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('calls'))")
    finally:
        await conn.close()
    print(f"filled: {rows:,} records over {days} days in {took:.1f} s (calls table {size})")


def export(dsn: str, days: int, fmt: str) -> dict[str, float]:
    """One run of the real command in a process of its own; what its child line says."""
    end = FIRST_DAY + dt.timedelta(days=days)
    argv = [
        "calls", "export", "--dsn", dsn, "--timezone", "Europe/Moscow",
        "--from", FIRST_DAY.isoformat(), "--to", end.isoformat(), f"--{fmt}",
    ]  # fmt: skip
    with open(os.devnull, "w") as null:
        done = subprocess.run(  # noqa: S603 - our own command, our own arguments
            [sys.executable, "-c", CHILD, *argv],
            stdout=null,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            cwd=ROOT,
        )
    lines = done.stderr.strip().splitlines()
    result: dict[str, float] = json.loads(lines[-1])
    if result["code"] != 0:
        raise SystemExit(f"export failed: {done.stderr}")
    result["rows"] = int(lines[-2].split()[0])  # "100000 calls exported"
    return result


def measure(dsn: str, days: int, repeat: int) -> None:
    for fmt in ("csv", "json"):
        for span in (max(1, days // 10), days):
            runs = [export(dsn, span, fmt) for _ in range(repeat)]
            rates = [r["rows"] / r["seconds"] for r in runs]
            growth = [(r["hwm_after_kb"] - r["hwm_before_kb"]) / 1024 for r in runs]
            rows = int(runs[0]["rows"])
            print(
                f"{fmt:4}  {rows:7,} rows: {statistics.median(r['seconds'] for r in runs):5.2f} s, "
                f"{statistics.median(rates):8,.0f} rows/s (median of {repeat}; "
                f"{min(rates):,.0f}-{max(rates):,.0f}), peak RSS +"
                f"{statistics.median(growth):.1f} MB (max +{max(growth):.1f} MB) "
                f"over {runs[0]['hwm_before_kb'] / 1024:.0f} MB at start"
            )


def database(dsn: str | None) -> AbstractContextManager[str]:
    """``--dsn``, else the tests' throwaway cluster."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres import given_or_throwaway  # noqa: PLC0415

    return given_or_throwaway(dsn)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", help="a migrated database instead of a throwaway cluster")
    args = parser.parse_args()
    with database(args.dsn) as dsn:
        asyncio.run(fill(dsn, args.rows, args.days))
        measure(dsn, args.days, args.repeat)


if __name__ == "__main__":
    main()
