"""Durable call-backs: the shared table and its claims on a real PostgreSQL, and the worker
making call-backs over real ARI against the Asterisk simulator (in-process, and a worker in
a subprocess killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ari_app.app import AriApp, AriSettings
from ari_app.callbacks import (
    BUSY,
    DONE,
    FAILED,
    NO_ANSWER,
    NO_EMPLOYEE,
    CallbackEvents,
    CallbackSettings,
    CallbackWorker,
)
from asterisk_sim import AsteriskSimulator, EndpointScript
from asterisk_sim.pbx import STASIS_DELAY
from asterisk_sim.script import EndpointKind
from switchboard.calls import CallSink, MemorySink
from switchboard.clock import Clock, ScaledClock
from switchboard.config.company import Company
from switchboard.config.load import load_text
from switchboard.demo import TeeSink
from switchboard.engine.actions import RequestCallback
from switchboard.storage import callbacks as store
from switchboard.storage.sink import open_sink
from tests.helpers import ROOT, company_from

USER = "switchboard"
PASSWORD = "callbacks-test"  # noqa: S105 - the in-process simulator's own credentials
SCALE = 0.02  # a clock second lasts 20 ms

SUPPORT = [f"e{i:02d}" for i in range(1, 13)]
EMPLOYEES = "\n".join(f'  - {{id: {e}, extension: "2{e[1:]}"}}' for e in SUPPORT)
CONFIG = f"""
timezone: Europe/Moscow
numbering: {{country_code: "7", city_code: "495", national_prefix: "8"}}
employees:
{EMPLOYEES}
  - {{id: ivanov, extension: "101"}}
departments:
  - {{id: support, members: [{", ".join(SUPPORT)}]}}
  - {{id: sales, members: [ivanov], schedule: office}}
schedules:
  office: {{hours: {{mon-fri: "09:00-18:00"}}}}
default_scenario: main
scenarios:
  main:
    start: bye
    nodes:
      bye: {{type: hangup}}
"""
# 2026-12-01 is a Tuesday
TUESDAY_NOON = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
SATURDAY_NOON = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))

FAST = CallbackSettings(
    poll_interval=1.0,
    lease=120.0,
    employee_ring=10.0,
    customer_ring=10.0,
    backoff=(30.0, 60.0),
    closed_recheck=300.0,
    busy_recheck=5.0,
)


def company() -> Company:
    return company_from(CONFIG)


def customer(i: int) -> str:
    return f"7916{i:07d}"


def desk(employee: str) -> str:
    return f"PJSIP/2{employee[1:]}"


def mobile(number: str) -> str:
    return f"PJSIP/{number}@trunk"


@asynccontextmanager
async def connect(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def request(conn: store.Conn, i: int, department: str | None = "support") -> int:
    """A due call-back request, as a call would store it."""
    return await store.store_request(
        conn,
        f"call-{i}",
        RequestCallback(
            request_id="callback1",
            number=customer(i),
            caller=customer(i),
            called="74951234567",
            department=department,
            scenario="main",
            node="take_callback",
        ),
    )


async def until(dsn: str, sql: str, expected: Any, *args: Any, within: float = 30) -> None:
    """Poll the database every 20 ms until ``sql`` gives ``expected``; fail after ``within`` s."""
    async with connect(dsn) as conn:
        try:
            async with asyncio.timeout(within):
                while await conn.fetchval(sql, *args) != expected:  # noqa: ASYNC110 - a table has no event to await: polled, with a deadline
                    await asyncio.sleep(0.02)
        except TimeoutError:
            got = await conn.fetchval(sql, *args)
            raise AssertionError(
                f"timed out after {within} s waiting for {sql!r} to be {expected!r}: {got!r}"
            ) from None


def customer_dials(sim: AsteriskSimulator) -> Counter[str]:
    """How many times each customer's number was dialled."""
    return Counter(
        r.query["endpoint"]
        for r in sim.requests
        if r.method == "POST"
        and r.path == "/ari/channels/create"
        and r.query.get("endpoint", "").endswith("@trunk")
    )


@asynccontextmanager
async def simulator(
    clock: Clock, stasis_delay: float = STASIS_DELAY
) -> AsyncIterator[AsteriskSimulator]:
    sim = AsteriskSimulator(clock=clock, user=USER, password=PASSWORD, stasis_delay=stasis_delay)
    await sim.start("127.0.0.1")
    try:
        yield sim
    finally:
        await sim.stop()


@dataclass
class Running:
    """One running app instance: its call runtime and Stasis app, and its call-back worker."""

    app: AriApp
    worker: CallbackWorker
    sink: MemorySink  # the calls' records


