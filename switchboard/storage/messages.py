"""Voicemail messages, as `switchboard messages` lists them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Message:
    created_at: dt.datetime
    caller: str
    called: str
    mailbox: str | None
    length: float
    recording: str


async def recent_messages(conn: asyncpg.Connection, limit: int = 50) -> list[Message]:
    rows = await conn.fetch(
        """SELECT created_at, caller, called, mailbox, length_s, recording
           FROM messages ORDER BY created_at DESC LIMIT $1""",
        limit,
    )
    return [
        Message(
            r["created_at"],
            r["caller"],
            r["called"],
            r["mailbox"],
            float(r["length_s"]),
            r["recording"],
        )
        for r in rows
    ]
