"""The contacts table: caller -> responsible employee, for ICM's `contacts` source.

Importable from CSV (``caller,employee`` per line, a header line allowed):
numbers are normalised by the config's numbering plan, employees checked
against the config, and the whole file goes in one transaction or not at all.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import asyncpg

from switchboard.config.company import Company
from switchboard.numbering import ANONYMOUS, UNKNOWN


@dataclass(frozen=True, slots=True)
class ContactsImport:
    imported: int
    problems: list[str]


def parse_contacts_csv(
    text: str, company: Company, filename: str
) -> ContactsImport | list[tuple[str, str]]:
    """The (caller, employee) rows of a CSV, or the problems (``FILE:LINE: ...``)."""
    rows: list[tuple[str, str]] = []
    problems: list[str] = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) < 2:
            problems.append(f"{filename}:{number}: expected `caller,employee`")
            continue
        raw, employee = fields[0].strip(), fields[1].strip()
        if number == 1 and raw.lower() in {"caller", "number", "phone"}:
            continue  # a header
        caller = company.normalize(raw)
        if caller in (ANONYMOUS, UNKNOWN) or not caller.isdigit():
            problems.append(f"{filename}:{number}: {raw!r} is not a phone number")
            continue
        if employee not in company.employees:
            problems.append(f"{filename}:{number}: unknown employee {employee!r}")
            continue
        rows.append((caller, employee))
    if problems:
        return ContactsImport(0, problems)
    return rows


async def import_contacts(
    conn: asyncpg.Connection, rows: list[tuple[str, str]], source: str
) -> int:
    """Upsert every row in one transaction; the number of rows written."""
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO contacts (caller, employee_id, source, updated_at)
               VALUES ($1, $2, $3, now())
               ON CONFLICT (caller) DO UPDATE
               SET employee_id = excluded.employee_id, source = excluded.source,
                   updated_at = excluded.updated_at""",
            [(caller, employee, source) for caller, employee in rows],
        )
    return len(rows)


async def lookup_contact(conn: asyncpg.Connection | asyncpg.Pool, caller: str) -> str | None:
    value = await conn.fetchval("SELECT employee_id FROM contacts WHERE caller = $1", caller)
    return None if value is None else str(value)