@asynccontextmanager
async def instance(
    sim: AsteriskSimulator,
    dsn: str,
    name: str,
    clock: Clock,
    settings: CallbackSettings = FAST,
    wall_clock: Callable[[], dt.datetime] = lambda: TUESDAY_NOON,
    config: Company | None = None,
    store_sink: CallSink | None = None,
) -> AsyncIterator[Running]:
    """One app instance: its ARI connection (Stasis app ``switchboard-NAME``), the call
    runtime and a call-back worker sharing it, and a pool on the shared database.

    ``config``: the company (default `CONFIG`); ``store_sink``: where the calls' records
    and call-back requests are written as well (`switchboard run`'s PostgreSQL sink), so
    a call's promise reaches the table the worker reads."""
    current = config or company()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    sink = MemorySink()
    app = AriApp(
        lambda: current,
        AriSettings(sim.url, USER, PASSWORD, f"switchboard-{name}"),
        sink=sink if store_sink is None else TeeSink(sink, store_sink),
        clock=clock,
        backoff_first=0.05,
        wall_clock=wall_clock,
    )
    worker = CallbackWorker(
        pool,
        app.client,
        lambda: current,
        name,
        settings,
        clock=clock,
        wall_clock=wall_clock,
        agents=app.runtime.acd,
    )
    # the wiring `switchboard run` needs: the worker's channels' events go to the worker
    app.supervisor.sink = CallbackEvents(app.runtime, worker)
    app.runtime.desk.make_kept = worker.make_kept
    try:
        async with app:
            await app.wait_ready()
            async with worker:
                yield Running(app, worker, sink)
    finally:
        await pool.close()


def device_reads(sim: AsteriskSimulator) -> list[str]:
    """The device states the app has read (``GET /deviceStates/...``) and been told."""
    return [
        r.path
        for r in sim.requests
        if r.method == "GET" and r.path.startswith("/ari/deviceStates/")
    ]


def script_support(sim: AsteriskSimulator, script: EndpointScript) -> None:
    for employee in SUPPORT:
        sim.script_endpoint(desk(employee), script)


# --- the table: requests and claims ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_request_written_twice_is_stored_once_and_its_id_for_another_call_is_refused(
    db: str,
) -> None:
    async with connect(db) as conn:
        first = await request(conn, 1)
        again = await request(conn, 1)
        assert again == first
        assert await conn.fetchval("SELECT count(*) FROM callbacks") == 1
        with pytest.raises(store.RequestConflict):
            await store.insert_request(
                conn, request_id="call-1/callback1", call_id="call-9", number=customer(9)
            )
        row = await conn.fetchrow("SELECT * FROM callbacks WHERE id = $1", first)
    assert row is not None
    assert (row["status"], row["attempts"], row["department"]) == ("pending", 0, "support")
    assert row["number"] == customer(1)


