"""The wallboard's snapshot and its event stream, over a real runtime.

`switchboard run` carries calls placed through the Asterisk simulator (`AriStack`);
the snapshot is read from the `RuntimeStatus` its admin server serves, and the
stream over real HTTP as a browser's EventSource reads it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import orjson
import pytest
import structlog

from asterisk_sim import EndpointScript
from switchboard.admin.wallboard import stream, today_from_records
from switchboard.calls import CallRecord
from switchboard.cli import main
from switchboard.engine.trace import Outcome, Step
from switchboard.storage.api_tokens import create_token, revoke_token
from switchboard.storage.sink import PostgresSink
from tests.helpers import company_from
from tests.wallboard_office import CALLED, EVIL, OFFICE, WHEN, agent, office, queue, until


@pytest.mark.asyncio
async def test_the_snapshot_follows_a_caller_from_the_queue_to_hanging_up_into_the_funnel() -> None:
    async with office() as (stack, server):
        wallboard = server.wallboard
        idle = await wallboard.snapshot()
        assert idle["language"] == "ru"
        assert [q["department"] for q in idle["queues"]] == ["support", "sales"]
        assert queue(idle, "support") == {
            "department": "support", "name": f"Support {EVIL}", "waiting": 0,
            "longest_wait": None, "estimated_wait": None, "offered_today": 0,
            "answered_within_today": 0, "service_level": None,
        }  # fmt: skip
        assert [a["state"] for a in idle["agents"]] == ["available", "available"]
        assert idle["calls"] == []
        assert idle["funnel"] == []
        assert idle["today"]["source"] == "process"

        runtime = stack.app.runtime
        runtime.acd.pause("anna", runtime.clock.now(), "lunch")
        paused = await until(
            wallboard.snapshot, lambda s: agent(s, "anna")["state"] == "paused", "anna paused"
        )
        assert agent(paused, "anna")["reason"] == "lunch"
        assert agent(paused, "anna")["name"] == f"Anna {EVIL}"

        caller = await stack.place(caller="79035550001", called=CALLED)
        waiting = await until(
            wallboard.snapshot, lambda s: queue(s, "support")["waiting"] == 1, "a caller waiting"
        )
        (call,) = waiting["calls"]
        assert call["caller"] == "79035550001"
        assert (call["scenario"], call["node"], call["state"]) == ("main", "wait", "queue")
        assert call["department"] == "support"
        assert isinstance(call["seconds"], int)
        longer = await until(
            wallboard.snapshot,
            lambda s: (queue(s, "support")["longest_wait"] or 0) >= 5,
            "the wait growing on the runtime's clock",
        )
        assert longer["calls"][0]["seconds"] >= 5

        await stack.sim.hangup(caller)
        assert (await stack.record_of(caller)).outcome.result == "abandoned"
        after = await until(wallboard.snapshot, lambda s: not s["calls"], "the call gone")
        assert queue(after, "support")["waiting"] == 0
        assert after["funnel"] == [
            {
                "scenario": "main",
                "nodes": [
                    {"node": "hello", "type": "play", "calls": 1, "abandoned": 0},
                    {"node": "wait", "type": "queue", "calls": 1, "abandoned": 1},
                ],
            }
        ]
        assert queue(after, "support")["offered_today"] == 1
        assert queue(after, "support")["service_level"] == 0.0
        await stack.settled()


@pytest.mark.asyncio
async def test_the_queue_shows_an_estimated_wait_once_the_department_has_a_handle_time() -> None:
    async with office() as (stack, server):
        runtime = stack.app.runtime
        runtime.acd.seed_handle(120.0, "support")
        runtime.acd.pause("anna", runtime.clock.now(), "")
        first = await stack.place(caller="79035550001", called=CALLED)
        second = await stack.place(caller="79035550002", called=CALLED)
        both = await until(
            server.wallboard.snapshot,
            lambda s: queue(s, "support")["waiting"] == 2,
            "two callers waiting",
        )
        # one agent logged in (paused is still logged in): the second waits two calls
        assert queue(both, "support")["estimated_wait"] == 240
        for channel in (first, second):
            await stack.sim.hangup(channel)
        await until(server.wallboard.snapshot, lambda s: not s["calls"], "both calls gone")


def _record(call_id: str, started: dt.datetime, nodes: list[str], result: str) -> CallRecord:
    steps = [Step("main", node, "play" if node == "hello" else "queue", 0.0) for node in nodes]
    outcome = Outcome(
        result,  # type: ignore[arg-type] # a Result literal, given as text here
        "",
        30.0,
        12.0,
        department="support" if "wait" in nodes else None,
    )
    return CallRecord(
        call_id, "PJSIP/t-1", call_id, CALLED, CALLED, "7903", None, "main", started, steps, outcome
    )


def test_today_counts_only_the_calls_that_started_today_in_the_company_timezone() -> None:
    """Moscow is UTC+3: 22:30 UTC the day before is already today there."""
    company = company_from(OFFICE)
    records = [
        _record("a", WHEN, ["hello", "wait"], "connected"),
        _record("b", dt.datetime(2026, 11, 30, 22, 30, tzinfo=dt.UTC), ["hello"], "abandoned"),
        _record("c", dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC), ["hello"], "abandoned"),
        _record("d", WHEN, ["hello", "wait", "wait"], "abandoned"),
    ]
    today = today_from_records(records, company, WHEN)
    assert [(n.node, n.calls, n.abandoned) for n in today.funnel["main"]] == [
        ("hello", 3, 1),
        ("wait", 2, 1),  # "d" visited it twice: one call
    ]
    assert today.offered == {"support": 2}
    assert today.answered_within == {"support": 1}  # waited 12 s, connected


@pytest.mark.asyncio
async def test_the_event_stream_sends_a_snapshot_at_once_and_each_change_within_a_second() -> None:
    async with (
        office() as (stack, server),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(server.url + "/wallboard/events") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        events = _events(response.content)
        first = await anext(events)
        assert queue(first, "support")["waiting"] == 0

        runtime = stack.app.runtime
        runtime.acd.pause("anna", runtime.clock.now(), "lunch")
        loop = asyncio.get_running_loop()
        changed_at = loop.time()
        async with asyncio.timeout(1.0):
            async for snapshot in events:
                if agent(snapshot, "anna")["state"] == "paused":
                    break
        assert loop.time() - changed_at < 1.0

        caller = await stack.place(caller="79035550009", called=CALLED)
        async with asyncio.timeout(5.0):
            async for snapshot in events:
                if snapshot["calls"] and snapshot["calls"][0]["node"] == "wait":
                    break
        assert snapshot["calls"][0]["caller"] == "79035550009"
        await stack.sim.hangup(caller)
        await stack.record_of(caller)


@pytest.mark.asyncio
async def test_the_stream_is_quiet_while_nothing_changes_but_for_a_keep_alive() -> None:
    """Two snapshots alike are sent once; the silence is broken by comments only."""
    sent: list[bytes] = []
    snapshot: dict[str, Any] = {"calls": []}

    async def look() -> dict[str, Any]:
        return snapshot

    async def write(data: bytes) -> None:
        sent.append(data)
        if len(sent) == 3:
            snapshot["calls"] = [{"caller": "1"}]
        if len(sent) == 5:
            raise ConnectionResetError  # the browser went away

    await stream(look, write, tick=0.001, keep_alive=0.01)
    assert sent[0] == b'data: {"calls":[]}\n\n'
    assert sent[1:3] == [b": keep-alive\n\n"] * 2
    assert sent[3] == b'data: {"calls":[{"caller":"1"}]}\n\n'
    assert sent[4] == b": keep-alive\n\n"


@pytest.mark.asyncio
async def test_the_page_and_its_files_are_served_with_a_strict_content_security_policy() -> None:
    async with (
        office() as (_, server),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
    ):
        for path, kind in (
            ("/wallboard", "text/html"),
            ("/wallboard/static/wallboard.js", "text/javascript"),
            ("/wallboard/static/wallboard.css", "text/css"),
        ):
            async with http.get(server.url + path) as response:
                assert response.status == 200, path
                assert response.headers["Content-Type"].startswith(kind)
                policy = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in policy
                assert "'unsafe-inline'" not in policy
        for missing in ("/wallboard/static/secret.py", "/wallboard/static/wallboard.html"):
            async with http.get(server.url + missing) as response:
                assert response.status == 404


async def _events(content: aiohttp.StreamReader) -> Any:
    """The JSON of each ``data:`` event of a stream (comments skipped)."""
    async for line in content:
        if line.startswith(b"data: "):
            yield orjson.loads(line[len(b"data: ") :])


@pytest.mark.asyncio
async def test_with_a_database_today_comes_from_it_and_tokens_once_created_guard_the_page(
    sink: PostgresSink,
) -> None:
    async with (
        office(sink) as (stack, server),
        aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies of 127.0.0.1 too
            timeout=aiohttp.ClientTimeout(total=10),
        ) as http,
    ):
        wallboard = server.wallboard
        wallboard.today.ttl = 0.0  # read today's figures at each look
        wallboard.access.ttl = 0.0  # and the tokens at each request
        async with http.get(server.url + "/wallboard") as response:
            assert response.status == 200  # no token created yet: open on the admin address

        runtime = stack.app.runtime
        runtime.acd.pause("anna", runtime.clock.now(), "")
        caller = await stack.place(caller="79035550001", called=CALLED)
        await until(wallboard.snapshot, lambda s: queue(s, "support")["waiting"] == 1, "waiting")
        await stack.sim.hangup(caller)
        today = await until(
            wallboard.snapshot, lambda s: s["funnel"] != [], "the call in the database's funnel"
        )
        assert today["today"]["source"] == "database"
        assert [(n["node"], n["calls"], n["abandoned"]) for n in today["funnel"][0]["nodes"]] == [
            ("hello", 1, 0),
            ("wait", 1, 1),
        ]

        async with sink.pool.acquire() as conn:
            token = await create_token(conn, "wallboard")
        for path in ("/wallboard", "/wallboard/events", "/wallboard?token=wrong"):
            async with http.get(server.url + path) as response:
                assert response.status == 401, path
                assert "token" in await response.text()
        async with http.get(
            server.url + f"/wallboard?token={token}&lang=ru", allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/wallboard?lang=ru"  # the token gone
            cookie = response.headers["Set-Cookie"]
            for part in ("HttpOnly", "SameSite=Strict", "Path=/wallboard"):
                assert part in cookie, cookie
        async with http.get(server.url + "/wallboard?lang=ru") as response:
            assert response.status == 200  # the cookie shown
        async with http.get(server.url + "/wallboard/events") as response:
            assert response.status == 200
            first = await anext(_events(response.content))
            assert first["today"]["source"] == "database"

        async with sink.pool.acquire() as conn:
            await revoke_token(conn, "wallboard")
        async with http.get(server.url + "/wallboard") as response:
            assert response.status == 401  # revoked: the cookie is worth nothing now

        # guessing: after the limit of refused tokens from one address, 429 for a while,
        # even with the right token; a browser without a token still gets the page's 401
        async with sink.pool.acquire() as conn:
            token = await create_token(conn, "second")
        limit = wallboard.access.failures.limit
        for n in range(limit - 2):  # two were refused above: "wrong" and the revoked cookie
            async with http.get(server.url + f"/wallboard?token=guess{n}") as response:
                assert response.status == 401, n
        async with http.get(server.url + f"/wallboard?token={token}") as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= wallboard.access.failures.window
            assert "too many" in await response.text()
        http.cookie_jar.clear()
        async with http.get(server.url + "/wallboard") as response:
            assert response.status == 401


@pytest.mark.asyncio
async def test_with_a_database_the_service_level_counts_the_callers_who_gave_up_waiting(
    db: str, sink: PostgresSink, capsys: pytest.CaptureFixture[str]
) -> None:
    """Support's queue today: answered after 2 s (within 20 s), answered after 25 s (late),
    and a caller who hung up after 10 s of waiting: 1 of 3 served, on the wallboard and in
    `switchboard report --by department` alike (the caller who gave up has no answering
    department: the database used to leave them out, showing 1 of 2)."""
    anna = "PJSIP/101"
    async with office(sink) as (stack, server):
        wallboard = server.wallboard
        wallboard.today.ttl = 0.0  # read today's figures at each look
        stack.sim.script_endpoint(anna, EndpointScript("answer", after=2.0, hangup_after=3.0))
        in_time = await stack.call(caller="79035550001", called=CALLED)
        stack.sim.script_endpoint(anna, EndpointScript("answer", after=25.0, hangup_after=3.0))
        late = await stack.call(caller="79035550002", called=CALLED)
        stack.sim.script_endpoint(anna, EndpointScript("noanswer"))
        gave_up = await stack.call(caller="79035550003", called=CALLED, hangup_after=10.0)
        assert [(r.outcome.result, r.outcome.department) for r in (in_time, late, gave_up)] == [
            ("connected", "support"), ("connected", "support"), ("abandoned", None),
        ]  # fmt: skip
        assert in_time.outcome.wait <= 20.0 < late.outcome.wait

        today = await until(
            wallboard.snapshot,
            lambda s: queue(s, "support")["offered_today"] == 3,
            "the three calls offered to support, from the database",
        )
        assert today["today"]["source"] == "database"
        support = queue(today, "support")
        assert (support["answered_within_today"], support["service_level"]) == (1, 0.333)
        await stack.settled()

    args = ["report", "--dsn", db, "--from", "2026-12-01", "--to", "2026-12-02"]
    capsys.readouterr()  # the runtime's logs
    try:
        done = await asyncio.to_thread(
            main, [*args, "--timezone", "Europe/Moscow", "--by", "department", "--json"]
        )
    finally:
        structlog.reset_defaults()  # `main` pointed the logs at this test's stderr
    out, err = capsys.readouterr()
    assert done == 0, err
    (main_scenario,) = orjson.loads(out)["scenarios"]
    (group,) = main_scenario["groups"]
    assert (group["group"], group["offered"], group["answered_within"]) == ("support", 3, 1)
    assert group["service_level"] == round(1 / 3, 4)
