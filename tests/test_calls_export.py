"""Issue 12: `switchboard calls export` -- every call record of a period out, CSV or NDJSON,
streamed in constant memory.  A real PostgreSQL; the command runs as a user runs it."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import structlog

from switchboard.cli import main
from switchboard.storage.calls_export import COLUMNS
from switchboard.storage.records import record_row
from tests.call_mix import IN_PERIOD, PERIOD, fill, records, write_rows
from tests.helpers import ROOT

HOSTILE_NAME = 'Ива"нов, =1+1\n\u202eemoji \U0001f600; DROP TABLE calls'


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """`main` points the logs at this test's captured stderr: not the next test's."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def mix_db(db: str) -> str:
    """The mix of tests/call_mix.py, its Tue 10:00 call from a caller with a hostile name."""
    asyncio.run(fill(db))

    async def rename() -> None:
        conn = await asyncpg.connect(db)
        try:
            await conn.execute(
                "UPDATE calls SET caller_name = $1 WHERE call_id = 'm01'", HOSTILE_NAME
            )
        finally:
            await conn.close()

    asyncio.run(rename())
    return db


def export(capsys: pytest.CaptureFixture[str], dsn: str, *args: str) -> tuple[str, str]:
    start, end = PERIOD
    done = main(["calls", "export", "--dsn", dsn, "--from", start, "--to", end, *args])
    out, err = capsys.readouterr()
    assert done == 0, err
    return out, err


async def stored(dsn: str) -> dict[str, dict[str, Any]]:
    """The period's rows as asyncpg reads them (jsonb as text)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT * FROM calls WHERE started_at >= '2026-12-01T00:00+03'
               AND started_at < '2026-12-03T00:00+03'"""
        )
    finally:
        await conn.close()
    return {row["call_id"]: dict(row) for row in rows}


def same_as_stored(exported: dict[str, Any], row: dict[str, Any]) -> None:
    """One exported call (NDJSON's types, or CSV's text) holds exactly the stored values."""
    for column in COLUMNS:
        value, want = exported[column], row[column]
        if column == "steps":
            assert (json.loads(value) if isinstance(value, str) else value) == json.loads(want)
        elif isinstance(want, dt.datetime):
            assert dt.datetime.fromisoformat(value) == want, column
            assert value.endswith("+03:00"), "in the company's timezone"
        elif want is None:
            assert value in (None, ""), column
        elif isinstance(want, float):
            assert float(value) == want, column
        else:
            assert str(value) == str(want), column