@pytest.mark.asyncio
async def test_two_concurrent_claimers_on_200_due_jobs_claim_each_job_exactly_once(
    db: str,
) -> None:
    async with connect(db) as conn:
        ids = {await request(conn, i) for i in range(200)}
        later = await store.insert_request(
            conn,
            request_id="later",
            call_id="later",
            number=customer(999),
            due_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        async with connect(db) as conn:
            while jobs := await store.claim_due(conn, name, 7):
                got.extend(j.id for j in jobs)
                assert all(j.claimed_by == name and j.attempts == 1 for j in jobs)
        return got

    a, b = await asyncio.gather(claimer("a"), claimer("b"))
    assert len(a) + len(b) == 200
    assert set(a) | set(b) == ids
    assert not set(a) & set(b)
    assert a, "both took part"
    assert b, "both took part"
    async with connect(db) as conn:
        rows = await conn.fetch("SELECT status, count(*) FROM callbacks GROUP BY status")
        states = {r["status"]: r["count"] for r in rows}
        assert states == {"in_progress": 200, "pending": 1}
        assert await conn.fetchval("SELECT status FROM callbacks WHERE id = $1", later) == (
            "pending"
        )


@pytest.mark.asyncio
async def test_a_job_locked_by_another_transaction_is_skipped_rather_than_waited_for(
    db: str,
) -> None:
    async with connect(db) as conn, connect(db) as other:
        locked, free = await request(conn, 1), await request(conn, 2)
        async with other.transaction():
            await other.execute("SELECT id FROM callbacks WHERE id = $1 FOR UPDATE", locked)
            async with asyncio.timeout(5):
                jobs = await store.claim_due(conn, "a", 10)
        assert [j.id for j in jobs] == [free]
        assert [j.id for j in await store.claim_due(conn, "a", 10)] == [locked]


@pytest.mark.asyncio
async def test_a_stale_claim_is_released_and_its_old_holder_can_no_longer_write_it(
    db: str,
) -> None:
    async with connect(db) as conn:
        await request(conn, 1)
        (old,) = await store.claim_due(conn, "a", 1)
        await conn.execute("UPDATE callbacks SET claimed_at = now() - interval '1 hour'")
        (released,) = await store.release_stale(conn, older_than=120, max_attempts=3)
        assert (released.id, released.last_result) == (old.id, store.LOST)
        (new,) = await store.claim_due(conn, "a", 1)  # the same name: a restarted instance
        assert new.attempts == 2
        with pytest.raises(store.ClaimLost):
            await store.mark_calling_customer(conn, old)
        with pytest.raises(store.ClaimLost):
            await store.finish(conn, old, DONE, "e01")
        await store.mark_calling_customer(conn, new)
        await store.finish(conn, new, DONE, "e01")
        row = await conn.fetchrow("SELECT status, attempts, last_result FROM callbacks")
        attempts = await store.attempts_of(conn, new.id)
    assert row is not None
    assert tuple(row) == ("done", 2, DONE)
    assert [(a.instance, a.result, a.agent) for a in attempts] == [
        ("a", store.LOST, None),
        ("a", DONE, "e01"),
    ]


@pytest.mark.asyncio
async def test_a_claim_lost_while_its_customer_was_dialled_is_retried_after_the_first_backoff(
    db: str,
) -> None:
    """Issue 10, finding 5: such a call-back was failed for good (at most once)."""
    async with connect(db) as conn:
        await request(conn, 1)
        (job,) = await store.claim_due(conn, "a", 1)
        await store.mark_calling_customer(conn, job)
        await conn.execute("UPDATE callbacks SET claimed_at = now() - interval '1 hour'")
        await store.release_stale(conn, older_than=120, max_attempts=3, customer_retry=60)
        row = await conn.fetchrow(
            "SELECT status, last_result, due_at > now() + interval '50 s' FROM callbacks"
        )
        assert row is not None
        assert tuple(row) == ("pending", store.LOST_CALLING_CUSTOMER, True)
        assert await store.claim_due(conn, "b", 10) == []  # not before the back-off
        # its holder was only cut off from the database: back, it knows the call was kept
        await store.finish(conn, job, DONE, "e01")
        assert await conn.fetchval("SELECT status FROM callbacks") == "done"
        await conn.execute("UPDATE callbacks SET due_at = now() - interval '1 s'")
        assert await store.claim_due(conn, "b", 10) == []  # done: never made again


@pytest.mark.asyncio
async def test_a_renewed_claim_is_not_released(db: str) -> None:
    async with connect(db) as conn:
        await request(conn, 1)
        await request(conn, 2)
        held, other = await store.claim_due(conn, "a", 2)
        await conn.execute("UPDATE callbacks SET claimed_at = now() - interval '1 hour'")
        assert await store.renew(conn, [held]) == {held.id}
        released = await store.release_stale(conn, older_than=120, max_attempts=3)
        assert [j.id for j in released] == [other.id]
        assert await store.renew(conn, [other]) == set()  # no longer held


@pytest.mark.asyncio
async def test_retry_later_backs_off_and_fails_the_job_at_its_attempts_limit(db: str) -> None:
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    async with connect(db) as conn:
        await request(conn, 1)
        statuses = []
        for _ in range(3):
            (job,) = await store.claim_due(conn, "a", 1, now=far)
            before = await conn.fetchval("SELECT now()")
            statuses.append(await store.retry_later(conn, job, NO_ANSWER, 600, max_attempts=3))
            due = await conn.fetchval("SELECT due_at FROM callbacks")
            if statuses[-1] == "pending":
                assert due >= before + dt.timedelta(seconds=600)
        assert statuses == ["pending", "pending", "failed"]
        assert await store.claim_due(conn, "a", 1, now=far + dt.timedelta(days=1)) == []
        results = [a.result for a in await store.attempts_of(conn, job.id)]
    assert results == [NO_ANSWER] * 3


@pytest.mark.asyncio
async def test_due_jobs_of_closed_departments_are_postponed_uncounted_and_not_claimed(
    db: str,
) -> None:
    async with connect(db) as conn:
        sales = await request(conn, 1, "sales")
        support = await request(conn, 2, "support")
        nobody = await request(conn, 3, None)
        assert await store.postpone_due(conn, ["sales"], 300) == 1
        jobs = await store.claim_due(conn, "a", 10, skip_departments=["sales"])
        assert {j.id for j in jobs} == {support, nobody}
        row = await conn.fetchrow(
            "SELECT status, attempts, due_at > now() + interval '299 s' AS later "
            "FROM callbacks WHERE id = $1",
            sales,
        )
    assert row is not None
    assert tuple(row) == ("pending", 0, True)


# --- the worker over ARI ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_two_instances_sharing_the_table_call_each_of_200_customers_exactly_once(
    db: str,
) -> None:
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        for i in range(200):
            await request(conn, i)
    # a lease of 600 clock s is 12 real s at this scale: a claim renewed late on a loaded
    # machine (2.4 s at 120) would be released and made again, at least once as designed
    settings = CallbackSettings(
        concurrency=8, poll_interval=1.0, lease=600.0, employee_ring=10.0, customer_ring=10.0
    )
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
        async with (
            instance(sim, db, "a", clock, settings) as a,
            instance(sim, db, "b", clock, settings) as b,
        ):
            done = "SELECT count(*) FROM callbacks WHERE status = 'done'"
            await until(db, done, 200, within=60)
            assert a.worker.failures == b.worker.failures == 0
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
        assert not sim.live_bridges()
    dials = customer_dials(sim)
    assert dials == Counter({mobile(customer(i)): 1 for i in range(200)})
    async with connect(db) as conn:
        rows = await conn.fetch("SELECT claimed_by, attempts FROM callbacks")
        results = await conn.fetch("SELECT result, count(*) FROM callback_attempts GROUP BY 1")
    assert {r["attempts"] for r in rows} == {1}
    assert {r["claimed_by"] for r in rows} == {"a", "b"}
    assert {r["result"]: r["count"] for r in results} == {DONE: 200}


