"""Agents' states in a real PostgreSQL (issue 11): kept across restarts, every change
recorded, requests from `switchboard agents ...` heard by a running app.

The store keeps what `Acd` tells (`on_change`) and gives it back to a new `Acd`; the
CLI checks a request against the current configuration and the kept state, stores
it and NOTIFYs; `AgentCommands` delivers each request once, even one made while its
connection was down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
import structlog

from switchboard.acd.agents import AgentChange
from switchboard.acd.service import Acd
from switchboard.config.load import load_text
from switchboard.storage.agents import (
    CHANNEL,
    REASON_MAX,
    AgentCommands,
    AgentLoggedOut,
    KeptAgentState,
    agent_changes_between,
    apply_agent_command,
    load_agent_states,
    record_agent_change,
    request_agent_change,
    stored_agent_states,
)
from switchboard.storage.config_store import config_sha256, import_config
from switchboard.storage.shared_acd import SharedAgents
from tests.helpers import EXAMPLES, ROOT

OFFICE = (EXAMPLES / "office.yaml").read_text(encoding="utf-8")
COMPANY = load_text(OFFICE, "office.yaml").raise_for_errors()
WAIT = 10.0  # real seconds a test waits for the listener before it fails
T0 = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC).timestamp()  # 10:15 in Moscow

Command = tuple[str, KeptAgentState, str, str]


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


class Heard:
    """What an `AgentCommands` delivered, and an event per delivery."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.arrived = asyncio.Event()

    def __call__(self, agent: str, state: KeptAgentState, reason: str, by: str) -> None:
        self.commands.append((agent, state, reason, by))
        self.arrived.set()

    async def next(self) -> Command:
        async with asyncio.timeout(WAIT):
            await self.arrived.wait()
        self.arrived.clear()
        return self.commands[-1]


@asynccontextmanager
async def listening(dsn: str, heard: Heard) -> AsyncIterator[AgentCommands]:
    commands = AgentCommands(heard, backoff_first=0.05, backoff_max=0.5)
    await commands.start(dsn)
    try:
        yield commands
    finally:
        await commands.stop()


# --- kept across a restart --------------------------------------------------------------


@pytest.mark.asyncio
async def test_states_an_acd_told_come_back_to_a_new_acd_after_a_restart(db: str) -> None:
    before = Acd.for_company(COMPANY)
    changes: list[AgentChange] = []
    before.on_change(changes.append)
    before.logout("ivanov", T0, by="phone")
    before.pause("sidorova", T0 + 1, "lunch", by="phone")
    before.pause("kuznetsova", T0 + 2, "training", by="cli")
    before.resume("kuznetsova", T0 + 3, by="cli")
    async with connected(db) as conn:
        for change in changes:
            assert await record_agent_change(conn, change, "instance-a")
        states = await load_agent_states(conn)
        stored = await stored_agent_states(conn)
    assert states == {
        "ivanov": ("logged_out", ""),
        "sidorova": ("paused", "lunch"),
        "kuznetsova": ("available", ""),
    }
    assert stored["sidorova"].since == dt.datetime.fromtimestamp(T0 + 1, dt.UTC)
    assert stored["sidorova"].by == "phone"

    after = Acd.for_company(COMPANY, states=states)  # the restart
    assert after.agents["ivanov"].state == "logged_out"
    assert (after.agents["sidorova"].state, after.agents["sidorova"].reason) == ("paused", "lunch")
    assert after.agents["kuznetsova"].state == "available"
    assert after.agents["petrov"].state == "available"  # never changed: no row
    assert after.ranked("sales", T0 + 10) == [["petrov"]]
    assert after.ranked("support", T0 + 10) == [["kuznetsova"]]
    assert after.kept_states() == before.kept_states()


