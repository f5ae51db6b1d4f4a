"""Promised call-backs in PostgreSQL: store a request, claim due ones, record how each went.

Every statement is one parameterised SQL statement, so each is atomic on its
own; times come from the database's ``now()`` unless a caller passes one, so
instances with skewed clocks still agree on what is due and what is stale.

A claim is a lease.  `claim_due` takes due rows with ``FOR UPDATE SKIP
LOCKED`` and marks them ``in_progress`` (``claimed_by``, ``claimed_at``,
``attempts + 1``) in the same statement: two instances claiming at once get
disjoint rows and never wait for each other.  The holder renews the lease
(`renew`) while it works; `release_stale` hands rows whose lease ran out (the
instance died) back to ``pending``.

Every later write is fenced by the claim: ``id``, ``claimed_by`` and
``attempts`` must still be what the claim returned, and ``status`` still
``in_progress``; otherwise it changes nothing and raises `ClaimLost`.  The
customer is dialled only after `mark_calling_customer` — a fenced write —
succeeded: a customer is dialled at most once per claim, by its holder.

Call-backs are made at least once.  A claim whose instance died while the
customer was being dialled (``lost while calling the customer``) is handed
back like any other, after the first back-off rather than at once: the
customer's phone may have rung, and they were promised a conversation, not a
ring.  It is the conversation that is idempotent: the holder writes ``done``
as soon as the two are bridged, and a holder that comes back after its claim
was released may still settle it while nobody has claimed it again.  The
one case that calls a customer twice is an instance that connected the two,
could not write ``done`` (its database away) and died before it could.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from switchboard.engine.actions import RequestCallback
from switchboard.storage.pg_text import pg_text

Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy

# last_result while the customer is being dialled, and what a lost claim leaves
CALLING_CUSTOMER = "calling customer"
LOST = "lost"
LOST_CALLING_CUSTOMER = "lost while calling the customer"


class ClaimLost(Exception):
    """The job is no longer ours: its lease ran out and it was released (or re-claimed)."""

    error_id = "callbacks.claim_lost"

    def __init__(self, job: CallbackJob) -> None:
        super().__init__(
            f"call-back {job.id} (attempt {job.attempts}) is no longer held by {job.claimed_by}"
        )
        self.job = job


class RequestConflict(Exception):
    """A request id already stored for another call or number: never overwritten."""

    error_id = "callbacks.request_conflict"


@dataclass(frozen=True, slots=True)
class CallbackJob:
    """One claimed call-back; ``attempts`` counts this attempt, ``claimed_at`` is its start."""

    id: int
    request_id: str
    call_id: str
    number: str
    caller: str
    department: str | None
    scenario: str
    node: str
    created_at: dt.datetime
    due_at: dt.datetime
    attempts: int
    claimed_by: str
    claimed_at: dt.datetime
    last_result: str | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """A row of ``callback_attempts``.  The durations are the worker's (`AttemptTimes`);
    None when not recorded (an attempt its instance died in, one recorded before)."""

    callback_id: int
    instance: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    agent: str | None
    result: str | None
    wait_s: float | None = None
    talk_s: float | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class AttemptTimes:
    """How long an attempt took, in seconds: ``wait`` from the first dial until the
    employee and the customer met (the whole attempt when they never did), ``talk``
    from then on (None: they never met, or the conversation is still on), ``duration``
    from the first dial to the end (None: not over yet).  All None: nobody was dialled."""

    wait: float | None = None
    talk: float | None = None
    duration: float | None = None


def _job(row: asyncpg.Record) -> CallbackJob:
    return CallbackJob(
        id=row["id"],
        request_id=row["request_id"],
        call_id=row["call_id"],
        number=row["number"],
        caller=row["caller"],
        department=row["department"],
        scenario=row["scenario"],
        node=row["node"],
        created_at=row["created_at"],
        due_at=row["due_at"],
        attempts=row["attempts"],
        claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"],
        last_result=row["last_result"],
    )


# --- requests -------------------------------------------------------------------------------


async def insert_request(
    conn: Conn,
    *,
    request_id: str,
    call_id: str,
    number: str,
    caller: str = "",
    department: str | None = None,
    scenario: str = "",
    node: str = "",
    due_at: dt.datetime | None = None,
) -> int:
    """Store a call-back request (committed when this returns); its id.

    Writing the same request again (a retry) returns the stored row's id and
    changes nothing; the same ``request_id`` for another call or number
    raises `RequestConflict`.  The number and caller come from the caller:
    NUL and lone surrogates are stored as U+FFFD (`pg_text`), the rest as sent.
    """
    request_id, call_id, number, caller, scenario, node = (
        pg_text(text) for text in (request_id, call_id, number, caller, scenario, node)
    )
    department = None if department is None else pg_text(department)
    row = await conn.fetchrow(
        """INSERT INTO callbacks (request_id, call_id, number, caller, department, scenario,
                                  node, due_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8::timestamptz, now()))
           ON CONFLICT (request_id) DO NOTHING
           RETURNING id""",
        request_id,
        call_id,
        number,
        caller,
        department,
        scenario,
        node,
        due_at,
    )
    if row is not None:
        return int(row["id"])
    stored = await conn.fetchrow(
        "SELECT id, call_id, number FROM callbacks WHERE request_id = $1", request_id
    )
    assert stored is not None  # the conflict was on this very key; rows are never deleted here
    if (stored["call_id"], stored["number"]) != (call_id, number):
        raise RequestConflict(
            f"request {request_id!r} is already stored for call {stored['call_id']!r}"
        )
    return int(stored["id"])


async def store_request(
    conn: Conn, call_id: str, request: RequestCallback, due_at: dt.datetime | None = None
) -> int:
    """`insert_request` for the engine's `RequestCallback` of call ``call_id``."""
    return await insert_request(
        conn,
        request_id=f"{call_id}/{request.request_id}",
        call_id=call_id,
        number=request.number,
        caller=request.caller,
        department=request.department,
        scenario=request.scenario,
        node=request.node,
        due_at=due_at,
    )


