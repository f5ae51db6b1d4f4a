"""Peers that connect and never finish their environment cannot starve real calls.

Issue 10, finding 10: 2,100 half-open connections, reconnecting as soon as
they were closed, held all 2,000 session slots; no real call got in, and each
rejected connection logged a warning.  Here the same happens at a small scale
(`max_sessions` 20, a short environment deadline) against Switchboard's own
`AgiApp` behind a real `AgiServer`, with `asterisk_sim.agi.AgiPeer` playing
the Asterisk whose 30 calls must all be served, each with its decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agi_server.app import AgiApp
from agi_server.protocol import AgiLimits
from agi_server.server import AgiServer, AgiServerStats
from asterisk_sim.agi import AgiCall, AgiPeer
from switchboard.calls import MemorySink
from switchboard.clock import Clock
from switchboard.config.load import load_company
from tests import agi_abuse as abuse
from tests.test_agi_cli import free_port, switchboard_agi

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "call-centre.yaml"
CALLED = "74951112233"
KNOWN = "79161112233"  # ivanov's contact: `route` decides "dial PJSIP/101" at once
CALLS = 30
MAX_SESSIONS = 20
AT_ONCE = 10  # calls up at once: half the session slots
DEADLINE = 0.5  # s: the environment deadline, shortened from 5 s
SAFETY = 20.0  # s: a guard only

# what half-open peers send before they go quiet: nothing, some lines, half a line
STALLS = (
    b"",
    abuse.env_block()[:120].rsplit(b"\n", 1)[0] + b"\n",
    b"agi_network: yes\nagi_request: agi://127.0.0.1/rou",
)
LogLine = MutableMapping[str, Any]  # what structlog's capture_logs keeps of a line
STORM_EVENTS = ("agi.rejected", "agi.evicted", "agi.no_environment")


@dataclasses.dataclass
class Served:
    server: AgiServer
    address: abuse.Address
    peer: AgiPeer


@contextlib.asynccontextmanager
async def serving(limits: AgiLimits) -> AsyncIterator[Served]:
    """`AgiApp` (call-centre.yaml, in hours) behind a server on a free port; closed on exit."""
    company = load_company(CONFIG)
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)  # a Tuesday, in hours
    app = AgiApp(lambda: company, MemorySink(), clock=Clock(), wall_clock=lambda: at)
    server = AgiServer(app.handle, limits)
    host, port = await server.start("127.0.0.1", 0)
    try:
        yield Served(server, (host, port), AgiPeer(host, port, clock=Clock()))
    finally:
        await server.close()
        await app.close()


async def real_calls(peer: AgiPeer) -> list[AgiCall]:
    """`CALLS` route calls, `AT_ONCE` at a time, as a busy Asterisk makes them."""
    room = asyncio.Semaphore(AT_ONCE)

    async def call(i: int) -> AgiCall:
        async with room:
            return await peer.call(
                "route",
                caller=KNOWN,
                extension=CALLED,
                dnid=CALLED,
                args=(CALLED,),
                channel=f"PJSIP/trunk-{i:08x}",
                uniqueid=f"1733050000.{i}",
                timeout=SAFETY,
            )

    return await asyncio.gather(*(call(i) for i in range(CALLS)))


def assert_all_served(calls: Sequence[AgiCall]) -> None:
    decisions = [
        (c.closed_by, c.variables.get("SWITCHBOARD_ACTION"), c.variables.get("SWITCHBOARD_TARGETS"))
        for c in calls
    ]
    served = decisions.count(("server", "dial", "PJSIP/101"))
    assert served == len(calls), f"{served} of {len(calls)} calls served: {decisions}"


async def stall(address: abuse.Address, payload: bytes, source: str = "127.0.0.1") -> float | None:
    """Connect, send `payload` and never finish; seconds from connecting until the server
    closed the connection, None when it did not within `SAFETY`."""
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(*address, local_addr=(source, 0))
    except OSError:
        return time.perf_counter() - start  # refused: the server took nothing from us
    try:
        with contextlib.suppress(OSError):
            writer.write(payload)
            await writer.drain()
        end = await abuse.read_until_eof(reader, SAFETY)
        return time.perf_counter() - start if end.closed else None
    finally:
        writer.transport.abort()


async def stall_again(
    address: abuse.Address, payload: bytes, stop: asyncio.Event
) -> list[float | None]:
    """A half-open peer that reconnects the moment it is closed, until `stop`."""
    lives: list[float | None] = []
    while not stop.is_set():
        lives.append(await stall(address, payload))
    return lives


def storm_lines(logs: Sequence[LogLine]) -> list[LogLine]:
    """The log lines about rejected, evicted and environment-less connections."""
    return [
        e
        for e in logs
        if e["event"] in STORM_EVENTS
        or (e["event"] == "warning repeated" and e["warning"] in STORM_EVENTS)
    ]


def told(lines: Sequence[LogLine]) -> int:
    """How many connections the lines account for: one a first line, the count of a repeat."""
    return sum(e["repeats"] if e["event"] == "warning repeated" else 1 for e in lines)


def turned_away(stats: AgiServerStats) -> int:
    return stats.evicted + stats.rejected + stats.protocol_errors


@pytest.mark.asyncio
async def test_half_open_peers_hold_no_session_slot_and_are_closed_at_the_deadline() -> None:
    """Twice as many silent or stalled connections as session slots: the calls still get in."""
    limits = AgiLimits(header_timeout=DEADLINE, max_sessions=MAX_SESSIONS)
    with capture_logs() as logs:
        async with serving(limits) as served:
            stalled = [
                asyncio.create_task(stall(served.address, STALLS[i % len(STALLS)]))
                for i in range(2 * MAX_SESSIONS)
            ]
            async with asyncio.timeout(SAFETY):
                # all of them connected and held (or, before the fix, refused)
                await served.server.wait_stats(lambda s: s.active + s.rejected >= 2 * MAX_SESSIONS)
                calls = await real_calls(served.peer)
                lives = await asyncio.gather(*stalled)
            stats = await abuse.wait_stats(served.server, lambda s: s.active == 0)
    assert_all_served(calls)
    assert (stats.accepted, stats.completed, stats.rejected) == (CALLS, CALLS, 0)
    # each stalled connection had its whole deadline, then was closed
    assert all(life is not None and DEADLINE <= life < DEADLINE + 2.0 for life in lives), lives
    assert stats.protocol_errors == 2 * MAX_SESSIONS
    # forty connections without an environment: one line, then one with the count
    lines = storm_lines(logs)
    assert [(e["event"], e.get("repeats")) for e in lines] == [
        ("agi.no_environment", None),
        ("warning repeated", 2 * MAX_SESSIONS - 1),
    ]


@pytest.mark.asyncio
async def test_30_calls_are_served_while_half_open_peers_reconnect_in_a_loop() -> None:
    """The issue's storm at a small scale: more reconnecting half-open peers than session
    slots and pending places together, from the Asterisk's own address."""
    pending = 60
    limits = AgiLimits(
        header_timeout=DEADLINE,
        max_sessions=MAX_SESSIONS,
        max_pending=pending,
        max_pending_per_peer=pending,
    )
    stop = asyncio.Event()
    with capture_logs() as logs:
        async with serving(limits) as served:
            flood = [
                asyncio.create_task(stall_again(served.address, STALLS[i % len(STALLS)], stop))
                for i in range(pending + MAX_SESSIONS + 20)
            ]
            try:
                async with asyncio.timeout(SAFETY):
                    # the pending places are full and the storm is on
                    await served.server.wait_stats(lambda s: s.evicted >= pending)
                    calls = await real_calls(served.peer)
            finally:
                stop.set()
            async with asyncio.timeout(SAFETY):
                lives = [life for peer in await asyncio.gather(*flood) for life in peer]
            stats = await abuse.wait_stats(served.server, lambda s: s.active == 0)
    assert_all_served(calls)
    assert (stats.accepted, stats.completed) == (CALLS, CALLS)
    # every half-open connection was closed by the server, pushed out or at the deadline
    assert None not in lives
    assert max(life for life in lives if life is not None) < DEADLINE + 2.0
    assert turned_away(stats) == len(lives) > pending + MAX_SESSIONS
    # hundreds of connections turned away: a few lines, with the counts
    lines = storm_lines(logs)
    assert len(lines) <= 8, lines
    assert told(lines) == turned_away(stats)


