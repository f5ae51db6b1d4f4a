"""Agents' own states in PostgreSQL: kept across restarts, every change recorded, and
requests from outside a running app (`switchboard agents ...`) passed to it.

Two tables (migration 0003):

- ``agent_states``: each agent's own state as last chosen -- ``available``,
  ``logged_out`` or ``paused`` with a reason -- since when and by what (``phone``,
  ``cli``, ``api``).  No row: available (an agent nobody logged in or out).  A
  runtime passes `load_agent_states` to `Acd` as its ``states`` at start.
- ``agent_changes``: every change, for reports (`agent_changes_between`), with
  the instance that made it; NULL there marks a *request* made from outside a
  running instance (the CLI), which the running instances apply.

A runtime records each change its `Acd` tells (`Acd.on_change`) with
`record_agent_change`.  The CLI writes through `request_agent_change`: it checks
the change against the kept state (no pause while logged out), stores it as above
and sends ``NOTIFY switchboard_agents, '<json>'``, which PostgreSQL delivers when
the transaction commits; with no app running the state is simply kept for the next
start.  A running app hears the requests through `AgentCommands` and applies each
to its `Acd` (`apply_agent_command`); the change the `Acd` then tells is already
recorded, so `record_agent_change` stores nothing when the kept state already is
exactly that change (state, reason and by): one row per change however many
instances apply it.

`AgentCommands` LISTENs on its own connection and, like `ConfigWatcher`, reconnects
with backoff when the connection is lost; the requests made while it was away are
read back from ``agent_changes`` (the rows with no instance after the last one it
delivered), so none is lost.  Requests take a transaction-level advisory lock, so
their ids follow commit order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from switchboard.acd.agents import AgentChange
from switchboard.acd.service import Acd, KeptState
from switchboard.storage.listener import Listener

log = structlog.get_logger("switchboard.storage")

CHANNEL = "switchboard_agents"
REQUEST_LOCK = 7_300_003  # pg_advisory_xact_lock key: "switchboard agent requests"
REASON_MAX = 200  # characters of a pause reason (a NOTIFY payload is at most 8000 bytes)

# the states an agent chooses, the ones kept (the ACD's others -- ringing, talking,
# wrap-up -- last one call and are never kept)
KeptAgentState = Literal["available", "logged_out", "paused"]
KEPT_STATES: dict[str, KeptAgentState] = {
    "available": "available",
    "logged_out": "logged_out",
    "paused": "paused",
}

# what `AgentCommands` calls for each request: (agent, state, reason, by)
AgentCommand = Callable[[str, KeptAgentState, str, str], None]

# what a lost or refused connection raises: retried, never fatal for a running app


class AgentLoggedOut(ValueError):
    """The agent is logged out: they cannot pause or resume before logging in."""

    error_id = "agents.logged_out"

    def __init__(self, agent: str) -> None:
        self.agent = agent
        super().__init__(f"agent {agent!r} is logged out: log in first")


@dataclass(frozen=True, slots=True)
class StoredAgentState:
    """One row of ``agent_states``."""

    state: KeptAgentState
    reason: str
    since: dt.datetime
    by: str


@dataclass(frozen=True, slots=True)
class AgentRequest:
    """What `request_agent_change` did: ``changed`` False when the agent already was in
    that state (nothing stored, nothing sent)."""

    agent: str
    changed: bool
    state: KeptAgentState
    reason: str
    since: dt.datetime | None  # None: never changed (available from the start)
    id: int | None = None  # the ``agent_changes`` row, when changed


@dataclass(frozen=True, slots=True)
class AgentChangeRecord:
    """One row of ``agent_changes``."""

    id: int
    agent: str
    at: dt.datetime
    state: KeptAgentState
    reason: str
    by: str
    instance: str | None


def kept_state(state: str) -> KeptAgentState:
    """``state`` as a kept state; ValueError for the ACD's others (ringing ...)."""
    kept = KEPT_STATES.get(state)
    if kept is None:
        raise ValueError(f"{state!r} is not a state agents choose (available, logged_out, paused)")
    return kept


# --- reading -----------------------------------------------------------------------------


async def stored_agent_states(conn: asyncpg.Connection) -> dict[str, StoredAgentState]:
    """Every agent with a kept state, with since when and by what."""
    rows = await conn.fetch(
        "SELECT agent, state, reason, since, changed_by FROM agent_states ORDER BY agent"
    )
    return {
        r["agent"]: StoredAgentState(
            kept_state(r["state"]), r["reason"], r["since"], r["changed_by"]
        )
        for r in rows
    }


async def load_agent_states(conn: asyncpg.Connection) -> dict[str, KeptState]:
    """The kept states as `Acd` takes them (``states``): agent -> (state, pause reason)."""
    return {
        agent: (kept.state, kept.reason if kept.state == "paused" else "")
        for agent, kept in (await stored_agent_states(conn)).items()
    }


