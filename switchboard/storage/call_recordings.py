"""Conversation recordings (`record:`): the link from a call's record, and their removal
after `recording.keep_days` (`switchboard recordings prune`, and every hour by `run`
and `agi`).

A recording is a file Asterisk wrote, ``NAME.wav`` in the recordings folder
(`switchboard.storage.messages.recordings_dir`); the ``calls`` row names it.  Pruning
deletes the file, then clears the name (``recording_removed_at`` says when), so the
admin API stops offering it.  A file already gone is cleared all the same; a file that
cannot be deleted (permissions) keeps its link and is tried again next time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from switchboard.redaction import describe
from switchboard.storage.messages import recording_file

log = structlog.get_logger("switchboard.recordings")

PRUNE_EVERY = 3600.0  # seconds between two prunes of a running `run` or `agi`
BATCH = 500  # calls looked at per query


@dataclass(frozen=True, slots=True)
class Pruned:
    removed: int = 0  # files deleted
    missing: int = 0  # already gone: the link is cleared all the same
    failed: int = 0  # could not be deleted: kept, tried again next time


Connection = asyncpg.Connection | PoolConnectionProxy

_CALL_COLUMNS = (
    "call_id, started_at, ended_at, called, caller, caller_name, scenario, result, reason, "
    "wait_s, talk_s, duration_s, agent, department, recording, recording_removed_at"
)


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """A call's record as the admin API shows one (``GET /api/v1/calls/{id}``)."""

    call_id: str
    started_at: dt.datetime
    ended_at: dt.datetime
    called: str
    caller: str
    caller_name: str
    scenario: str
    result: str
    reason: str
    wait: float
    talk: float | None
    duration: float
    agent: str | None
    department: str | None
    recording: str | None
    recording_removed_at: dt.datetime | None

    def as_json(self, recording_url: str) -> dict[str, object]:
        """``recording_url``: where its recording is served (given only when it has one)."""
        return {
            "call_id": self.call_id,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "called": self.called,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "scenario": self.scenario,
            "result": self.result,
            "reason": self.reason,
            "wait": round(self.wait, 1),
            "talk": None if self.talk is None else round(self.talk, 1),
            "duration": round(self.duration, 1),
            "agent": self.agent,
            "department": self.department,
            "recording": self.recording,
            "recording_url": recording_url if self.recording is not None else None,
            "recording_removed_at": (
                None if self.recording_removed_at is None else self.recording_removed_at.isoformat()
            ),
        }


async def finished_call(conn: Connection, call_id: str) -> FinishedCall | None:
    """A finished call's record; None: no such call (or not written yet)."""
    row = await conn.fetchrow(
        f"SELECT {_CALL_COLUMNS} FROM calls WHERE call_id = $1",  # noqa: S608 - fixed text
        call_id,
    )
    if row is None:
        return None
    return FinishedCall(
        row["call_id"],
        row["started_at"],
        row["ended_at"],
        row["called"],
        row["caller"],
        row["caller_name"],
        row["scenario"],
        row["result"],
        row["reason"],
        float(row["wait_s"]),
        None if row["talk_s"] is None else float(row["talk_s"]),
        float(row["duration_s"]),
        row["agent"],
        row["department"],
        row["recording"],
        row["recording_removed_at"],
    )


async def prune(
    conn: Connection,
    folder: Path,
    keep_days: int,
    now: dt.datetime | None = None,
    *,
    dry_run: bool = False,
) -> Pruned:
    """Delete the recordings of calls that ended more than ``keep_days`` days before
    ``now`` (0: none is ever deleted) and clear their links.  ``dry_run``: count only."""
    if keep_days <= 0:
        return Pruned()
    before = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
    removed = missing = failed = 0
    kept: list[str] = []  # calls whose link stays (not removed, or a dry run): not again
    while True:
        rows = await conn.fetch(
            "SELECT call_id, recording FROM calls "
            "WHERE recording IS NOT NULL AND ended_at < $1 AND NOT call_id = ANY($2::text[]) "
            "ORDER BY ended_at LIMIT $3",
            before,
            kept,
            BATCH,
        )
        if not rows:
            break
        cleared: list[str] = []
        for row in rows:
            path = recording_file(folder, row["recording"])  # None: not a plain name
            if dry_run:
                kept.append(row["call_id"])
                if path is not None and await asyncio.to_thread(path.exists):
                    removed += 1
                else:
                    missing += 1
                continue
            gone = await _remove(path, row["call_id"])
            if gone is None:
                failed += 1
                kept.append(row["call_id"])
                continue
            if gone:
                removed += 1
            else:
                missing += 1
            cleared.append(row["call_id"])
        if cleared:
            await conn.execute(
                "UPDATE calls SET recording = NULL, recording_removed_at = now() "
                "WHERE call_id = ANY($1::text[])",
                cleared,
            )
    return Pruned(removed, missing, failed)


async def _remove(path: Path | None, call_id: str) -> bool | None:
    """Delete a recording's file: True, or False when it was not there (or ``path`` is
    None: nothing of ours to delete); None when it could not be deleted (logged)."""
    if path is None:
        return False
    try:
        await asyncio.to_thread(path.unlink)
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning(
            "recording not removed: kept, tried again at the next prune",
            call_id=call_id,
            path=str(path),
            error=describe(exc),
        )
        return None
    return True
