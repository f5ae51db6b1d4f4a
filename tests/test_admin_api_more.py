"""The admin API's leftovers (issue 12), asked over real HTTP as in `test_admin_api`:
a recording's file errors said as such, agent changes that reach every instance,
pages of call-backs and messages, and a limit on failed token checks.

The runtime is `switchboard run`'s Stasis app against the Asterisk simulator
(`AriStack`), its records also going to a real PostgreSQL; two instances share
one database as two `switchboard run` processes on two Asterisks would.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import pwd
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from switchboard.acd.agents import AgentChange
from switchboard.acd.service import Acd
from switchboard.admin.server import AdminServer
from switchboard.admin.tokens import FailedChecks
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from switchboard.serving import keep_agent_states
from switchboard.storage.agents import stored_agent_states
from switchboard.storage.api_tokens import create_token
from switchboard.storage.callbacks import insert_request
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.sink import PostgresSink, open_sink
from tests.helpers import company_from
from tests.test_admin_api import Api, office
from tests.test_admin_ari import CALLED, OFFICE, WHEN

FOLLOW_WITHIN = 10.0  # real seconds a second instance has to follow a change


@pytest.fixture
def recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "recording"
    folder.mkdir()
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(folder))
    return folder


async def add_message(sink: PostgresSink, recording: str, minutes: int = 0) -> int:
    async with sink.pool.acquire() as conn:
        message_id: int = await conn.fetchval(
            """INSERT INTO messages (call_id, recording, caller, called, mailbox, created_at,
                                     length_s)
               VALUES ($1, $2, '79161112233', $3, 'sales', $4, 12.5) RETURNING id""",
            f"call-{recording[:20]}-{minutes}",
            recording,
            CALLED,
            WHEN + dt.timedelta(minutes=minutes),
        )
    return message_id


@contextlib.contextmanager
def unreadable(folder: Path) -> Iterator[None]:
    """While in the block, this process cannot open files in ``folder``: the folder's
    mode says so, and root (who may open anything) is ``nobody`` meanwhile."""
    mode = folder.stat().st_mode
    folder.chmod(0)
    as_root = os.geteuid() == 0
    try:
        if as_root:
            os.seteuid(pwd.getpwnam("nobody").pw_uid)
        yield
    finally:
        if as_root:
            os.seteuid(0)
        folder.chmod(mode)


@pytest.mark.asyncio
async def test_a_recording_not_there_is_a_404_and_one_not_readable_a_500_never_the_database(
    sink: PostgresSink, tmp_path: Path, recordings: Path
) -> None:
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32) + bytes(200_000)  # several chunks
    (recordings / "kept.wav").write_bytes(wav)
    kept = await add_message(sink, "kept")
    gone = await add_message(sink, "gone", 1)
    long_name = await add_message(sink, "x" * 300, 2)  # no file can have that name
    async with office(sink, tmp_path) as (_, api):
        status, body = await api.get(f"/api/v1/messages/{kept}/recording")
        assert (status, body) == (200, wav)

        status, body = await api.get(f"/api/v1/messages/{gone}/recording")
        assert (status, body["error"]) == (404, "recording_missing")
        assert f"message {gone} (gone.wav)" in body["message"]
        status, body = await api.get(f"/api/v1/messages/{long_name}/recording")
        assert (status, body["error"]) == (404, "recording_missing")
        assert f"message {long_name} " in body["message"]

        with unreadable(recordings):
            status, body = await api.get(f"/api/v1/messages/{kept}/recording")
        assert status == 500
        assert body == {
            "error": "recording_unreadable",
            "message": f"the recording of message {kept} (kept.wav) cannot be read: "
            "Permission denied",
        }
        assert (await api.get("/readyz", auth=False))[0] == 200  # the database is fine
        assert (await api.get(f"/api/v1/messages/{kept}/recording"))[1] == wav


@contextlib.asynccontextmanager
async def instance(db: str, tmp_path: Path, name: str) -> AsyncIterator[AriStack]:
    """One `switchboard run` instance on the database ``db``, as `serve` runs it: its
    records there, its agents' states read from and kept there, requests applied."""
    sink = await open_sink(db, tmp_path / f"{name}.jsonl", name, flush_interval=0.05)
    try:
        stack = AriStack(company_from(OFFICE), clock=ScaledClock(0.02), when=WHEN, store=sink)
        async with stack:
            runtime = stack.app.runtime
            async with keep_agent_states(runtime.acd, runtime.clock, sink, db, name):
                yield stack
    finally:
        await sink.close()


