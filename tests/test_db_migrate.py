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


def test_migrate_creates_the_schema_then_does_nothing_the_second_time(fresh_db: str) -> None:
    first = migrate(fresh_db)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "schema version 7 (1, 2, 3, 4, 5, 6, 7)"
    schema_after_first = asyncio.run(catalog(fresh_db))
    second = migrate(fresh_db)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "schema version 7 (nothing to do)"
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


def test_migrate_upgrades_an_older_database_to_the_current_version(fresh_db: str) -> None:
    from switchboard.storage.migrate import migrations

    async def at_version_1() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            first = migrations()[0]
            await conn.execute(first.sql)
            await conn.execute("INSERT INTO schema_migrations VALUES (1, $1)", first.name)
        finally:
            await conn.close()

    asyncio.run(at_version_1())
    done = migrate(fresh_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "schema version 7 (2, 3, 4, 5, 6, 7)"


def test_migrate_adds_the_agent_tables_to_a_version_2_database_keeping_its_data(
    fresh_db: str,
) -> None:
    from switchboard.storage.migrate import migrations

    async def at_version_2() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in migrations()[:2]:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            await conn.execute(
                "INSERT INTO contacts (caller, employee_id) VALUES ('79161112233', 'ivanov')"
            )
        finally:
            await conn.close()

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

    asyncio.run(at_version_2())
    done = migrate(fresh_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "schema version 7 (3, 4, 5, 6, 7)"
    assert asyncio.run(after()) == (1, "paused", "agents")