@pytest.mark.asyncio
async def test_every_change_is_recorded_for_reports_in_time_order(db: str) -> None:
    changes = [
        AgentChange("ivanov", T0, "paused", "lunch", "phone"),
        AgentChange("petrov", T0 + 5, "logged_out", "", "cli"),
        AgentChange("ivanov", T0 + 3600, "available", "", "phone"),
        AgentChange("ivanov", T0 + 7200, "logged_out", "", "api"),
    ]
    async with connected(db) as conn:
        for change in changes:
            await record_agent_change(conn, change, "instance-a")
        since = dt.datetime.fromtimestamp(T0, dt.UTC)
        ivanov = await agent_changes_between(conn, "ivanov", since, since + dt.timedelta(hours=2))
        everyone = await agent_changes_between(conn, None, since, since + dt.timedelta(days=1))
        nothing = await agent_changes_between(conn, "ivanov", since - dt.timedelta(days=1), since)
    assert [(c.at, c.state, c.reason, c.by) for c in ivanov] == [
        (since, "paused", "lunch", "phone"),
        (since + dt.timedelta(hours=1), "available", "", "phone"),
    ]  # `until` excluded: the 12:15 log-out is not in it
    assert [c.agent for c in everyone] == ["ivanov", "petrov", "ivanov", "ivanov"]
    assert {c.instance for c in everyone} == {"instance-a"}
    assert nothing == []


@pytest.mark.asyncio
async def test_a_change_the_store_holds_already_is_not_recorded_twice(db: str) -> None:
    paused = AgentChange("ivanov", T0, "paused", "lunch", "cli")
    async with connected(db) as conn:
        assert await record_agent_change(conn, paused, "instance-a")
        # a second instance applying the same request, or the app applying the CLI's
        assert not await record_agent_change(conn, paused, "instance-b")
        assert await record_agent_change(
            conn, AgentChange("ivanov", T0 + 1, "paused", "tea", "cli"), None
        )
        count = await conn.fetchval("SELECT count(*) FROM agent_changes")
    assert count == 2


@pytest.mark.asyncio
async def test_the_acds_own_states_are_never_kept(db: str) -> None:
    async with connected(db) as conn:
        with pytest.raises(ValueError, match="ringing"):
            await record_agent_change(conn, AgentChange("ivanov", T0, "ringing"), "a")
        assert await conn.fetchval("SELECT count(*) FROM agent_states") == 0


# --- requests (the CLI's) ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_requests_follow_the_acds_rules(db: str) -> None:
    async with connected(db) as conn:
        done = await request_agent_change(conn, "ivanov", "available")
        assert not done.changed  # available from the start
        assert done.since is None
        done = await request_agent_change(conn, "ivanov", "logged_out")
        assert (done.changed, done.state) == (True, "logged_out")
        with pytest.raises(AgentLoggedOut, match="log in first"):
            await request_agent_change(conn, "ivanov", "paused", "lunch")
        with pytest.raises(AgentLoggedOut, match="log in first"):
            await request_agent_change(conn, "ivanov", "available", resume=True)
        assert (await request_agent_change(conn, "ivanov", "available")).changed  # log in
        assert (await request_agent_change(conn, "ivanov", "paused", "lunch")).changed
        assert not (await request_agent_change(conn, "ivanov", "paused", "lunch")).changed
        assert (await request_agent_change(conn, "ivanov", "paused", "training")).changed
        with pytest.raises(ValueError, match="longer than"):
            await request_agent_change(conn, "ivanov", "paused", "x" * (REASON_MAX + 1))
        done = await request_agent_change(conn, "ivanov", "available", "ignored", resume=True)
        assert (done.changed, done.reason) == (True, "")
        rows = await conn.fetch("SELECT state, reason, by, instance FROM agent_changes ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("logged_out", "", "cli", None),
        ("available", "", "cli", None),
        ("paused", "lunch", "cli", None),
        ("paused", "training", "cli", None),
        ("available", "", "cli", None),
    ]


@pytest.mark.asyncio
async def test_a_request_is_heard_by_a_running_app_and_applied_once(db: str) -> None:
    acd = Acd.for_company(COMPANY)
    recorded: list[AgentChange] = []
    acd.on_change(recorded.append)
    heard = Heard()

    def apply(agent: str, state: KeptAgentState, reason: str, by: str) -> None:
        heard(agent, state, reason, by)
        apply_agent_command(acd, T0, agent, state, reason, by)

    async with connected(db) as conn:
        await request_agent_change(conn, "petrov", "logged_out")  # before the app starts
        commands = AgentCommands(apply)
        states = await commands.start(db)
        try:
            assert states == {"petrov": ("logged_out", "")}
            await request_agent_change(conn, "ivanov", "paused", "lunch", by="api")
            assert await heard.next() == ("ivanov", "paused", "lunch", "api")
            assert (acd.agents["ivanov"].state, acd.agents["ivanov"].reason) == ("paused", "lunch")
            # what the app's Acd tells is what the request stored already: one row
            assert not await record_agent_change(conn, recorded[-1], "instance-a")
            await request_agent_change(conn, "ivanov", "available", resume=True)
            assert await heard.next() == ("ivanov", "available", "", "cli")
            assert acd.agents["ivanov"].state == "available"
            assert commands.delivered == 2
        finally:
            await commands.stop()
        assert await conn.fetchval("SELECT count(*) FROM agent_changes") == 3
    assert not commands.connected


