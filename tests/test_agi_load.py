"""500 `route` sessions at once against one FastAGI server: every caller gets its decision.

The server is `AgiApp` behind a real `AgiServer` on a loopback port, on the
real clock, with examples/call-centre.yaml and a `MemorySink`; Asterisk's side
is `asterisk_sim.agi.AgiPeer`, one `call` per session, all started together.
Half the callers are a contact of ivanov's (ICM rings his desk at once), half
are numbers nobody knows (contacts and last_agent find nobody, the CRM at
127.0.0.1:8099 refuses the connection, so they go to the support queue).
How fast this goes is measured in bench/agi_route.py, never asserted here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from agi_server.app import AgiApp
from agi_server.server import AgiServer
from asterisk_sim.agi import AgiCall, AgiPeer
from switchboard.calls import MemorySink
from switchboard.clock import Clock
from switchboard.config.load import load_company

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "call-centre.yaml"
CALLED = "74951112233"
KNOWN = "79161112233"  # "+7 916 111-22-33": ivanov under `contacts:`
SESSIONS = 500
SAFETY = 60.0  # s: a guard only, the sessions end long before


def caller(i: int) -> str:
    """Even sessions: ivanov's contact; odd ones: a distinct number nobody knows."""
    return KNOWN if i % 2 == 0 else f"7903{5_000_000 + i:07d}"


@pytest.mark.asyncio
async def test_500_concurrent_route_sessions_each_get_their_decision_and_leave_a_record() -> None:
    company = load_company(CONFIG)
    sink = MemorySink()
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)  # a Tuesday, in hours
    app = AgiApp(lambda: company, sink, clock=Clock(), wall_clock=lambda: at)
    server = AgiServer(app.handle)
    host, port = await server.start("127.0.0.1", 0)
    peer = AgiPeer(host, port, clock=Clock())
    try:
        async with asyncio.timeout(SAFETY):
            calls: list[AgiCall] = await asyncio.gather(
                *(
                    peer.call(
                        "route",
                        caller=caller(i),
                        extension=CALLED,
                        dnid=CALLED,
                        args=(CALLED,),
                        channel=f"PJSIP/trunk-{i:08x}",
                        uniqueid=f"1733050000.{i}",
                        timeout=SAFETY,
                    )
                    for i in range(SESSIONS)
                )
            )
            stats = await server.wait_stats(lambda s: s.ended >= SESSIONS)
    finally:
        await server.close()
        await app.close()

    decisions = Counter(
        (
            call.closed_by,
            call.variables.get("SWITCHBOARD_ACTION"),
            call.variables.get("SWITCHBOARD_TARGETS"),
        )
        for call in calls
    )
    assert decisions == {
        ("server", "dial", "PJSIP/101"): SESSIONS // 2,
        ("server", "queue", "PJSIP/201&PJSIP/202&PJSIP/203"): SESSIONS // 2,
    }
    known = [c for i, c in enumerate(calls) if i % 2 == 0]
    assert {c.variables.get("SWITCHBOARD_ICM_EMPLOYEE") for c in known} == {"ivanov"}

    assert stats.accepted == stats.completed == SESSIONS
    assert (stats.active, stats.rejected, stats.handler_errors, stats.protocol_errors) == (0,) * 4
    assert (stats.closed_early, stats.cancelled) == (0, 0)

    ids = [r.call_id for r in sink.records]
    assert len(ids) == len(set(ids)) == SESSIONS
    assert set(ids) == {c.variables["SWITCHBOARD_CALL_ID"] for c in calls}
    assert Counter(r.outcome.result for r in sink.records) == {"dialplan": SESSIONS}