def test_every_call_of_the_period_comes_out_as_ndjson_one_object_a_line(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = export(capsys, mix_db, "--json")
    assert err.endswith(f"{IN_PERIOD} calls exported\n")
    lines = out.splitlines()
    assert len(lines) == IN_PERIOD
    calls = [json.loads(line) for line in lines]
    assert all(list(call) == list(COLUMNS) for call in calls)
    assert [c["started_at"] for c in calls] == sorted(c["started_at"] for c in calls)
    rows = asyncio.run(stored(mix_db))
    assert {c["call_id"] for c in calls} == set(rows)
    for call in calls:
        same_as_stored(call, rows[call["call_id"]])
    first = calls[[c["call_id"] for c in calls].index("m01")]
    assert first["caller_name"] == HOSTILE_NAME
    assert isinstance(first["steps"], list)
    assert first["steps"][0]["node"] == "hours"
    assert (first["wait_s"], first["talk_s"], first["line"]) == (2, 60, None)


def test_every_call_comes_out_as_csv_with_a_header_and_the_steps_as_json_text(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = export(capsys, mix_db)  # CSV is the default
    assert out == export(capsys, mix_db, "--csv")[0]
    reader = csv.reader(io.StringIO(out, newline=""))
    header = next(reader)
    assert tuple(header) == COLUMNS
    calls = [dict(zip(header, line, strict=True)) for line in reader]
    assert len(calls) == IN_PERIOD
    rows = asyncio.run(stored(mix_db))
    for call in calls:
        same_as_stored(call, rows[call["call_id"]])
    hostile = next(c for c in calls if c["call_id"] == "m01")
    assert hostile["caller_name"] == HOSTILE_NAME  # quotes, comma and newline kept in one field


def test_an_empty_period_is_a_header_only(mix_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    done = main(["calls", "export", "--dsn", mix_db, "--from", "2027-01-01", "--to", "2027-01-02"])
    out, err = capsys.readouterr()
    assert (done, out, err) == (0, ",".join(COLUMNS) + "\n", "0 calls exported\n")


def test_bad_input_is_one_line(
    mix_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHBOARD_DSN", raising=False)
    assert main(["calls", "export", "--from", "2026-12-01", "--to", "2026-12-02"]) == 2
    assert capsys.readouterr().err == (
        "switchboard calls export: give --dsn or set SWITCHBOARD_DSN\n"
    )
    assert main(["calls", "export", "--dsn", mix_db, "--from", "yesterday", "--to", "x"]) == 2
    assert capsys.readouterr().err == (
        "switchboard calls export: --from 'yesterday' is not a date: use 2026-12-01 "
        "(or 2026-12-01T08:00)\n"
    )


# --- constant memory --------------------------------------------------------------------

BIG_DAYS = 10
PER_DAY = 2000

# The real command in a process of its own, stdout to /dev/null; on stderr, after the
# command's own line, its peak RSS (VmHWM, kB) before and after the export.
CHILD = """
import sys
import asyncpg
from switchboard.cli import main

def hwm_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

before = hwm_kb()
code = main(sys.argv[1:])
print(code, before, hwm_kb(), file=sys.stderr)
"""


async def fill_big(dsn: str) -> None:
    """PER_DAY records a day for BIG_DAYS days from 2026-12-01, in COPYs of 5,000."""
    mix = records()[:-2]
    zone = mix[0].started_at.tzinfo
    first = dt.datetime(2026, 12, 1, tzinfo=zone)
    spacing = 86400 / PER_DAY
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM calls")
        rows = []
        for n in range(BIG_DAYS * PER_DAY):
            record = dataclasses.replace(
                mix[n % len(mix)],
                call_id=f"big-{n}",
                started_at=first + dt.timedelta(seconds=n * spacing),
            )
            rows.append(record_row(record, "test", 1))
            if len(rows) == 5000:
                await write_rows(conn, rows)
                rows = []
        await write_rows(conn, rows)
    finally:
        await conn.close()


def run_export(dsn: str, days: int, fmt: str) -> tuple[int, int]:
    """(calls exported, peak RSS growth in kB) of one export of ``days`` days."""
    end = dt.date(2026, 12, 1) + dt.timedelta(days=days)
    argv = ["calls", "export", "--dsn", dsn, "--from", "2026-12-01", "--to", end.isoformat()]
    with open(os.devnull, "w") as null:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *argv, f"--{fmt}"],
            stdout=null, stderr=subprocess.PIPE, text=True, check=False, cwd=ROOT, timeout=120,
        )  # fmt: skip
    *lines, last = done.stderr.strip().splitlines()
    code, before, after = (int(x) for x in last.split())
    assert code == 0, done.stderr
    return int(lines[-1].split()[0]), after - before


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_ten_times_the_rows_take_no_more_memory(db: str, fmt: str) -> None:
    asyncio.run(fill(db))  # the configuration, for the timezone
    asyncio.run(fill_big(db))
    small = run_export(db, 1, fmt)
    big = run_export(db, BIG_DAYS, fmt)
    assert (small[0], big[0]) == (PER_DAY, BIG_DAYS * PER_DAY)
    # 18,000 more rows of 1-2.5 KB: a leak of even 200 bytes a row would show as 3.6 MB
    assert big[1] - small[1] < 3 * 1024, f"peak RSS grew {small[1]} kB -> {big[1]} kB"


def test_a_reader_that_stops_early_ends_the_export_quietly(db: str) -> None:
    asyncio.run(fill(db))
    asyncio.run(fill_big(db))
    command = [
        sys.executable, "-m", "switchboard", "calls", "export", "--dsn", db, "--json",
        "--from", "2026-12-01", "--to", "2026-12-11",
    ]  # fmt: skip
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        json.loads(process.stdout.readline())
        process.stdout.close()  # as `| head -1` does
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 1
    assert "Traceback" not in err, err
    assert "Exception" not in err, err
