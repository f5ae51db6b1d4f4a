"""The admin server of `switchboard agi`, and what a database adds to any runtime's.

The FastAGI server listens on a loopback port and `AgiPeer` plays Asterisk
over it (`AgiStack`); the admin server -- over the status `AgiApp.status`
gives, as `serve` starts it -- on another.  With a database the records go to
a real PostgreSQL, readiness asks it, and the call-backs waiting in its table
are counted; a database that does not answer makes the process not ready.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from switchboard.admin.server import AdminServer
from switchboard.calls import CallSink
from switchboard.clock import ScaledClock
from switchboard.simulate import AgentBehaviour
from switchboard.storage.callbacks import insert_request
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.sink import PostgresSink, open_sink
from tests.admin_client import AdminClient
from tests.agi_stack import AgiStack
from tests.helpers import company_from
from tests.test_agi_cli import free_port

pytestmark = pytest.mark.asyncio

OFFICE = """
timezone: Europe/Moscow
employees:
  - {id: anna, extension: "101"}
departments:
  - {id: support, members: [anna]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: anna, noanswer: bye}
      bye: {type: hangup}
"""
CALLED = "74951234567"
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@asynccontextmanager
async def agi_office(sink: CallSink | None = None) -> AsyncIterator[tuple[AgiStack, AdminClient]]:
    """A FastAGI server on a clock 20 times faster than real time, and its admin server."""
    stack = AgiStack(
        company_from(OFFICE),
        WHEN,
        {"anna": AgentBehaviour.parse("answer:1")},
        sink=sink,
        talk=20,  # a second of real time: long enough to be seen running
        clock=ScaledClock(0.05),
    )
    async with stack, AdminServer(stack.app.status(stack.server)) as server:
        await server.start("127.0.0.1", 0)
        async with AdminClient(server.url) as admin:
            yield stack, admin


async def call(stack: AgiStack) -> None:
    await stack.call("scenario", extension=CALLED, dnid=CALLED, args=(CALLED,))


async def test_the_metrics_count_fastagi_sessions_and_calls_as_they_run_and_end() -> None:
    async with agi_office() as (stack, admin):
        before = await admin.scrape()
        assert before["switchboard_agi_sessions_total"] == 0
        assert before["switchboard_agi_sessions_in_progress"] == 0
        assert before.get("switchboard_calls_total", result="connected") == 0
        assert "switchboard_ari_" not in before.text  # `run`'s, not the FastAGI server's

        talking = asyncio.create_task(call(stack))
        during = await admin.scrape_until(
            lambda s: s["switchboard_agi_sessions_in_progress"] == 1,
            "the call's session running",
        )
        assert during["switchboard_calls_in_progress"] == 1
        assert during["switchboard_agi_sessions_total"] == 1
        await talking

        after = await admin.scrape_until(
            lambda s: s["switchboard_agi_sessions_in_progress"] == 0, "the session over"
        )
        assert after["switchboard_agi_sessions_total"] == 1
        assert after["switchboard_calls_in_progress"] == 0
        assert after.get("switchboard_calls_total", result="connected") == 1
        assert after["switchboard_records_written_total"] == 1  # in memory: no database
        assert after.get("switchboard_queue_callers", department="support") == 0
        assert after.get("switchboard_agents", state="available") == 1


async def test_readyz_is_ready_while_the_server_listens_and_healthz_always_answers() -> None:
    async with agi_office() as (stack, admin):
        assert await admin.json("/readyz") == (200, {"ready": True, "checks": {"agi": "ok"}})
        await stack.server.close()
        assert await admin.json("/readyz") == (
            503,
            {"ready": False, "checks": {"agi": "not listening for FastAGI"}},
        )
        assert await admin.json("/healthz") == (200, {"status": "ok"})


async def test_with_a_database_readiness_asks_it_and_the_metrics_count_its_callbacks(
    sink: PostgresSink,
) -> None:
    async with sink.pool.acquire() as conn:
        for n in range(2):
            await insert_request(conn, request_id=f"r{n}", call_id=f"c{n}", number="79161234567")
    async with agi_office(sink) as (stack, admin):
        status, body = await admin.json("/readyz")
        assert (status, body) == (200, {"ready": True, "checks": {"agi": "ok", "database": "ok"}})
        await call(stack)
        scrape = await admin.scrape_until(
            lambda s: s["switchboard_records_written_total"] == 1, "the record written"
        )
        assert scrape["switchboard_callbacks_pending"] == 2
        assert scrape["switchboard_records_buffered"] == 0
        assert scrape["switchboard_records_spilled_total"] == 0
        assert scrape.get("switchboard_calls_total", result="connected") == 1


async def test_a_database_that_does_not_answer_makes_the_process_not_ready(
    tmp_path: Path,
) -> None:
    dsn = f"postgresql://switchboard:s3cret@127.0.0.1:{free_port()}/switchboard"
    away = await open_sink(dsn, tmp_path / "spill.jsonl", "test", db_timeout=0.5)
    try:
        async with agi_office(away) as (stack, admin):
            status, body = await admin.json("/readyz")
            assert status == 503
            assert body["checks"]["agi"] == "ok"
            assert body["checks"]["database"].startswith("database not answering: ")
            assert "s3cret" not in str(body)
            await call(stack)  # calls go on: their records wait for the database
            scrape = await admin.scrape_until(
                lambda s: s["switchboard_records_buffered"] == 1, "the record kept for later"
            )
            assert scrape["switchboard_records_written_total"] == 0
            assert scrape.value("switchboard_callbacks_pending") is None  # it cannot say
            assert await admin.json("/healthz") == (200, {"status": "ok"})
    finally:
        await away.close()


async def test_the_database_is_asked_at_most_once_a_ttl_however_often_the_probes_come(
    sink: PostgresSink,
) -> None:
    probe = DatabaseProbe(sink.pool, ready_ttl=60, pending_ttl=60)
    assert await probe.ready() is None
    assert await probe.pending_callbacks() == 0
    async with sink.pool.acquire() as conn:
        await insert_request(conn, request_id="r", call_id="c", number="79161234567")
    answers = await asyncio.gather(*(probe.pending_callbacks() for _ in range(20)))
    assert answers == [0] * 20  # the answer kept: not asked again within its ttl
    assert await DatabaseProbe(sink.pool).pending_callbacks() == 1
