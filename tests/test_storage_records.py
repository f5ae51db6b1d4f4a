"""Call records in PostgreSQL: the background writer, its spill file, the sink.

Everything runs against a real PostgreSQL.  The outage test stops and starts
a cluster of its own (the session's shared one stays up for the other tests);
``SWITCHBOARD_TEST_OUTAGE=30`` makes its outage last 30 s instead of 2.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switchboard.calls import CallRecord, CallSink
from switchboard.config.company import Company
from switchboard.engine.actions import RequestCallback, SaveMessage, recording_name
from switchboard.engine.trace import Outcome, Step
from switchboard.simulate import AgentBehaviour, LastAgent, Simulation, simulate
from switchboard.storage.callbacks import claim_due
from switchboard.storage.migrate import migrate
from switchboard.storage.records import (
    RecordWriter,
    WriterStats,
    message_row,
    record_row,
    redact,
    repeats,
)
from switchboard.storage.sink import PostgresSink, open_sink
from tests.helpers import ROOT, example
from tests.postgres import Server, _free_port

OUTAGE_SECONDS = float(os.environ.get("SWITCHBOARD_TEST_OUTAGE", "2"))
DEADLINE = 60.0  # seconds any wait in these tests may take before it fails


# --- the database -------------------------------------------------------------------------


async def migrated(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.fixture
def nowhere() -> str:
    """The DSN of a database that is down: nothing listens on that port."""
    return f"postgresql://switchboard:secret@127.0.0.1:{_free_port()}/switchboard"


def finishes_without_waiting(step: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that must complete without ever suspending (waiting for anything)."""
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()
    raise AssertionError("the call waited: the sink suspended call_finished")


async def until(writer: RecordWriter, done: Any) -> WriterStats:
    async with asyncio.timeout(DEADLINE):
        return await writer.wait_for(done)


async def drained(writer: RecordWriter) -> WriterStats:
    async with asyncio.timeout(DEADLINE):
        return await writer.drained()


# --- calls ---------------------------------------------------------------------------------


def as_record(call_id: str, sim: Simulation) -> CallRecord:
    """What the ARI runtime would hand the sink for this simulated call."""
    return CallRecord(
        call_id=call_id,
        channel=f"PJSIP/trunk-{call_id}",
        channel_id=f"1764000000.{call_id}",
        called_raw=sim.call.called_raw,
        called=sim.call.called,
        caller=sim.call.caller,
        line=sim.call.line,
        scenario=sim.scenario,
        started_at=sim.started_at,
        steps=sim.steps,
        outcome=sim.outcome,
    )


def simple_record(
    call_id: str,
    caller: str = "79161112233",
    started_at: dt.datetime | None = None,
    agent: str | None = "ivanov",
    result: Any = "connected",
) -> CallRecord:
    started = started_at or dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)
    steps = [
        Step("office", "hours", "schedule", 0.0, exit="welcome", via="open", t_end=0.0),
        Step("office", "ring", "dial", 0.0, t_end=62.0, events=[{"event": "ring", "t": 0.0}]),
    ]
    outcome = Outcome(
        result=result,
        reason="agent hung up",
        duration=62.0,
        wait=2.0,
        agent=agent,
        department="sales" if agent else None,
        talk=60.0 if agent else None,
    )
    return CallRecord(
        call_id, "PJSIP/trunk-1", "1.1", "84951234567", "74951234567", caller, None,
        "office", started, steps, outcome,
    )  # fmt: skip


EXAMPLES: dict[str, list[dict[str, Any]]] = {
    # how a call may reach each example: a number as a provider sends it, or a line
    "office.yaml": [{"called": "+7 (495) 123-45-67"}, {"called": "8 495 765-43-21"}],
    "call-centre.yaml": [{"called": "74951112233"}, {"called": "84951112233"}],
    "multi-number.yaml": [
        {"called": "sip:84951234567@10.0.0.1"},
        {"called": "74959876543"},
        {"line": 3},
        {"called": "74950000000"},
    ],
}
TIMES = [
    "2026-12-01T10:15:00",  # Tuesday morning
    "2026-12-01T13:30:00",  # lunch
    "2026-12-01T20:00:00",  # evening
    "2026-12-05T11:00:00",  # Saturday
    "2026-12-06T11:00:00",  # Sunday
    "2027-01-01T10:00:00",  # a holiday
    "2026-12-02T03:00:00",  # night
]
BEHAVIOURS = ["answer", "answer:1", "answer:8", "busy", "busy:95", "noanswer", "offline"]
KEYS = ["", "", "1", "2", "3", "9", "101", "103", "w" * 50 + "1", "w" * 130 + "1", "ww2", "11"]


