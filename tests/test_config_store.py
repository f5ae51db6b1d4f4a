"""Configuration versions in a real PostgreSQL: import, export, the watcher, live calls.

`switchboard config import` checks as `check` does and stores a version once;
`export` gives back YAML that `check` accepts and that imports as the same
version; a running app follows new versions over LISTEN/NOTIFY, and a call keeps
the version it started with (against the Asterisk simulator).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from ari_app.app import AriApp, AriSettings
from asterisk_sim import AsteriskSimulator, CallerScript
from switchboard.calls import CallRecord, MemorySink
from switchboard.clock import ScaledClock
from switchboard.config.export import export_yaml
from switchboard.config.load import load_text
from switchboard.demo import PASSWORD, USER, endpoint_scripts, prompt_durations
from switchboard.engine.trace import Step
from switchboard.simulate import AgentBehaviour, simulate
from switchboard.storage.config_store import (
    CHANNEL,
    ConfigRejected,
    ConfigWatcher,
    NoConfigStored,
    NoSuchVersion,
    activate_config,
    current_config,
    import_config,
    list_versions,
    stored_config,
)
from tests.helpers import EXAMPLES, ROOT

OFFICE = (EXAMPLES / "office.yaml").read_text(encoding="utf-8")
WAIT = 10.0  # real seconds a test waits for the watcher before it fails

# YAML 1.1 look-alikes a careless dump or load would turn into booleans and numbers
LOOK_ALIKES = """\
timezone: Europe/Moscow
numbering: {country_code: 7, city_code: 495, national_prefix: 8}
employees:
  - {id: on, name: yes, extension: 0101}
departments:
  - {id: no, name: off, members: [on]}
greeting: {morning_until: 10:30, day_until: 17:00}
schedules:
  office: {hours: {mon-fri: 09:00-18:00}}
numbers:
  - {number: 84951234567, scenario: main}
scenarios:
  main:
    start: yes
    nodes:
      yes: {type: schedule, schedule: office, open: off, closed: no}
      off: {type: dial, target: no, noanswer: no}
      no: {type: hangup}
"""


def office_with(old: str, new: str) -> str:
    """office.yaml with one edit (``old`` must occur exactly once)."""
    assert OFFICE.count(old) == 1, f"{old!r} occurs {OFFICE.count(old)} times in office.yaml"
    return OFFICE.replace(old, new)


# version 2 of the office: sales nobody answered hangs up instead of taking a message
OFFICE_V2 = office_with(
    "target: sales\n        noanswer: voicemail", "target: sales\n        noanswer: goodbye"
)


@asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def watcher_on(dsn: str) -> AsyncIterator[ConfigWatcher]:
    watcher = ConfigWatcher(backoff_first=0.05, backoff_max=0.5)
    await watcher.start(dsn)
    try:
        yield watcher
    finally:
        await watcher.stop()


async def count(conn: asyncpg.Connection, table: str) -> int:
    value: int = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - test's own table names
    return value


def check(path: Path) -> subprocess.CompletedProcess[str]:
    """`switchboard check FILE`, the real command."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


# --- import and export ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_imported_config_exports_as_yaml_that_check_accepts(
    db: str, tmp_path: Path
) -> None:
    async with connected(db) as conn:
        imported = await import_config(conn, OFFICE, "examples/office.yaml", "first office")
        stored = await stored_config(conn)
    assert imported.created
    assert stored is not None
    assert stored.id == imported.version
    exported = export_yaml(stored)
    assert exported.startswith(f"# Switchboard configuration version {imported.version} ")
    assert "comment: first office" in exported
    assert exported.endswith(OFFICE)  # the text as imported, comments and all
    path = tmp_path / "exported.yaml"
    path.write_text(exported, encoding="utf-8")
    done = check(path)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stdout + done.stderr
    again = load_text(exported, str(path)).raise_for_errors()
    assert again.config == load_text(OFFICE).raise_for_errors().config