async def count_pending(conn: Conn) -> int:
    """Call-backs waiting to be made (``pending``: due or not yet), in every instance."""
    found = await conn.fetchval("SELECT count(*) FROM callbacks WHERE status = 'pending'")
    return int(found or 0)


# --- claiming ---------------------------------------------------------------------------------


async def postpone_due(conn: Conn, departments: Sequence[str], delay: float) -> int:
    """Due pending call-backs of ``departments`` (closed now) move ``delay`` seconds on,
    their attempts untouched; how many moved."""
    if not departments:
        return 0
    moved = await conn.fetch(
        """UPDATE callbacks SET due_at = now() + make_interval(secs => $2)
           WHERE status = 'pending' AND due_at <= now() AND department = ANY($1::text[])
           RETURNING id""",
        list(departments),
        delay,
    )
    return len(moved)


async def claim_due(
    conn: Conn,
    instance: str,
    limit: int,
    now: dt.datetime | None = None,
    *,
    skip_departments: Sequence[str] = (),
) -> list[CallbackJob]:
    """Claim up to ``limit`` due pending call-backs for ``instance``, oldest due first.

    Rows another transaction has locked are skipped, not waited for; so are
    the departments in ``skip_departments`` (closed now).
    """
    if limit <= 0:
        return []
    rows = await conn.fetch(
        """WITH due AS (
                SELECT id FROM callbacks
                WHERE status = 'pending' AND due_at <= coalesce($3::timestamptz, now())
                  AND (department IS NULL OR department <> ALL($4::text[]))
                ORDER BY due_at, id
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            UPDATE callbacks AS c
            SET status = 'in_progress', claimed_by = $1, claimed_at = now(),
                attempts = c.attempts + 1
            FROM due WHERE c.id = due.id
            RETURNING c.*""",
        instance,
        limit,
        now,
        list(skip_departments),
    )
    return sorted((_job(r) for r in rows), key=lambda j: (j.due_at, j.id))


