"""`switchboard db migrate` on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import pytest

from tests.helpers import ROOT

CATALOG = """
SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
ORDER BY table_name, column_name
"""
INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY indexname
"""


def migrate(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "db", "migrate", "--dsn", dsn],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def catalog(dsn: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        columns = [tuple(r) for r in await conn.fetch(CATALOG)]
        indexes = [tuple(r) for r in await conn.fetch(INDEXES)]
        return columns, indexes
    finally:
        await conn.close()


def applied_after(version: int) -> str:
    """What `db migrate` says when it upgrades a database at ``version`` to this release's."""
    from switchboard.storage.migrate import migrations

    newer = [m.version for m in migrations() if m.version > version]
    assert newer == list(range(version + 1, version + 1 + len(newer)))  # no gaps
    return f"schema version {newer[-1]} ({', '.join(map(str, newer))})"


def test_migrate_creates_the_schema_then_does_nothing_the_second_time(fresh_db: str) -> None:
    first = migrate(fresh_db)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == applied_after(0)
    schema_after_first = asyncio.run(catalog(fresh_db))
    second = migrate(fresh_db)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == applied_after(0).split(" (")[0] + " (nothing to do)"
    assert asyncio.run(catalog(fresh_db)) == schema_after_first
    tables = {row[0] for row in schema_after_first[0]}
    assert {"calls", "callbacks", "config_versions", "contacts", "messages"} <= tables
    assert {"agent_states", "agent_changes"} <= tables
    assert ("agent_changes", "agent_changes_agent_at") in {row[:2] for row in schema_after_first[1]}


def test_schema_sql_is_what_the_migrations_build(fresh_db: str, pg_server: str) -> None:
    assert migrate(fresh_db).returncode == 0

    async def from_schema_sql() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        admin = await asyncpg.connect(pg_server)
        await admin.execute('DROP DATABASE IF EXISTS "schema_sql"')
        await admin.execute('CREATE DATABASE "schema_sql"')
        await admin.close()
        dsn = pg_server.rsplit("/", 1)[0] + "/schema_sql"
        conn = await asyncpg.connect(dsn)
        await conn.execute((ROOT / "schema.sql").read_text())
        await conn.close()
        result = await catalog(dsn)
        admin = await asyncpg.connect(pg_server)
        await admin.execute('DROP DATABASE "schema_sql" WITH (FORCE)')
        await admin.close()
        return result

    assert asyncio.run(from_schema_sql()) == asyncio.run(catalog(fresh_db))


def test_migrate_without_a_reachable_database_says_so() -> None:
    done = migrate("postgresql://nobody@127.0.0.1:9/none")
    assert done.returncode == 1
    assert "cannot connect" in done.stderr


def at_version(dsn: str, version: int, then: str = "") -> None:
    """A database built by the migrations up to ``version``, as an older release left it,
    with ``then`` (SQL: that release's data) run after."""
    from switchboard.storage.migrate import migrations

    async def build() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in migrations()[:version]:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            if then:
                await conn.execute(then)
        finally:
            await conn.close()

    asyncio.run(build())


def test_migrate_upgrades_an_older_database_to_the_current_version(fresh_db: str) -> None:
    at_version(fresh_db, 1)
    done = migrate(fresh_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == applied_after(1)


def test_migrate_keeps_the_newest_version_current_and_its_history(fresh_db: str) -> None:
    """Before version 8 the newest configuration was the current one: it still is."""
    at_version(
        fresh_db,
        7,
        """INSERT INTO config_versions (created_at, source, sha256, yaml) VALUES
               ('2026-11-01 10:00+03', 'v1.yaml', 'a', 'x'),
               ('2026-11-20 12:00+03', 'v2.yaml', 'b', 'y')""",
    )
    done = migrate(fresh_db)
    assert done.returncode == 0, done.stderr

    async def after() -> tuple[object, list[tuple[object, ...]]]:
        conn = await asyncpg.connect(fresh_db)
        try:
            current = await conn.fetchval("SELECT version FROM config_current")
            history = await conn.fetch(
                """SELECT config_version, to_char(activated_at AT TIME ZONE 'UTC', 'MM-DD HH24'),
                          activated_by
                   FROM config_activations ORDER BY id"""
            )
            return current, [tuple(r) for r in history]
        finally:
            await conn.close()

    assert asyncio.run(after()) == (2, [(1, "11-01 07", "import"), (2, "11-20 09", "import")])


def test_migrate_adds_the_agent_tables_to_a_version_2_database_keeping_its_data(
    fresh_db: str,
) -> None:
    async def after() -> tuple[int, str, object]:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute(
                """INSERT INTO agent_states (agent, state, reason, since, changed_by)
                   VALUES ('ivanov', 'paused', 'lunch', now(), 'cli')"""
            )
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    """INSERT INTO agent_states (agent, state, since)
                       VALUES ('petrov', 'ringing', now())"""
                )
            kept = await conn.fetchval("SELECT count(*) FROM contacts")
            state = await conn.fetchval("SELECT state FROM agent_states")
            name = await conn.fetchval("SELECT name FROM schema_migrations WHERE version = 3")
            return kept, state, name
        finally:
            await conn.close()

    at_version(
        fresh_db, 2, "INSERT INTO contacts (caller, employee_id) VALUES ('79161112233', 'ivanov')"
    )
    done = migrate(fresh_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == applied_after(2)
    assert asyncio.run(after()) == (1, "paused", "agents")
