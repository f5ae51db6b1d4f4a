"""An asyncio FastAGI server: one task per connection, each bounded and always closed.

A peer costs at most one session slot, `AgiLimits.max_line`-ish bytes of
buffer and the timeouts of `AgiLimits`; whatever it sends, its task ends, its
socket is closed and the server goes on serving the others.
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

log = structlog.get_logger("switchboard.agi")

Handler = Callable[[AgiSession], Awaitable[None]]


@dataclass
class AgiServerStats:
    """Counters of the server's connections.

    Every admitted connection (`accepted`) is `active` until it ends as exactly
    one of `completed` (the handler returned, or the call hung up),
    `protocol_errors` (bad environment, garbage, a line too long, a timeout),
    `closed_early` (the peer closed the socket), `handler_errors` (the handler
    raised something unexpected) or `cancelled` (ended by `AgiServer.close()`).
    `rejected` connections (over `max_sessions`, or during close) are not admitted.
    """

    accepted: int = 0
    active: int = 0
    completed: int = 0
    rejected: int = 0
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
        )


StatsPredicate = Callable[[AgiServerStats], bool]


class _Outcome(enum.Enum):
    COMPLETED = "completed"
    PROTOCOL_ERROR = "protocol_error"
    CLOSED_EARLY = "closed_early"
    HANDLER_ERROR = "handler_error"
    CANCELLED = "cancelled"


class AgiServer:
    """Accepts FastAGI connections and runs `handler` for each, within `limits`."""

    def __init__(self, handler: Handler, limits: AgiLimits | None = None) -> None:
        self.limits = limits or AgiLimits()
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats = AgiServerStats()
        self._watchers: list[tuple[StatsPredicate, asyncio.Future[AgiServerStats]]] = []
        self._closing = False

    @property
    def stats(self) -> AgiServerStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._stats)

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

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, so the session task is ours and tracked from its first moment.
        if self._closing or self._stats.active >= self.limits.max_sessions:
            self._stats.rejected += 1
            reason = "server closing" if self._closing else "too many sessions"
            log.warning("agi.rejected", peer=peer_name(writer), reason=reason)
            writer.close()
            self._changed()
            return
        self._stats.accepted += 1
        self._stats.active += 1
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._changed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_name(writer)
        outcome = _Outcome.CANCELLED
        try:
            outcome = await self._run(reader, writer, peer)
        finally:
            try:
                await close_writer(writer)
            finally:
                self._count(outcome)

    def _count(self, outcome: _Outcome) -> None:
        stats = self._stats
        stats.active -= 1
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
        self._changed()

    async def _run(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> _Outcome:
        """Run one session; returns how it ended."""
        stage = "environment"
        try:
            session = await AgiSession.open(reader, writer, self.limits)
            stage = "handler"
            log.debug("agi.session_started", peer=peer, script=session.env.script)
            await self._handler(session)
        except AgiHangup:
            log.info("agi.session_ended", peer=peer, reason="hangup")
            return _Outcome.COMPLETED
        except AgiClosed as exc:
            log.info("agi.session_ended", peer=peer, stage=stage, reason=str(exc))
            return _Outcome.CLOSED_EARLY
        except (AgiTimeout, AgiProtocolError) as exc:
            log.info("agi.protocol_error", peer=peer, stage=stage, reason=str(exc))
            return _Outcome.PROTOCOL_ERROR
        except Exception:  # a handler bug ends its own session, never the server
            log.exception("agi.handler_failed", peer=peer, stage=stage)
            return _Outcome.HANDLER_ERROR
        log.debug("agi.session_ended", peer=peer, reason="handler returned")
        return _Outcome.COMPLETED