def varied_calls(count: int, seed: int = 4) -> list[Simulation]:
    """``count`` simulated calls of the examples: callers, times, keys and agents vary."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix of calls, not a secret
    companies: dict[str, Company] = {name: example(name) for name in EXAMPLES}
    sims: list[Simulation] = []
    for _ in range(count):
        name = rng.choice(list(EXAMPLES))
        company = companies[name]
        agents = {
            emp: AgentBehaviour.parse(rng.choice(BEHAVIOURS))
            for emp in company.employees
            if rng.random() < 0.5
        }
        caller = rng.choice(
            [
                "79161112233",
                "+7 903 444-55-66",
                "8 916 555 00 00",
                f"7916{rng.randrange(10**7):07d}",
            ]
        )
        last_agent = (
            LastAgent(rng.choice(list(company.employees)), rng.uniform(0, 60))
            if rng.random() < 0.3
            else None
        )
        sims.append(
            simulate(
                company,
                **rng.choice(EXAMPLES[name]),
                caller=caller,
                at=dt.datetime.fromisoformat(rng.choice(TIMES)).replace(tzinfo=company.tz),
                dtmf=rng.choice(KEYS),
                agents=agents,
                hangup_after=rng.choice([None, None, None, 5.0, 30.0, 100.0, 400.0]),
                talk=rng.choice([10.0, 60.0, 300.0]),
                last_agent=last_agent,
            )
        )
    return sims


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_thousand_simulated_calls_leave_a_thousand_records_that_match_the_simulator(
    db: str, sink: PostgresSink
) -> None:
    sims = varied_calls(1000)
    assert len({s.outcome.result for s in sims}) >= 4, "the mix should end calls many ways"
    sink_as_protocol: CallSink = sink  # the runtime takes it as its CallSink
    for n, sim in enumerate(sims):
        call_id = f"sim-{n}"
        for message in sim.messages:
            await sink_as_protocol.save_message(call_id, message)
        await sink_as_protocol.call_finished(as_record(call_id, sim))
    stats = await drained(sink.writer)
    messages = sum(len(s.messages) for s in sims)
    assert (stats.written, stats.inserted, stats.rejected) == (1000 + messages,) * 2 + (0,)

    rows = {r["call_id"]: r for r in await fetch(db, "SELECT * FROM calls")}
    assert len(rows) == 1000
    for n, sim in enumerate(sims):
        row, outcome = rows[f"sim-{n}"], sim.outcome
        assert json.loads(row["steps"]) == [step.as_json() for step in sim.steps]
        assert (row["result"], row["reason"], row["agent"], row["department"]) == (
            outcome.result,
            outcome.reason,
            outcome.agent,
            outcome.department,
        )
        assert row["wait_s"] == pytest.approx(outcome.wait, rel=1e-6, abs=1e-4)
        assert row["duration_s"] == pytest.approx(outcome.duration, rel=1e-6, abs=1e-4)
        if outcome.talk is None:
            assert row["talk_s"] is None
        else:
            assert row["talk_s"] == pytest.approx(outcome.talk, rel=1e-6, abs=1e-4)
        assert row["started_at"] == sim.started_at
        elapsed = (row["ended_at"] - row["started_at"]).total_seconds()
        assert elapsed == pytest.approx(outcome.duration, abs=1e-5)
        assert (row["called_raw"], row["called"], row["caller"], row["line"]) == (
            sim.call.called_raw,
            sim.call.called,
            sim.call.caller,
            sim.call.line,
        )
        assert (row["scenario"], row["instance"], row["transfers"]) == (sim.scenario, "test", 0)
        assert row["repeats"] == repeats(sim.steps)

    stored = await fetch(db, "SELECT call_id, recording, length_s FROM messages")
    assert len(stored) == messages
    expected = {
        (f"sim-{n}", recording_name(f"sim-{n}", m.recording_id))
        for n, s in enumerate(sims)
        for m in s.messages
    }
    assert {(r["call_id"], r["recording"]) for r in stored} == expected


@pytest.mark.asyncio
async def test_records_submitted_through_a_database_outage_are_all_written_exactly_once(
    own_server: Server, tmp_path: Path
) -> None:
    """PostgreSQL stops in the middle of a run of calls: calls go on, no record is lost.

    Handing a record over never suspends the call (checked on every call), so it
    cannot wait for the database; the database holds each call's row exactly once.
    """
    spill = tmp_path / "spill.jsonl"
    sink = await open_sink(
        own_server.dsn, spill, "test", max_memory=200, batch_size=100, flush_interval=0.05
    )
    writer = sink.writer
    writer.backoff_max = 0.5  # come back quickly once the server is up again
    company = example("call-centre.yaml")
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)
    submitted: list[str] = []
    stop_calls = asyncio.Event()

    async def calls() -> None:
        """About 500 calls a second, each routed by the engine, its record handed over."""
        n = 0
        while not stop_calls.is_set():
            for _ in range(5):
                sim = simulate(company, caller=f"7916{n:07d}", at=at)
                call_id = f"outage-{n}"
                finishes_without_waiting(sink.call_finished(as_record(call_id, sim)))
                submitted.append(call_id)
                n += 1
            await asyncio.sleep(0.01)

    producer = asyncio.create_task(calls())
    try:
        await until(writer, lambda s: s.written >= 300)
        await own_server.stop()
        down = await until(writer, lambda s: s.failures >= 1 and not s.connected)
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
        during = writer.stats()
        assert during.written == down.written, "nothing can be written while it is down"
        assert during.spilled > writer.max_memory, "records beyond the memory bound spill"
        assert len(submitted) > 300 + 100 * OUTAGE_SECONDS, "calls went on during the outage"
        callback = RequestCallback("callback-1", "79160000000", "79160000000", "", None, "s", "n")
        assert await sink.request_callback("outage-x", callback) is False
        await own_server.start()
        back = await until(writer, lambda s: s.connected)
        await until(writer, lambda s: s.written >= back.written + 300)
    finally:
        stop_calls.set()
        await producer
    stats = await drained(writer)
    await sink.close()

    assert stats.written >= len(submitted)  # more if a commit's reply was lost in the outage
    assert stats.rejected == stats.dropped == 0
    rows = await fetch(own_server.dsn, "SELECT call_id FROM calls")
    stored = [r["call_id"] for r in rows]
    assert len(stored) == len(set(stored)) == len(submitted)
    assert set(stored) == set(submitted)
    assert not spill.exists() or spill.stat().st_size == 0
    assert not writer.replay_path.exists()


@pytest.mark.asyncio
async def test_the_same_record_submitted_twice_is_stored_once(db: str, tmp_path: Path) -> None:
    writer = RecordWriter(db, tmp_path / "spill.jsonl", flush_interval=0.05)
    await writer.start()
    row = record_row(simple_record("twice"), "test", None)
    writer.submit(row)
    writer.submit(dict(row))  # in the same batch
    await drained(writer)
    writer.submit(dict(row))  # and once more, after it was written
    stats = await drained(writer)
    await writer.stop()
    assert (stats.written, stats.inserted) == (3, 1)
    assert len(await fetch(db, "SELECT 1 FROM calls WHERE call_id = 'twice'")) == 1


@pytest.mark.asyncio
async def test_a_normal_stop_writes_everything_still_in_memory(db: str, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    writer = RecordWriter(db, spill, batch_size=10_000, flush_interval=3600)
    await writer.start()
    await until(writer, lambda s: s.connected)  # then it sleeps for an hour
    for n in range(100):
        writer.submit(record_row(simple_record(f"stop-{n}"), "test", 1))
    assert writer.stats().written == 0
    await writer.stop()
    assert writer.stats().written == 100
    assert len(await fetch(db, "SELECT 1 FROM calls")) == 100
    assert not spill.exists()


@pytest.mark.asyncio
async def test_a_stop_while_the_database_is_down_spills_and_the_next_start_writes_it(
    db: str, nowhere: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    down = RecordWriter(nowhere, spill, flush_interval=0.05, stop_timeout=1.0)
    await down.start()
    await until(down, lambda s: s.failures >= 1)
    for n in range(30):
        down.submit(record_row(simple_record(f"kept-{n}"), "test", None))
    message = SaveMessage("recording-1", "79161112233", "74951234567", 3.0, 12.5, "sales")
    created = dt.datetime(2026, 12, 1, 7, 20, tzinfo=dt.UTC)
    down.submit(message_row("kept-0", message, created, "rec-kept-0"), "messages")
    await down.stop()
    assert down.stats().in_spill == 31
    assert len(spill.read_text().splitlines()) == 31
    assert "secret" not in (down.stats().last_error or "")
    assert "secret" not in redact(nowhere)

    up = RecordWriter(db, spill, flush_interval=0.05)
    await up.start()
    assert up.stats().in_spill == 31  # counted from the file before anything is written
    stats = await drained(up)
    await up.stop()
    assert (stats.written, stats.inserted) == (31, 31)
    assert len(await fetch(db, "SELECT 1 FROM calls WHERE call_id LIKE 'kept-%'")) == 30
    rows = await fetch(db, "SELECT * FROM messages")
    assert [(r["call_id"], r["recording"], r["length_s"], r["created_at"]) for r in rows] == [
        ("kept-0", "rec-kept-0", 12.5, created)
    ]
    assert not spill.exists()
    assert not up.replay_path.exists()


def test_beyond_the_memory_bound_the_oldest_records_go_to_the_spill_file(
    nowhere: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    writer = RecordWriter(nowhere, spill, max_memory=10)
    for n in range(25):
        writer.submit(record_row(simple_record(f"r{n}"), "test", None))
    stats = writer.stats()
    assert (stats.in_memory, stats.spilled, stats.in_spill) == (10, 15, 15)
    asyncio.run(writer.stop())  # never started: memory goes to the file too
    lines = [json.loads(line) for line in spill.read_text().splitlines()]
    assert [row["call_id"] for _, row in lines] == [f"r{n}" for n in range(25)]


@pytest.mark.asyncio
async def test_rows_the_database_refuses_are_set_aside_and_the_others_written(
    db: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    good = record_row(simple_record("good-1"), "test", None)
    with spill.open("w") as file:  # a spill file left by a crash in the middle of a line
        file.write(
            json.dumps(
                [
                    "calls",
                    {
                        **good,
                        "started_at": "2026-12-01T07:15:00+00:00",
                        "ended_at": "2026-12-01T07:16:02+00:00",
                    },
                ]
            )
            + "\n"
        )
        file.write('["calls", {"call_id": "cut-sho')  # fmt: skip
    writer = RecordWriter(db, spill, flush_interval=0.05)
    await writer.start()
    writer.submit(record_row(simple_record("bad", result="lost"), "test", None))  # CHECK fails
    writer.submit(record_row(simple_record("good-2"), "test", None))
    stats = await drained(writer)
    await writer.stop()
    assert (stats.written, stats.rejected) == (2, 2)
    stored = {r["call_id"] for r in await fetch(db, "SELECT call_id FROM calls")}
    assert stored == {"good-1", "good-2"}
    rejected = writer.rejected_path.read_text().splitlines()
    assert len(rejected) == 2
    assert sum("cut-sho" in line for line in rejected) == 1
    assert sum('"call_id": "bad"' in line for line in rejected) == 1


@pytest.mark.asyncio
async def test_a_callback_for_a_time_the_caller_chose_is_due_then_and_not_claimed_before(
    db: str, sink: PostgresSink
) -> None:
    chosen = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    request = RequestCallback(
        "callback-1", "79161112233", "79161112233", "74951234567", "support", "office",
        "offer", due=chosen.astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat(),
    )  # fmt: skip
    # a kept place's hold (300 s) does not apply: the caller said when
    assert await sink.request_callback("c-78", request, hold=300.0) is True
    [row] = await fetch(db, "SELECT due_at, status FROM callbacks")
    assert (row["due_at"], row["status"]) == (chosen, "pending")
    conn = await asyncpg.connect(db)
    try:
        assert await claim_due(conn, "worker", 10) == []
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_a_callback_request_is_committed_once_and_answered_true(
    db: str, sink: PostgresSink
) -> None:
    request = RequestCallback(
        "callback-1", "79161112233", "79161112233", "74951234567", "support", "office", "offer"
    )
    assert await sink.request_callback("c-77", request) is True
    assert await sink.request_callback("c-77", request) is True  # a retry: still one row
    rows = await fetch(db, "SELECT request_id, call_id, number, department, status FROM callbacks")
    assert [tuple(r) for r in rows] == [
        ("c-77/callback-1", "c-77", "79161112233", "support", "pending")
    ]


@pytest.mark.asyncio
async def test_callbacks_and_lookups_answer_false_or_none_when_the_database_is_away(
    nowhere: str, tmp_path: Path
) -> None:
    sink = await open_sink(nowhere, tmp_path / "spill.jsonl", "test", db_timeout=1.0)
    request = RequestCallback("callback-1", "79161112233", "", "", None, "office", "offer")
    began = time.monotonic()
    assert await sink.request_callback("c-1", request) is False
    assert await sink.last_agent("79161112233", 30) is None
    assert await sink.contact("79161112233") is None
    assert time.monotonic() - began < 4.5
    await sink.close()


@pytest.mark.asyncio
async def test_last_agent_is_the_latest_employee_within_the_window_only(
    sink: PostgresSink,
) -> None:
    now = dt.datetime.now(dt.UTC)
    caller, other = "79161112233", "79035550000"
    history = [
        (caller, 40, "director"),
        (caller, 20, "ivanov"),
        (caller, 5, "petrov"),
        (caller, 1, None),  # abandoned in the queue: nobody talked to them
        (other, 0.1, "sidorova"),
    ]
    for n, (who, days_ago, agent) in enumerate(history):
        started = now - dt.timedelta(days=days_ago)
        result = "connected" if agent else "abandoned"
        await sink.call_finished(simple_record(f"h{n}", who, started, agent, result))
    await drained(sink.writer)
    assert await sink.last_agent(caller, 30) == "petrov"
    assert await sink.last_agent(caller, 60) == "petrov"
    assert await sink.last_agent(caller, 3) is None  # petrov is 5 days ago: outside
    assert await sink.last_agent(caller, 4.5) is None
    assert await sink.last_agent(other, 0.5) == "sidorova"  # fractional days
    assert await sink.last_agent("79990000000", 30) is None


@pytest.mark.asyncio
async def test_contact_is_the_employee_the_contacts_table_names(
    db: str, sink: PostgresSink
) -> None:
    conn = await asyncpg.connect(db)
    try:
        await conn.execute(
            "INSERT INTO contacts (caller, employee_id, source) VALUES ($1, $2, 'manual')",
            "79161112233",
            "ivanov",
        )
    finally:
        await conn.close()
    assert await sink.contact("79161112233") == "ivanov"
    assert await sink.contact("79990000000") is None


CRASHING_WRITER = """
import asyncio, sys
from pathlib import Path
from switchboard.storage.records import RecordWriter, record_row
from tests.test_storage_records import simple_record