WORKER_SCRIPT = """
import asyncio, json, sys

import asyncpg

from ari_app.app import AriApp, AriSettings
from ari_app.callbacks import CallbackEvents, CallbackSettings, CallbackWorker
from switchboard.clock import ScaledClock
from switchboard.config.load import load_company


async def main(args):
    company = load_company(args["config"])
    clock = ScaledClock(args["scale"])
    pool = await asyncpg.create_pool(args["dsn"], min_size=1, max_size=2)
    ari = AriSettings(args["url"], args["user"], args["password"], args["app"])
    app = AriApp(lambda: company, ari, clock=clock, backoff_first=0.05)
    worker = CallbackWorker(
        pool, app.client, lambda: company, args["instance"],
        CallbackSettings(**args["settings"]), clock=clock, agents=app.runtime.acd,
    )
    app.supervisor.sink = CallbackEvents(app.runtime, worker)
    app.runtime.desk.make_kept = worker.make_kept
    async with app:
        await app.wait_ready()
        async with worker:
            await asyncio.Event().wait()


asyncio.run(main(json.loads(sys.argv[1])))
"""


async def worker_process(
    tmp_path: Path, sim: AsteriskSimulator, db: str, settings: dict[str, Any]
) -> asyncio.subprocess.Process:
    """Instance "a" (its Stasis app and call-back worker) in a process of its own, to kill."""
    config = tmp_path / "company.yaml"
    config.write_text(CONFIG)
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    args = {
        "config": str(config),
        "scale": SCALE,
        "dsn": db,
        "url": sim.url,
        "user": USER,
        "password": PASSWORD,
        "app": "switchboard-a",
        "instance": "a",
        "settings": settings,
    }
    with (tmp_path / "worker.log").open("w") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(script), json.dumps(args), cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.mark.asyncio