@pytest.mark.asyncio
async def test_a_malformed_notification_is_logged_and_skipped(db: str) -> None:
    heard = Heard()
    async with connected(db) as conn, listening(db, heard) as commands:
        with structlog.testing.capture_logs() as logs:
            for junk in ("not json", "[1]", '{"id": 1, "agent": "ivanov"}'):
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, junk)
            await conn.execute(
                "SELECT pg_notify($1, $2)",
                CHANNEL,
                json.dumps({"id": 99, "agent": "x", "state": "ringing", "reason": "", "by": "a"}),
            )
            await request_agent_change(conn, "ivanov", "logged_out")
            assert await heard.next() == ("ivanov", "logged_out", "", "cli")
    assert heard.commands == [("ivanov", "logged_out", "", "cli")]
    assert commands.delivered == 1
    ignored = [e for e in logs if e["event"] == "agent command ignored: malformed notification"]
    assert [e["payload"][:8] for e in ignored] == ["not json", "[1]", '{"id": 1', '{"id": 9']
    assert all(e["log_level"] == "warning" for e in ignored)


@pytest.mark.asyncio
async def test_an_apply_that_fails_does_not_stop_the_next_request(db: str) -> None:
    acd = Acd.for_company(COMPANY)
    heard = Heard()

    def apply(agent: str, state: KeptAgentState, reason: str, by: str) -> None:
        heard(agent, state, reason, by)
        apply_agent_command(acd, T0, agent, state, reason, by)

    async with connected(db) as conn:
        commands = AgentCommands(apply)
        await commands.start(db)
        try:
            with structlog.testing.capture_logs() as logs:
                await request_agent_change(conn, "nobody", "logged_out")  # not a member
                assert await heard.next() == ("nobody", "logged_out", "", "cli")
                await request_agent_change(conn, "ivanov", "logged_out")
                assert await heard.next() == ("ivanov", "logged_out", "", "cli")
        finally:
            await commands.stop()
    assert acd.agents["ivanov"].state == "logged_out"
    assert [e["agent"] for e in logs if e["event"] == "agent command not applied"] == ["nobody"]


