"""One set of agents for several instances: the ACD's shared state in PostgreSQL.

Each `switchboard run` (or `agi`) next to its own Asterisk keeps its own `Acd` in
memory, and these tables (migrations 0010 and 0011) make the agents one set across
them:

- ``acd_instances``: each instance's lease, renewed every third of it
  (`SharedAgents.renew`).  An instance whose lease ran out (kill -9, power loss, a
  network cut) is reaped by another one (`reap`): its reservations and its waiting
  callers are deleted, its agents told free.  Until it is reaped an instance counts
  as alive, whatever its lease says: after a database outage every instance's lease
  has run out, and none may take another's agents before that one had a chance to
  renew (`SharedLink` reaps only once it has been connected for a whole lease).
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
- ``acd_devices``: the state of each desk phone that is on one instance's Asterisk
  (``employees[].asterisk``), told by that instance to the others, which count it.

`SharedLink` is a runtime's side: the driver's desk (`switchboard.driver.Desk`) asks
it before an offer rings; it keeps the lease, listens (`FreedAgents`), rings only
the agents it holds while the database is away and writes its rows again from
memory when it returns, and lets a restarted instance adopt the conversations its
earlier run left in Asterisk (`SharedLink.hold`).

Every statement is parameterised; `reserve` is one round trip (the bench:
bench/shared_acd.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, get_args

import asyncpg
import structlog

from switchboard.acd import DeviceState, Waiting
from switchboard.config.company import Company
from switchboard.redaction import redact
from switchboard.storage.listener import CONNECTION_ERRORS, Listener

log = structlog.get_logger("switchboard.storage")

CHANNEL = "switchboard_acd"  # NOTIFY payload: "free <agent>", "device <agent> <state>"
DEVICE_STATES = frozenset(get_args(DeviceState))
DEFAULT_LEASE = 15.0  # seconds an instance is alive for without renewing

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

_RESERVE = """
WITH alive AS (
    SELECT instance FROM acd_instances  -- until reaped (see the module's docstring)
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

    async def renew(self, conn: Conn) -> bool:
        """Start or renew this instance's lease (every third of it).  True when its row
        was missing: a start, or another instance reaped this one (it stalled, or lost
        the database for longer than the lease) -- its rows are gone."""
        started: bool = await conn.fetchval(
            """INSERT INTO acd_instances (instance, lease_until)
               VALUES ($1, clock_timestamp() + make_interval(secs => $2))
               ON CONFLICT (instance) DO UPDATE
                   SET renewed_at = clock_timestamp(), lease_until = EXCLUDED.lease_until
               RETURNING xmax = 0""",
            self.instance,
            self.lease,
        )
        return started

    async def next_expiry(self, conn: Conn) -> float | None:
        """Seconds until the first other instance's lease runs out (None: no other)."""
        left: float | None = await conn.fetchval(
            """SELECT extract(epoch FROM min(lease_until) - clock_timestamp())::float8
               FROM acd_instances WHERE instance <> $1""",
            self.instance,
        )
        return left

    async def held_by_others(self, conn: Conn, agents: Sequence[str]) -> set[str]:
        """Which of ``agents`` a call of another instance holds now."""
        rows = await conn.fetch(
            "SELECT agent FROM acd_reservations WHERE agent = ANY($1) AND instance <> $2",
            list(agents),
            self.instance,
        )
        return {r["agent"] for r in rows}

    async def restore(
        self,
        conn: Conn,
        reserved: Mapping[str, str],
        waiting: Sequence[Waiting],
    ) -> list[str]:
        """After this instance lost the database (or was reaped): its rows made what its
        memory says again -- the agents its calls hold (``reserved``: agent -> call) and
        its callers waiting (with their arrival on this host's clock, the database's
        being unknown for a caller that came meanwhile).  Rows of its agents no longer
        held are deleted and those agents told free.  The agents another instance took
        meanwhile (it reaped this one): returned, both instances may have rung them."""
        async with conn.transaction():
            freed = [
                r["agent"]
                for r in await conn.fetch(
                    """DELETE FROM acd_reservations
                       WHERE instance = $1 AND NOT agent = ANY($2) RETURNING agent""",
                    self.instance,
                    list(reserved),
                )
            ]
            taken: list[str] = []
            for agent, call_id in reserved.items():
                if not await self.hold(conn, agent, call_id):
                    taken.append(agent)
            await conn.execute(
                "DELETE FROM acd_waiting WHERE instance = $1 AND NOT call_id = ANY($2)",
                self.instance,
                [w.call for w in waiting],
            )
            for w in waiting:
                await conn.execute(
                    """INSERT INTO acd_waiting (call_id, instance, department, priority,
                                                arrived_at, skills)
                       VALUES ($1, $2, $3, $4, to_timestamp($5), $6)
                       ON CONFLICT (call_id) DO NOTHING""",
                    w.call, self.instance, w.department, w.priority, w.joined,
                    list(w.skills),
                )  # fmt: skip
            for agent in freed:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"free {agent}")
        return taken

    async def forget_waiting(self, conn: Conn) -> int:
        """This instance's callers' places go (an earlier run's, at a start): how many."""
        gone: int = await conn.fetchval(
            "WITH gone AS (DELETE FROM acd_waiting WHERE instance = $1 RETURNING 1) "
            "SELECT count(*) FROM gone",
            self.instance,
        )
        return gone

    async def held_here(self, conn: Conn) -> dict[str, str]:
        """The agents this instance's rows hold: agent -> call."""
        rows = await conn.fetch(
            "SELECT agent, call_id FROM acd_reservations WHERE instance = $1", self.instance
        )
        return {r["agent"]: r["call_id"] for r in rows}

    async def hold(self, conn: Conn, agent: str, call_id: str) -> bool:
        """``call_id`` (a conversation of this instance's: adopted, or kept while the
        database was away) holds ``agent``, whoever waits: False when another
        instance's call holds them."""
        got = await conn.fetchval(
            """INSERT INTO acd_reservations AS r (agent, instance, call_id)
               VALUES ($1, $2, $3)
               ON CONFLICT (agent) DO UPDATE SET call_id = EXCLUDED.call_id
                   WHERE r.instance = EXCLUDED.instance
               RETURNING agent""",
            agent,
            self.instance,
            call_id,
        )
        return got is not None

    async def publish_device(self, conn: Conn, agent: str, state: str) -> None:
        """The desk phone of ``agent``, on this instance's Asterisk, is ``state`` now:
        kept, and told to every instance (``device <agent> <state>``)."""
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO acd_devices (agent, instance, state) VALUES ($1, $2, $3)
                   ON CONFLICT (agent) DO UPDATE
                       SET instance = EXCLUDED.instance, state = EXCLUDED.state,
                           changed_at = now()""",
                agent,
                self.instance,
                state,
            )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"device {agent} {state}")

    async def devices(self, conn: Conn) -> dict[str, str]:
        """The desk phones' states the other instances keep: agent -> state."""
        rows = await conn.fetch(
            "SELECT agent, state FROM acd_devices WHERE instance <> $1", self.instance
        )
        return {r["agent"]: r["state"] for r in rows}

    async def arrivals(self, conn: Conn) -> dict[str, dt.datetime]:
        """This instance's waiting callers' arrivals, as the database keeps them."""
        rows = await conn.fetch(
            "SELECT call_id, arrived_at FROM acd_waiting WHERE instance = $1", self.instance
        )
        return {r["call_id"]: r["arrived_at"] for r in rows}

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
                              USING (instance) WHERE r.agent = $1)""",
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
        return await reservations(conn)

    async def leave_all(self, conn: Conn) -> int:
        """A clean stop: this instance's rows go, its agents are told free.  How many
        rows there were."""
        async with conn.transaction():
            freed = [
                r["agent"]
                for r in await conn.fetch(
                    "DELETE FROM acd_reservations WHERE instance = $1 RETURNING agent",
                    self.instance,
                )
            ]
            waiting = await conn.fetchval(
                "WITH gone AS (DELETE FROM acd_waiting WHERE instance = $1 RETURNING 1) "
                "SELECT count(*) FROM gone",
                self.instance,
            )
            await conn.execute("DELETE FROM acd_instances WHERE instance = $1", self.instance)
            for agent in freed:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"free {agent}")
        return len(freed) + int(waiting)


async def reservations(conn: Conn) -> list[Reservation]:
    """Every reservation of every instance not reaped: which call holds which agent,
    across the instances (`switchboard agents list`, the admin API)."""
    rows = await conn.fetch(
        """SELECT r.agent, r.instance, r.call_id, r.reserved_at
           FROM acd_reservations r JOIN acd_instances i USING (instance)
           ORDER BY r.agent"""
    )
    return [Reservation(r["agent"], r["instance"], r["call_id"], r["reserved_at"]) for r in rows]


async def waiting_counts(conn: Conn) -> dict[tuple[str, str], int]:
    """(department, instance) -> callers waiting there now, across the instances."""
    rows = await conn.fetch(
        """SELECT w.department, w.instance, count(*) AS n
           FROM acd_waiting w JOIN acd_instances i USING (instance)
           GROUP BY 1, 2 ORDER BY 1, 2"""
    )
    return {(r["department"], r["instance"]): r["n"] for r in rows}


class SharedDesk(Protocol):
    """What `SharedLink` reads of the runtime's desk (`switchboard.driver.Desk`)."""

    reserved: dict[str, str]  # agent -> the call of this instance holding them

    def freed_elsewhere(self, agent: str) -> None:
        """Another instance freed ``agent``: offer them here."""

    def held_elsewhere(self) -> list[str]:
        """The agents held here for another instance's calls."""

    def queued(self) -> list[Waiting]:
        """This instance's callers waiting in queues (``joined``: epoch seconds)."""

    def heard_device(self, agent: str, state: DeviceState) -> None:
        """The desk phone of ``agent``, on another instance's Asterisk, is ``state``."""

    def device_states(self) -> dict[str, DeviceState]:
        """The desk phones' states as this instance knows them: agent -> state."""