async def test_a_callback_claimed_by_an_instance_killed_with_sigkill_is_made_once_after_restart(
    db: str, tmp_path: Path
) -> None:
    clock = ScaledClock(SCALE)
    settings = {"poll_interval": 1.0, "lease": 100.0, "employee_ring": 300.0}
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    async with simulator(clock) as sim:
        # employees take 150 s (1.5 real s) to answer: the instance dies mid-attempt
        script_support(sim, EndpointScript("answer", after=150.0, hangup_after=30.0))
        worker = await worker_process(tmp_path, sim, db, settings)
        try:
            claimed = "SELECT status FROM callbacks WHERE id = $1"
            await until(db, claimed, "in_progress", job_id)
            await sim.wait_for(
                lambda s: any(c.id.startswith("callback-") for c in s.live_channels()),
                timeout=10,
                what="the employee ringing",
            )
            (stray,) = [c.id for c in sim.live_channels()]
        finally:
            os.kill(worker.pid, signal.SIGKILL)  # kill -9: no clean-up of any kind
            async with asyncio.timeout(10):
                await worker.wait()
        assert worker.returncode == -signal.SIGKILL
        assert not customer_dials(sim)

        # restarted: the same instance name and Stasis app, on the same database
        restarted = CallbackSettings(poll_interval=1.0, lease=100.0, employee_ring=300.0)
        async with instance(sim, db, "a", clock, restarted):
            done = "SELECT status FROM callbacks WHERE id = $1"
            await until(db, done, "done", job_id)
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    assert customer_dials(sim) == Counter({mobile(customer(1)): 1})
    # the killed instance's ringing leg was hung up by the restarted one
    assert [r.method for r in sim.requests if r.path == f"/ari/channels/{stray}"] == ["DELETE"]
    async with connect(db) as conn:
        attempts = await store.attempts_of(conn, job_id)
        count = await conn.fetchval("SELECT attempts FROM callbacks WHERE id = $1", job_id)
    assert [(a.result, a.agent) for a in attempts] == [(store.LOST, None), (DONE, "e01")]
    assert count == 2


@pytest.mark.asyncio
async def test_a_callback_whose_instance_was_killed_while_the_customer_rang_is_made_again(
    db: str, tmp_path: Path
) -> None:
    """Issue 10, finding 5: 10 of 40 such call-backs ended "lost while calling the
    customer" and were never made (371d264)."""
    clock = ScaledClock(SCALE)
    settings = {"poll_interval": 1.0, "lease": 100.0, "customer_ring": 300.0, "backoff": [5.0]}
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript("answer", after=0.5, hangup_after=30.0))
        # the customer's phone rings and rings: the instance dies meanwhile
        sim.script_endpoint(mobile(customer(1)), EndpointScript("noanswer"))
        worker = await worker_process(tmp_path, sim, db, settings)
        try:
            await sim.wait_for(
                lambda s: customer_dials(s) == Counter({mobile(customer(1)): 1}),
                timeout=10,
                what="the customer ringing",
            )
        finally:
            os.kill(worker.pid, signal.SIGKILL)  # kill -9 while the customer's phone rings
            async with asyncio.timeout(10):
                await worker.wait()
        assert worker.returncode == -signal.SIGKILL

        # restarted; this time the customer answers
        sim.script_endpoint(
            mobile(customer(1)), EndpointScript("answer", after=1.0, hangup_after=10.0)
        )
        restarted = CallbackSettings(poll_interval=1.0, lease=100.0, backoff=(5.0,))
        async with instance(sim, db, "a", clock, restarted):
            done = "SELECT status FROM callbacks WHERE id = $1"
            await until(db, done, "done", job_id)
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    assert customer_dials(sim) == Counter({mobile(customer(1)): 2})
    async with connect(db) as conn:
        attempts = await store.attempts_of(conn, job_id)
    assert [(a.result, a.agent) for a in attempts] == [
        (store.LOST_CALLING_CUSTOMER, None),
        (DONE, "e01"),
    ]