@pytest.mark.asyncio
async def test_importing_the_export_again_changes_nothing(db: str) -> None:
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "examples/office.yaml")
        stored = await stored_config(conn)
        assert stored is not None
        rows_before = [await count(conn, t) for t in ("employees", "departments", "numbers")]
        second = await import_config(conn, export_yaml(stored), "exported.yaml", "again")
        assert (second.version, second.created) == (first.version, False)
        assert second.sha256 == first.sha256
        assert await count(conn, "config_versions") == 1
        assert [await count(conn, t) for t in ("employees", "departments", "numbers")] == (
            rows_before
        )
        unchanged = await stored_config(conn)
    assert unchanged == stored  # source, comment and text are those of the first import


@pytest.mark.asyncio
async def test_importing_the_same_data_written_differently_is_the_same_version(db: str) -> None:
    reworded = "# a comment of its own\n" + office_with(
        '{id: petrov, name: Pyotr Petrov, extension: "102", skills: [sales]}',
        "id: petrov\n    name: 'Pyotr Petrov'\n    extension: '102'\n    skills:\n      - sales",
    )
    assert reworded != OFFICE
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "a.yaml")
        second = await import_config(conn, reworded, "b.yaml")
        changed = await import_config(conn, office_with("ring_delay: 15", "ring_delay: 16"), "c")
    assert (second.version, second.created) == (first.version, False)
    assert changed.created
    assert changed.version > first.version


@pytest.mark.asyncio
async def test_yes_no_on_off_and_times_survive_export_and_import(db: str) -> None:
    original = load_text(LOOK_ALIKES, "look-alikes.yaml").raise_for_errors()
    async with connected(db) as conn:
        imported = await import_config(conn, LOOK_ALIKES, "look-alikes.yaml")
        stored = await stored_config(conn)
        assert stored is not None
        again = await import_config(conn, export_yaml(stored), "exported.yaml")
    assert (again.version, again.created) == (imported.version, False)
    company = load_text(export_yaml(stored), "exported.yaml").raise_for_errors()
    assert company.config == original.config
    employee = company.config.employees[0]
    assert (employee.id, employee.name, employee.extension) == ("on", "yes", "0101")
    assert company.config.departments[0].id == "no"
    assert company.config.greeting.morning_until == "10:30"
    assert company.config.schedules["office"].hours == {"mon-fri": "09:00-18:00"}
    assert list(company.config.scenarios["main"].nodes) == ["yes", "off", "no"]


@pytest.mark.asyncio
async def test_the_export_header_stays_a_comment_whatever_source_and_comment_say(
    db: str,
) -> None:
    tricky = "line one\nfoo: bar\u2028timezone: Mars/Base\x85- x\r\n"
    async with connected(db) as conn:
        await import_config(conn, OFFICE, "office\nnumbers: []", tricky)
        stored = await stored_config(conn)
    assert stored is not None
    exported = export_yaml(stored)
    assert (
        load_text(exported).raise_for_errors().config == load_text(OFFICE).raise_for_errors().config
    )
    # an edited export imported again gets one header, not two
    twice = export_yaml(dataclasses.replace(stored, yaml=exported))
    assert twice.count("# Switchboard configuration version") == 1
    assert twice == exported


@pytest.mark.asyncio
async def test_a_broken_config_is_rejected_with_checks_lines_and_stores_nothing(
    db: str, tmp_path: Path
) -> None:
    broken = office_with(
        "target: support\n        noanswer: voicemail",
        "target: support\n        noanswer: voicemial",
    ).replace("ring_timeout: 45", "ring_timeout: -45")
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    expected = check(path)
    assert expected.returncode == 2
    async with connected(db) as conn:
        with pytest.raises(ConfigRejected) as rejected:
            await import_config(conn, broken, str(path))
        assert [await count(conn, t) for t in ("config_versions", "employees", "numbers")] == [
            0,
            0,
            0,
        ]
    assert rejected.value.error_id == "config.rejected"
    assert rejected.value.lines == expected.stdout.splitlines()
    assert len(rejected.value.lines) == 2
    assert all(line.startswith(f"{path}:") for line in rejected.value.lines)


