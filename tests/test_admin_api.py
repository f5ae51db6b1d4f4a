"""The admin API (``/api/``) of `switchboard run`, asked over real HTTP.

The Stasis app runs against the Asterisk simulator (`AriStack`), its records
also going to a real PostgreSQL (the `sink` fixture); its admin server -- the
one `serve` starts, over the status `AriApp.status` gives, with the database
probe a PostgreSQL-backed runtime has -- listens on a loopback port.  Tokens
are made as `switchboard tokens create` makes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncpg
import pytest
import structlog
from openapi_spec_validator import validate

from asterisk_sim import EndpointScript
from switchboard.admin import api as api_module
from switchboard.admin.api import api_app
from switchboard.admin.openapi import OPENAPI
from switchboard.admin.server import AdminServer
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from switchboard.storage.api_tokens import create_token, revoke_token
from switchboard.storage.callbacks import insert_request
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.shared_acd import SharedAgents
from switchboard.storage.sink import PostgresSink
from tests.helpers import ROOT, company_from
from tests.test_admin_ari import CALLED, OFFICE, WHEN  # the same office


@dataclass
class Api:
    """An HTTP client of one admin server, with a token (or none)."""

    url: str
    http: aiohttp.ClientSession
    token: str | None = None
    token_name: str = ""

    async def ask(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        text: str | None = None,
        token: str | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        """(status, JSON body or text) of ``method path``."""
        headers = {}
        given = token if token is not None else self.token
        if auth and given is not None:
            headers["Authorization"] = f"Bearer {given}"
        data = text if text is not None else None if body is None else json.dumps(body)
        async with self.http.request(method, self.url + path, data=data, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.ask("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.ask("POST", path, **kwargs)

    async def until(self, path: str, holds: Callable[[Any], bool], what: str) -> Any:
        """``GET path`` again (a short pause between) until its body ``holds``; the body."""
        body: Any = None
        try:
            async with asyncio.timeout(15):
                while True:
                    status, body = await self.get(path)
                    assert status == 200, body
                    if holds(body):
                        return body
                    await asyncio.sleep(0.02)  # pacing the asks, not waiting for a time
        except TimeoutError:
            raise AssertionError(f"waited 15 s for {what}; last: {body!r}") from None


@asynccontextmanager
async def office(sink: PostgresSink | None, tmp_path: Path) -> AsyncIterator[tuple[AriStack, Api]]:
    """The app connected to the simulator and, with ``sink``, to PostgreSQL; a client of
    its admin server holding a fresh token (none without a database)."""
    stack = AriStack(company_from(OFFICE), clock=ScaledClock(0.02), when=WHEN, store=sink)
    async with stack:
        # anna's phone answers after a clock second; scripted before the app is told of
        # the phones' states, as the simulator would have it configured at start
        stack.sim.script_endpoint("PJSIP/101", EndpointScript("answer", after=1.0))
        status = stack.app.status()
        if sink is not None:  # the probe `runtime_status` gives a runtime writing to PostgreSQL
            status.database = DatabaseProbe(sink.pool)
        server = AdminServer(status)
        async with server, aiohttp.ClientSession() as http:
            await server.start("127.0.0.1", 0)
            api = Api(server.url, http)
            if sink is not None:
                async with sink.pool.acquire() as conn:
                    api.token_name = f"tests-{uuid.uuid4().hex[:8]}"
                    api.token = await create_token(conn, api.token_name)
            yield stack, api


@pytest.fixture
def recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "recording"
    folder.mkdir()
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(folder))
    return folder


ROUTES = [
    ("GET", "/api/v1/agents"),
    ("POST", "/api/v1/agents/anna/pause"),
    ("GET", "/api/v1/queues"),
    ("GET", "/api/v1/calls"),
    ("GET", "/api/v1/numbers"),
    ("GET", "/api/v1/scenarios"),
    ("GET", "/api/v1/callbacks"),
    ("POST", "/api/v1/callbacks/1/cancel"),
    ("POST", "/api/v1/callbacks/1/reschedule"),
    ("GET", "/api/v1/messages"),
    ("GET", "/api/v1/messages/1/recording"),
    ("GET", "/api/v1/report?from=2026-12-01&to=2026-12-02"),
    ("GET", "/api/v1/config/versions"),
    ("POST", "/api/v1/config/versions"),
    ("GET", "/api/v1/config/versions/1"),
    ("POST", "/api/v1/config/versions/1/activate"),
    ("POST", "/api/v1/simulate"),
]


@pytest.mark.asyncio
async def test_every_route_refuses_a_request_without_a_token_or_with_a_wrong_one(
    sink: PostgresSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # three wrong tokens for each route from one address: more than a client may try (20)
    monkeypatch.setattr(api_module, "FAILURE_LIMIT", 1000)
    async with office(sink, tmp_path) as (_, api):
        assert api.token is not None
        for method, path in ROUTES:
            status, body = await api.ask(method, path, auth=False)
            assert status == 401, (method, path, body)
            assert body["error"] == "unauthorized"
            assert "Bearer" in body["message"]
            for wrong in ("nope", api.token[:-1], api.token + "x"):
                status, body = await api.ask(method, path, token=wrong)
                assert (status, body["error"]) == (401, "unauthorized"), (method, path)
        async with api.http.get(
            api.url + "/api/v1/agents", headers={"Authorization": f"Basic {api.token}"}
        ) as r:
            assert r.status == 401  # the token, but not as a bearer's
        assert (await api.get("/healthz", auth=False))[0] == 200
        assert (await api.get("/readyz", auth=False))[0] == 200
        assert (await api.get("/metrics", auth=False))[0] == 200
        assert (await api.get("/api/openapi.json", auth=False))[0] == 200
        assert (await api.get("/api/v1/agents"))[0] == 200


@pytest.mark.asyncio
async def test_a_revoked_token_is_refused_and_last_use_is_kept(
    sink: PostgresSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "TOKEN_TTL", 0.0)  # the table read at every request
    async with office(sink, tmp_path) as (_, api):
        assert (await api.get("/api/v1/agents"))[0] == 200
        async with sink.pool.acquire() as conn:
            revoked = await revoke_token(conn, api.token_name)
        assert revoked is not None
        assert revoked.last_used_at is not None
        assert revoked.revoked_at is not None
        status, body = await api.get("/api/v1/agents")
        assert (status, body["error"]) == (401, "unauthorized")


@pytest.mark.asyncio
async def test_without_a_database_the_api_says_it_needs_one(tmp_path: Path) -> None:
    async with office(None, tmp_path) as (_, api):
        status, body = await api.get("/api/v1/agents", token="anything")  # noqa: S106 - a made-up token
        assert status == 503
        assert body["message"] == "the API needs a database (tokens are kept there)"
        assert (await api.get("/api/openapi.json", auth=False))[0] == 200
        assert (await api.get("/healthz", auth=False))[0] == 200


@pytest.mark.asyncio
async def test_the_openapi_document_is_valid_3_1_and_names_every_route() -> None:
    validate(OPENAPI)  # openapi-spec-validator: the OpenAPI 3.1 schema, and its $refs
    assert OPENAPI["openapi"] == "3.1.0"
    app = api_app_for_routes()
    served = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        path = path.replace("{action:login|logout|pause|resume}", "{action}")
        served.add((route.method.lower(), path))
    served.discard(("head", "/openapi.json"))
    served = {(m, p) for m, p in served if m != "head"}
    documented = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert served == documented


def api_app_for_routes() -> Any:
    """The API's routes, over no runtime (only their table is read)."""
    return api_app(SimpleNamespace(database=None), "/nonexistent")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_agents_are_listed_and_changed_through_the_running_acd(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (stack, api):
        status, body = await api.get("/api/v1/agents")
        assert status == 200
        by_id = {agent["id"]: agent for agent in body["agents"]}
        assert set(by_id) == {"anna", "boris"}
        assert by_id["anna"]["state"] == "available"
        assert by_id["anna"]["departments"] == ["support"]
        assert by_id["anna"]["since"] is None  # nobody changed it
        # one picture across the instances sharing agents (issue 14): none holds anna
        assert (by_id["anna"]["held_by"], body["waiting"]) == (None, [])
        async with sink.pool.acquire() as conn:
            west = SharedAgents("west")
            await west.renew(conn)
            assert await west.reserve(conn, "anna", "west-c1", departments=["support"])
            await west.wait(conn, "west-c2", "support")
        body = (await api.get("/api/v1/agents"))[1]
        held = {agent["id"]: agent["held_by"] for agent in body["agents"]}
        assert held["anna"] is not None
        assert (held["anna"]["instance"], held["anna"]["call_id"], held["boris"]) == (
            "west", "west-c1", None,
        )  # fmt: skip
        assert body["waiting"] == [{"department": "support", "instance": "west", "waiting": 1}]
        async with sink.pool.acquire() as conn:
            await west.leave_all(conn)

        status, anna = await api.post("/api/v1/agents/anna/pause", body={"reason": "lunch"})
        assert status == 200, anna
        assert (anna["state"], anna["reason"]) == ("paused", "lunch")
        since = dt.datetime.fromisoformat(anna["since"])
        assert abs((since - dt.datetime.now(dt.UTC)).total_seconds()) < 60
        assert since.utcoffset() == dt.timedelta(hours=3)  # Europe/Moscow
        acd = stack.app.runtime.acd
        change = acd.changes[-1]
        assert (change.agent, change.state, change.reason, change.by) == (
            "anna", "paused", "lunch", "api",
        )  # fmt: skip
        assert (await api.post("/api/v1/agents/anna/resume"))[1]["state"] == "available"
        assert (await api.post("/api/v1/agents/boris/logout"))[1]["state"] == "logged_out"
        status, body = await api.post("/api/v1/agents/boris/pause")
        assert (status, body["error"]) == (409, "logged_out")
        assert "log in first" in body["message"]
        assert (await api.post("/api/v1/agents/boris/login"))[1]["state"] == "available"
        assert [c.by for c in acd.changes][-4:] == ["api"] * 4

        status, body = await api.post("/api/v1/agents/bob/login")
        assert (status, body["error"]) == (404, "unknown_agent")
        status, body = await api.post("/api/v1/agents/anna/pause", body={"reason": "x" * 201})
        assert status == 422
        status, body = await api.post("/api/v1/agents/anna/pause", text="{not json")
        assert (status, body["error"]) == (400, "invalid")
        status, body = await api.post("/api/v1/agents/anna/dance")
        assert (status, body["error"]) == (404, "not_found")


@pytest.mark.asyncio
async def test_queues_and_calls_show_a_caller_waiting_then_talking(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (stack, api):
        await api.post("/api/v1/agents/anna/pause", body={"reason": "meeting"})
        caller = await stack.place(caller="79035550001", called=CALLED)
        body = await api.until(
            "/api/v1/queues", lambda b: b["queues"][0]["waiting"], "the caller waiting"
        )
        queues = {q["department"]: q for q in body["queues"]}
        [waiting] = queues["support"]["waiting"]
        assert waiting["caller"] == "79035550001"
        assert (waiting["position"], waiting["priority"]) == (1, 0)
        assert waiting["waited"] >= 0
        assert waiting["estimate"] is None  # no conversation seen yet
        assert queues["support"]["agents"] == {
            "free": 0, "busy": 0, "unreachable": 0, "paused": 1, "logged_out": 0,
        }  # fmt: skip
        # boris's phone has no script: the simulator says it is UNAVAILABLE
        assert queues["sales"] == {
            "department": "sales",
            "name": "",
            "waiting": [],
            "agents": {"free": 0, "busy": 0, "unreachable": 1, "paused": 0, "logged_out": 0},
        }  # fmt: skip
        _, body = await api.get("/api/v1/calls")
        [call] = body["calls"]
        assert (call["caller"], call["called"], call["state"]) == ("79035550001", CALLED, "queue")
        assert call["department"] == "support"

        status, body = await api.post("/api/v1/agents/anna/resume")  # offered the caller at once
        assert (status, body["state"]) == (200, "available"), body
        body = await api.until("/api/v1/calls", talking, "anna talking to the caller")
        assert body["calls"][0]["agent"] == "anna"
        _, body = await api.get("/api/v1/queues")
        support = next(q for q in body["queues"] if q["department"] == "support")
        assert support["waiting"] == []
        assert support["agents"]["busy"] == 1
        await stack.sim.hangup(caller)
        assert (await stack.record_of(caller)).outcome.result == "connected"
        await stack.settled()


def talking(body: Any) -> bool:
    return bool(body["calls"]) and body["calls"][0]["state"] == "talking"


@pytest.mark.asyncio
async def test_numbers_and_scenarios_are_the_running_configuration(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api):
        status, body = await api.get("/api/v1/numbers")
        assert status == 200
        assert body["numbers"] == [
            {"number": CALLED, "line": None, "scenario": "main", "language": None}
        ]
        status, body = await api.get("/api/v1/scenarios")
        assert status == 200
        [main] = body["scenarios"]
        assert (main["name"], main["start"], main["numbers"]) == ("main", "wait", [CALLED])
        assert main["nodes"]["wait"]["type"] == "queue"
        assert main["nodes"]["wait"]["exits"]["overflow"] == "bye"


@pytest.mark.asyncio
async def test_callbacks_are_listed_cancelled_and_rescheduled(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api), sink.pool.acquire() as conn:
        first = await insert_request(conn, request_id="c1/r1", call_id="c1", number="79161112233",
                                     department="support")  # fmt: skip
        second = await insert_request(conn, request_id="c2/r1", call_id="c2", number="79161112244")
        await conn.execute("UPDATE callbacks SET status = 'done' WHERE id = $1", second)

        status, body = await api.get("/api/v1/callbacks")
        assert status == 200
        assert [c["id"] for c in body["callbacks"]] == [first, second]
        _, body = await api.get("/api/v1/callbacks?status=pending")
        [pending] = body["callbacks"]
        assert (pending["id"], pending["number"], pending["status"]) == (
            first, "79161112233", "pending",
        )  # fmt: skip
        status, body = await api.get("/api/v1/callbacks?status=lost")
        assert (status, body["error"]) == (400, "invalid")

        status, body = await api.post(
            f"/api/v1/callbacks/{first}/reschedule", body={"at": "2026-12-24T09:30:00"}
        )
        assert status == 200, body
        due = dt.datetime.fromisoformat(body["due_at"])
        assert due == dt.datetime(2026, 12, 24, 6, 30, tzinfo=dt.UTC)  # 09:30 in Moscow
        status, body = await api.post(f"/api/v1/callbacks/{first}/reschedule", body={"at": "soon"})
        assert (status, body["error"]) == (422, "invalid")
        status, body = await api.post(f"/api/v1/callbacks/{first}/reschedule", body=["x"])
        assert status == 400
        status, body = await api.post(f"/api/v1/callbacks/{first}/reschedule")
        assert status == 400

        status, body = await api.post(f"/api/v1/callbacks/{first}/cancel")
        assert (status, body["status"]) == (200, "cancelled")
        status, body = await api.post(f"/api/v1/callbacks/{first}/cancel")
        assert (status, body["error"]) == (409, "not_pending")
        status, body = await api.post(f"/api/v1/callbacks/{second}/cancel")
        assert status == 409
        status, body = await api.post("/api/v1/callbacks/999999/cancel")
        assert (status, body["error"]) == (404, "not_found")
        status, body = await api.post("/api/v1/callbacks/abc/cancel")
        assert status == 404


@pytest.mark.asyncio
async def test_messages_are_listed_and_a_recording_downloaded_when_its_file_is_there(
    sink: PostgresSink, tmp_path: Path, recordings: Path
) -> None:
    async with office(sink, tmp_path) as (_, api), sink.pool.acquire() as conn:
        ids = []
        for n, name in enumerate(("switchboard-c1-r1", "switchboard-c2-r1", "../etc/passwd")):
            ids.append(
                await conn.fetchval(
                    """INSERT INTO messages (call_id, recording, caller, called, mailbox,
                                             created_at, length_s)
                       VALUES ($1, $2, '79161112233', $3, 'sales', $4, 12.5) RETURNING id""",
                    f"c{n}", name, CALLED, WHEN + dt.timedelta(minutes=n),
                )
            )  # fmt: skip
        wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)
        (recordings / "switchboard-c1-r1.wav").write_bytes(wav)
        (tmp_path / "etc").mkdir()

        status, body = await api.get("/api/v1/messages")
        assert status == 200
        assert [m["id"] for m in body["messages"]] == ids[::-1]  # newest first
        first = body["messages"][-1]
        assert (first["caller"], first["mailbox"], first["length"]) == (
            "79161112233",
            "sales",
            12.5,
        )
        assert first["recording_url"] == f"/api/v1/messages/{ids[0]}/recording"
        assert len((await api.get("/api/v1/messages?limit=1"))[1]["messages"]) == 1
        assert (await api.get("/api/v1/messages?limit=0"))[0] == 400

        async with api.http.get(
            api.url + first["recording_url"], headers={"Authorization": f"Bearer {api.token}"}
        ) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "audio/wav"
            assert await r.read() == wav
        status, body = await api.get(f"/api/v1/messages/{ids[1]}/recording")
        assert (status, body["error"]) == (404, "recording_missing")
        status, body = await api.get(f"/api/v1/messages/{ids[2]}/recording")
        assert (status, body["error"]) == (404, "no_recording")  # not outside the folder
        status, body = await api.get("/api/v1/messages/999999/recording")
        assert (status, body["error"]) == (404, "not_found")

        # a message's status: new until somebody marks it, by whom (this token)
        assert (first["status"], first["status_by"], first["status_at"]) == ("new", None, None)
        url = f"/api/v1/messages/{ids[0]}/status"
        status, marked = await api.post(url, body={"status": "handled"})
        assert status == 200, marked
        assert (marked["status"], marked["status_by"]) == ("handled", f"api:{api.token_name}")
        assert dt.datetime.fromisoformat(marked["status_at"]).tzinfo is not None
        listed = (await api.get("/api/v1/messages"))[1]["messages"]
        assert [m["status"] for m in listed] == ["new", "new", "handled"]
        status, body = await api.post(url, body={"status": "deleted"})
        assert (status, body["error"]) == (422, "invalid")
        status, body = await api.post("/api/v1/messages/999999/status", body={"status": "heard"})
        assert (status, body["error"]) == (404, "not_found")


@pytest.mark.asyncio
async def test_the_report_is_switchboard_report_json_and_bad_periods_are_refused(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (stack, api):
        caller = await stack.place(caller="79035550001", called=CALLED)
        await api.until("/api/v1/calls", talking, "anna talking to the caller")
        await stack.sim.hangup(caller)
        await stack.record_of(caller)
        path = "/api/v1/report?from=2026-11-30&to=2026-12-03&scenario=main"
        body = await api.until(path, lambda b: b["scenarios"], "the call's record in the report")
        assert body["timezone"] == "Europe/Moscow"
        assert body["scenario"] == "main"
        [main] = body["scenarios"]
        assert main["scenario"] == "main"
        assert main["calls"] == 1
        assert main["connected"] == 1

        for bad in ("from=yesterday&to=2026-12-02", "from=2026-12-02&to=2026-12-01",
                    "from=2026-12-01", "from=2026-12-01&to=2026-12-02&by=colour"):  # fmt: skip
            status, body = await api.get(f"/api/v1/report?{bad}")
            assert (status, body["error"]) == (400, "invalid"), bad
        await stack.settled()


GOOD = OFFICE
BAD = OFFICE.replace("overflow: bye", "overflow: nowhere")


@pytest.mark.asyncio
async def test_configuration_versions_are_imported_with_checks_listed_and_read(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api):
        assert (await api.get("/api/v1/config/versions"))[1] == {"versions": []}
        status, body = await api.post("/api/v1/config/versions?source=office.yaml", text=BAD)
        assert (status, body["error"]) == (422, "config_rejected")
        [line] = [p for p in body["problems"] if "warning" not in p]
        assert line.startswith("office.yaml:")
        assert "nowhere" in line
        name = write(tmp_path, "office.yaml", BAD).name
        checked = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "switchboard", "check", name],
            cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert line in checked.stdout.splitlines()  # the same line `check` prints

        status, body = await api.post("/api/v1/config/versions?comment=first", text=GOOD)
        assert (status, body["version"], body["created"]) == (201, 1, True), body
        status, body = await api.post("/api/v1/config/versions", text=GOOD)
        assert (status, body["version"], body["created"]) == (200, 1, False)
        second = GOOD.replace("max_wait: 3600", "max_wait: 600")
        assert (await api.post("/api/v1/config/versions", text=second))[1]["version"] == 2
        assert (await api.post("/api/v1/config/versions", text="  "))[0] == 400

        status, body = await api.get("/api/v1/config/versions")
        assert [(v["version"], v["current"], v["comment"]) for v in body["versions"]] == [
            (2, True, None), (1, False, "first"),
        ]  # fmt: skip
        status, body = await api.get("/api/v1/config/versions/1")
        assert (status, body["yaml"], body["source"]) == (200, GOOD, "api")
        status, text = await api.get("/api/v1/config/versions/2?format=yaml")
        assert (status, text.decode()) == (200, second)
        assert (await api.get("/api/v1/config/versions/3"))[0] == 404
        assert (await api.get("/api/v1/config/versions/x"))[0] == 404


@pytest.mark.asyncio
async def test_an_older_configuration_version_is_made_current_again(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api):
        assert (await api.post("/api/v1/config/versions", text=GOOD))[0] == 201
        second = GOOD.replace("max_wait: 3600", "max_wait: 600")
        assert (await api.post("/api/v1/config/versions", text=second))[0] == 201

        status, body = await api.post("/api/v1/config/versions/1/activate?comment=rollback")
        assert (status, body) == (200, {"version": 1, "changed": True, "previous": 2})
        status, body = await api.post("/api/v1/config/versions/1/activate")
        assert (status, body) == (200, {"version": 1, "changed": False, "previous": 1})
        status, body = await api.get("/api/v1/config/versions")
        listed = [(v["version"], v["current"], v["activated_by"]) for v in body["versions"]]
        assert listed == [(2, False, "import"), (1, True, f"api:{api.token_name}")]
        # importing version 2's text again makes it current again: nothing is stored twice
        status, body = await api.post("/api/v1/config/versions", text=second)
        assert (status, body["version"], body["created"], body["activated"]) == (
            200,
            2,
            False,
            True,
        )

        status, body = await api.post("/api/v1/config/versions/7/activate")
        assert (status, body["error"], body["message"]) == (404, "not_found", "no version 7 stored")
        assert (await api.post("/api/v1/config/versions/x/activate"))[0] == 404
        assert (await api.get("/api/v1/config/versions/1/activate"))[0] == 405
        async with sink.pool.acquire() as conn:  # stored by a release with other rules
            await conn.execute(
                """INSERT INTO config_versions (source, sha256, yaml)
                   VALUES ('old.yaml', 'x', 'numbers: 7')"""
            )
        status, body = await api.post("/api/v1/config/versions/3/activate")
        assert (status, body["error"]) == (422, "config_rejected")
        assert body["problems"][0].startswith("old.yaml@v3:")
        versions = (await api.get("/api/v1/config/versions"))[1]["versions"]
        assert [v["current"] for v in versions] == [False, True, False]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.asyncio
async def test_simulate_runs_a_call_through_the_running_configuration(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api):
        status, body = await api.post(
            "/api/v1/simulate",
            body={"called": "+7 (495) 123-45-67", "caller": "79161112233",
                  "at": "2026-12-01T10:15:00", "agents": {"anna": "answer:3"}},
        )  # fmt: skip
        assert status == 200, body
        assert (body["scenario"], body["called"], body["caller"]) == (
            "main", CALLED, "79161112233",
        )  # fmt: skip
        assert body["at"] == "2026-12-01T10:15:00+03:00"
        assert body["outcome"]["result"] == "connected"
        assert body["outcome"]["agent"] == "anna"
        assert body["outcome"]["wait"] == 3

        for bad, error in (
            ({"caller": "1"}, "called"),
            ({"called": CALLED, "at": "noon"}, "at"),
            ({"called": CALLED, "agents": {"zoe": "answer"}}, "zoe"),
            ({"called": CALLED, "agents": {"anna": "dance"}}, "anna"),
            ({"called": CALLED, "agents": ["anna"]}, "agents"),
            ({"called": 5}, "called"),
        ):
            status, body = await api.post("/api/v1/simulate", body=bad)
            assert (status, body["error"]) == (422, "invalid"), (bad, body)
            assert error in body["message"]
        assert (await api.post("/api/v1/simulate", text="[1"))[0] == 400


@pytest.mark.asyncio
async def test_unknown_routes_and_methods_are_404_or_405_in_json(
    sink: PostgresSink, tmp_path: Path
) -> None:
    async with office(sink, tmp_path) as (_, api):
        for path in ("/api/v1/nothing", "/api/v2/agents", "/api/"):
            status, body = await api.get(path)
            assert (status, body["error"]) == (404, "not_found"), path
        status, body = await api.ask("DELETE", "/api/v1/agents")
        assert (status, body["error"]) == (405, "method_not_allowed")


@pytest.mark.asyncio
async def test_no_token_ever_appears_in_the_logs(
    sink: PostgresSink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither as an event's field nor in a traceback's locals (the console renderer shows
    them): a route that fails logs its traceback, and the token is in no frame of it."""

    async def broken(self: object, request: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api_module.Api, "calls", broken)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        async with office(sink, tmp_path) as (_, api):
            assert api.token is not None
            await api.get("/api/v1/agents")
            await api.post("/api/v1/agents/anna/pause", body={"reason": "lunch"})
            await api.get("/api/v1/agents", token=api.token + "x")
            await api.get("/api/v1/agents", token="secret-guess")  # noqa: S106 - made up
            await api.post("/api/v1/simulate", body={"called": CALLED})
    async with office(sink, tmp_path) as (_, api):  # the console renderer this time
        assert api.token is not None
        status, body = await api.get("/api/v1/calls")
        assert (status, body["error"]) == (500, "internal")
        await api.get("/api/v1/agents", token=api.token + "x")
        tokens = (api.token, api.token + "x")
    rendered = capsys.readouterr()
    logged = repr(events) + caplog.text
    assert "api: token refused" in logged  # the log was captured
    assert "api: agent changed" in logged
    assert "RuntimeError: a bug" in rendered.out + rendered.err
    for secret in (*tokens, "secret-guess"):
        assert secret not in logged
        assert secret not in rendered.out + rendered.err


def switchboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_tokens_are_created_listed_and_revoked_with_the_cli_and_only_hashes_kept(db: str) -> None:
    made = switchboard("tokens", "create", "grafana", "--dsn", db)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 43
    assert token not in made.stderr
    assert "shown only now" in made.stderr

    again = switchboard("tokens", "create", "grafana", "--dsn", db)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        "switchboard tokens create: a token named 'grafana' exists already: choose another name"
    )
    listed = switchboard("tokens", "list", "--dsn", db)
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "CREATED", "LAST", "USED", "REVOKED"]
    assert row.startswith("grafana ")
    assert row.endswith("-")  # not revoked
    assert token not in listed.stdout

    async def stored() -> list[str]:
        conn = await asyncpg.connect(db)
        try:
            return [r["sha256"] for r in await conn.fetch("SELECT sha256 FROM api_tokens")]
        finally:
            await conn.close()

    import asyncio
    import hashlib

    assert asyncio.run(stored()) == [hashlib.sha256(token.encode()).hexdigest()]

    revoked = switchboard("tokens", "revoke", "grafana", "--dsn", db)
    assert (revoked.returncode, revoked.stdout.strip()) == (0, "token 'grafana' revoked")
    assert switchboard("tokens", "list", "--dsn", db).stdout.splitlines()[1].split()[-1] != "-"
    unknown = switchboard("tokens", "revoke", "nobody", "--dsn", db)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "switchboard tokens revoke: no token named 'nobody'"
    empty = switchboard("tokens", "create", " ", "--dsn", db)
    assert empty.returncode == 2


def test_tokens_without_a_dsn_or_a_schema_say_so_in_one_line(fresh_db: str) -> None:
    no_dsn = subprocess.run(
        [sys.executable, "-m", "switchboard", "tokens", "list"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if k != "SWITCHBOARD_DSN"},
    )  # fmt: skip
    assert no_dsn.returncode == 2
    assert no_dsn.stderr.strip() == "switchboard tokens list: give --dsn or set SWITCHBOARD_DSN"
    no_schema = switchboard("tokens", "create", "x", "--dsn", fresh_db)
    assert no_schema.returncode == 1
    assert no_schema.stderr.strip() == (
        "switchboard tokens create: no schema for tokens: run `switchboard db migrate` first"
    )