async def agent_changes_between(
    conn: asyncpg.Connection, agent: str | None, since: dt.datetime, until: dt.datetime
) -> list[AgentChangeRecord]:
    """The changes made from ``since`` (included) to ``until`` (excluded), oldest first;
    one agent's, or every agent's with ``agent`` None."""
    rows = await conn.fetch(
        """SELECT id, agent, at, state, reason, by, instance FROM agent_changes
           WHERE ($1::text IS NULL OR agent = $1) AND at >= $2 AND at < $3
           ORDER BY at, id""",
        agent,
        since,
        until,
    )
    return [_change_record(r) for r in rows]


def _change_record(row: asyncpg.Record) -> AgentChangeRecord:
    return AgentChangeRecord(
        row["id"],
        row["agent"],
        row["at"],
        kept_state(row["state"]),
        row["reason"],
        row["by"],
        row["instance"],
    )


# --- writing -----------------------------------------------------------------------------


async def record_agent_change(
    conn: asyncpg.Connection | PoolConnectionProxy, change: AgentChange, instance: str | None
) -> bool:
    """Keep an `Acd`'s change (``Acd.on_change``; ``at`` in epoch seconds) and record it,
    in one transaction.  False, storing nothing, when the kept state already is exactly
    this change: a request recorded by `request_agent_change`, or another instance's.
    """
    state = kept_state(change.state)
    reason = change.reason if state == "paused" else ""
    at = dt.datetime.fromtimestamp(change.at, dt.UTC)
    async with conn.transaction():
        kept = await conn.fetchrow(
            "SELECT state, reason, changed_by FROM agent_states WHERE agent = $1 FOR UPDATE",
            change.agent,
        )
        if kept is not None and tuple(kept) == (state, reason, change.by):
            return False
        await _store(conn, change.agent, state, reason, at, change.by, instance)
    return True


async def request_agent_change(
    conn: asyncpg.Connection,
    agent: str,
    state: KeptAgentState,
    reason: str = "",
    by: str = "cli",
    *,
    resume: bool = False,
) -> AgentRequest:
    """Change ``agent``'s kept state from outside a running app, and tell the running
    instances (``NOTIFY switchboard_agents``) when it commits.

    As the ACD does: ``available`` logs in a logged-out or paused agent (with
    ``resume``: a paused one only, and a logged-out one raises `AgentLoggedOut`);
    ``paused`` raises `AgentLoggedOut` for a logged-out agent and changes the reason
    of a paused one.  A change to the state the agent is in already stores and sends
    nothing (``changed`` False).  The time is the database's.  The caller checks that
    ``agent`` is a member of a department.
    """
    state = kept_state(state)
    reason = reason.strip() if state == "paused" else ""
    if len(reason) > REASON_MAX:
        raise ValueError(f"the reason is longer than {REASON_MAX} characters")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", REQUEST_LOCK)
        kept = await conn.fetchrow(
            "SELECT state, reason, since FROM agent_states WHERE agent = $1 FOR UPDATE", agent
        )
        current, current_reason, since = (
            (kept["state"], kept["reason"], kept["since"])
            if kept is not None
            else ("available", "", None)
        )
        if current == "logged_out" and (state == "paused" or (state == "available" and resume)):
            raise AgentLoggedOut(agent)
        if current == state and (state != "paused" or current_reason == reason):
            return AgentRequest(agent, False, state, current_reason, since)
        at: dt.datetime = await conn.fetchval("SELECT now()")
        change_id = await _store(conn, agent, state, reason, at, by, None)
        payload = {
            "id": change_id,
            "agent": agent,
            "state": state,
            "reason": reason,
            "by": by,
            "at": at.timestamp(),
        }
        await conn.execute(
            "SELECT pg_notify($1, $2)", CHANNEL, json.dumps(payload, ensure_ascii=False)
        )
    log.info("agent change requested", agent=agent, state=state, reason=reason, by=by)
    return AgentRequest(agent, True, state, reason, at, change_id)


