"""One set of agents for several instances: the ACD's shared state in PostgreSQL.

Each `switchboard run` (or `agi`) next to its own Asterisk keeps its own `Acd` in
memory, and these tables (migration 0010) make the agents one set across them:

- ``acd_instances``: each instance's lease, renewed every third of it
  (`SharedAgents.renew`).  An instance whose lease ran out (kill -9, power loss, a
  network cut) is dead to the others: its reservations and its waiting callers are
  ignored at once, and deleted by the next instance that looks (`reap`).
- ``acd_reservations``: an agent held for one call, by the instance carrying it, from
  the moment their phone is offered the call until their wrap-up ends.  One row per
  agent: `reserve` is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement, so
  of two instances offering an agent at the same moment exactly one gets them (the
  row lock decides; no advisory lock is needed, and none is held between statements).
- ``acd_waiting``: a caller waiting in a department's queue, with its priority and
  its arrival on the database's clock (so the hosts' clocks never decide an order).
  `reserve` refuses an agent to a call when a caller of another live instance who
  could take them is ahead (a higher priority, or the same and waiting longer): that
  instance is told the agent is free (``NOTIFY switchboard_acd``) and offers them.

Every statement is parameterised; `reserve` is one round trip (the bench:
bench/shared_acd.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog

log = structlog.get_logger("switchboard.storage")

CHANNEL = "switchboard_acd"  # NOTIFY payload: "free <agent>"
DEFAULT_LEASE = 15.0  # seconds an instance is alive for without renewing

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_RESERVE = """
WITH alive AS (
    SELECT instance FROM acd_instances WHERE lease_until > clock_timestamp()
), ahead AS (
    -- a caller of another live instance who could take this agent, and comes first
    SELECT 1 FROM acd_waiting w
    WHERE w.instance <> $2
      AND w.instance IN (SELECT instance FROM alive)
      AND w.department = ANY($4::text[])
      AND w.skills <@ $7::text[]
      AND (w.priority > $5 OR (w.priority = $5 AND w.arrived_at < $6))
      -- one already ringing (or talking to) an agent of its own takes no other
      AND NOT EXISTS (SELECT 1 FROM acd_reservations h WHERE h.call_id = w.call_id)
    LIMIT 1
)
INSERT INTO acd_reservations AS r (agent, instance, call_id)
SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM ahead)
ON CONFLICT (agent) DO UPDATE
    SET instance = EXCLUDED.instance, call_id = EXCLUDED.call_id, reserved_at = now()
    WHERE r.instance NOT IN (SELECT instance FROM alive)          -- its holder died
       -- this instance's own: its ACD in memory says who holds the agent here, and it
       -- let them go (their release may not be written yet)
       OR r.instance = EXCLUDED.instance
RETURNING call_id
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    agent: str
    instance: str
    call_id: str
    reserved_at: dt.datetime