async def claim_request(conn: Conn, instance: str, request_id: str) -> CallbackJob | None:
    """Claim the pending call-back ``request_id`` for ``instance`` now, whenever it is
    due (its place in a queue came up); None when it is not pending (made, being
    made, or locked by another)."""
    row = await conn.fetchrow(
        """WITH it AS (
                SELECT id FROM callbacks WHERE request_id = $2 AND status = 'pending'
                FOR UPDATE SKIP LOCKED
            )
            UPDATE callbacks AS c
            SET status = 'in_progress', claimed_by = $1, claimed_at = now(),
                attempts = c.attempts + 1
            FROM it WHERE c.id = it.id
            RETURNING c.*""",
        instance,
        request_id,
    )
    return _job(row) if row is not None else None


async def renew(conn: Conn, jobs: Sequence[CallbackJob]) -> set[int]:
    """Extend the lease of ``jobs``; the ids still held (a missing one was lost)."""
    if not jobs:
        return set()
    rows = await conn.fetch(
        """UPDATE callbacks AS c SET claimed_at = now()
           FROM unnest($1::bigint[], $2::int[], $3::text[]) AS held(id, attempts, claimed_by)
           WHERE c.id = held.id AND c.attempts = held.attempts
             AND c.claimed_by = held.claimed_by AND c.status = 'in_progress'
           RETURNING c.id""",
        [j.id for j in jobs],
        [j.attempts for j in jobs],
        [j.claimed_by for j in jobs],
    )
    return {int(r["id"]) for r in rows}


async def mark_calling_customer(conn: Conn, job: CallbackJob) -> None:
    """The gate before the customer is dialled: still ours?  Then say so, renewing the lease.

    Raises `ClaimLost` when the job was released meanwhile: the caller must
    not dial.  Once this succeeded `release_stale` never retries the job.
    """
    row = await conn.fetchrow(
        """UPDATE callbacks SET last_result = $4, claimed_at = now()
           WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'in_progress'
           RETURNING id""",
        job.id,
        job.claimed_by,
        job.attempts,
        CALLING_CUSTOMER,
    )
    if row is None:
        raise ClaimLost(job)


async def release_stale(
    conn: Conn, older_than: float, max_attempts: int, customer_retry: float = 0.0
) -> list[CallbackJob]:
    """Claims not renewed for ``older_than`` seconds (their instance died) end as ``lost``.

    The lost attempt is recorded (its ``started_at`` is the claim's last
    renewal: the table keeps no other trace of when it began) and the job goes
    back to ``pending`` (``failed`` if it has had ``max_attempts``): due now,
    or in ``customer_retry`` seconds when its customer was being dialled
    (`LOST_CALLING_CUSTOMER`: their phone may have just rung).  Returns the jobs
    as released.
    """
    rows = await conn.fetch(
        """WITH stale AS (
                SELECT id FROM callbacks
                WHERE status = 'in_progress'
                  AND claimed_at < now() - make_interval(secs => $1)
                ORDER BY claimed_at
                FOR UPDATE SKIP LOCKED
            ), released AS (
                UPDATE callbacks AS c
                SET status = CASE WHEN c.attempts >= $2 THEN 'failed' ELSE 'pending' END,
                    last_result = CASE WHEN c.last_result = $3 THEN $4 ELSE $5 END,
                    due_at = CASE WHEN c.last_result = $3
                                  THEN now() + make_interval(secs => $6) ELSE now() END
                FROM stale WHERE c.id = stale.id
                RETURNING c.*
            ), recorded AS (
                INSERT INTO callback_attempts (callback_id, instance, started_at, ended_at, result)
                SELECT id, coalesce(claimed_by, ''), claimed_at, now(), last_result FROM released
            )
            SELECT * FROM released""",
        older_than,
        max_attempts,
        CALLING_CUSTOMER,
        LOST_CALLING_CUSTOMER,
        LOST,
        customer_retry,
    )
    return [_job(r) for r in rows]


