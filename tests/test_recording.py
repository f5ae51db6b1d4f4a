"""Conversation recording (issue 15): `record: always | never | on_demand` on a department
or a scenario, the legal notice callers hear first, the recording named by the call's
id and linked from its record, served by the admin API only with a token, and removed
after `recording.keep_days`.

Over ARI the bridge is recorded (``POST /bridges/{id}/record``: the simulated Asterisk
writes the file into its recording folder, as Asterisk does); over FastAGI MixMonitor
runs on the caller's channel before the Dial, writing only while bridged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import uuid
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from asterisk_sim import EndpointScript
from switchboard.admin.server import AdminServer
from switchboard.calls import CallRecord
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from switchboard.simulate import AgentBehaviour, simulate
from switchboard.storage.api_tokens import create_token
from switchboard.storage.call_recordings import prune
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.sink import PostgresSink
from tests.agi_stack import AgiStack
from tests.helpers import company_from
from tests.test_admin_api import Api

CALLER = "79035550000"
SALES, SUPPORT, PRIVATE = "74951110001", "74951110002", "74951110003"
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
OFFICE = """
employees:
  - {id: anna, name: Anna, extension: "101"}
  - {id: boris, name: Boris, extension: "102"}
departments:
  - {id: sales, members: [anna], record: always}
  - {id: support, members: [boris], record: on_demand}
prompts:
  recording-notice: {duration: 3}
recording: {notice: [recording-notice], keep_days: 30}
numbers:
  - {number: "74951110001", scenario: sales}
  - {number: "74951110002", scenario: support}
  - {number: "74951110003", scenario: private}
scenarios:
  sales:
    start: ring
    nodes:
      ring: {type: dial, target: sales, ring_timeout: 20, noanswer: bye}
      bye: {type: hangup}
  support:
    start: queue
    nodes:
      queue: {type: queue, department: support, max_wait: 120, overflow: bye}
      bye: {type: hangup}
  private:
    start: ring
    nodes:
      ring: {type: dial, target: anna, ring_timeout: 20, noanswer: bye}
      bye: {type: hangup}
"""
TALK = 20.0


def conversation(call_id: str) -> str:
    return f"switchboard-{call_id}-conversation"


def files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def events_of(record: CallRecord, *names: str) -> list[dict[str, object]]:
    return [e for step in record.steps for e in step.events if e["event"] in names]


@pytest.fixture
def recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Asterisk's recording folder, as the simulated Asterisk writes it and Switchboard
    reads it (SWITCHBOARD_RECORDINGS_DIR)."""
    folder = tmp_path / "recording"
    folder.mkdir()
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(folder))
    return folder


@asynccontextmanager
async def office(
    sink: PostgresSink | None, recordings: Path
) -> AsyncIterator[tuple[AriStack, Api | None]]:
    """The app on the simulator, recording into ``recordings``; with ``sink``, records in
    PostgreSQL and an admin API client holding a token."""
    stack = AriStack(
        company_from(OFFICE), clock=ScaledClock(0.02), when=WHEN, store=sink,
        recordings_dir=recordings,
    )  # fmt: skip
    async with stack:
        for endpoint in ("PJSIP/101", "PJSIP/102"):
            stack.sim.script_endpoint(
                endpoint, EndpointScript("answer", after=1.0, hangup_after=TALK)
            )
        if sink is None:
            yield stack, None
            return
        status = stack.app.status()
        status.database = DatabaseProbe(sink.pool)
        server = AdminServer(status)
        async with server, aiohttp.ClientSession() as http:
            await server.start("127.0.0.1", 0)
            api = Api(server.url, http)
            async with sink.pool.acquire() as conn:
                api.token_name = f"tests-{uuid.uuid4().hex[:8]}"
                api.token = await create_token(conn, api.token_name)
            yield stack, api