@pytest.mark.asyncio
async def test_a_flooding_address_only_pushes_out_its_own_connections() -> None:
    """Another address may keep only so many connections without an environment: beyond,
    its oldest is closed at once, and the Asterisk's calls are untouched."""
    per_peer, flood = 10, 50
    limits = AgiLimits(
        header_timeout=2 * DEADLINE, max_sessions=MAX_SESSIONS, max_pending_per_peer=per_peer
    )
    with capture_logs() as logs:
        async with serving(limits) as served:
            async with asyncio.timeout(SAFETY):
                stalled = [
                    asyncio.create_task(stall(served.address, b"", source="127.0.0.2"))
                    for _ in range(flood)
                ]
                await served.server.wait_stats(lambda s: s.evicted == flood - per_peer)
                calls = await real_calls(served.peer)
                lives = await asyncio.gather(*stalled)
            stats = await abuse.wait_stats(served.server, lambda s: s.active == 0)
    assert_all_served(calls)
    assert (stats.accepted, stats.completed, stats.evicted) == (CALLS, CALLS, flood - per_peer)
    closed = sorted(life for life in lives if life is not None)
    assert len(closed) == flood
    pushed_out, waited = closed[: flood - per_peer], closed[flood - per_peer :]
    assert pushed_out[-1] < DEADLINE  # at once, long before the deadline
    assert all(life >= 2 * DEADLINE for life in waited)
    lines = storm_lines(logs)
    assert {e["peer"].rsplit(":", 1)[0] for e in lines if "peer" in e} == {"127.0.0.2"}
    assert told(lines) == flood


@pytest.mark.asyncio
async def test_switchboard_agi_takes_the_environment_deadline_from_the_config(
    tmp_path: Path,
) -> None:
    """`limits.agi_header_timeout`: a peer that says nothing is closed after it, with one
    warning line, and real calls are served as ever."""
    config = tmp_path / "company.yaml"
    config.write_text(CONFIG.read_text() + f"\nlimits:\n  agi_header_timeout: {DEADLINE}\n")
    port = free_port()
    async with switchboard_agi(str(config), "--listen", f"127.0.0.1:{port}") as server:
        await server.listening()
        lives = await asyncio.gather(*(stall(("127.0.0.1", port), b"") for _ in range(5)))
        call = await AgiPeer("127.0.0.1", port, clock=Clock()).call(
            "route", caller=KNOWN, extension=CALLED, dnid=CALLED, args=(CALLED,), timeout=SAFETY
        )
        assert await server.terminate() == 0
    assert all(life is not None and DEADLINE <= life < 5.0 for life in lives), lives
    assert_all_served([call])
    said = [line for line in server.lines if "agi.no_environment" in line]
    assert len(said) == 2, server.log
    assert f"no environment within {DEADLINE} s" in said[0]
    assert "warning repeated" in said[1]
    assert "repeats=4" in said[1]  # the other four, counted on the way out
