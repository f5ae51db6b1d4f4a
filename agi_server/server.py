"""An asyncio FastAGI server: one task per connection, each bounded and always closed.

A connection first sends its environment: all of it within
`AgiLimits.header_timeout`, or it is closed.  Until then it is *pending*, and
pending connections are bounded apart from the sessions: at most
`max_pending` of them, and `max_pending_per_peer` from one IP address; a new
connection beyond those bounds pushes out the oldest pending one (of its own
address, else of the address holding most).  Asterisk sends its whole
environment the moment it connects, so a real call is pending for
milliseconds, while peers that connect and never finish (half-open, and
reconnecting as soon as they are closed) only ever push each other out.  A
session slot (`max_sessions`) is taken only once the environment is in.

Whatever a peer sends, its task ends, its socket is closed and the server goes
on serving the others.  A storm of one warning (rejections, evictions, peers
that send no environment) is logged as its first line, then one line with a
count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from agi_server.protocol import (
    AgiClosed,
    AgiHangup,
    AgiLimits,
    AgiProtocolError,
    AgiSession,
    AgiTimeout,
    close_writer,
    peer_name,
)
from switchboard.logs import RepeatedWarnings

log = structlog.get_logger("switchboard.agi")

Handler = Callable[[AgiSession], Awaitable[None]]


@dataclass
class AgiServerStats:
    """Counters of the server's connections.

    Every connection (`connections`) is `active` until it ends as exactly one
    of `completed` (the handler returned, or the call hung up),
    `protocol_errors` (bad environment, garbage, a line too long, a timeout),
    `closed_early` (the peer closed the socket), `handler_errors` (the handler
    raised something unexpected), `cancelled` (ended by `AgiServer.close()`),
    `evicted` (closed while still sending its environment, to make room for a
    newer connection) or `rejected` (its environment came while `max_sessions`
    sessions ran, or it connected while the server was closing).

    While it sends its environment a connection is `pending`; once the
    environment is in and a slot is free it is `accepted`, one of the
    `sessions` running, until it ends.
    """

    connections: int = 0
    accepted: int = 0
    active: int = 0
    pending: int = 0
    sessions: int = 0
    completed: int = 0
    rejected: int = 0
    evicted: int = 0
    protocol_errors: int = 0
    handler_errors: int = 0
    closed_early: int = 0
    cancelled: int = 0

    @property
    def ended(self) -> int:
        return (
            self.completed
            + self.protocol_errors
            + self.closed_early
            + self.handler_errors
            + self.cancelled
            + self.evicted
            + self.rejected
        )


StatsPredicate = Callable[[AgiServerStats], bool]


class _Outcome(enum.Enum):
    COMPLETED = "completed"
    PROTOCOL_ERROR = "protocol_error"
    CLOSED_EARLY = "closed_early"
    HANDLER_ERROR = "handler_error"
    CANCELLED = "cancelled"
    EVICTED = "evicted"
    REJECTED = "rejected"


@dataclass(eq=False)  # hashed by identity: a key of `_PendingPool`
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str  # host:port, for the logs
    host: str  # the address the per-peer bound counts by
    evicted: bool = False
    in_session: bool = False


def _peer_host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer) if peer else "?"


class _PendingPool:
    """The connections still sending their environment, oldest first for each address."""

    def __init__(self) -> None:
        self._by_host: dict[str, dict[_Connection, None]] = {}
        self.count = 0

    def add(self, conn: _Connection) -> None:
        self._by_host.setdefault(conn.host, {})[conn] = None
        self.count += 1

    def discard(self, conn: _Connection) -> bool:
        """Take `conn` out; False when it was not in."""
        held = self._by_host.get(conn.host)
        if held is None or conn not in held:
            return False
        del held[conn]
        if not held:
            del self._by_host[conn.host]
        self.count -= 1
        return True

    def victim(self, host: str, limits: AgiLimits) -> tuple[_Connection, str] | None:
        """Whom a new connection from `host` pushes out, and why; None when there is room.

        The oldest is the one that has had the most time to send its environment
        and has not.  Past the pool's bound the address holding most pays: a
        flooding address pushes out its own connections, never those of the
        Asterisk, whose environments arrive at once and so are few at any moment.
        """
        own = self._by_host.get(host)
        if own and len(own) >= limits.max_pending_per_peer:
            return next(iter(own)), "too many connections without an environment from one address"
        if self._by_host and self.count >= limits.max_pending:
            busiest = max(self._by_host.values(), key=len)
            return next(iter(busiest)), "too many connections without an environment"
        return None


class AgiServer:
    """Accepts FastAGI connections and runs `handler` for each, within `limits`."""

    def __init__(self, handler: Handler, limits: AgiLimits | None = None) -> None:
        self.limits = limits or AgiLimits()
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = _PendingPool()
        self._stats = AgiServerStats()
        self._watchers: list[tuple[StatsPredicate, asyncio.Future[AgiServerStats]]] = []
        self._closing = False
        self._warnings = RepeatedWarnings(log)
        self._expiries: dict[tuple[str, ...], asyncio.TimerHandle] = {}

    @property
    def stats(self) -> AgiServerStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._stats)

    @property
    def listening(self) -> bool:
        """Started, taking connections, and not closing."""
        return self._server is not None and self._server.is_serving() and not self._closing

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> tuple[str, int]:
        """Listen (loopback by default); returns the bound address (port 0 picks one)."""
        if self._server is not None:
            raise RuntimeError("AgiServer already started")
        self._server = await asyncio.start_server(
            self._on_connect, host, port, limit=self.limits.max_line + 1
        )
        bound = self._server.sockets[0].getsockname()
        log.debug("agi.listening", host=bound[0], port=bound[1])
        return str(bound[0]), int(bound[1])

    async def serve_forever(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then close."""
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop accepting, cancel the running sessions and wait for them to end."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        for timer in self._expiries.values():
            timer.cancel()
        self._expiries.clear()
        self._warnings.flush()  # the counts of the storms still running

    async def wait_stats(self, predicate: StatsPredicate) -> AgiServerStats:
        """Wait until the counters satisfy `predicate` (wrap in a timeout); returns them."""
        snapshot = self.stats
        if predicate(snapshot):
            return snapshot
        future: asyncio.Future[AgiServerStats] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._watchers.append(entry)
        try:
            return await future
        finally:
            self._watchers.remove(entry)

    def _changed(self) -> None:
        snapshot = self.stats
        for predicate, future in self._watchers:
            if not future.done() and predicate(snapshot):
                future.set_result(snapshot)

    def _warn(self, key: tuple[str, ...], **fields: object) -> None:
        """Log `key[0]` once per run of `key`; the run's count follows when its window ends."""
        if not self._warnings.warning(key, key[0], **fields):
            return
        # without this timer the count would wait for the next warning, maybe for ever
        old = self._expiries.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        # a hair past the window, so that the run has surely ended when the timer fires
        self._expiries[key] = loop.call_later(self._warnings.window + 0.05, self._warnings.expire)

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, so the session task is ours and tracked from its first moment.
        self._stats.connections += 1
        if self._closing:
            self._stats.rejected += 1
            reason = "server closing"
            self._warn(("agi.rejected", reason), peer=peer_name(writer), reason=reason)
            writer.close()
            self._changed()
            return
        conn = _Connection(reader, writer, peer_name(writer), _peer_host(writer))
        self._make_room(conn.host)
        self._pending.add(conn)
        self._stats.pending = self._pending.count
        self._stats.active += 1
        task = asyncio.get_running_loop().create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._changed()

    def _make_room(self, host: str) -> None:
        """Close the pending connection a newcomer from `host` pushes out, if any."""
        found = self._pending.victim(host, self.limits)
        if found is None:
            return
        victim, reason = found
        victim.evicted = True
        self._leave_pending(victim)
        self._warn(("agi.evicted", reason), peer=victim.peer, reason=reason)
        # closing (not cancelling) ends its task the usual way, even one not yet started:
        # its read sees the end of the stream, and `_run` counts it as evicted
        victim.writer.close()

    def _leave_pending(self, conn: _Connection) -> None:
        if self._pending.discard(conn):
            self._stats.pending = self._pending.count
            self._changed()

    async def _serve(self, conn: _Connection) -> None:
        outcome = _Outcome.CANCELLED
        try:
            outcome = await self._run(conn)
        finally:
            try:
                await close_writer(conn.writer)
            finally:
                self._count(conn, outcome)

    def _count(self, conn: _Connection, outcome: _Outcome) -> None:
        stats = self._stats
        stats.active -= 1
        if conn.in_session:
            stats.sessions -= 1
        match outcome:
            case _Outcome.COMPLETED:
                stats.completed += 1
            case _Outcome.PROTOCOL_ERROR:
                stats.protocol_errors += 1
            case _Outcome.CLOSED_EARLY:
                stats.closed_early += 1
            case _Outcome.HANDLER_ERROR:
                stats.handler_errors += 1
            case _Outcome.CANCELLED:
                stats.cancelled += 1
            case _Outcome.EVICTED:
                stats.evicted += 1
            case _Outcome.REJECTED:
                stats.rejected += 1
        self._changed()

    async def _run(self, conn: _Connection) -> _Outcome:
        """Read the environment, take a session slot and run the session; returns how it ended."""
        try:
            session = await AgiSession.open(conn.reader, conn.writer, self.limits)
        except (AgiClosed, AgiTimeout, AgiProtocolError) as exc:
            return self._no_environment(conn, exc)
        finally:
            self._leave_pending(conn)
        if conn.evicted:  # its environment was in the buffer when it was pushed out
            return _Outcome.EVICTED
        if self._stats.sessions >= self.limits.max_sessions:
            self._warn(
                ("agi.rejected", "too many sessions"),
                peer=conn.peer,
                reason="too many sessions",
                max_sessions=self.limits.max_sessions,
            )
            return _Outcome.REJECTED
        conn.in_session = True
        self._stats.accepted += 1
        self._stats.sessions += 1
        self._changed()
        return await self._run_session(session, conn.peer)

    def _no_environment(self, conn: _Connection, exc: Exception) -> _Outcome:
        if conn.evicted:  # we closed it; `_make_room` said why
            return _Outcome.EVICTED
        if isinstance(exc, AgiClosed):
            # a port probe or a health check: counted, not worth a line each
            log.debug("agi.closed_before_environment", peer=conn.peer, reason=str(exc))
            return _Outcome.CLOSED_EARLY
        kind = "timeout" if isinstance(exc, AgiTimeout) else "bad environment"
        self._warn(("agi.no_environment", kind), peer=conn.peer, reason=str(exc))
        return _Outcome.PROTOCOL_ERROR

    async def _run_session(self, session: AgiSession, peer: str) -> _Outcome:
        """Run the handler on a session; returns how it ended."""
        try:
            log.debug("agi.session_started", peer=peer, script=session.env.script)
            await self._handler(session)
        except AgiHangup:
            log.info("agi.session_ended", peer=peer, reason="hangup")
            return _Outcome.COMPLETED
        except AgiClosed as exc:
            log.info("agi.session_ended", peer=peer, stage="handler", reason=str(exc))
            return _Outcome.CLOSED_EARLY
        except (AgiTimeout, AgiProtocolError) as exc:
            log.info("agi.protocol_error", peer=peer, stage="handler", reason=str(exc))
            return _Outcome.PROTOCOL_ERROR
        except Exception:  # a handler bug ends its own session, never the server
            log.exception("agi.handler_failed", peer=peer, stage="handler")
            return _Outcome.HANDLER_ERROR
        log.debug("agi.session_ended", peer=peer, reason="handler returned")
        return _Outcome.COMPLETED
