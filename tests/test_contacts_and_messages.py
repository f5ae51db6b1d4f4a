"""`switchboard contacts import` and `switchboard messages` on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path

import asyncpg

from switchboard.storage.contacts import lookup_contact
from switchboard.storage.migrate import migrate
from tests.helpers import EXAMPLES, ROOT

CENTRE = str(EXAMPLES / "call-centre.yaml")


def switchboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def migrated(dsn: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.close()

    asyncio.run(run())


def test_contacts_import_normalises_numbers_and_upserts(fresh_db: str, tmp_path: Path) -> None:
    migrated(fresh_db)
    first = tmp_path / "crm.csv"
    first.write_text("caller,employee\n8 (916) 111-22-33,ivanov\n+7 903 000-00-01,petrov\n")
    done = switchboard("contacts", "import", str(first), "--config", CENTRE, "--dsn", fresh_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 contacts imported"
    again = tmp_path / "again.csv"
    again.write_text("79161112233,smirnov\n")
    assert (
        switchboard(
            "contacts", "import", str(again), "--config", CENTRE, "--dsn", fresh_db
        ).returncode
        == 0
    )

    async def read() -> tuple[str | None, str | None]:
        conn = await asyncpg.connect(fresh_db)
        try:
            return await lookup_contact(conn, "79161112233"), await lookup_contact(
                conn, "79030000001"
            )
        finally:
            await conn.close()

    assert asyncio.run(read()) == ("smirnov", "petrov")


def test_a_csv_with_mistakes_imports_nothing_and_says_where(fresh_db: str, tmp_path: Path) -> None:
    migrated(fresh_db)
    bad = tmp_path / "bad.csv"
    bad.write_text("79161112233,ivanov\nnot a number,petrov\n79160000000,nobody\n")
    done = switchboard("contacts", "import", str(bad), "--config", CENTRE, "--dsn", fresh_db)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{bad}:2: 'not a number' is not a phone number",
        f"{bad}:3: unknown employee 'nobody'",
    ]

    async def count() -> int:
        conn = await asyncpg.connect(fresh_db)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM contacts"))
        finally:
            await conn.close()

    assert asyncio.run(count()) == 0


def test_messages_lists_the_newest_first(fresh_db: str) -> None:
    migrated(fresh_db)

    async def insert() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            for i, caller in enumerate(["79160000001", "79160000002"]):
                await conn.execute(
                    """INSERT INTO messages (call_id, recording, caller, called, mailbox,
                       created_at, length_s) VALUES ($1, $2, $3, '74951234567', 'sales', $4, $5)""",
                    f"c{i}", f"rec{i}", caller,
                    dt.datetime(2026, 12, 1, 20, i, tzinfo=dt.UTC), 10.0 + i,
                )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(insert())
    done = switchboard("messages", "--dsn", fresh_db)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[3] for line in lines] == ["79160000002", "79160000001"]
    assert "11.0s" in lines[0]
    first = lines[1].split()[0]
    assert lines[1].split()[-2] == "new"  # nobody has dealt with it yet

    marked = switchboard("messages", "mark", first, "handled", "--by", "anna", "--dsn", fresh_db)
    assert (marked.returncode, marked.stdout) == (0, f"message {first} handled (by anna)\n")
    lines = switchboard("messages", "--dsn", fresh_db).stdout.splitlines()
    assert [line.split()[-2] for line in lines] == ["new", "handled"]
    missing = switchboard("messages", "mark", "999", "heard", "--dsn", fresh_db)
    assert (missing.returncode, missing.stderr) == (
        1,
        "switchboard messages mark: no message 999\n",
    )


def test_messages_without_a_database_is_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "switchboard", "messages"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "SWITCHBOARD_DSN" in done.stderr