class SharedAgents:
    """This instance's side of the shared agents: its lease, its reservations, its
    waiting callers.  ``lease`` is in seconds."""

    def __init__(self, instance: str, lease: float = DEFAULT_LEASE) -> None:
        if not instance:
            raise ValueError("an instance needs a name (SWITCHBOARD_INSTANCE)")
        if lease <= 0:
            raise ValueError(f"the lease must be positive, not {lease}")
        self.instance = instance
        self.lease = lease

    async def renew(self, conn: Conn) -> None:
        """Start or renew this instance's lease (every third of it)."""
        await conn.execute(
            """INSERT INTO acd_instances (instance, lease_until)
               VALUES ($1, clock_timestamp() + make_interval(secs => $2))
               ON CONFLICT (instance) DO UPDATE
                   SET renewed_at = clock_timestamp(), lease_until = EXCLUDED.lease_until""",
            self.instance,
            self.lease,
        )

    async def reap(self, conn: Conn) -> list[str]:
        """Delete what instances whose lease ran out left behind; the agents they held,
        now free (each told to every instance)."""
        async with conn.transaction():
            dead = [
                r["instance"]
                for r in await conn.fetch(
                    """DELETE FROM acd_instances WHERE lease_until <= clock_timestamp()
                       RETURNING instance"""
                )
            ]
            if not dead:
                return []
            freed = [
                r["agent"]
                for r in await conn.fetch(
                    "DELETE FROM acd_reservations WHERE instance = ANY($1) RETURNING agent",
                    dead,
                )
            ]
            await conn.execute("DELETE FROM acd_waiting WHERE instance = ANY($1)", dead)
            for agent in freed:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"free {agent}")
        log.warning("acd: instances gone, their agents and callers released",
                    instances=dead, agents=freed)  # fmt: skip
        return freed

    async def reserve(
        self,
        conn: Conn,
        agent: str,
        call_id: str,
        *,
        departments: Sequence[str],
        priority: int = 0,
        arrived_at: dt.datetime | None = None,
        skills: Sequence[str] = (),
    ) -> bool:
        """Hold ``agent`` for ``call_id``: True when this call has them now (again).

        The caller's ACD in memory has claimed the agent for this call already, so a
        row of this instance's is this call's to take over (a release not yet written).
        False when a call of another live instance holds them, or when a caller of
        another live instance is ahead for them: one waiting in one of ``departments``
        (the agent's) with a higher priority, or the same priority and an earlier
        arrival than ``arrived_at`` (None: this call waits in no queue, it comes after
        every waiting caller of the same priority), whose required skills are among
        the agent's ``skills``.
        """
        found = await conn.fetchval(
            _RESERVE,  # (the caller's ACD has claimed the agent for this call already)
            agent,
            self.instance,
            call_id,
            list(departments),
            priority,
            arrived_at or dt.datetime.max.replace(tzinfo=dt.UTC),
            list(skills),
        )
        if found is not None:
            return True
        # refused though nobody holds them: a caller of another instance comes first,
        # and that instance is told the agent is free, to offer them
        held = await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM acd_reservations r JOIN acd_instances i
                              USING (instance)
                              WHERE r.agent = $1 AND i.lease_until > clock_timestamp())""",
            agent,
        )
        if not held:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"free {agent}")
        return False

    async def release(self, conn: Conn, agent: str, call_id: str) -> bool:
        """Free ``agent`` if ``call_id`` holds them here; every instance is told."""
        async with conn.transaction():
            freed = await conn.fetchval(
                """DELETE FROM acd_reservations
                   WHERE agent = $1 AND instance = $2 AND call_id = $3 RETURNING agent""",
                agent,
                self.instance,
                call_id,
            )
            if freed is not None:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"free {agent}")
        return freed is not None

    async def wait(
        self,
        conn: Conn,
        call_id: str,
        department: str,
        priority: int = 0,
        skills: Sequence[str] = (),
    ) -> dt.datetime:
        """The call waits in ``department``'s queue; its arrival on the database's clock
        (the same call again keeps its first arrival)."""
        arrived: dt.datetime = await conn.fetchval(
            """INSERT INTO acd_waiting (call_id, instance, department, priority, arrived_at,
                                        skills)
               VALUES ($1, $2, $3, $4, clock_timestamp(), $5)
               ON CONFLICT (call_id) DO UPDATE
                   SET department = EXCLUDED.department, priority = EXCLUDED.priority,
                       skills = EXCLUDED.skills
               RETURNING arrived_at""",
            call_id,
            self.instance,
            department,
            priority,
            list(skills),
        )
        return arrived

    async def leave(self, conn: Conn, call_id: str) -> None:
        """The call waits no more (answered, gone, sent elsewhere)."""
        await conn.execute(
            "DELETE FROM acd_waiting WHERE call_id = $1 AND instance = $2",
            call_id,
            self.instance,
        )

    async def reservations(self, conn: Conn) -> list[Reservation]:
        """Every live reservation, of every live instance (one picture across them)."""
        rows = await conn.fetch(
            """SELECT r.agent, r.instance, r.call_id, r.reserved_at
               FROM acd_reservations r JOIN acd_instances i USING (instance)
               WHERE i.lease_until > clock_timestamp()
               ORDER BY r.agent"""
        )
        return [
            Reservation(r["agent"], r["instance"], r["call_id"], r["reserved_at"]) for r in rows
        ]

    async def leave_all(self, conn: Conn) -> None:
        """A clean stop: this instance's rows go, its agents are told free."""
        async with conn.transaction():
            freed = [
                r["agent"]
                for r in await conn.fetch(
                    "DELETE FROM acd_reservations WHERE instance = $1 RETURNING agent",
                    self.instance,
                )
            ]
            await conn.execute("DELETE FROM acd_waiting WHERE instance = $1", self.instance)
            await conn.execute("DELETE FROM acd_instances WHERE instance = $1", self.instance)
            for agent in freed:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"free {agent}")