@pytest.mark.asyncio
async def test_each_version_has_its_employees_departments_and_numbers(db: str) -> None:
    multi = (EXAMPLES / "multi-number.yaml").read_text(encoding="utf-8")
    async with connected(db) as conn:
        office = await import_config(conn, OFFICE, "examples/office.yaml")
        other = await import_config(conn, multi, "examples/multi-number.yaml")
        employees = await conn.fetch(
            "SELECT id, name, extension, mobile, forward_to_mobile_after, skills FROM employees"
            " WHERE config_version = $1 ORDER BY id",
            office.version,
        )
        departments = await conn.fetch(
            "SELECT id, name, extension, strategy, ring_delay, ring_timeout, members"
            " FROM departments WHERE config_version = $1 ORDER BY id",
            office.version,
        )
        numbers = await conn.fetch(
            "SELECT config_version, position, number, line, scenario FROM numbers"
            " ORDER BY config_version, position"
        )
    assert [tuple(r) for r in employees] == [
        ("ivanov", "Ivan Ivanov", "101", "79161234567", 10.0, ["sales"]),
        ("kuznetsova", "Olga Kuznetsova", "104", None, None, ["support"]),
        ("petrov", "Pyotr Petrov", "102", None, None, ["sales"]),
        ("sidorova", "Anna Sidorova", "103", None, None, ["support"]),
    ]
    assert [tuple(r) for r in departments] == [
        ("sales", "Sales", "500", "one_by_one", 15.0, 45.0, ["ivanov", "petrov"]),
        ("support", "Support", "600", "all_at_once", 10.0, 30.0, ["sidorova", "kuznetsova"]),
    ]
    office_numbers = [tuple(r)[1:] for r in numbers if r["config_version"] == office.version]
    assert office_numbers == [
        (0, "74951234567", None, "office"),
        (1, "74957654321", None, "office"),
    ]
    company = load_text(multi).raise_for_errors()
    other_numbers = [tuple(r)[1:] for r in numbers if r["config_version"] == other.version]
    assert other_numbers == [
        (
            position,
            company.normalize(entry.number) if entry.number else None,
            entry.line,
            entry.scenario,
        )
        for position, entry in enumerate(company.config.numbers)
    ]
    assert any(line is not None for _, _, line, _ in other_numbers)


@pytest.mark.asyncio
async def test_reimporting_an_older_version_makes_it_current_again_without_storing_it_twice(
    db: str,
) -> None:
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "v1.yaml")
        second = await import_config(conn, OFFICE_V2, "v2.yaml")
        again = await import_config(conn, OFFICE, "v1-again.yaml")
        assert await count(conn, "config_versions") == 2
        current = await current_config(conn)
        same = await import_config(conn, OFFICE, "v1-again.yaml")
        history = await conn.fetch(
            "SELECT config_version, activated_by FROM config_activations ORDER BY id"
        )
    assert (again.version, again.created, again.activated) == (first.version, False, True)
    assert current is not None
    assert current[:2] == (first.version, OFFICE)
    assert (same.version, same.created, same.activated) == (first.version, False, False)
    assert [tuple(r) for r in history] == [
        (first.version, "import"), (second.version, "import"), (first.version, "import"),
    ]  # fmt: skip


@pytest.mark.asyncio
async def test_activating_an_older_version_makes_it_current_and_a_running_app_takes_it(
    db: str,
) -> None:
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "v1.yaml", "the first")
        second = await import_config(conn, OFFICE_V2, "v2.yaml")
        async with watcher_on(db) as watcher:
            assert watcher.version == second.version
            done = await activate_config(conn, first.version, "cli:anna", "v2 lost calls")
            async with asyncio.timeout(WAIT):
                company = await watcher.wait_for_version(first.version)
            assert company.node_exits("office", "ring_sales")["noanswer"] == "voicemail"
            assert company.config_version == first.version
            # forward again, and once more: the second time changes nothing
            forward = await activate_config(conn, second.version, "api:deploy")
            async with asyncio.timeout(WAIT):
                await watcher.wait_for_version(second.version)
            assert not (await activate_config(conn, second.version, "api:deploy")).changed
        listed = await list_versions(conn, 10)
        current = await current_config(conn)
        with pytest.raises(NoSuchVersion, match="no version 99 stored"):
            await activate_config(conn, 99, "cli:anna")
        assert await count(conn, "config_versions") == 2
    assert (done.version, done.changed, done.previous) == (first.version, True, second.version)
    assert (forward.changed, forward.previous) == (True, first.version)
    assert current is not None
    assert current[0] == second.version
    assert [(v.id, v.current, v.activated_by, v.comment) for v in listed] == [
        (second.version, True, "api:deploy", None),
        (first.version, False, "cli:anna", "the first"),
    ]


