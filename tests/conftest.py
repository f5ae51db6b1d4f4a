"""Shared fixtures: the session's PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
import pytest_asyncio

from switchboard.storage.migrate import migrate
from tests.postgres import Server, throwaway_cluster

# The `switchboard run` and `agi` processes tests start serve their admin servers on any
# free port: several run at once, and a developer's own instance may hold the defaults.
os.environ.setdefault("SWITCHBOARD_ADMIN_LISTEN", "127.0.0.1:0")
os.environ.setdefault("SWITCHBOARD_ADMIN_AGI_LISTEN", "127.0.0.1:0")

if TYPE_CHECKING:
    from switchboard.storage.sink import PostgresSink


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of a real PostgreSQL server: a throwaway cluster unless one is given."""
    given = os.environ.get("SWITCHBOARD_TEST_DSN")
    if given:
        yield given
        return
    with throwaway_cluster() as dsn:
        yield dsn


@pytest.fixture
def fresh_db(pg_server: str) -> Iterator[str]:
    """An empty database of its own for one test; dropped afterwards."""
    import asyncio
    import uuid

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg_server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_server.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db(fresh_db: str) -> str:
    """A database of its own with the current schema, as `switchboard db migrate` leaves it."""
    import asyncio

    import asyncpg

    from switchboard.storage.migrate import migrate

    async def build() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return fresh_db


@pytest_asyncio.fixture
async def sink(db: str, tmp_path: Path) -> AsyncIterator[PostgresSink]:
    """The PostgreSQL sink `switchboard run` and `agi` write through, on `db`."""
    from switchboard.storage.sink import open_sink

    opened = await open_sink(db, tmp_path / "spill.jsonl", "test", flush_interval=0.05)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def own_server() -> Iterator[Server]:
    """A throwaway cluster of this test's own, migrated, that it can stop and start."""

    async def describe(dsn: str) -> Server:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            settings = [
                await conn.fetchval(f"SHOW {name}")
                for name in ("data_directory", "port", "unix_socket_directories")
            ]
        finally:
            await conn.close()
        return Server(dsn, *settings)

    with throwaway_cluster() as dsn:
        yield asyncio.run(describe(dsn))