class FreedAgents(Listener):
    """``NOTIFY switchboard_acd``: agents another instance freed, handed to the desk, and
    desk phones' states; after a reconnection (a notification may have been missed) the
    link looks again."""

    channel = CHANNEL
    name = "shared agents listener"

    def __init__(self, link: SharedLink) -> None:
        super().__init__()
        self.link = link

    async def start(self, dsn: str) -> None:
        """Listen (the database away: keep trying in the background)."""
        self._dsn = dsn
        try:
            conn: asyncpg.Connection | None = await self._listen()
        except CONNECTION_ERRORS as exc:
            log.warning(f"{self.name} cannot connect yet", error=redact(str(exc)))
            conn = None
        self._follow_in_background(conn, "shared-agents-listener")

    async def _resync(self, conn: asyncpg.Connection) -> None:
        self.link.wake()

    async def _handle(self, conn: asyncpg.Connection, payload: str) -> None:
        verb, _, rest = payload.partition(" ")
        if verb == "free" and rest:
            self.link.desk.freed_elsewhere(rest)
        elif verb == "device":
            agent, _, state = rest.partition(" ")
            self.link.heard_device(agent, state)


class SharedLink:
    """The desk's side (`switchboard.driver.SharedAgentsPort`): an offer's reservation
    is one round trip; queue places and releases are written in the background; the
    lease is renewed, dead instances reaped (at once when a lease runs out) and the
    agents held for other instances looked at again, every third of the lease.

    While the database does not answer, this instance rings only the agents it held
    when it went away (``mine``): every other agent may be another instance's, and
    nothing is offered twice when it comes back.  Its calls are answered and routed
    as ever; its queued callers wait for those agents.  Back, it writes its rows from
    memory again (`SharedAgents.restore`) and, having been connected a whole lease
    (so that every live instance renewed meanwhile), reaps the instances that did not.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        shared: SharedAgents,
        company: Callable[[], Company],
        desk: SharedDesk,
        *,
        timeout: float = 2.0,
    ) -> None:
        self.pool = pool
        self.shared = shared
        self.company = company
        self.desk = desk
        self.timeout = timeout
        self.arrivals: dict[str, dt.datetime] = {}  # call -> its arrival, as the database says
        self.mine: set[str] = set()  # agents whose row this instance holds, as it knows
        self.away = True  # the database has not answered yet (or the last request failed)
        self.connected_since: float | None = None  # monotonic; None while away
        self.devices_synced = False  # the phones' states written and read since back
        self.closed = False
        self._prune_at: float | None = None  # monotonic: free an earlier run's agents then
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waits: dict[str, asyncio.Task[None]] = {}  # call -> its place being written

    async def start(self) -> None:
        """The lease begins.  What an earlier run under this name left (it was killed,
        or another process uses the name): its callers' places go (the runtime sends
        calls it finds in the app on); its reservations stay for a lease, for the
        conversations Asterisk still carries, which this run adopts (`hold`), and then
        those not adopted are freed.  The database away: `keep_up` does it all."""
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                await self.shared.renew(conn)
                places = await self.shared.forget_waiting(conn)
                held = await self.shared.held_here(conn)
        except CONNECTION_ERRORS as exc:
            self._failed("start", exc)
            return
        if places or held:
            log.warning(
                "shared agents: an earlier run of this instance left rows (it was "
                "killed, or another process uses this name): its callers' places are "
                "gone, its agents are freed in a lease unless their conversation is "
                "adopted",
                instance=self.shared.instance, places=places, agents=sorted(held),
            )  # fmt: skip
            self.mine = set(held)
            self._prune_at = time.monotonic() + self.shared.lease
        self._back()

    def hold(self, agent: str, call_id: str) -> None:
        """An adopted conversation (left by an earlier run) holds ``agent`` again."""
        self.mine.add(agent)

        async def hold() -> None:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                if not await self.shared.hold(conn, agent, call_id):
                    log.error(
                        "shared agents: an adopted conversation's agent is held by "
                        "another instance's call; both may ring them",
                        agent=agent, call_id=call_id,
                    )  # fmt: skip

        self._spawn(self._guarded("hold", hold()))

    # --- the desk's port ----------------------------------------------------------------

    async def reserve(self, agent: str, call_id: str, priority: int, waiting: bool) -> bool:
        if self.away:
            return agent in self.mine  # see the class's docstring
        placed = self._waits.get(call_id)
        if waiting and placed is not None and not placed.done():
            await asyncio.gather(placed, return_exceptions=True)  # its arrival, to compare
        company = self.company()
        departments = [d.id for d in company.config.departments if agent in d.members]
        skills = next((e.skills for e in company.config.employees if e.id == agent), {})
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                got = await self.shared.reserve(
                    conn, agent, call_id, departments=departments, priority=priority,
                    arrived_at=self.arrivals.get(call_id) if waiting else None,
                    skills=list(skills),
                )  # fmt: skip
        except CONNECTION_ERRORS as exc:
            self._failed("reserve", exc)
            return agent in self.mine
        self._back()
        if got:
            self.mine.add(agent)
        return got

    def release(self, agent: str, call_id: str) -> None:
        async def release() -> None:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                await self.shared.release(conn, agent, call_id)
            if agent not in self.desk.reserved:
                self.mine.discard(agent)

        self._spawn(self._guarded("release", release()))

    def wait(self, call_id: str, department: str, priority: int, skills: tuple[str, ...]) -> None:
        async def wait() -> None:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                self.arrivals[call_id] = await self.shared.wait(
                    conn, call_id, department, priority, skills
                )

        self._waits[call_id] = self._spawn(self._guarded("wait", wait()))

    def leave(self, call_id: str) -> None:
        """After the call's `wait` is written: a place deleted before it was written would
        be written after, and stay, ahead of every caller after it."""
        written = self._waits.pop(call_id, None)

        async def leave() -> None:
            if written is not None:
                await asyncio.gather(written, return_exceptions=True)
            self.arrivals.pop(call_id, None)
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                await self.shared.leave(conn, call_id)

        self._spawn(self._guarded("leave", leave()))

    # --- the lease ------------------------------------------------------------------------

    def device_changed(self, agent: str, state: DeviceState) -> None:
        """The ACD heard a desk phone's state: one on this instance's Asterisk (for an
        agent whose `employees[].asterisk` names this instance) is told to the others."""
        if self.closed or self._home(agent) != self.shared.instance:
            return

        async def publish() -> None:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                await self.shared.publish_device(conn, agent, state)

        self._spawn(self._guarded("device state", publish()))

    def heard_device(self, agent: str, state: str) -> None:
        """Another instance told a desk phone's state: counted here when the phone is on
        its Asterisk (not this one's)."""
        home = self._home(agent)
        if home is None or home == self.shared.instance or state not in DEVICE_STATES:
            return
        self.desk.heard_device(agent, cast(DeviceState, state))

    def _home(self, agent: str) -> str | None:
        employee = self.company().employees.get(agent)
        return employee.asterisk if employee is not None else None

    async def _sync_devices(self, conn: Conn) -> None:
        """After a start or an absence: this instance's phones written, the others' read."""
        mine = {
            agent: state
            for agent, state in self.desk.device_states().items()
            if self._home(agent) == self.shared.instance
        }
        for agent, state in mine.items():
            await self.shared.publish_device(conn, agent, state)
        for agent, told in (await self.shared.devices(conn)).items():
            self.heard_device(agent, told)
        self.devices_synced = True

    def wake(self) -> None:
        """Look now (the listener reconnected: a notification may have been missed)."""
        self._wake.set()

    async def keep_up(self) -> None:
        """Until cancelled: renew the lease; after an absence write this instance's rows
        again; reap the instances whose lease ran out; free here the agents held for
        other instances that hold them no more.  Every third of the lease, at once
        when another instance's lease runs out, every second while away."""
        lease = self.shared.lease
        while True:
            delay = lease / 3
            try:
                async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                    delay = min(delay, await self._look(conn))
                self._back()
            except CONNECTION_ERRORS as exc:
                self._failed("lease renewal", exc)
                delay = min(delay, 1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.05)):
                    await self._wake.wait()

    async def _look(self, conn: Conn) -> float:
        """One round of `keep_up`; the seconds until the next is due."""
        shared, lease = self.shared, self.shared.lease
        reaped_here = await shared.renew(conn)
        prune = self._prune_at is not None and time.monotonic() >= self._prune_at
        if self.away or reaped_here or prune:
            before = set(self.mine)
            await self._restore(conn, reaped_here)
            self.devices_synced = False
            if prune:
                log.info(
                    "shared agents: the earlier run's agents not adopted are free",
                    freed=sorted(before - self.mine), adopted=sorted(before & self.mine),
                )  # fmt: skip
            self._prune_at = None
        if not self.devices_synced:
            await self._sync_devices(conn)
        now = time.monotonic()
        if self.connected_since is None:
            self.connected_since = now
        if now - self.connected_since >= lease:
            await shared.reap(conn)  # (their agents are told free to every instance)
        elsewhere = self.desk.held_elsewhere()
        if elsewhere:
            held = await shared.held_by_others(conn, elsewhere)
            for agent in elsewhere:
                if agent not in held:
                    self.desk.freed_elsewhere(agent)
        expiry = await shared.next_expiry(conn)
        if expiry is None:
            return lease
        if now - self.connected_since < lease:  # not reaping yet: when it may
            return max(expiry, self.connected_since + lease - now) + 0.05
        return expiry + 0.05

    async def _restore(self, conn: Conn, reaped_here: bool) -> None:
        reserved = dict(self.desk.reserved)
        taken = await self.shared.restore(conn, reserved, self.desk.queued())
        self.mine = set(reserved) - set(taken)
        self.arrivals = await self.shared.arrivals(conn)
        if reaped_here:
            log.warning(
                "shared agents: another instance reaped this one (it did not renew its "
                "lease in time): its rows are written again",
                instance=self.shared.instance,
            )
        if taken:
            log.error(
                "shared agents: agents another instance took while this one was away; "
                "both may have rung them",
                agents=taken,
            )

    async def close(self) -> None:
        """A clean stop: what this instance held is freed for the others."""
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with asyncio.timeout(self.timeout), self.pool.acquire() as conn:
                await self.shared.leave_all(conn)
        except CONNECTION_ERRORS as exc:
            self._failed("leaving", exc)

    # --- internals ------------------------------------------------------------------------

    async def _guarded(self, what: str, work: Awaitable[None]) -> None:
        try:
            await work
        except CONNECTION_ERRORS as exc:
            self._failed(what, exc)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _failed(self, what: str, exc: BaseException) -> None:
        self.devices_synced = False
        if not self.away:
            log.warning(
                "shared agents: the database does not answer: ringing only the agents "
                "this instance holds until it does",
                request=what,
                error=redact(str(exc)) or type(exc).__name__,
            )
            self._wake.set()  # try again within a second
        self.away = True
        self.connected_since = None

    def _back(self) -> None:
        if self.away and self.connected_since is not None:
            log.info("shared agents: the database answers again")
        self.away = False