@pytest.mark.asyncio
async def test_a_department_closed_now_is_not_called_and_its_callback_waits_uncounted(
    db: str,
) -> None:
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        sales = await request(conn, 1, "sales")
        support = await request(conn, 2, "support")
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
        async with instance(sim, db, "a", clock, FAST, wall_clock=lambda: SATURDAY_NOON):
            done = "SELECT status FROM callbacks WHERE id = $1"
            await until(db, done, "done", support)
    assert customer_dials(sim) == Counter({mobile(customer(2)): 1})
    assert not [r for r in sim.requests if r.query.get("endpoint") == "PJSIP/101"]
    async with connect(db) as conn:
        row = await conn.fetchrow(
            "SELECT status, attempts, due_at - created_at AS wait FROM callbacks WHERE id = $1",
            sales,
        )
        recorded = await conn.fetchval(
            "SELECT count(*) FROM callback_attempts WHERE callback_id = $1", sales
        )
    assert row is not None
    assert (row["status"], row["attempts"], recorded) == ("pending", 0, 0)
    # pushed to the next check: 300 clock seconds, 3 real seconds at this scale
    assert row["wait"] >= dt.timedelta(seconds=clock.real(300))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("employees", "customer_kind", "result", "dialled"),
    [
        ("answer", "noanswer", NO_ANSWER, 3),
        ("answer", "busy", BUSY, 3),
        ("answer", "offline", FAILED, 3),
        ("noanswer", "answer", NO_EMPLOYEE, 0),
    ],
    ids=["customer-no-answer", "customer-busy", "customer-unreachable", "no-employee-answers"],
)
async def test_an_unsuccessful_callback_backs_off_and_fails_after_three_recorded_attempts(
    db: str, employees: EndpointKind, customer_kind: EndpointKind, result: str, dialled: int
) -> None:
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    settings = CallbackSettings(
        poll_interval=1.0,
        lease=120.0,
        employee_ring=2.0,
        customer_ring=5.0,
        backoff=(30.0, 60.0),
        max_attempts=3,
    )
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript(employees, after=1.0, hangup_after=60.0))
        sim.script_endpoint(mobile(customer(1)), EndpointScript(customer_kind, after=1.0))
        async with instance(sim, db, "a", clock, settings):
            failed = "SELECT status FROM callbacks WHERE id = $1"
            await until(db, failed, "failed", job_id)
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    assert sum(customer_dials(sim).values()) == dialled
    async with connect(db) as conn:
        attempts = await store.attempts_of(conn, job_id)
        row = await conn.fetchrow("SELECT attempts, last_result FROM callbacks")
    assert row is not None
    assert tuple(row) == (3, result)
    assert [a.result for a in attempts] == [result] * 3
    if employees == "answer":
        assert {a.agent for a in attempts} == {"e01"}
    # nobody met: each attempt waited all its length from the first dial, and talked none
    for attempt in attempts:
        assert attempt.duration_s is not None
        assert attempt.duration_s >= 1.0
        assert (attempt.wait_s, attempt.talk_s) == (attempt.duration_s, None)
    # each retry waited its back-off: 30 then 60 clock seconds
    for before, after, backoff in zip(attempts, attempts[1:], settings.backoff, strict=False):
        assert before.ended_at is not None
        assert (after.started_at - before.ended_at).total_seconds() >= clock.real(backoff) - 0.05


@pytest.mark.asyncio
async def test_a_kept_callback_records_its_wait_talk_and_duration_for_all_calls(db: str) -> None:
    """e01 answers 1 s after being dialled, the customer 3 s after; e01 hangs up 30 s after
    answering: a wait of 4 s (and the time the requests took), about 27 s of talk, 31 s in
    all -- in clock seconds, as the inbound calls' records count them."""
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
        sim.script_endpoint(mobile(customer(1)), EndpointScript("answer", after=3.0))
        async with instance(sim, db, "a", clock):
            talked = "SELECT talk_s IS NOT NULL FROM callback_attempts WHERE callback_id = $1"
            await until(db, talked, True, job_id)  # written once one of them hung up
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    async with connect(db) as conn:
        (attempt,) = await store.attempts_of(conn, job_id)
        shown = await conn.fetchrow(
            """SELECT wait_s, talk_s, duration_s, ended_at FROM all_calls
               WHERE call_type = 'callback' AND callback_id = $1""",
            job_id,
        )
    assert (attempt.result, attempt.agent) == (DONE, "e01")
    wait, talk, duration = attempt.wait_s, attempt.talk_s, attempt.duration_s
    assert wait is not None
    assert talk is not None
    assert duration is not None
    assert 4.0 <= wait < 10.0  # e01's 1 s and the customer's 3 s, at the least
    assert 31.0 <= duration < 37.0  # e01 hung up 30 s after answering
    assert wait + talk == pytest.approx(duration, abs=0.01)
    assert shown is not None
    assert (shown["wait_s"], shown["talk_s"], shown["duration_s"]) == (wait, talk, duration)
    # the attempt ends when the conversation does, not when the two met
    assert attempt.ended_at is not None
    assert shown["ended_at"] == attempt.ended_at
    real_talk = (attempt.ended_at - attempt.started_at).total_seconds()
    assert real_talk >= clock.real(31.0) - 0.05


@pytest.mark.asyncio
async def test_customer_first_dials_the_customer_before_ringing_an_employee(db: str) -> None:
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    settings = CallbackSettings(
        order="customer_first", poll_interval=1.0, employee_ring=10.0, customer_ring=10.0
    )
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
        async with instance(sim, db, "a", clock, settings):
            done = "SELECT status FROM callbacks WHERE id = $1"
            await until(db, done, "done", job_id)
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    created = [
        r.query["endpoint"]
        for r in sim.requests
        if r.method == "POST" and r.path == "/ari/channels/create"
    ]
    assert created == [mobile(customer(1)), desk("e01")]
    moh = [r.path for r in sim.requests if r.path.endswith("/moh") and r.method == "POST"]
    assert len(moh) == 1  # the customer held while the employee rang
    async with connect(db) as conn:
        (attempt,) = await store.attempts_of(conn, job_id)
    assert (attempt.result, attempt.agent) == (DONE, "e01")