def switchboard(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, with the database in SWITCHBOARD_DSN as an operator would set it."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "SWITCHBOARD_DSN": dsn, "USER": "anna"},
    )


def test_config_list_and_activate_on_the_command_line(db: str, tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(OFFICE)
    v2.write_text(OFFICE_V2)
    assert switchboard("config", "list", dsn=db).stdout == (
        "no configuration stored: run `switchboard config import FILE`\n"
    )
    assert switchboard("config", "import", str(v1), "--comment", "first", dsn=db).returncode == 0
    assert switchboard("config", "import", str(v2), dsn=db).returncode == 0

    done = switchboard("config", "activate", "1", "--comment", "v2 lost calls", dsn=db)
    assert (done.returncode, done.stdout) == (0, "version 1 is the current one (was 2)\n")
    again = switchboard("config", "activate", "1", dsn=db)
    assert again.stdout == "nothing to do: version 1 is the current one already\n"
    table = switchboard("config", "list", dsn=db).stdout.splitlines()
    assert table[0].split() == ["VERSION", "IMPORTED", "FROM", "CURRENT", "SINCE", "COMMENT"]
    assert table[1].split()[:1] == ["2"]
    assert table[1].endswith(str(v2))  # no comment, not current
    assert table[2].startswith("*  1 ")
    assert table[2].endswith("by cli:anna  first")
    listed = json.loads(switchboard("config", "list", "--json", dsn=db).stdout)
    assert [(v["version"], v["current"], v["activated_by"]) for v in listed["versions"]] == [
        (2, False, "import"), (1, True, "cli:anna"),
    ]  # fmt: skip

    back = switchboard("config", "import", str(v2), dsn=db)
    assert back.stdout == "this is version 2, stored before: it is the current one again\n"
    missing = switchboard("config", "activate", "9", dsn=db)
    assert (missing.returncode, missing.stderr) == (
        1, "switchboard config activate: no version 9 stored (`switchboard config list`)\n",
    )  # fmt: skip
    assert switchboard("config", "list", "--limit", "0", dsn=db).returncode == 2


@pytest.mark.asyncio
async def test_a_version_that_does_not_load_with_this_release_is_not_activated(db: str) -> None:
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "v1.yaml")
        # a row stored by another release whose rules differ
        old: int = await conn.fetchval(
            """INSERT INTO config_versions (source, sha256, yaml)
               VALUES ('old.yaml', 'not-a-digest', 'scenarios: {}\nnumbers: 7') RETURNING id"""
        )
        with pytest.raises(ConfigRejected) as rejected:
            await activate_config(conn, old, "cli:anna")
        current = await current_config(conn)
    assert rejected.value.lines
    assert all(line.startswith(f"old.yaml@v{old}:") for line in rejected.value.lines)
    assert current is not None
    assert current[0] == first.version


@pytest.mark.asyncio
async def test_current_config_is_the_newest_version_loaded(db: str) -> None:
    async with connected(db) as conn:
        assert await current_config(conn) is None
        await import_config(conn, OFFICE, "v1.yaml")
        second = await import_config(conn, OFFICE_V2, "v2.yaml")
        current = await current_config(conn)
    assert current is not None
    version, text, company = current
    assert (version, text) == (second.version, OFFICE_V2)
    assert company.node_exits("office", "ring_sales")["noanswer"] == "goodbye"
    assert company.source == f"v2.yaml@v{second.version}"


@pytest.mark.asyncio
async def test_the_import_notifies_listeners_when_it_commits(db: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    async with connected(db) as listener, connected(db) as conn:
        await listener.add_listener(CHANNEL, lambda *args: got.put_nowait(args[3]))
        imported = await import_config(conn, OFFICE, "office.yaml")
        async with asyncio.timeout(WAIT):
            payload = await got.get()
    assert payload == str(imported.version)


# --- the watcher --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_watcher_does_not_start_without_a_stored_config(db: str) -> None:
    watcher = ConfigWatcher()
    with pytest.raises(NoConfigStored):
        await watcher.start(db)
    assert not watcher.connected


@pytest.mark.asyncio
async def test_the_watcher_loads_a_new_version_when_notified(db: str) -> None:
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "v1.yaml")
        async with watcher_on(db) as watcher:
            assert watcher.version == first.version
            assert watcher.company().node_exits("office", "ring_sales")["noanswer"] == "voicemail"
            second = await import_config(conn, OFFICE_V2, "v2.yaml")
            async with asyncio.timeout(WAIT):
                company = await watcher.wait_for_version(second.version)
            assert watcher.company() is company
            assert company.node_exits("office", "ring_sales")["noanswer"] == "goodbye"
            assert watcher.connections == 1


