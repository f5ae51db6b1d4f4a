"""`switchboard calls export`: call records out, any number of them, in constant memory.

The rows come through a server-side cursor inside one read-only transaction
(a consistent snapshot), `FETCH_ROWS` at a time, oldest first (the index
``calls_started``), and each batch is written before the next is fetched: the
process holds one batch, whatever the period.  PostgreSQL formats the values
(times as ISO 8601 in the session's TimeZone, numbers as it stores them), so
Python only moves text:

- CSV: a header, then one line per call, the columns of ``calls`` in order;
  ``steps`` is the trace as JSON text in one field.
- JSON: NDJSON -- one JSON object per line, one line per call, ``steps`` a JSON
  array (so a reader takes a line at a time, too).
"""

from __future__ import annotations

import csv
import datetime as dt
from typing import Literal, TextIO

import asyncpg

from switchboard.storage.records import TABLES

ExportFormat = Literal["csv", "json"]
FETCH_ROWS = 500  # rows per FETCH: about a megabyte of text
COLUMNS: tuple[str, ...] = tuple(TABLES["calls"].names)

_TIMES = TABLES["calls"].times
# times through to_json: ISO 8601 with the offset ("2026-12-01T10:15:00+03:00")
_AS_TEXT = ", ".join(f"to_json({c}) #>> '{{}}'" if c in _TIMES else f"{c}::text" for c in COLUMNS)
_NAMES = ", ".join(COLUMNS)
_WHERE = "started_at >= $1 AND started_at < $2 ORDER BY started_at, call_id"
_SQL: dict[ExportFormat, str] = {
    "csv": f"SELECT {_AS_TEXT} FROM calls WHERE {_WHERE}",  # noqa: S608 - fixed text
    "json": f"SELECT row_to_json(c)::text FROM (SELECT {_NAMES} FROM calls WHERE {_WHERE}) c",  # noqa: S608 - fixed text
}


async def export_calls(
    conn: asyncpg.Connection,
    start: dt.datetime,
    end: dt.datetime,
    fmt: ExportFormat,
    out: TextIO,
    fetch_rows: int = FETCH_ROWS,
) -> int:
    """Write the calls that started in [start, end) to ``out``; how many."""
    count = 0
    csv_out = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if csv_out is not None:
        csv_out.writerow(COLUMNS)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(_SQL[fmt], start, end)
        while rows := await cursor.fetch(fetch_rows):
            if csv_out is not None:
                csv_out.writerows(rows)
            else:
                out.write("\n".join([row[0] for row in rows]))
                out.write("\n")
            count += len(rows)
    return count