@pytest.mark.asyncio
async def test_inbound_calls_still_reach_the_runtime_while_the_worker_shares_the_connection(
    db: str,
) -> None:
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    async with simulator(clock) as sim:
        script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
        async with instance(sim, db, "a", clock, FAST) as running:
            channel = await sim.place_call("79035550000", "74951234567", app="switchboard-a")
            await until(db, "SELECT status FROM callbacks WHERE id = $1", "done", job_id)
            await sim.wait_for(lambda s: not s.channels[channel].live, what="the call handled")
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    (record,) = running.sink.records
    assert (record.channel_id, record.outcome.result) == (channel, "hangup")


@pytest.mark.asyncio
async def test_a_callback_whose_legs_enter_the_app_late_dials_each_once_it_is_in(db: str) -> None:
    """Asterisk answers a dial sent before the created channel's StasisStart with 409."""
    clock = ScaledClock(SCALE)
    async with connect(db) as conn:
        job_id = await request(conn, 1)
    async with simulator(clock, stasis_delay=2.0) as sim:
        script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
        async with instance(sim, db, "a", clock):
            await until(db, "SELECT status FROM callbacks WHERE id = $1", "done", job_id)
        await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    dials = [r.status for r in sim.requests if r.path.endswith("/dial")]
    assert dials == [204, 204]  # the employee, then the customer: never a 409


# --- a promise made by a call: the queue's overflow leads to the callback node ------------

OVERFLOW_CONFIG = (
    CONFIG.replace(
        "default_scenario: main\n",
        'numbers: [{number: "74951234567", scenario: waiting}]\ndefault_scenario: main\n',
    )
    + """
  waiting:
    start: queue
    nodes:
      queue: {type: queue, department: support, max_wait: 5, announce_every: 0,
              overflow: take_callback}
      take_callback: {type: callback, next: bye}
      bye: {type: hangup}
"""
)
CALLER = "79035550000"


@pytest.mark.asyncio
async def test_a_callback_promised_after_the_queue_overflowed_calls_the_customer_back(
    db: str, tmp_path: Path
) -> None:
    """Issue 11: the callback node is reached by the queue's `overflow` (max_wait), not by
    `callback_key`; the request keeps the queue's department and the worker connects the
    customer to one of its members."""
    clock = ScaledClock(SCALE)
    config = company_from(OVERFLOW_CONFIG)
    records = await open_sink(db, tmp_path / "spill.jsonl", "a", flush_interval=0.05)
    try:
        async with simulator(clock) as sim:
            script_support(sim, EndpointScript("answer", after=1.0, hangup_after=30.0))
            sim.script_endpoint(mobile(CALLER), EndpointScript("answer", after=1.0))
            async with instance(sim, db, "a", clock, config=config, store_sink=records) as running:
                # every member is on another call: nobody is offered the caller, who waits
                # out max_wait; the worker waits too (uncounted) while they all are busy
                # (the app has read their states: its own calls' events come after)
                await sim.wait_for(
                    lambda s: len(device_reads(s)) >= len(SUPPORT), what="phones followed"
                )
                own_calls = [
                    await sim.call_from(desk(employee), "74957654321") for employee in SUPPORT
                ]
                await sim.wait_for(
                    lambda s: all(s.device_state(desk(e)) == "INUSE" for e in SUPPORT),
                    what="every member's phone in use",
                )
                channel = await sim.place_call(CALLER, "74951234567", app="switchboard-a")
                async with asyncio.timeout(30):
                    while not running.sink.records:
                        running.sink.finished.clear()
                        await running.sink.finished.wait()
                for own in own_calls:
                    await sim.hangup(own)
                settled = "SELECT status IN ('done', 'failed') FROM callbacks"
                await until(db, settled, True)
                await sim.wait_for(lambda s: not s.channels[channel].live, what="the call ended")
            await sim.wait_for(lambda s: not s.live_channels(), what="every channel gone")
    finally:
        await records.close()
    (record,) = running.sink.records
    assert record.outcome.result == "callback"
    assert [step.node for step in record.steps] == ["queue", "take_callback", "bye"]
    async with connect(db) as conn:
        row = await conn.fetchrow("SELECT id, status, department, number FROM callbacks")
        assert row is not None
        attempts = await store.attempts_of(conn, row["id"])
    assert (row["status"], row["department"], row["number"]) == ("done", "support", CALLER)
    assert [(a.result, a.agent) for a in attempts] == [(DONE, "e01")]
    assert customer_dials(sim) == Counter({mobile(CALLER): 1})