@contextlib.asynccontextmanager
async def admin_api(stack: AriStack) -> AsyncIterator[Api]:
    """``stack``'s admin server (with its database, as `runtime_status` gives it) and a
    client holding a fresh token."""
    assert isinstance(stack.store, PostgresSink)
    status = stack.app.status()
    status.database = DatabaseProbe(stack.store.pool)
    async with AdminServer(status) as server, aiohttp.ClientSession() as http:
        await server.start("127.0.0.1", 0)
        async with stack.store.pool.acquire() as conn:
            token = await create_token(conn, f"tests-{uuid.uuid4().hex[:8]}")
        yield Api(server.url, http, token)


class Follower:
    """The changes an ACD makes, as they come; `until` one that holds."""

    def __init__(self, acd: Acd) -> None:
        self.changes: list[AgentChange] = []
        self._changed = asyncio.Event()
        acd.on_change(self._heard)

    def _heard(self, change: AgentChange) -> None:
        self.changes.append(change)
        self._changed.set()

    async def until(self, holds: Callable[[AgentChange], bool], what: str) -> AgentChange:
        try:
            async with asyncio.timeout(FOLLOW_WITHIN):
                while True:
                    for change in self.changes:
                        if holds(change):
                            return change
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"the other instance did not follow: {what}; its changes: {self.changes}"
            ) from None


@pytest.mark.asyncio
async def test_an_agent_change_made_through_one_instances_api_reaches_the_other_instance(
    db: str, tmp_path: Path
) -> None:
    async with (
        instance(db, tmp_path, "first") as first,
        instance(db, tmp_path, "second") as second,
        admin_api(first) as api,
    ):
        other = Follower(second.app.runtime.acd)
        other_acd = second.app.runtime.acd

        status, anna = await api.post("/api/v1/agents/anna/pause", body={"reason": "lunch"})
        assert (status, anna["state"], anna["reason"]) == (200, "paused", "lunch")
        heard = await other.until(lambda c: c.agent == "anna", "anna paused")
        assert (heard.state, heard.reason, heard.by) == ("paused", "lunch", "api")
        assert other_acd.agents["anna"].state == "paused"

        status, boris = await api.post("/api/v1/agents/boris/logout")
        assert (status, boris["state"]) == (200, "logged_out")
        await other.until(lambda c: (c.agent, c.state) == ("boris", "logged_out"), "boris out")
        status, body = await api.post("/api/v1/agents/boris/resume")
        assert (status, body["error"]) == (409, "logged_out")  # as `switchboard agents` says

        status, anna = await api.post("/api/v1/agents/anna/resume")
        assert (status, anna["state"]) == (200, "available")
        await other.until(lambda c: (c.agent, c.state) == ("anna", "available"), "anna back")
        status, anna = await api.post("/api/v1/agents/anna/resume")  # nothing to do
        assert (status, anna["state"]) == (200, "available")

        mine = [(c.agent, c.state, c.by) for c in first.app.runtime.acd.changes]
        theirs = [(c.agent, c.state, c.by) for c in other.changes]
    # each change made once in either ACD, and kept and recorded once
    assert mine == theirs == [
        ("anna", "paused", "api"), ("boris", "logged_out", "api"), ("anna", "available", "api"),
    ]  # fmt: skip
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch("SELECT agent, state, reason, by FROM agent_changes ORDER BY id")
        kept = await stored_agent_states(conn)
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        ("anna", "paused", "lunch", "api"),
        ("boris", "logged_out", "", "api"),
        ("anna", "available", "", "api"),
    ]
    assert {agent: (k.state, k.by) for agent, k in kept.items()} == {
        "anna": ("available", "api"),
        "boris": ("logged_out", "api"),
    }


async def pages(api: Api, first: str, key: str) -> tuple[list[list[int]], list[str]]:
    """Every page from ``first`` on, following ``next``: each page's ids, and the
    addresses asked."""
    ids: list[list[int]] = []
    asked: list[str] = []
    path: str | None = first
    while path is not None:
        asked.append(path)
        status, body = await api.get(path)
        assert status == 200, body
        ids.append([row["id"] for row in body[key]])
        path = body["next"]
        assert len(asked) < 20, asked
    return ids, asked