@pytest.mark.asyncio
async def test_an_always_recorded_conversation_is_a_file_under_the_call_id_served_with_a_token(
    sink: PostgresSink, recordings: Path
) -> None:
    async with office(sink, recordings) as (stack, api):
        assert api is not None
        record = await stack.call(caller=CALLER, called=SALES)
        call_id = record.call_id
        sim = stack.sim
        bridge_records = [
            r for r in sim.requests if r.method == "POST" and r.path.endswith("/record")
        ]
        notice = next(p for p in sim.playbacks.values() if "sound:recording-notice" in p.media)
        leg = next(c for c in sim.pbx.channels.values() if c.created_by_ari)
        await sink.writer.drained()

        assert (record.outcome.result, record.outcome.agent) == ("connected", "anna")
        # the caller heard the notice to its end before the employee's phone rang
        assert notice.target_id == record.channel_id
        assert notice.finished_at is not None
        assert notice.finished_at <= leg.created_at
        # the bridge was recorded, under the call's id, into Asterisk's folder
        (request,) = bridge_records
        assert request.path == f"/ari/bridges/{call_id}-bridge/record"
        assert dict(request.query)["name"] == conversation(call_id)
        file = recordings / f"{conversation(call_id)}.wav"
        with wave.open(str(file)) as wav:
            seconds = wav.getnframes() / wav.getframerate()
        assert seconds == pytest.approx(TALK, abs=1.0)  # the conversation, not the ringing
        assert record.outcome.extra["recording"] == "conversation"
        assert [e["by"] for e in events_of(record, "recording")] == ["always"]

        # linked from the call's record, and served only with a token
        status, body = await api.get(f"/api/v1/calls/{call_id}")
        assert status == 200, body
        assert body["recording"] == conversation(call_id)
        assert body["recording_url"] == f"/api/v1/calls/{call_id}/recording"
        url = body["recording_url"]
        status, _ = await api.get(url, auth=False)
        assert status == 401
        status, _ = await api.get(url, token="not-a-token")  # noqa: S106 - a wrong one
        assert status == 401
        async with api.http.get(
            api.url + url, headers={"Authorization": f"Bearer {api.token}"}
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "audio/wav"
            assert await response.read() == file.read_bytes()

        # the retention period passes: the file goes, the link with it, the API says so
        async with sink.pool.acquire() as conn:
            ended = await conn.fetchval("SELECT ended_at FROM calls WHERE call_id = $1", call_id)
            kept = await prune(conn, recordings, 30, ended + dt.timedelta(days=29))
            assert (kept.removed, file.exists()) == (0, True)
            done = await prune(conn, recordings, 30, ended + dt.timedelta(days=31))
            row = await conn.fetchrow(
                "SELECT recording, recording_removed_at FROM calls WHERE call_id = $1", call_id
            )
        assert (done.removed, done.missing, done.failed) == (1, 0, 0)
        assert not file.exists()
        assert row["recording"] is None
        assert row["recording_removed_at"] is not None
        status, body = await api.get(url)
        assert (status, body["error"]) == (410, "recording_removed")
        assert (await api.get(f"/api/v1/calls/{call_id}"))[1]["recording_url"] is None


@pytest.mark.asyncio
async def test_on_demand_records_from_the_employees_key_and_never_records_without_it(
    recordings: Path,
) -> None:
    async with office(None, recordings) as (stack, _):
        sim = stack.sim
        # boris talks without pressing anything: no recording at all
        quiet = await stack.call(caller=CALLER, called=SUPPORT)
        assert quiet.outcome.result == "connected"
        assert "recording" not in quiet.outcome.extra
        assert not files(recordings)
        # next time he presses 2, then *3 (the on-demand key) ten seconds into the talk
        caller = await stack.place(caller=CALLER, called=SUPPORT)
        await sim.wait_for(
            lambda s: any(
                c.bridge_id is not None and c.created_by_ari and c.live for c in s.live_channels()
            ),
            timeout=15,
            what="boris bridged",
        )
        leg = next(c for c in sim.live_channels() if c.created_by_ari)
        await stack.clock.sleep(5.0)
        await sim.press(leg.id, "2")
        pressed_at = sim.now()
        await sim.press(leg.id, "*3")
        record = await stack.record_of(caller)
    (request,) = [r for r in sim.requests if r.method == "POST" and r.path.endswith("/record")]
    assert request.t >= pressed_at  # not before he asked
    assert [e["by"] for e in events_of(record, "recording")] == ["on_demand"]
    assert record.outcome.extra["recording"] == "conversation"
    with wave.open(str(recordings / f"{conversation(record.call_id)}.wav")) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert 0 < seconds < TALK - 4  # from the key on, not the whole conversation


@pytest.mark.asyncio
async def test_a_conversation_nobody_records_has_no_notice_and_no_recording(
    recordings: Path,
) -> None:
    async with office(None, recordings) as (stack, _):
        record = await stack.call(caller=CALLER, called=PRIVATE)
        sim = stack.sim
        assert record.outcome.result == "connected"
        assert not [p for p in sim.playbacks.values() if "sound:recording-notice" in p.media]
        assert not [r for r in sim.requests if r.path.endswith("/record")]
        assert "recording" not in record.outcome.extra
        assert not files(recordings)


def test_simulate_shows_the_notice_and_the_recording() -> None:
    company = company_from(OFFICE)
    agents = {"anna": AgentBehaviour("answer", 1.0)}
    result = simulate(company, called=SALES, caller=CALLER, at=WHEN, agents=agents)
    events = [e["event"] for step in result.steps for e in step.events]
    assert events.index("recording notice") < events.index("ring")
    assert events.index("connected") < events.index("recording")
    first_ring = next(e for s in result.steps for e in s.events if e["event"] == "ring")
    assert first_ring["t"] == pytest.approx(3.0)  # after the 3 s notice
    assert result.outcome.extra["recording"] == "conversation"
    private = simulate(company, called=PRIVATE, caller=CALLER, at=WHEN, agents=agents)
    assert "recording notice" not in [e["event"] for s in private.steps for e in s.events]


@pytest.mark.asyncio
async def test_over_fastagi_mixmonitor_records_the_bridged_conversation_under_the_call_id() -> None:
    company = company_from(OFFICE)
    agents = {"anna": AgentBehaviour("answer", 1.0)}
    async with AgiStack(company, WHEN, agents, talk=TALK) as stack:
        call = await stack.call(caller=CALLER, dnid=SALES, extension=SALES)
        (record,) = stack.memory.records
        private = await stack.call(caller=CALLER, dnid=PRIVATE, extension=PRIVATE)
    (monitor,) = call.mixmonitors
    (dial,) = call.dials
    name = conversation(record.call_id)
    assert monitor.file == f"/var/spool/asterisk/recording/{name}.wav"
    assert monitor.options == "b"  # only while bridged
    assert monitor.t_start <= dial.t_start
    assert monitor.recorded(call.dials, call.duration) == pytest.approx(TALK)
    assert record.outcome.extra["recording"] == "conversation"
    # the notice first, as over ARI
    assert call.played[0][1].endswith("recording-notice")
    assert not private.mixmonitors


@pytest.mark.asyncio
async def test_over_fastagi_an_unanswered_dial_stops_the_mixmonitor() -> None:
    company = company_from(OFFICE)
    async with AgiStack(company, WHEN, {"anna": AgentBehaviour("noanswer")}) as stack:
        call = await stack.call(caller=CALLER, dnid=SALES, extension=SALES)
        (record,) = stack.memory.records
    (monitor,) = call.mixmonitors
    assert monitor.t_stop is not None
    assert monitor.recorded(call.dials, call.duration) == 0.0
    assert "recording" not in record.outcome.extra


def test_switchboard_recordings_prune_removes_what_is_older_than_keep_days(
    db: str, recordings: Path
) -> None:
    async def setup(*calls: tuple[str, int]) -> None:
        conn = await asyncpg.connect(db)
        try:
            for call_id, days in calls:
                ended = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
                await conn.execute(
                    """INSERT INTO calls (call_id, started_at, ended_at, scenario, result,
                                          reason, wait_s, duration_s, steps, recording)
                       VALUES ($1, $2, $2, 'sales', 'connected', 'agent hung up', 0, 60,
                               '[]', $3)""",
                    call_id, ended, conversation(call_id),
                )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(setup(("old", 40), ("gone", 40), ("new", 2)))
    for call_id in ("old", "new"):
        (recordings / f"{conversation(call_id)}.wav").write_bytes(b"RIFF")
    env = {"SWITCHBOARD_DSN": db, "SWITCHBOARD_RECORDINGS_DIR": str(recordings), "PATH": ""}
    command = [sys.executable, "-m", "switchboard", "recordings", "prune", "--keep-days", "30"]
    dry = subprocess.run(
        [*command, "--dry-run"], env=env, capture_output=True, text=True, check=False
    )
    assert dry.returncode == 0, dry.stderr
    assert "would remove 1 recording(s)" in dry.stdout
    assert (recordings / f"{conversation('old')}.wav").exists()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "removed 1 recording(s) older than 30 day(s)" in done.stdout
    assert "1 already gone" in done.stdout
    assert not (recordings / f"{conversation('old')}.wav").exists()
    assert (recordings / f"{conversation('new')}.wav").exists()
    # a file that cannot be deleted (here a folder in its place) stays linked: exit 1
    asyncio.run(setup(("stuck", 40)))
    (recordings / f"{conversation('stuck')}.wav").mkdir()
    stuck = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert stuck.returncode == 1
    assert "1 could not be removed" in stuck.stdout
    assert "recording not removed" in stuck.stdout + stuck.stderr

    async def link(call_id: str) -> str | None:
        conn = await asyncpg.connect(db)
        try:
            value: str | None = await conn.fetchval(
                "SELECT recording FROM calls WHERE call_id = $1", call_id
            )
            return value
        finally:
            await conn.close()

    assert asyncio.run(link("stuck")) == conversation("stuck")
    assert asyncio.run(link("old")) is None
    refused = subprocess.run(
        [sys.executable, "-m", "switchboard", "recordings", "prune"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "--keep-days" in refused.stderr