async def main() -> None:
    writer = RecordWriter(sys.argv[1], Path(sys.argv[2]), flush_interval=0.05)
    await writer.start()
    for n in range(100):
        writer.submit(record_row(simple_record(f"crash-{n}"), "test", None))
    async with asyncio.timeout(30):
        await writer.wait_for(lambda s: s.spilled >= 100)
    print("spilled", flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_records_spilled_while_the_database_is_down_survive_a_crash(
    db: str, nowhere: str, tmp_path: Path
) -> None:
    spill = tmp_path / "spill.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_WRITER, nowhere, str(spill),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(DEADLINE):
            assert process.stdout is not None
            while (line := await process.stdout.readline()) != b"spilled\n":
                assert line, "the writer ended before it spilled"  # (log lines come first)
    finally:
        process.kill()  # SIGKILL: no stop, no flush, no clean-up
        await process.wait()
    assert len(spill.read_bytes().splitlines()) == 100

    writer = RecordWriter(db, spill, flush_interval=0.05)
    await writer.start()
    stats = await drained(writer)
    await writer.stop()
    assert stats.inserted == 100
    assert len(await fetch(db, "SELECT 1 FROM calls WHERE call_id LIKE 'crash-%'")) == 100


@pytest.mark.parametrize(
    ("extra", "stored"),
    [({}, 0), ({"transfers": 2}, 2), ({"transfers": "2"}, 0), ({"transfers": -1}, 0)],
)
def test_the_calls_row_counts_the_agents_transfers(extra: dict[str, Any], stored: int) -> None:
    record = simple_record("transferred")
    record = dataclasses.replace(record, outcome=dataclasses.replace(record.outcome, extra=extra))
    assert record_row(record, "test", None)["transfers"] == stored