@pytest.mark.asyncio
async def test_messages_come_a_page_at_a_time_newest_first_with_the_next_pages_address(
    sink: PostgresSink, tmp_path: Path
) -> None:
    # five messages, two of them left at the same second: the pages neither skip nor repeat
    made = [await add_message(sink, f"m{n}", minutes=min(n, 3)) for n in range(5)]
    newest_first = sorted(made, key=lambda i: (min(made.index(i), 3), i), reverse=True)
    async with office(sink, tmp_path) as (_, api):
        status, body = await api.get("/api/v1/messages")
        assert status == 200
        assert [m["id"] for m in body["messages"]] == newest_first
        assert body["next"] is None  # 50 by default: one page

        ids, asked = await pages(api, "/api/v1/messages?limit=2", "messages")
        assert ids == [newest_first[:2], newest_first[2:4], newest_first[4:]]
        assert asked[1] == f"/api/v1/messages?limit=2&before={newest_first[1]}"

        for bad in ("before=999999", "before=abc", "before=0", "limit=501", "limit=0"):
            status, body = await api.get(f"/api/v1/messages?{bad}")
            assert (status, body["error"]) == (400, "invalid"), bad
        status, body = await api.get("/api/v1/messages?before=999999")
        assert body["message"] == "before: no message 999999"


@pytest.mark.asyncio
async def test_callbacks_come_a_page_at_a_time_soonest_due_first_keeping_the_status_asked(
    sink: PostgresSink, tmp_path: Path
) -> None:
    due = [WHEN + dt.timedelta(hours=h) for h in (3, 1, 2, 2, 5, 4)]
    async with sink.pool.acquire() as conn:
        made = [
            await insert_request(
                conn, request_id=f"c{n}/r1", call_id=f"c{n}", number=f"7916111220{n}", due_at=at
            )
            for n, at in enumerate(due)
        ]
        await conn.execute("UPDATE callbacks SET status = 'done' WHERE id = $1", made[4])
    soonest_first = [made[i] for i in (1, 2, 3, 0, 5, 4)]
    pending = [i for i in soonest_first if i != made[4]]
    async with office(sink, tmp_path) as (_, api):
        status, body = await api.get("/api/v1/callbacks")
        assert status == 200
        assert [c["id"] for c in body["callbacks"]] == soonest_first
        assert body["next"] is None  # 500 by default, as before

        ids, asked = await pages(api, "/api/v1/callbacks?status=pending&limit=2", "callbacks")
        assert ids == [pending[:2], pending[2:4], pending[4:]]
        assert asked[1] == f"/api/v1/callbacks?status=pending&limit=2&after={pending[1]}"
        ids, _ = await pages(api, "/api/v1/callbacks?limit=4", "callbacks")
        assert ids == [soonest_first[:4], soonest_first[4:]]

        for bad in ("after=999999", "after=-1", "limit=501", "limit=x"):
            status, body = await api.get(f"/api/v1/callbacks?{bad}")
            assert (status, body["error"]) == (400, "invalid"), bad


@pytest.mark.asyncio
async def test_a_client_refused_20_tokens_in_a_minute_is_refused_every_check_with_a_429(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api):
        assert api.token is not None
        for n in range(20):
            status, body = await api.get("/api/v1/agents", token=f"guess-{n}")
            assert (status, body["error"]) == (401, "unauthorized"), n
        for token in ("guess-20", api.token):  # the right one too: the client is held off
            async with api.http.get(
                api.url + "/api/v1/agents", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 429
                assert 55 <= int(response.headers["Retry-After"]) <= 60
                body = await response.json()
            assert body["error"] == "too_many_failures"
            assert body["message"].startswith("too many unknown or revoked tokens from 127.0.0.1")
        assert (await api.get("/api/openapi.json", auth=False))[0] == 200
        assert (await api.get("/healthz", auth=False))[0] == 200

        # another client address is not held off by this one's guesses
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=other) as http:
            elsewhere = Api(api.url, http, api.token)
            assert (await elsewhere.get("/api/v1/agents"))[0] == 200
            status, _ = await elsewhere.get("/api/v1/agents", token="guess")  # noqa: S106 - made up
            assert status == 401


def test_refused_tokens_hold_a_client_off_until_the_oldest_of_its_last_20_is_a_minute_old() -> None:
    now = [0.0]
    checks = FailedChecks(20, 60.0, clock=lambda: now[0], max_addresses=3)
    for second in range(20):
        now[0] = float(second)
        assert checks.retry_after("10.0.0.1") is None
        assert checks.failed("10.0.0.1") is (second == 19)
    now[0] = 19.5
    assert checks.retry_after("10.0.0.1") == 41  # until the first (second 0) is 60 s old
    assert checks.retry_after("10.0.0.2") is None
    now[0] = 60.0
    assert checks.retry_after("10.0.0.1") is None  # one of the twenty has gone by
    assert checks.failed("10.0.0.1")
    assert checks.retry_after("10.0.0.1") == 1  # second 1's is the oldest now
    for address in ("10.0.0.2", "10.0.0.3", "10.0.0.4"):  # only three remembered
        checks.failed(address)
    assert checks.retry_after("10.0.0.1") is None  # forgotten: the least recent