# --- outcomes -------------------------------------------------------------------------------


async def record_attempt(
    conn: Conn,
    callback_id: int,
    instance: str,
    started_at: dt.datetime,
    result: str,
    agent: str | None = None,
    ended_at: dt.datetime | None = None,
    times: AttemptTimes = AttemptTimes(),
) -> int:
    """One row of ``callback_attempts`` (``ended_at`` defaults to now); its id."""
    attempt_id = await conn.fetchval(
        """INSERT INTO callback_attempts (callback_id, instance, started_at, ended_at, agent,
                                          result, wait_s, talk_s, duration_s)
           VALUES ($1, $2, $3, coalesce($4::timestamptz, now()), $5, $6, $7, $8, $9)
           RETURNING id""",
        callback_id,
        instance,
        started_at,
        ended_at,
        agent,
        result,
        times.wait,
        times.talk,
        times.duration,
    )
    return int(attempt_id)


async def attempt_ended(conn: Conn, attempt_id: int, talk: float, duration: float) -> None:
    """A kept call-back's conversation is over: its attempt (recorded ``done`` when the two
    met) gets its talk and duration, and ends now."""
    await conn.execute(
        """UPDATE callback_attempts SET ended_at = now(), talk_s = $2, duration_s = $3
           WHERE id = $1""",
        attempt_id,
        talk,
        duration,
    )


# Settle a held job: done, or retried (failed at the limit).  The fence also matches a job
# `release_stale` failed while its holder was dialling the customer: the holder is back
# and knows how the call went.
_SETTLE = """
UPDATE callbacks
SET status = CASE WHEN $5 THEN 'done' WHEN attempts >= $6 THEN 'failed' ELSE 'pending' END,
    due_at = CASE WHEN NOT $5 AND attempts < $6 THEN now() + make_interval(secs => $7)
                  ELSE due_at END,
    last_result = $8
WHERE id = $1 AND claimed_by = $2 AND attempts = $3
  AND (status = 'in_progress' OR (status IN ('pending', 'failed') AND last_result = $4))
RETURNING status
"""


async def _settle(
    conn: Conn,
    job: CallbackJob,
    *,
    done: bool,
    result: str,
    agent: str | None,
    delay: float = 0.0,
    max_attempts: int = 0,
    times: AttemptTimes = AttemptTimes(),
) -> tuple[str, int]:
    """The job's new status and the id of the attempt recorded."""
    async with conn.transaction():
        status = await conn.fetchval(
            _SETTLE,
            job.id,
            job.claimed_by,
            job.attempts,
            LOST_CALLING_CUSTOMER,
            done,
            max_attempts,
            delay,
            result,
        )
        if status is None:
            raise ClaimLost(job)
        attempt_id = await record_attempt(
            conn, job.id, job.claimed_by, job.claimed_at, result, agent, times=times
        )
        return str(status), attempt_id


async def finish(
    conn: Conn,
    job: CallbackJob,
    result: str,
    agent: str | None,
    times: AttemptTimes = AttemptTimes(),
) -> int:
    """The call-back was kept: ``done``, and the attempt recorded (one transaction); the
    attempt's id, for `attempt_ended` once the conversation is over."""
    _, attempt_id = await _settle(conn, job, done=True, result=result, agent=agent, times=times)
    return attempt_id


async def retry_later(
    conn: Conn,
    job: CallbackJob,
    result: str,
    delay: float,
    max_attempts: int,
    agent: str | None = None,
    times: AttemptTimes = AttemptTimes(),
) -> str:
    """The attempt failed: ``pending`` again, due in ``delay`` seconds, or ``failed`` once it
    was attempt ``max_attempts``; the attempt recorded.  Returns the new status."""
    status, _ = await _settle(
        conn,
        job,
        done=False,
        result=result,
        agent=agent,
        delay=delay,
        max_attempts=max_attempts,
        times=times,
    )
    return status