@pytest.mark.asyncio
async def test_a_stored_version_that_does_not_load_is_skipped_and_the_running_one_kept(
    db: str,
) -> None:
    async with connected(db) as conn:
        first = await import_config(conn, OFFICE, "v1.yaml")
        async with watcher_on(db) as watcher:
            running = watcher.company()
            # a row no import would write (a hand edit, a newer release's rules)
            bad: int = await conn.fetchval(
                """INSERT INTO config_versions (source, sha256, yaml)
                   VALUES ('by hand', 'not-a-digest', 'scenarios: {}\nnumbers: 7') RETURNING id"""
            )
            await conn.execute(
                "INSERT INTO config_activations (config_version, activated_by) VALUES ($1, 'sql')",
                bad,
            )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(bad))
            async with asyncio.timeout(WAIT):
                await watcher.wait_until(lambda w: w.rejected == bad)
            assert watcher.version == first.version
            assert watcher.company() is running
            third = await import_config(conn, OFFICE_V2, "v3.yaml")
            async with asyncio.timeout(WAIT):
                await watcher.wait_for_version(third.version)


@pytest.mark.asyncio
async def test_a_watcher_whose_connection_is_killed_reconnects_and_catches_up(
    db: str, pg_server: str
) -> None:
    name = db.rsplit("/", 1)[1]
    async with connected(pg_server) as admin, connected(db) as conn:
        first = await import_config(conn, OFFICE, "v1.yaml")
        async with watcher_on(db) as watcher:
            # nobody may connect for a while: the watcher's reconnections fail (with
            # backoff) and it surely misses the NOTIFY of the next import
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
                    await watcher.wait_until(lambda w: not w.connected)
                second = await import_config(conn, OFFICE_V2, "v2.yaml")
                async with asyncio.timeout(WAIT):
                    await watcher.wait_until(lambda w: w.connect_failures >= 2)
                assert watcher.version == first.version
            finally:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            async with asyncio.timeout(WAIT):
                company = await watcher.wait_for_version(second.version)
            assert watcher.connected
            assert watcher.connections == 2
            assert company.node_exits("office", "ring_sales")["noanswer"] == "goodbye"


# --- live calls across an import ------------------------------------------------------


WHEN = dt.datetime(2026, 12, 1, 10, 15)  # a Tuesday, office open
SALES_NOBODY = {
    "ivanov": AgentBehaviour.parse("noanswer"),
    "petrov": AgentBehaviour.parse("noanswer"),
}
HANGUP_AFTER = 75.0  # seconds: the caller gives up, in voicemail on v1, after goodbye on v2


@dataclasses.dataclass
class LiveApp:
    """The Asterisk simulator and the Stasis app, the app's company from the watcher."""

    sim: AsteriskSimulator
    app: AriApp
    sink: MemorySink

    async def record_of(self, channel_id: str) -> CallRecord:
        async with asyncio.timeout(30):
            while True:
                for record in self.sink.records:
                    if record.channel_id == channel_id:
                        return record
                self.sink.finished.clear()
                await self.sink.finished.wait()


@asynccontextmanager
async def live_app(watcher: ConfigWatcher, scale: float) -> AsyncIterator[LiveApp]:
    company = watcher.company()
    clock = ScaledClock(scale)
    when = WHEN.replace(tzinfo=company.tz)
    sim = AsteriskSimulator(
        clock=clock, user=USER, password=PASSWORD, app_durations=prompt_durations(company)
    )
    await sim.start()
    try:
        for endpoint, script in endpoint_scripts(company, SALES_NOBODY).items():
            sim.script_endpoint(endpoint, script)
        settings = AriSettings(sim.url, USER, PASSWORD, company.config.asterisk.app)
        sink = MemorySink()
        app = AriApp(
            watcher.company,
            settings,
            sink=sink,
            clock=clock,
            backoff_first=0.05,
            wall_clock=lambda: when,
        )
        async with app:
            await app.wait_ready()
            yield LiveApp(sim, app, sink)
    finally:
        await sim.stop()


