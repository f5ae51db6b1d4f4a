"""The contacts table: caller -> responsible employee, for ICM's `contacts` source.

Importable from CSV (``caller,employee`` per line, a header line allowed):
numbers are normalised by the config's numbering plan, employees checked
against the config, and the whole file goes in one transaction or not at all.

What spreadsheets and CRMs hand over is taken as it comes: a UTF-8 byte order
mark (Excel's "CSV UTF-8") is skipped, and quoted fields may span lines (each
problem names the line its record starts on).  Each of these is one
``FILE:LINE: ...`` problem, and nothing is imported while there is one:

- a line that is not ``caller,employee``, a number that is not one, an
  employee the config does not have;
- a field longer than `MAX_FIELD` characters (numbers and ids are short: a
  longer one is a broken export), and a record the csv module cannot read;
- the same number (after normalising) on two lines for two employees: which
  one is meant is the file's author's call.

The same number for the same employee again is no conflict: the repeat is
skipped and reported as a warning, and the count of contacts imported is the
count of distinct numbers, the rows the table holds afterwards.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg

from switchboard.config.company import Company
from switchboard.numbering import ANONYMOUS, UNKNOWN
from switchboard.storage.pg_text import pg_text

MAX_FIELD = 1_000  # characters in one field
_BOM = "\ufeff"
_HEADER_WORDS = frozenset({"caller", "number", "phone"})


@dataclass(frozen=True, slots=True)
class ContactsCsv:
    """A contacts CSV read: the rows to import, or what stops the import."""

    rows: list[tuple[str, str]] = field(default_factory=list)  # (caller, employee), callers unique
    problems: list[str] = field(default_factory=list)  # ``FILE:LINE: ...``: nothing is imported
    repeats: list[str] = field(default_factory=list)  # ``FILE:LINE: warning: ...``: skipped lines


def parse_contacts_csv(text: str, company: Company, filename: str) -> ContactsCsv:
    """The (caller, employee) rows of a CSV, the problems and the repeated lines."""
    found = ContactsCsv()
    first: dict[str, tuple[str, int]] = {}  # caller -> (employee, line) where it first was
    for line, record in _records(text.removeprefix(_BOM)):
        if isinstance(record, str):
            found.problems.append(f"{filename}:{line}: {record}")
            continue
        if not record or all(not f.strip() for f in record):
            continue
        if line == 1 and record[0].strip().lower() in _HEADER_WORDS:
            continue  # a header
        contact = _contact(record, company)
        if isinstance(contact, str):
            found.problems.append(f"{filename}:{line}: {contact}")
            continue
        caller, employee = contact
        earlier = first.setdefault(caller, (employee, line))
        if earlier[1] == line:
            found.rows.append(contact)
        elif earlier[0] == employee:
            found.repeats.append(
                f"{filename}:{line}: warning: number {caller} is already on line {earlier[1]} "
                f"for {employee!r}: this line is skipped"
            )
        else:
            found.problems.append(
                f"{filename}:{line}: number {caller} is already on line {earlier[1]} "
                f"for {earlier[0]!r}, here for {employee!r}"
            )
    return found


def _records(text: str) -> Iterator[tuple[int, list[str] | str]]:
    """Each record with the line it starts on; a record csv cannot read is its error."""
    reader = csv.reader(io.StringIO(text))
    start = 1
    while True:
        try:
            record: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over the csv module's own limit (128 kB)
            record = f"not readable as CSV: {exc}"
        yield start, record
        start = reader.line_num + 1


def _contact(fields: list[str], company: Company) -> tuple[str, str] | str:
    """(caller, employee) of one record, or what is wrong with it."""
    longest = max((len(f) for f in fields), default=0)
    if longest > MAX_FIELD:
        return f"a field of {longest:,} characters; at most {MAX_FIELD:,} are taken"
    if len(fields) < 2:
        return "expected `caller,employee`"
    raw, employee = fields[0].strip(), fields[1].strip()
    caller = company.normalize(raw)
    if caller in (ANONYMOUS, UNKNOWN) or not (caller.isascii() and caller.isdigit()):
        return f"{raw!r} is not a phone number"
    if employee not in company.employees:
        return f"unknown employee {employee!r}"
    return caller, employee


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
            # the source names the file: a file name may hold what PostgreSQL refuses
            [(caller, employee, pg_text(source)) for caller, employee in rows],
        )
    return len(rows)


async def lookup_contact(conn: asyncpg.Connection | asyncpg.Pool, caller: str) -> str | None:
    value = await conn.fetchval("SELECT employee_id FROM contacts WHERE caller = $1", caller)
    return None if value is None else str(value)