async def _store(
    conn: asyncpg.Connection | PoolConnectionProxy,
    agent: str,
    state: KeptAgentState,
    reason: str,
    at: dt.datetime,
    by: str,
    instance: str | None,
) -> int:
    """Both tables (in the caller's transaction); the ``agent_changes`` row's id."""
    await conn.execute(
        """INSERT INTO agent_states (agent, state, reason, since, changed_by)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (agent) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason,
               since = EXCLUDED.since, changed_by = EXCLUDED.changed_by""",
        agent,
        state,
        reason,
        at,
        by,
    )
    change_id: int = await conn.fetchval(
        """INSERT INTO agent_changes (agent, at, state, reason, by, instance)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        agent,
        at,
        state,
        reason,
        by,
        instance,
    )
    return change_id


# --- a running app: applying the requests ------------------------------------------------


def apply_agent_command(
    acd: Acd, now: float, agent: str, state: KeptAgentState, reason: str, by: str
) -> None:
    """Apply a request to ``acd`` as the agent's own change would be made; nothing when
    the agent is in that state already (a request applied twice, or one this instance
    made itself: the admin API's).  Raises as the `Acd` does: KeyError (not a member of
    any department), ValueError (log in first)."""
    current = acd.agents.get(agent)
    same_reason = state != "paused" or (current is not None and current.reason == reason)
    if current is not None and current.state == state and same_reason:
        return
    if state == "available":
        acd.login(agent, now, by=by)
    elif state == "logged_out":
        acd.logout(agent, now, by=by)
    else:
        acd.pause(agent, now, reason, by=by)


class AgentCommands(Listener):
    """The requests `request_agent_change` sends, for a running app: ``apply(agent,
    state, reason, by)`` for each, in commit order, once.

    `start` LISTENs first and then reads the kept states, so a request committed
    around the start is in the states returned or delivered after (or both: applying
    one twice changes nothing).  A malformed notification is logged and skipped; an
    ``apply`` that raises is logged, and the next request is delivered all the same.
    ``changed`` is notified whenever ``delivered``, ``connected`` or
    ``connect_failures`` change (`wait_until`).
    """

    channel = CHANNEL
    name = "agent commands listener"

    def __init__(
        self,
        apply: AgentCommand,
        *,
        backoff_first: float = 0.5,
        backoff_max: float = 30.0,
        health_every: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            backoff_first=backoff_first,
            backoff_max=backoff_max,
            health_every=health_every,
            connect_timeout=connect_timeout,
        )
        self.states: dict[str, KeptState] = {}  # as read at start
        self.delivered = 0  # requests passed to ``apply`` so far
        self._apply = apply
        self._last_id = 0  # the newest request delivered (or there at start)

    async def start(self, dsn: str) -> dict[str, KeptState]:
        """Connect and LISTEN, read the kept states (returned, for `Acd`), then deliver
        the requests in the background.  Raises what connecting raises."""
        if self._task is not None:
            raise RuntimeError("the agent commands listener is already running")
        self._dsn = dsn
        conn = await self._listen()
        started = False
        try:
            # one snapshot: a request is in the states or after the mark, never lost between
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                self.states = await load_agent_states(conn)
                self._last_id = await conn.fetchval(
                    """SELECT coalesce(max(id), 0) FROM agent_changes WHERE instance IS NULL"""
                )
            started = True
        finally:
            if not started:
                await self._discard(conn)
        self._follow_in_background(conn, "agent-commands")
        return self.states

    async def _resync(self, conn: asyncpg.Connection) -> None:
        await self._catch_up(conn)  # requests made while we were away

    async def _handle(self, conn: asyncpg.Connection, payload: str) -> None:
        if self._received(payload):
            await self._notify()

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            """SELECT id, agent, at, state, reason, by, instance FROM agent_changes
               WHERE id > $1 AND instance IS NULL ORDER BY id""",
            self._last_id,
        )
        for row in rows:
            change = _change_record(row)
            self._deliver(change.id, change.agent, change.state, change.reason, change.by)
        if rows:
            await self._notify()

    def _received(self, payload: str) -> bool:
        """Deliver one notification; False when there was nothing to deliver."""
        try:
            data = json.loads(payload)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            change_id, agent, reason, by = data["id"], data["agent"], data["reason"], data["by"]
            state = kept_state(data["state"])
            if not (
                isinstance(change_id, int)
                and isinstance(agent, str)
                and agent
                and isinstance(reason, str)
                and isinstance(by, str)
            ):
                raise TypeError("a field of the wrong type")
        except (ValueError, TypeError, KeyError) as exc:
            log.warning(
                "agent command ignored: malformed notification",
                payload=payload[:200],
                error=str(exc),
            )
            return False
        return self._deliver(change_id, agent, state, reason, by)

    def _deliver(
        self, change_id: int, agent: str, state: KeptAgentState, reason: str, by: str
    ) -> bool:
        if change_id <= self._last_id:
            return False  # delivered already (by the catch-up after a reconnect)
        self._last_id = change_id
        self.delivered += 1
        try:
            self._apply(agent, state, reason, by)
        except (KeyError, ValueError) as exc:  # not a member any more; log in first
            log.warning("agent command not applied", agent=agent, state=state, error=str(exc))
        except Exception:  # one request's failure must not stop the listener
            log.exception("agent command failed", agent=agent, state=state)
        return True


@contextlib.asynccontextmanager
async def agent_commands(
    dsn: str, apply: AgentCommand, **options: Any
) -> AsyncIterator[AgentCommands]:
    """``async with agent_commands(dsn, apply) as commands``: started (``commands.states``
    read), and stopped however the block ends."""
    commands = AgentCommands(apply, **options)
    await commands.start(dsn)
    try:
        yield commands
    finally:
        await commands.stop()
