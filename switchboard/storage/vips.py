"""Callers served first, kept in PostgreSQL and managed with `switchboard vip`.

One table (migration 0004), ``vips``: a normalised caller number, its queue
priority (-1000..1000, higher first, as the configuration's `vip:` list), a note,
when and by what it was added.  It stands beside the configuration's list and wins
over it for a number on both.

`set_vip` and `remove_vip` send ``NOTIFY switchboard_vips`` (delivered when the
transaction commits).  A running app follows the table with `VipList`: it reads
the whole table at start, again at each notification and after a reconnection (a
change made while it was away is not lost), into one dict its calls read when
they join a queue.  The table is small (a list people keep by hand), so a reload
is cheap.
"""

from __future__ import annotations

import asyncpg
import structlog

from switchboard.storage.listener import Listener

log = structlog.get_logger("switchboard.storage")

CHANNEL = "switchboard_vips"
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
NOTE_MAX = 200


async def stored_vips(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT caller, priority FROM vips")
    return {row["caller"]: int(row["priority"]) for row in rows}


async def vip_rows(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT caller, priority, note, added_at, added_by FROM vips "
            "ORDER BY priority DESC, caller"
        )
    )


async def set_vip(
    conn: asyncpg.Connection, caller: str, priority: int, note: str = "", by: str = "cli"
) -> None:
    """Add ``caller`` (normalised) with ``priority``, or change theirs."""
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority {priority}: use {PRIORITY_MIN}..{PRIORITY_MAX}")
    if len(note) > NOTE_MAX:
        raise ValueError(f"the note is {len(note)} characters: at most {NOTE_MAX}")
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO vips (caller, priority, note, added_by) VALUES ($1, $2, $3, $4)
               ON CONFLICT (caller) DO UPDATE
               SET priority = EXCLUDED.priority, note = EXCLUDED.note,
                   added_at = now(), added_by = EXCLUDED.added_by""",
            caller,
            priority,
            note,
            by,
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, caller)


async def remove_vip(conn: asyncpg.Connection, caller: str) -> bool:
    """False when ``caller`` was not on the list."""
    async with conn.transaction():
        gone = await conn.fetchval("DELETE FROM vips WHERE caller = $1 RETURNING 1", caller)
        if gone is not None:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, caller)
    return gone is not None


class VipList(Listener):
    """The ``vips`` table as a running app sees it: ``vips`` (caller -> priority), the
    dict given, kept equal to the table.  ``changed`` is notified at each reload
    (`wait_until`)."""

    channel = CHANNEL
    name = "vip listener"

    def __init__(self, vips: dict[str, int], **listener: float) -> None:
        super().__init__(**listener)
        self.vips = vips
        self.reloads = 0

    async def start(self, dsn: str) -> None:
        """LISTEN, then read the table (a change around the start is in it, or notified
        after), then follow it in the background.  Raises what connecting raises."""
        if self._task is not None:
            raise RuntimeError("the vip listener is already running")
        self._dsn = dsn
        conn = await self._listen()
        try:
            await self._reload(conn)
        except BaseException:
            await self._discard(conn)
            raise
        self._follow_in_background(conn, "vips")

    async def _resync(self, conn: asyncpg.Connection) -> None:
        await self._reload(conn)

    async def _handle(self, conn: asyncpg.Connection, payload: str) -> None:
        await self._reload(conn)

    async def _reload(self, conn: asyncpg.Connection) -> None:
        fresh = await stored_vips(conn)
        self.vips.clear()
        self.vips.update(fresh)
        self.reloads += 1
        log.info("vip list read", vips=len(fresh))
        await self._notify()

    def _reconnected_fields(self) -> dict[str, object]:
        return {"vips": len(self.vips)}
