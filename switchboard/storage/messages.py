"""Voicemail messages, as `switchboard messages` lists them (and the admin API)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncpg
from asyncpg.pool import PoolConnectionProxy

_COLUMNS = (
    "id, created_at, caller, called, mailbox, length_s, recording, status, status_by, status_at"
)
STATUSES = ("new", "heard", "handled")
MessageStatus = Literal["new", "heard", "handled"]
RECORDINGS_DIR = "/var/spool/asterisk/recording"  # Asterisk's; SWITCHBOARD_RECORDINGS_DIR wins


def recordings_dir(given: str | None = None) -> Path:
    """Where Asterisk's recordings are read here: ``given``, else
    ``SWITCHBOARD_RECORDINGS_DIR``, else Asterisk's own folder."""
    return Path(given or os.environ.get("SWITCHBOARD_RECORDINGS_DIR") or RECORDINGS_DIR)


def recording_file(folder: Path, name: str) -> Path | None:
    """Where a message's WAV file should be: None unless ``name`` is a plain name of a
    file in ``folder`` (no path of its own, nothing hidden)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    return folder / f"{name}.wav"


@dataclass(frozen=True, slots=True)
class Message:
    created_at: dt.datetime
    caller: str
    called: str
    mailbox: str | None
    length: float
    recording: str  # the Asterisk recording's name (its file is NAME.wav)
    id: int = 0
    status: MessageStatus = "new"
    status_by: str | None = None
    status_at: dt.datetime | None = None


def _message(r: asyncpg.Record) -> Message:
    return Message(
        r["created_at"],
        r["caller"],
        r["called"],
        r["mailbox"],
        float(r["length_s"]),
        r["recording"],
        r["id"],
        r["status"],
        r["status_by"],
        r["status_at"],
    )


async def recent_messages(
    conn: asyncpg.Connection | PoolConnectionProxy, limit: int = 50, *, before: int | None = None
) -> list[Message]:
    """The newest messages first; with ``before``, those older than message ``before``
    in that order (the next page: none when it is gone)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM messages "  # noqa: S608 - fixed text
        "WHERE $2::bigint IS NULL OR (created_at, id) < "
        "(SELECT m.created_at, m.id FROM messages m WHERE m.id = $2) "
        "ORDER BY created_at DESC, id DESC LIMIT $1",
        limit,
        before,
    )
    return [_message(r) for r in rows]


async def message_by_id(
    conn: asyncpg.Connection | PoolConnectionProxy, message_id: int
) -> Message | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM messages WHERE id = $1", message_id)  # noqa: S608 - fixed text
    return None if row is None else _message(row)


async def set_status(
    conn: asyncpg.Connection | PoolConnectionProxy,
    message_id: int,
    status: MessageStatus,
    by: str,
) -> Message | None:
    """Mark message ``message_id`` new, heard or handled, by whom; None: no such message."""
    row = await conn.fetchrow(
        f"UPDATE messages SET status = $2, status_by = $3, status_at = now() "  # noqa: S608 - fixed text
        f"WHERE id = $1 RETURNING {_COLUMNS}",
        message_id,
        status,
        by,
    )
    return None if row is None else _message(row)