def route(steps: Sequence[Step]) -> list[tuple[str, str | None, str | None]]:
    return [(s.node, s.via, s.exit) for s in steps]


def sales_ringing(sim: AsteriskSimulator) -> bool:
    """A sales phone (Ivan's or Pyotr's desk or Ivan's mobile) is ringing."""
    return any(c.live and c.direction == "outbound" and c.dialed for c in sim.channels.values())


@pytest.mark.asyncio
async def test_calls_up_during_an_import_finish_on_the_old_version_and_new_calls_use_the_new(
    db: str,
) -> None:
    v1 = load_text(OFFICE).raise_for_errors()
    v2 = load_text(OFFICE_V2).raise_for_errors()
    expected = {
        name: simulate(
            company,
            called="74951234567",
            caller="79160000001",
            at=WHEN.replace(tzinfo=company.tz),
            agents=SALES_NOBODY,
            hangup_after=HANGUP_AFTER,
        )
        for name, company in (("v1", v1), ("v2", v2))
    }
    assert ("ring_sales", "noanswer", "voicemail") in route(expected["v1"].steps)
    assert ("ring_sales", "noanswer", "goodbye") in route(expected["v2"].steps)
    caller = CallerScript(hangup_after=HANGUP_AFTER)
    async with connected(db) as conn:
        first_version = await import_config(conn, OFFICE, "examples/office.yaml")
        async with watcher_on(db) as watcher, live_app(watcher, scale=0.04) as live:
            assert watcher.version == first_version.version
            first = await live.sim.place_call("79160000001", "74951234567", script=caller)
            await live.sim.wait_for(sales_ringing, what="the first call ringing sales")
            second_version = await import_config(conn, OFFICE_V2, "office-v2.yaml")
            async with asyncio.timeout(WAIT):
                await watcher.wait_for_version(second_version.version)
            # the first call is still ringing sales: it has not passed the edited exit yet
            assert live.sim.channels[first].live
            assert sales_ringing(live.sim)
            assert not live.sink.records
            second = await live.sim.place_call("79160000002", "74951234567", script=caller)
            first_record = await live.record_of(first)
            second_record = await live.record_of(second)
            await live.sim.wait_for(
                lambda s: not s.live_channels() and not s.live_bridges(),
                what="every channel and bridge gone",
            )
    assert route(first_record.steps) == route(expected["v1"].steps)
    assert first_record.outcome.result == expected["v1"].outcome.result
    assert route(second_record.steps) == route(expected["v2"].steps)
    assert second_record.outcome.result == expected["v2"].outcome.result
    # and each call's record says which version it ran on
    assert first_record.config_version == first_version.version
    assert second_record.config_version == second_version.version


@pytest.mark.asyncio
async def test_new_calls_dial_the_phones_the_new_version_names(db: str) -> None:
    """A version that moves the desks to another trunk: the next call rings them there."""
    moved = OFFICE + '\nasterisk:\n  endpoints: {employee: "PJSIP/{extension}@branch"}\n'
    caller = CallerScript(hangup_after=20.0)  # past the menu: sales rings Ivan's desk

    def desks(sim: AsteriskSimulator) -> list[str]:
        return [r.query["endpoint"] for r in sim.requests if r.path == "/ari/channels/create"]

    async with connected(db) as conn:
        await import_config(conn, OFFICE, "examples/office.yaml")
        async with watcher_on(db) as watcher, live_app(watcher, scale=0.04) as live:
            first = await live.sim.place_call("79160000001", "74951234567", script=caller)
            await live.record_of(first)
            before = desks(live.sim)
            version = await import_config(conn, moved, "office-branch.yaml")
            async with asyncio.timeout(WAIT):
                await watcher.wait_for_version(version.version)
            second = await live.sim.place_call("79160000002", "74951234567", script=caller)
            await live.record_of(second)
            after = desks(live.sim)[len(before) :]
    assert before == ["PJSIP/101"]
    assert after == ["PJSIP/101@branch"]
