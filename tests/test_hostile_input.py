"""Hostile input from callers and from files: stored or refused in one line, never lost.

A caller name is whatever the network sent: NUL and lone surrogates, which
PostgreSQL refuses, are stored as U+FFFD and everything else exactly as sent,
so no record is set aside for its caller's name.  A contacts CSV from a
spreadsheet (a byte order mark, latin-1, a runaway field, a number twice) is
imported or refused with ``FILE:LINE`` lines, and the count printed is the
rows the table holds.  A spill folder that cannot take files stops
`switchboard run` / `agi` at start with one line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from switchboard.calls import CallRecord
from switchboard.engine.actions import RequestCallback, SaveMessage
from switchboard.engine.trace import Outcome, Step
from switchboard.storage.records import RecordWriter, record_row
from switchboard.storage.sink import PostgresSink
from tests.helpers import EXAMPLES, ROOT

OFFICE = EXAMPLES / "office.yaml"
NUL_NAME = "Ivan\x00Petrov"
SURROGATE_NAME = "Anna \udcc3\udca9 Smirnova"  # bytes that were not UTF-8, decoded with escapes
# sent as they are: PostgreSQL takes all of these
AS_SENT = [
    'O\'Brien "the boss"; DROP TABLE calls; --',
    "\u202eevil\u202c \U0001f600 Иван \t\x07 bell",
    "line one\nline two\r\n",
    "x" * 10_000,
]


async def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def hostile_record(call_id: str, caller: str, caller_name: str) -> CallRecord:
    """A finished call whose caller ID and trace carry ``caller_name``."""
    steps = [
        Step(
            "office", "greet", "play", 0.0, exit="ring", t_end=1.0,
            details={"caller_name": caller_name, caller_name: "as a key"},
            events=[{"event": "play", "t": 0.5, "prompt": caller_name}],
        ),
        Step("office", "ring", "dial", 1.0, t_end=62.0),
    ]  # fmt: skip
    outcome = Outcome(
        result="connected", reason="agent hung up", duration=62.0, wait=2.0,
        agent="ivanov", department="sales", talk=60.0,
    )  # fmt: skip
    return CallRecord(
        call_id=call_id,
        channel=f"PJSIP/trunk-{caller_name}",
        channel_id="1764000000.1",
        called_raw=f"sip:{caller_name}@10.0.0.1",
        called="74951234567",
        caller=caller,
        caller_name=caller_name,
        line=None,
        scenario="office",
        started_at=dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC),
        steps=steps,
        outcome=outcome,
    )


# --- call records, messages, call-backs ---------------------------------------------------


@pytest.mark.asyncio
async def test_records_with_nul_or_lone_surrogates_are_stored_with_u_fffd_not_set_aside(
    db: str, sink: PostgresSink
) -> None:
    await sink.call_finished(hostile_record("nul", "7916\x001112233", NUL_NAME))
    await sink.call_finished(hostile_record("surrogate", "79161112234", SURROGATE_NAME))
    await sink.call_finished(hostile_record("pair", "79161112235", "smile \ud83d\ude00"))
    stats = await asyncio.wait_for(sink.writer.drained(), 30)
    assert (stats.written, stats.rejected, stats.dropped) == (3, 0, 0)
    assert not sink.writer.rejected_path.exists()
    columns = "call_id, caller, caller_name, called_raw, channel, steps"
    rows = {r["call_id"]: r for r in await fetch(db, f"SELECT {columns} FROM calls")}  # noqa: S608
    assert rows["nul"]["caller_name"] == "Ivan\ufffdPetrov"
    assert rows["nul"]["caller"] == "7916\ufffd1112233"
    assert rows["nul"]["called_raw"] == "sip:Ivan\ufffdPetrov@10.0.0.1"
    assert rows["surrogate"]["caller_name"] == "Anna \ufffd\ufffd Smirnova"
    assert rows["surrogate"]["channel"] == "PJSIP/trunk-Anna \ufffd\ufffd Smirnova"
    assert rows["pair"]["caller_name"] == "smile \U0001f600"  # a pair that makes one character
    steps = json.loads(rows["nul"]["steps"])
    assert steps[0]["details"] == {
        "caller_name": "Ivan\ufffdPetrov",
        "Ivan\ufffdPetrov": "as a key",
    }
    assert steps[0]["events"][0]["prompt"] == "Ivan\ufffdPetrov"
    # and the caller is found again by the number as it came in
    assert await sink.last_agent("7916\x001112233", 365 * 10) == "ivanov"


@pytest.mark.asyncio
async def test_any_other_caller_name_is_stored_exactly_as_sent(db: str, sink: PostgresSink) -> None:
    for n, name in enumerate(AS_SENT):
        await sink.call_finished(hostile_record(f"c{n}", f"7916000000{n}", name))
    stats = await asyncio.wait_for(sink.writer.drained(), 30)
    assert (stats.written, stats.rejected) == (len(AS_SENT), 0)
    rows = await fetch(db, "SELECT call_id, caller_name, steps FROM calls ORDER BY call_id")
    assert [r["caller_name"] for r in rows] == AS_SENT
    assert [json.loads(r["steps"])[0]["details"]["caller_name"] for r in rows] == AS_SENT


@pytest.mark.asyncio
async def test_voicemail_and_call_back_requests_keep_hostile_callers_too(
    db: str, sink: PostgresSink
) -> None:
    message = SaveMessage("rec-1", NUL_NAME, "7495\udc801234567", 10.0, 12.5, "sales\x00")
    await sink.save_message("c-1", message)
    stats = await asyncio.wait_for(sink.writer.drained(), 30)
    assert (stats.written, stats.rejected) == (1, 0)
    request = RequestCallback(
        "callback-1", "7916\x001112233", SURROGATE_NAME, "74951234567", "support", "office", "offer"
    )
    assert await sink.request_callback("c-2", request) is True
    assert await sink.request_callback("c-2", request) is True  # a retry: still one row
    messages = await fetch(db, "SELECT caller, called, mailbox FROM messages")
    assert [tuple(r) for r in messages] == [
        ("Ivan\ufffdPetrov", "7495\ufffd1234567", "sales\ufffd")
    ]
    callbacks = await fetch(db, "SELECT number, caller FROM callbacks")
    assert [tuple(r) for r in callbacks] == [("7916\ufffd1112233", "Anna \ufffd\ufffd Smirnova")]


@pytest.mark.asyncio
async def test_a_call_back_request_waits_for_a_busy_pool_rather_than_telling_the_caller_no(
    db: str, sink: PostgresSink
) -> None:
    """Finding 12: under 50 calls/s, 2 of 1,215 requests timed out at 2 s waiting for a
    connection (busy with lookups) and the caller heard "could not take your request"."""
    held = asyncio.Event()
    holding = 0

    async def slow_lookups() -> None:  # every connection busy for 3 s of real queries
        nonlocal holding
        async with sink.pool.acquire() as conn:
            holding += 1
            if holding == sink.pool.get_max_size():
                held.set()
            await conn.execute("SELECT pg_sleep(1.5)")
            await conn.execute("SELECT pg_sleep(1.5)")

    busy = [asyncio.create_task(slow_lookups()) for _ in range(sink.pool.get_max_size())]
    await asyncio.wait_for(held.wait(), 10)
    request = RequestCallback(
        "callback-1", "79161112233", "Anna", "74951234567", "support", "office", "offer"
    )
    assert await sink.request_callback("c-1", request) is True
    await asyncio.gather(*busy)
    callbacks = await fetch(db, "SELECT number FROM callbacks")
    assert [r["number"] for r in callbacks] == ["79161112233"]


@pytest.mark.asyncio
async def test_a_spill_file_holding_a_nul_from_before_is_written_not_set_aside(
    db: str, tmp_path: Path
) -> None:
    """Rows an earlier release spilled as they came (a NUL in the name) still go in."""
    row = record_row(hostile_record("old", "79161112233", "plain"), "test", None)
    row.update(caller_name=NUL_NAME, steps=json.dumps([{"node": "a", "name": NUL_NAME}]))
    spill = tmp_path / "spill.jsonl"
    spill.write_text(json.dumps(["calls", row], default=str) + "\n", encoding="utf-8")
    writer = RecordWriter(db, spill, flush_interval=0.05)
    await writer.start()
    stats = await asyncio.wait_for(writer.drained(), 30)
    await writer.stop()
    assert (stats.written, stats.rejected) == (1, 0)
    stored = await fetch(db, "SELECT caller_name, steps FROM calls")
    assert stored[0]["caller_name"] == "Ivan\ufffdPetrov"
    assert json.loads(stored[0]["steps"]) == [{"node": "a", "name": "Ivan\ufffdPetrov"}]


# --- contacts CSV ------------------------------------------------------------------------------


def switchboard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


CENTRE = str(EXAMPLES / "call-centre.yaml")


def contacts_import(path: Path, dsn: str) -> subprocess.CompletedProcess[str]:
    return switchboard("contacts", "import", str(path), "--config", CENTRE, "--dsn", dsn)


def contacts(dsn: str) -> dict[str, str]:
    rows = asyncio.run(fetch(dsn, "SELECT caller, employee_id FROM contacts"))
    return {r["caller"]: r["employee_id"] for r in rows}


def test_a_csv_saved_with_a_byte_order_mark_is_imported_header_and_all(
    db: str, tmp_path: Path
) -> None:
    csv = tmp_path / "excel.csv"
    csv.write_bytes(
        "caller,employee\r\n8 916 111-22-33,ivanov\r\n+7 903 000-00-01,petrov\r\n".encode(
            "utf-8-sig"
        )
    )
    done = contacts_import(csv, db)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip() == "2 contacts imported"
    assert contacts(db) == {"79161112233": "ivanov", "79030000001": "petrov"}


def test_a_latin_1_csv_is_one_line_naming_the_line_of_its_first_bad_byte(
    db: str, tmp_path: Path
) -> None:
    csv = tmp_path / "latin1.csv"
    csv.write_bytes("79161112233,ivanov\n79030000001,petrov\n# José's list\n".encode("latin-1"))
    done = contacts_import(csv, db)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{csv}:3: not UTF-8 text: byte 0xe9 at column 6; save the file as UTF-8"
    ]
    assert contacts(db) == {}


def test_an_oversized_field_is_a_file_line_error_and_nothing_is_imported(
    db: str, tmp_path: Path
) -> None:
    csv = tmp_path / "runaway.csv"
    csv.write_text(
        "79161112233,ivanov\n"
        f"79030000001,{'p' * 128 * 1024}x\n"  # past the csv module's own limit
        f'"{"7" * 5000}",petrov\n'
        "79030000002,petrov\n",
        encoding="utf-8",
    )
    done = contacts_import(csv, db)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        f"{csv}:2: not readable as CSV: field larger than field limit (131072)",
        f"{csv}:3: a field of 5,000 characters; at most 1,000 are taken",
    ]
    assert contacts(db) == {}


def test_a_number_twice_for_two_employees_names_both_lines_and_imports_nothing(
    db: str, tmp_path: Path
) -> None:
    csv = tmp_path / "twice.csv"
    csv.write_text(
        "caller,employee\n8 916 111-22-33,ivanov\n79030000001,petrov\n+7 916 111 22 33,petrov\n"
    )
    done = contacts_import(csv, db)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{csv}:4: number 79161112233 is already on line 2 for 'ivanov', here for 'petrov'"
    ]
    assert contacts(db) == {}


def test_a_number_repeated_for_the_same_employee_is_skipped_and_the_count_is_true(
    db: str, tmp_path: Path
) -> None:
    csv = tmp_path / "repeats.csv"
    csv.write_text(
        "8 916 111-22-33,ivanov\n79030000001,petrov\n+7 916 111 22 33,ivanov\n"
        '"79030000001",petrov\n'
    )
    done = contacts_import(csv, db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 contacts imported"
    assert done.stderr.splitlines() == [
        f"{csv}:3: warning: number 79161112233 is already on line 1 for 'ivanov': "
        "this line is skipped",
        f"{csv}:4: warning: number 79030000001 is already on line 2 for 'petrov': "
        "this line is skipped",
    ]
    assert contacts(db) == {"79161112233": "ivanov", "79030000001": "petrov"}


def test_a_problem_after_a_quoted_multi_line_field_names_the_line_its_record_starts_on(
    db: str, tmp_path: Path
) -> None:
    csv = tmp_path / "multiline.csv"
    csv.write_text('79161112233,"ivanov"\n"79030000001","pet\nrov"\n79030000002,nobody\n')
    done = contacts_import(csv, db)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{csv}:2: unknown employee 'pet\\nrov'",
        f"{csv}:4: unknown employee 'nobody'",
    ]


# --- the spill folder ------------------------------------------------------------------------


def with_spill_dir(tmp_path: Path) -> tuple[Path, str]:
    """The office with ``database.spill_dir`` under a regular file: no one can create it,
    root included (permissions would not stop root)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spill folder's parent should be\n")
    spill_dir = f"{blocker}/spill"
    config = tmp_path / "office.yaml"
    config.write_text(
        OFFICE.read_text(encoding="utf-8") + f"\ndatabase:\n  spill_dir: {spill_dir}\n"
    )
    return config, spill_dir


@pytest.mark.parametrize("command", ["run", "agi"])
def test_an_unusable_spill_dir_stops_the_start_in_one_line(
    command: str, db: str, tmp_path: Path
) -> None:
    config, spill_dir = with_spill_dir(tmp_path)
    env = {**os.environ, "SWITCHBOARD_DSN": db, "SWITCHBOARD_AGI_LISTEN": "127.0.0.1:0"}
    done = switchboard(command, str(config), env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"switchboard {command}: database.spill_dir {spill_dir!r} cannot take the call "
        "records' spill file: Not a directory"
    ]


def test_an_unusable_spill_dir_in_the_stored_version_stops_run_from_db_in_one_line(
    db: str, tmp_path: Path
) -> None:
    config, spill_dir = with_spill_dir(tmp_path)
    imported = switchboard("config", "import", str(config), "--dsn", db)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    # records go to SWITCHBOARD_DSN (or database.dsn): without it nothing would spill
    done = switchboard("run", "--from-db", "--dsn", db, env={**os.environ, "SWITCHBOARD_DSN": db})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1] == (
        f"switchboard run: database.spill_dir {spill_dir!r} cannot take the call "
        "records' spill file: Not a directory"
    )
    assert not any("Traceback" in line for line in done.stderr.splitlines())