async def put_back(conn: Conn, job: CallbackJob, delay: float) -> None:
    """Un-claim a job that was not attempted (every employee busy, the worker stopping):
    ``pending`` in ``delay`` seconds, the attempt not counted and not recorded."""
    row = await conn.fetchrow(
        """UPDATE callbacks
           SET status = 'pending', attempts = attempts - 1,
               due_at = now() + make_interval(secs => $4)
           WHERE id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'in_progress'
             AND last_result IS DISTINCT FROM $5
           RETURNING id""",
        job.id,
        job.claimed_by,
        job.attempts,
        delay,
        CALLING_CUSTOMER,
    )
    if row is None:
        raise ClaimLost(job)


# --- reading ------------------------------------------------------------------------------------


async def attempts_of(conn: Conn, callback_id: int) -> list[Attempt]:
    """The recorded attempts of one call-back, oldest first."""
    rows = await conn.fetch(
        """SELECT callback_id, instance, started_at, ended_at, agent, result, wait_s, talk_s,
                  duration_s
           FROM callback_attempts WHERE callback_id = $1 ORDER BY started_at, id""",
        callback_id,
    )
    return [Attempt(**dict(r)) for r in rows]


# --- the admin API: list, cancel, reschedule -------------------------------------------------

CALLBACK_STATUSES = ("pending", "in_progress", "done", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """A row of ``callbacks``, as the admin API shows it."""

    id: int
    call_id: str
    number: str
    caller: str
    department: str | None
    scenario: str
    created_at: dt.datetime
    due_at: dt.datetime
    status: str
    attempts: int
    last_result: str | None


_ROW = """id, call_id, number, caller, department, scenario, created_at, due_at, status,
          attempts, last_result"""


def _row(row: asyncpg.Record) -> CallbackRow:
    return CallbackRow(**dict(row))


async def list_callbacks(
    conn: Conn, status: str | None = None, limit: int = 500, *, after: int | None = None
) -> list[CallbackRow]:
    """Call-backs (of one ``status``), the soonest due first; with ``after``, those that
    come after call-back ``after`` in that order (the next page: none when it is gone)."""
    rows = await conn.fetch(
        f"SELECT {_ROW} FROM callbacks WHERE ($1::text IS NULL OR status = $1) "  # noqa: S608 - fixed text
        "AND ($3::bigint IS NULL OR (due_at, id) > "
        "(SELECT c.due_at, c.id FROM callbacks c WHERE c.id = $3)) "
        "ORDER BY due_at, id LIMIT $2",
        status,
        limit,
        after,
    )
    return [_row(r) for r in rows]


async def callback_row(conn: Conn, callback_id: int) -> CallbackRow | None:
    row = await conn.fetchrow(f"SELECT {_ROW} FROM callbacks WHERE id = $1", callback_id)  # noqa: S608 - fixed text
    return None if row is None else _row(row)


async def cancel_callback(conn: Conn, callback_id: int) -> bool:
    """Cancel a pending call-back; False when it is not pending (or not there).  One
    being made now (``in_progress``) is its holder's to finish."""
    done = await conn.execute(
        "UPDATE callbacks SET status = 'cancelled', last_result = 'cancelled' "
        "WHERE id = $1 AND status = 'pending'",
        callback_id,
    )
    return done == "UPDATE 1"


async def reschedule_callback(conn: Conn, callback_id: int, at: dt.datetime) -> bool:
    """Make a pending call-back due at ``at``; False when it is not pending."""
    done = await conn.execute(
        "UPDATE callbacks SET due_at = $2 WHERE id = $1 AND status = 'pending'", callback_id, at
    )
    return done == "UPDATE 1"