@pytest.mark.asyncio
async def test_a_request_made_while_the_listener_was_away_is_delivered_after_it_reconnects(
    db: str, pg_server: str
) -> None:
    name = db.rsplit("/", 1)[1]
    heard = Heard()
    async with (
        connected(pg_server) as admin,
        connected(db) as conn,
        listening(db, heard) as commands,
    ):
        # nobody may connect for a while: the listener's reconnections fail and the
        # NOTIFY of the request below surely reaches no one
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            killed = await admin.fetchval(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE datname = $1 AND pid <> $2""",
                name,
                conn.get_server_pid(),
            )
            assert killed == 1
            async with asyncio.timeout(WAIT):
                await commands.wait_until(lambda c: not c.connected)
            await request_agent_change(conn, "sidorova", "paused", "lunch")
            async with asyncio.timeout(WAIT):
                await commands.wait_until(lambda c: c.connect_failures >= 1)
            assert heard.commands == []
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert await heard.next() == ("sidorova", "paused", "lunch", "cli")
        await request_agent_change(conn, "sidorova", "available", resume=True)
        assert await heard.next() == ("sidorova", "available", "", "cli")
        assert commands.connections == 2
        assert commands.delivered == 2
    assert len(heard.commands) == 2


# --- the CLI ----------------------------------------------------------------------------


def switchboard(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command; ``dsn`` given with ``--dsn``."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args, *(["--dsn", dsn] if dsn else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def office_db(db: str) -> str:
    """A database with the office (sales: ivanov, petrov; support: sidorova, kuznetsova)."""

    async def store() -> None:
        async with connected(db) as conn:
            await import_config(conn, OFFICE, "office.yaml")

    asyncio.run(store())
    return db


def test_agents_list_shows_every_member_and_their_kept_state(office_db: str) -> None:
    done = switchboard("agents", "list", dsn=office_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "AGENT       STATE      SINCE  BY  DEPARTMENTS  CALL  REASON",
        "ivanov      available  -      -   sales        -     -",
        "petrov      available  -      -   sales        -     -",
        "sidorova    available  -      -   support      -     -",
        "kuznetsova  available  -      -   support      -     -",
    ]
    paused = switchboard("agents", "pause", "sidorova", "--reason", "lunch break", dsn=office_db)
    assert (paused.returncode, paused.stdout) == (0, "sidorova paused: lunch break\n"), (
        paused.stderr
    )
    out = switchboard("agents", "logout", "ivanov", dsn=office_db)
    assert (out.returncode, out.stdout) == (0, "ivanov logged out\n"), out.stderr

    listed = switchboard("agents", "list", dsn=office_db)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].split()[:2] == ["ivanov", "logged_out"]
    assert lines[1].split()[4:] == ["cli", "sales", "-", "-"]
    assert lines[3].split()[:2] == ["sidorova", "paused"]
    assert lines[3].endswith("  cli  support      -     lunch break")
    as_json = switchboard("agents", "list", "--json", dsn=office_db)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["config_version"] == 1
    agents = {a["agent"]: a for a in data["agents"]}
    assert list(agents) == ["ivanov", "petrov", "sidorova", "kuznetsova"]
    assert agents["petrov"] == {
        "agent": "petrov",
        "state": "available",
        "reason": "",
        "since": None,
        "by": None,
        "departments": ["sales"],
        "held_by": None,
    }
    assert data["waiting"] == []
    sidorova = agents["sidorova"]
    assert (sidorova["state"], sidorova["reason"], sidorova["by"]) == (
        "paused",
        "lunch break",
        "cli",
    )
    since = dt.datetime.fromisoformat(sidorova["since"])
    assert since.utcoffset() == dt.timedelta(hours=3)  # the company's timezone (Moscow)
    assert abs(since - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert f"{since:%Y-%m-%d %H:%M:%S}" in lines[3]


def test_agents_list_shows_which_instance_holds_each_agent_and_who_waits_where(
    office_db: str,
) -> None:
    """Instances sharing agents (issue 14): one picture, whichever instance is asked."""

    async def share() -> None:
        async with connected(office_db) as conn:
            east, west = SharedAgents("east"), SharedAgents("west")
            for instance in (east, west):
                await instance.renew(conn)
            assert await east.reserve(conn, "ivanov", "east-c1", departments=["sales"])
            assert await west.reserve(conn, "sidorova", "west-c2", departments=["support"])
            await east.wait(conn, "east-c3", "sales")
            await west.wait(conn, "west-c4", "sales")
            await west.wait(conn, "west-c5", "sales")

    asyncio.run(share())
    listed = switchboard("agents", "list", dsn=office_db)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[5] for line in lines[1:5]] == ["east:east-c1", "-", "west:west-c2", "-"]
    assert lines[5] == "waiting: sales 1 on east, sales 2 on west"
    data = json.loads(switchboard("agents", "list", "--json", dsn=office_db).stdout)
    ivanov = data["agents"][0]["held_by"]
    assert (ivanov["instance"], ivanov["call_id"]) == ("east", "east-c1")
    assert dt.datetime.fromisoformat(ivanov["since"]).utcoffset() == dt.timedelta(hours=3)
    assert data["waiting"] == [
        {"department": "sales", "instance": "east", "waiting": 1},
        {"department": "sales", "instance": "west", "waiting": 2},
    ]


def test_agents_commands_change_state_as_the_acd_would_and_the_states_survive(
    office_db: str,
) -> None:
    steps = [
        (("login", "ivanov"), 0, "nothing to do: ivanov is logged in already\n"),
        (("resume", "ivanov"), 0, "nothing to do: ivanov is not paused\n"),
        (("logout", "ivanov"), 0, "ivanov logged out\n"),
        (("logout", "ivanov"), 0, "nothing to do: ivanov is logged out already\n"),
        (("login", "ivanov"), 0, "ivanov logged in\n"),
        (("pause", "petrov"), 0, "petrov paused\n"),
        (("pause", "petrov", "--reason", "training"), 0, "petrov paused: training\n"),
        (("pause", "petrov", "--reason", "training"), 0,
         "nothing to do: petrov is paused already: training\n"),
        (("resume", "petrov"), 0, "petrov resumed\n"),
        (("pause", "kuznetsova", "--reason", "lunch"), 0, "kuznetsova paused: lunch\n"),
        (("logout", "sidorova"), 0, "sidorova logged out\n"),
    ]  # fmt: skip
    for args, code, out in steps:
        done = switchboard("agents", *args, dsn=office_db)
        assert (done.returncode, done.stdout) == (code, out), (args, done.stderr)

    async def restart() -> Acd:
        async with connected(office_db) as conn:
            return Acd.for_company(COMPANY, states=await load_agent_states(conn))

    acd = asyncio.run(restart())
    assert {a: (x.state, x.reason) for a, x in acd.agents.items()} == {
        "ivanov": ("available", ""),
        "petrov": ("available", ""),
        "sidorova": ("logged_out", ""),
        "kuznetsova": ("paused", "lunch"),
    }


def test_agents_commands_refuse_unknown_agents_and_a_pause_while_logged_out(
    office_db: str,
) -> None:
    for args in (("pause", "nobody"), ("login", "nobody"), ("logout", "Ivanov")):
        done = switchboard("agents", *args, dsn=office_db)
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert done.stderr.strip() == (
            f"switchboard agents {args[0]}: unknown agent {args[1]!r}: not a member of any "
            "department in configuration version 1"
        )
    assert switchboard("agents", "logout", "petrov", dsn=office_db).returncode == 0
    for verb in ("pause", "resume"):
        done = switchboard("agents", verb, "petrov", dsn=office_db)
        assert done.returncode == 1
        assert done.stderr.strip().endswith(
            f"switchboard agents {verb}: agent 'petrov' is logged out: log in first"
        )
    long = switchboard("agents", "pause", "ivanov", "--reason", "x" * 201, dsn=office_db)
    assert long.returncode == 2
    assert "longer than 200 characters" in long.stderr

    async def changes() -> int:
        async with connected(office_db) as conn:
            return int(await conn.fetchval("SELECT count(*) FROM agent_changes"))

    assert asyncio.run(changes()) == 1  # petrov's log-out, nothing else


def test_agents_commands_say_what_is_missing(db: str) -> None:
    no_dsn = subprocess.run(
        [sys.executable, "-m", "switchboard", "agents", "list"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert no_dsn.returncode == 2
    assert no_dsn.stderr.strip() == "switchboard agents list: give --dsn or set SWITCHBOARD_DSN"
    unreachable = switchboard("agents", "login", "ivanov", dsn="postgresql://nobody@127.0.0.1:9/x")
    assert unreachable.returncode == 1
    assert "switchboard agents login: cannot connect" in unreachable.stderr
    no_config = switchboard("agents", "list", dsn=db)
    assert no_config.returncode == 1
    assert no_config.stderr.strip() == (
        "switchboard agents list: no configuration stored: run `switchboard config import` first"
    )


def test_agents_commands_on_an_older_schema_say_to_migrate(fresh_db: str) -> None:
    from switchboard.storage.migrate import migrations

    async def at_version_2() -> None:
        async with connected(fresh_db) as conn:
            for migration in migrations()[:2]:
                await conn.execute(migration.sql)
            # imported as that release did: the newest version was the current one
            await conn.execute(
                "INSERT INTO config_versions (source, sha256, yaml) VALUES ($1, $2, $3)",
                "office.yaml", config_sha256(OFFICE), OFFICE,
            )  # fmt: skip

    said = "switchboard agents pause: no schema for agents: run `switchboard db migrate` first"
    empty = switchboard("agents", "pause", "ivanov", dsn=fresh_db)
    assert (empty.returncode, empty.stderr.strip()) == (1, said)
    asyncio.run(at_version_2())  # a configuration, but no agent tables yet
    older = switchboard("agents", "pause", "ivanov", dsn=fresh_db)
    assert (older.returncode, older.stderr.strip()) == (1, said)