ONE_AGENT = """
timezone: Europe/Moscow
numbering: {country_code: "7", city_code: "495", national_prefix: "8"}
employees:
  - {id: solo, extension: "201"}
departments:
  - {id: desk, strategy: one_by_one, ring_timeout: 20, members: [solo]}
numbers: [{number: "74951234567", scenario: waiting}]
scenarios:
  waiting:
    start: queue
    nodes:
      queue: {type: queue, department: desk, max_wait: 600, announce_every: 0,
              callback_key: "1", callback: take_callback, overflow: bye}
      take_callback: {type: callback, next: bye}
      bye: {type: hangup}
"""


@pytest.mark.asyncio
async def test_a_call_back_keeps_its_callers_place_in_the_queue(db: str, tmp_path: Path) -> None:
    """Issue 11: three callers, one agent.  The second asks for a call-back while waiting;
    when the agent is done with the first, the call-back is made (the agent rung first,
    then the customer) before the third caller, who came later, is put through."""
    clock = ScaledClock(SCALE)
    config = company_from(ONE_AGENT)
    first, second, third = (f"790355500{n:02}" for n in (1, 2, 3))
    records = await open_sink(db, tmp_path / "spill.jsonl", "a", flush_interval=0.05)
    try:
        async with simulator(clock) as sim:
            sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=1.0, hangup_after=20))
            sim.script_endpoint(mobile(second), EndpointScript("answer", after=1.0))
            async with instance(sim, db, "a", clock, config=config, store_sink=records) as running:
                one = await sim.place_call(first, "74951234567", app="switchboard-a")
                await sim.wait_for(lambda s: bool(s.live_bridges()), what="the first talking")
                two = await sim.place_call(second, "74951234567", app="switchboard-a")
                await sim.wait_for(lambda s: bool(s.channels[two].moh_class), what="2nd waits")
                three = await sim.place_call(third, "74951234567", app="switchboard-a")
                await sim.wait_for(lambda s: bool(s.channels[three].moh_class), what="3rd waits")
                await sim.press(two, "1")  # the second asks for a call-back and hangs up
                done = "SELECT count(*) FROM callbacks WHERE status = 'done'"
                await until(db, done, 1, within=60)
                async with asyncio.timeout(60):
                    while len(running.sink.records) < 3:
                        running.sink.finished.clear()
                        await running.sink.finished.wait()
            await sim.wait_for(lambda s: not s.live_channels(), timeout=200, what="all gone")
    finally:
        await records.close()
    by_channel = {r.channel_id: r for r in running.sink.records}
    assert by_channel[one].outcome.result == "connected"
    assert by_channel[two].outcome.result == "callback"
    assert by_channel[three].outcome.result == "connected"
    created = [
        r.query["endpoint"]
        for r in sim.requests
        if r.method == "POST" and r.path == "/ari/channels/create"
    ]
    # the agent for the first, then the call-back (agent first, then the customer), then
    # the third caller
    assert created == ["PJSIP/201", "PJSIP/201", mobile(second), "PJSIP/201"]
    async with connect(db) as conn:
        row = await conn.fetchrow(
            """SELECT c.status, c.attempts, c.number, a.agent FROM callbacks c
               JOIN callback_attempts a ON a.callback_id = c.id"""
        )
    assert row is not None
    assert (row["status"], row["agent"], row["attempts"], row["number"]) == (
        "done", "solo", 1, second,
    )  # fmt: skip


def test_the_configurations_callbacks_section_sets_attempts_and_their_spacing() -> None:
    company = company_from(
        CONFIG
        + """
callbacks: {max_attempts: 5, retry_after: [30, 120], employee_ring: 15, order: customer_first}
"""
    )
    settings = CallbackSettings.from_company(company)
    assert (settings.max_attempts, settings.order, settings.employee_ring) == (
        5, "customer_first", 15,
    )  # fmt: skip
    assert [settings.delay_after(n) for n in (1, 2, 3, 4)] == [30, 120, 120, 120]
    defaults = CallbackSettings.from_company(company_from(CONFIG))
    assert (defaults.max_attempts, defaults.backoff) == (3, (60, 300, 900))
    broken = load_text(CONFIG + "\ncallbacks: {retry_after: []}\n", "company.yaml")
    assert any("retry_after" in str(e) for e in broken.errors), broken.errors
