"""Issue 12: per-scenario analytics -- the views of migrations 0005 and 0009 and `switchboard
report`.

A real PostgreSQL holds the known mix of simulated calls in tests/call_mix.py;
every figure the report prints (table, --csv, --json) is checked against what
that mix implies, worked out by hand below.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import structlog

from switchboard.cli import main
from switchboard.storage.migrate import migrate, migrations
from switchboard.storage.records import TABLES, record_row
from tests.call_mix import IN_PERIOD, PERIOD, check_kinds, fill, records
from tests.helpers import ROOT

# --- what the mix implies ---------------------------------------------------------------


def figures(
    calls: int,
    *,
    connected: int = 0,
    abandoned: int = 0,
    voicemail: int = 0,
    callback: int = 0,
    avg_wait: float | None = None,
    avg_talk: float | None = None,
    avg_duration: float | None = None,
    offered: int = 0,
    within: int = 0,
    repeat_calls: int = 0,
    repeat_callers: int = 0,
    attempts: int = 0,
    done: int = 0,
) -> dict[str, Any]:
    return {
        "calls": calls,
        "connected": connected,
        "abandoned": abandoned,
        "voicemail": voicemail,
        "callback": callback,
        "dialplan": 0,
        "hangup": 0,
        "avg_wait_s": None if avg_wait is None else round(avg_wait, 3),
        "avg_talk_s": None if avg_talk is None else round(avg_talk, 3),
        "avg_duration_s": None if avg_duration is None else round(avg_duration, 3),
        "offered": offered,
        "answered_within": within,
        "service_level": round(within / offered, 4) if offered else None,
        "transferred": 0,
        "repeat_calls": repeat_calls,
        "repeat_callers": repeat_callers,
        "callback_attempts": attempts,
        "callbacks_done": done,
    }


# office: 7 sales (wait 2, 65 s), 2 support (2, 62 s), 2 slow (25, 98 s), 2 closed
# (voicemail, 129.5 s), 1 gave up in the menu (3 s), 1 extension (2, 62 s).  Offered to a
# person: the 12 that rang someone; within 20 s: all but the 2 slow ones.  Repeats: the
# first sales call (its caller gave up 5 min before) and the Tue 00:00 closed call.
OFFICE = figures(
    15, connected=12, abandoned=1, voicemail=2,
    avg_wait=(7 * 2 + 2 * 2 + 2 * 25 + 2) / 12, avg_talk=60.0,
    avg_duration=(7 * 65 + 2 * 62 + 2 * 98 + 2 * 129.5 + 3 + 62) / 15,
    offered=12, within=10, repeat_calls=2, repeat_callers=2,
)  # fmt: skip
# support: 3 abandoned in the queue (50 s), 1 call-back request (34.5 s), 2 answered
# (wait 2, 62 s); all 6 waited in the queue; 2 call-back attempts, 1 done.
SUPPORT = figures(
    6, connected=2, abandoned=3, callback=1, avg_wait=2.0, avg_talk=60.0,
    avg_duration=(3 * 50 + 34.5 + 2 * 62) / 6, offered=6, within=2, attempts=2, done=1,
)  # fmt: skip
# tariffs: 3 calls put through to sales by the menu's 2, Ivan answering after 2 s; before
# that they heard the tariffs twice (102 s), once (82 s) or not at all (62 s).
TARIFFS = figures(
    3, connected=3, avg_wait=2.0, avg_talk=60.0, avg_duration=(102 + 82 + 62) / 3,
    offered=3, within=3,
)  # fmt: skip


def node(
    name: str,
    kind: str,
    calls: int,
    exits: tuple[tuple[str, str, int], ...] = (),
    ended: int = 0,
    abandoned: int = 0,
    after: float | None = None,
    in_node: float | None = None,
    visits: int | None = None,
    repeated: int = 0,
) -> dict[str, Any]:
    return {
        "node": name,
        "type": kind,
        "calls": calls,
        "visits": calls if visits is None else visits,
        "repeated": repeated,
        "exits": [{"via": via, "exit": to, "times": times} for via, to, times in exits],
        "ended": ended,
        "abandoned": abandoned,
        "abandoned_after_s": after,
        "abandoned_in_node_s": in_node,
    }


# in order of the position a node first has in a call, then by calls
OFFICE_FUNNEL = [
    node("hours", "schedule", 15, (("open", "welcome", 13), ("closed", "closed_message", 2))),
    node("welcome", "play", 13, (("next", "menu", 13),)),
    node("closed_message", "play", 2, (("next", "voicemail", 2),)),
    node(
        "menu", "menu", 13,
        (("option 1", "ring_sales", 7), ("default", "ring_sales", 2),
         ("option 2", "ring_support", 2)),
        ended=2, abandoned=1, after=3.0, in_node=1.0,  # gave up 1 s into the menu
    ),
    node("voicemail", "voicemail", 2, (("next", "goodbye", 2),)),
    node("ring_sales", "dial", 9, ended=9),
    node("goodbye", "hangup", 2, ended=2),
    node("ring_support", "dial", 2, ended=2),
]  # fmt: skip
OFFICE_MENUS = [
    {"node": "menu", "kind": "option", "choice": "1", "times": 7},
    {"node": "menu", "kind": "default", "choice": None, "times": 2},
    {"node": "menu", "kind": "option", "choice": "2", "times": 2},
    {"node": "menu", "kind": "ended", "choice": None, "times": 1},
    {"node": "menu", "kind": "extension", "choice": "103", "times": 1},
]
SUPPORT_FUNNEL = [
    node("returning", "icm", 6, (("notfound", "queue", 6),)),
    node(
        "queue", "queue", 6, (("callback", "take_callback", 1),),
        ended=5, abandoned=3, after=50.0, in_node=50.0,
    ),
    node("take_callback", "callback", 1, (("next", "goodbye", 1),)),
    node("goodbye", "hangup", 1, ended=1),
]  # fmt: skip
# choose: 3 calls, 6 passes (3 + 2 + 1), 2 of the calls more than once; tariffs: 2 calls,
# 3 passes, 1 call twice.  ring_sales and tariffs both first come second: the name decides.
TARIFFS_FUNNEL = [
    node(
        "choose", "menu", 3, (("option 1", "tariffs", 3), ("option 2", "ring_sales", 3)),
        visits=6, repeated=2,
    ),
    node("ring_sales", "dial", 3, ended=3),
    node("tariffs", "play", 2, (("next", "choose", 3),), visits=3, repeated=1),
]  # fmt: skip
TARIFFS_MENUS = [
    {"node": "choose", "kind": "option", "choice": "1", "times": 3},
    {"node": "choose", "kind": "option", "choice": "2", "times": 3},
]

TABLE = """\
calls from 2026-12-01 to 2026-12-03 (Europe/Moscow, the end not included)
service level: answered within 20 s, of the calls offered to a person; repeat callers: called again within 24 h

SCENARIO  CALLS  CONNECTED  ABANDONED  VOICEMAIL  CALL-BACK  OTHER  AVG WAIT  AVG TALK  AVG DURATION  SERVICE LEVEL  TRANSFERRED  REPEAT CALLERS
office       15         12          1          2          0      0      5.8s     60.0s         73.3s    83% (10/12)            0               2
support       6          2          3          0          1      0      2.0s     60.0s         51.4s      33% (2/6)            0               0
tariffs       3          3          0          0          0      0      2.0s     60.0s         82.0s     100% (3/3)            0               0

call-backs made in support: 2 attempts, 1 connected the customer

funnel of office
NODE            TYPE       CALLS  REPEATED  ENDED  ABANDONED  AFTER (ON LINE / IN NODE)  EXITS
hours           schedule      15         0      0          0  -                          open -> welcome 13, closed -> closed_message 2
welcome         play          13         0      0          0  -                          next -> menu 13
closed_message  play           2         0      0          0  -                          next -> voicemail 2
menu            menu          13         0      2          1  3.0s / 1.0s                option 1 -> ring_sales 7, default -> ring_sales 2, option 2 -> ring_support 2
voicemail       voicemail      2         0      0          0  -                          next -> goodbye 2
ring_sales      dial           9         0      9          0  -                          -
goodbye         hangup         2         0      2          0  -                          -
ring_support    dial           2         0      2          0  -                          -

menu choices in office
NODE  CHOICE         TIMES
menu  option 1           7
menu  default            2
menu  option 2           2
menu  ended              1
menu  extension 103      1

funnel of support
NODE           TYPE      CALLS  REPEATED  ENDED  ABANDONED  AFTER (ON LINE / IN NODE)  EXITS
returning      icm           6         0      0          0  -                          notfound -> queue 6
queue          queue         6         0      5          3  50.0s / 50.0s              callback -> take_callback 1
take_callback  callback      1         0      0          0  -                          next -> goodbye 1
goodbye        hangup        1         0      1          0  -                          -

funnel of tariffs
NODE        TYPE  CALLS  REPEATED  ENDED  ABANDONED  AFTER (ON LINE / IN NODE)  EXITS
choose      menu      3         2      0          0  -                          option 1 -> tariffs 3, option 2 -> ring_sales 3
ring_sales  dial      3         0      3          0  -                          -
tariffs     play      2         1      0          0  -                          next -> choose 3

menu choices in tariffs
NODE    CHOICE    TIMES
choose  option 1      3
choose  option 2      3
"""  # noqa: E501 - the table as printed


# --- running it -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """`main` points the logs at this test's captured stderr: not the next test's."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def mix_db(db: str) -> str:
    """The mix of tests/call_mix.py in a database of its own."""
    check_kinds()
    asyncio.run(fill(db))
    return db


def report(
    capsys: pytest.CaptureFixture[str], dsn: str, *args: str, code: int = 0
) -> tuple[str, str]:
    """`switchboard report` over the mix's period, as a user runs it: (stdout, stderr)."""
    start, end = PERIOD
    done = main(["report", "--dsn", dsn, "--from", start, "--to", end, *args])
    out, err = capsys.readouterr()
    assert done == code, err
    return out, err


def as_json(capsys: pytest.CaptureFixture[str], dsn: str, *args: str) -> dict[str, Any]:
    out, _ = report(capsys, dsn, "--json", *args)
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def by_scenario(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["scenario"]: s for s in found["scenarios"]}


def totals(scenario: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scenario.items() if k not in {"scenario", "groups", "funnel", "menus"}}


async def query(dsn: str, sql: str, *args: object, zone: str = "Europe/Moscow") -> list[Any]:
    conn = await asyncpg.connect(dsn, server_settings={"TimeZone": zone})
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


# --- the report -------------------------------------------------------------------------


def test_the_json_report_has_every_figure_the_mix_implies(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    found = as_json(capsys, mix_db)
    assert found["from"] == "2026-12-01T00:00:00+03:00"
    assert found["to"] == "2026-12-03T00:00:00+03:00"
    assert (found["timezone"], found["service_level_s"], found["repeat_hours"]) == (
        "Europe/Moscow", 20.0, 24.0,
    )  # fmt: skip
    scenarios = by_scenario(found)
    assert list(scenarios) == ["office", "support", "tariffs"]
    assert totals(scenarios["office"]) == OFFICE
    assert totals(scenarios["support"]) == SUPPORT
    assert totals(scenarios["tariffs"]) == TARIFFS
    # the two outside are left out
    assert OFFICE["calls"] + SUPPORT["calls"] + TARIFFS["calls"] == IN_PERIOD
    assert scenarios["office"]["funnel"] == OFFICE_FUNNEL
    assert scenarios["office"]["menus"] == OFFICE_MENUS
    assert scenarios["support"]["funnel"] == SUPPORT_FUNNEL
    assert scenarios["support"]["menus"] == []
    assert scenarios["tariffs"]["funnel"] == TARIFFS_FUNNEL
    assert scenarios["tariffs"]["menus"] == TARIFFS_MENUS
    assert all(s["groups"] == [] for s in scenarios.values())


def test_the_table_shows_the_same_figures_to_a_person(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = report(capsys, mix_db)
    assert out == TABLE


def test_the_csv_report_is_one_table_holding_exactly_the_json_figures(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = report(capsys, mix_db, "--csv", "--by", "department")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {len(row) for row in rows} == {len(rows[0])}  # rectangular
    found = as_json(capsys, mix_db, "--by", "department")

    def cell(value: Any) -> str:
        return "" if value is None else str(value)

    expected: list[dict[str, str]] = []
    for s in found["scenarios"]:
        name = s["scenario"]
        for group in [{"group": None, **totals(s)}, *s["groups"]]:
            expected.append(
                {"section": "summary", "scenario": name, "by": "department"}
                | {k: cell(v) for k, v in group.items()}
            )
        for step in s["funnel"]:
            expected.append(
                {"section": "funnel", "scenario": name}
                | {k: cell(v) for k, v in step.items() if k != "exits"}
            )
            expected.extend(
                {"section": "exit", "scenario": name, "node": step["node"], "type": step["type"]}
                | {k: cell(v) for k, v in e.items()}
                for e in step["exits"]
            )
        expected.extend(
            {"section": "menu", "scenario": name} | {k: cell(v) for k, v in choice.items()}
            for choice in s["menus"]
        )
    filled = [{k: v for k, v in row.items() if v != ""} for row in rows]
    assert filled == [{k: v for k, v in row.items() if v != ""} for row in expected]
    assert filled[0] == {"section": "summary", "scenario": "office", "by": "department"} | {
        k: cell(v) for k, v in OFFICE.items() if v is not None
    }


def test_by_department_agent_number_reason_and_day_split_each_scenario(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def groups(by: str) -> dict[str, dict[str | None, tuple[int, ...]]]:
        found = by_scenario(as_json(capsys, mix_db, "--by", by))
        return {
            name: {
                g["group"]: (g["calls"], g["connected"], g["answered_within"], g["offered"])
                for g in s["groups"]
            }
            for name, s in found.items()
        }

    # (calls, connected, answered within 20 s, offered).  A call is its answering
    # department's, else its queue's: the 3 who gave up in support's queue and the one who
    # left it for a call-back count against support's service level (2 of 6, not 2 of 2)
    assert groups("department") == {
        "office": {"sales": (9, 9, 7, 9), "support": (2, 2, 2, 2), None: (4, 1, 1, 1)},
        "support": {"support": (6, 2, 2, 6)},
        "tariffs": {"sales": (3, 3, 3, 3)},
    }
    assert groups("agent") == {
        "office": {
            "ivanov": (7, 7, 7, 7), "petrov": (2, 2, 0, 2), "sidorova": (3, 3, 3, 3),
            None: (3, 0, 0, 0),
        },
        "support": {"sidorova": (2, 2, 2, 2), None: (4, 0, 0, 4)},
        "tariffs": {"ivanov": (3, 3, 3, 3)},
    }  # fmt: skip
    assert groups("number") == {
        "office": {"74951234567": (13, 10, 8, 10), "74957654321": (2, 2, 2, 2)},
        "support": {"74951112233": (6, 2, 2, 6)},
        "tariffs": {"74955550000": (3, 3, 3, 3)},
    }
    assert groups("reason") == {
        "office": {
            "agent hung up": (12, 12, 10, 12), "caller hung up": (1, 0, 0, 0),
            "scenario hung up": (2, 0, 0, 0),
        },
        "support": {
            "agent hung up": (2, 2, 2, 2), "caller hung up": (3, 0, 0, 3),
            "scenario hung up": (1, 0, 0, 1), None: (0, 0, 0, 0),  # the call-back attempts
        },
        "tariffs": {"agent hung up": (3, 3, 3, 3)},
    }  # fmt: skip
    by_day = by_scenario(as_json(capsys, mix_db, "--by", "day"))
    # Tue: 7 sales, 2 closed (one at 00:00:00 Moscow: 21:00 UTC the day before), 1 gave up
    assert by_day["office"]["groups"] == [
        {"group": "2026-12-01"} | figures(
            10, connected=7, abandoned=1, voicemail=2, avg_wait=2.0, avg_talk=60.0,
            avg_duration=(7 * 65 + 2 * 129.5 + 3) / 10, offered=7, within=7,
            repeat_calls=2, repeat_callers=2,
        ),
        {"group": "2026-12-02"} | figures(
            5, connected=5, avg_wait=(2 * 2 + 2 * 25 + 2) / 5, avg_talk=60.0,
            avg_duration=(2 * 62 + 2 * 98 + 62) / 5, offered=5, within=3,
        ),
    ]  # fmt: skip
    support = by_day["support"]["groups"]
    assert [(g["group"], g["calls"], g["callback_attempts"]) for g in support] == [
        ("2026-12-01", 4, 2),
        ("2026-12-02", 2, 0),
    ]


def test_the_service_level_and_repeat_window_are_parameters(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    found = by_scenario(as_json(capsys, mix_db, "--service-level", "30", "--repeat-hours", "48"))
    office, support = totals(found["office"]), totals(found["support"])
    assert (office["answered_within"], office["service_level"]) == (12, 1.0)  # the slow 25 s too
    assert (office["repeat_calls"], office["repeat_callers"]) == (2, 2)
    # the Wed 16:00 caller abandoned on Tue 11:00: 29 hours before
    assert (support["repeat_calls"], support["repeat_callers"]) == (1, 1)
    tight = by_scenario(as_json(capsys, mix_db, "--service-level", "1.5", "--repeat-hours", "0.05"))
    assert totals(tight["office"])["answered_within"] == 0
    # 3 minutes: only the Tue 00:00 caller, who called at 23:59
    assert totals(tight["office"])["repeat_calls"] == 1


def test_a_scenario_and_a_shorter_period_narrow_the_report(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    found = as_json(capsys, mix_db, "--scenario", "support")
    assert [s["scenario"] for s in found["scenarios"]] == ["support"]
    assert totals(found["scenarios"][0]) == SUPPORT
    done = main(
        ["report", "--dsn", mix_db, "--from", "2026-12-01T09:00", "--to", "2026-12-01T10:30",
         "--json", "--scenario", "office"]
    )  # fmt: skip
    assert done == 0
    office = json.loads(capsys.readouterr().out)["scenarios"][0]
    assert (office["calls"], office["connected"], office["abandoned"]) == (4, 3, 1)
    nothing, _ = report(capsys, mix_db, "--scenario", "nowhere")
    assert nothing.splitlines()[-1] == "no calls"


# --- the views --------------------------------------------------------------------------


def test_the_views_give_the_mix_per_day_for_bi_tools(mix_db: str) -> None:
    def one(sql: str, *args: object) -> list[Any]:
        return asyncio.run(query(mix_db, sql, *args))

    days = "day >= '2026-12-01' AND day < '2026-12-03'"
    assert one(
        f"""SELECT kind, choice, sum(times)::int FROM menu_choices
            WHERE {days} AND scenario = 'office' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"""  # noqa: S608
    ) == [("option", "1", 7), ("default", None, 2), ("option", "2", 2), ("ended", None, 1),
          ("extension", "103", 1)]  # fmt: skip
    assert one(
        f"""SELECT node, sum(calls)::int, sum(abandoned)::int, avg(abandoned_after_s)
            FROM node_funnel WHERE {days} AND node IN ('menu', 'queue')
            GROUP BY node ORDER BY node"""  # noqa: S608
    ) == [("menu", 13, 1, 3.0), ("queue", 6, 3, 50.0)]
    assert one(
        f"""SELECT via, exit, sum(times)::int FROM node_exits
            WHERE {days} AND node = 'menu' GROUP BY 1, 2 ORDER BY 3 DESC, 1"""  # noqa: S608
    ) == [("option 1", "ring_sales", 7), ("default", "ring_sales", 2),
          ("option 2", "ring_support", 2)]  # fmt: skip
    assert one(
        f"""SELECT scenario, sum(calls)::int, sum(answered)::int, sum(offered)::int,
                   sum(answered_within_20s)::int, sum(repeat_calls_24h)::int,
                   round((sum(wait_s_sum) FILTER (WHERE result = 'connected')
                          / sum(calls) FILTER (WHERE result = 'connected'))::numeric, 3)::float8
            FROM call_summary WHERE {days} AND call_type = 'inbound'
            GROUP BY scenario ORDER BY scenario"""  # noqa: S608
    ) == [
        ("office", 15, 12, 12, 10, 2, round(70 / 12, 3)), ("support", 6, 2, 6, 2, 0, 2.0),
        ("tariffs", 3, 3, 3, 3, 0, 2.0),
    ]  # fmt: skip
    assert one(
        f"""SELECT node, sum(calls)::int, sum(visits)::int, sum(repeated)::int FROM node_funnel
            WHERE {days} AND scenario = 'tariffs' GROUP BY node ORDER BY node"""  # noqa: S608
    ) == [("choose", 3, 6, 2), ("ring_sales", 3, 3, 0), ("tariffs", 2, 3, 1)]
    # the service level per department, as a BI tool reads it: support's counts the
    # callers who gave up in its queue (they had no department before schema version 9)
    assert one(
        f"""SELECT department, sum(answered_within_20s)::int, sum(offered)::int
            FROM call_summary WHERE {days} AND call_type = 'inbound' AND scenario = 'support'
            GROUP BY department"""  # noqa: S608
    ) == [("support", 2, 6)]
    # the call at 00:00:00 Moscow is on Monday in UTC: `day` follows the session's TimeZone
    closed_at_midnight = "SELECT day::text FROM all_calls WHERE call_id = 'm12'"
    assert one(closed_at_midnight) == [("2026-12-01",)]
    assert asyncio.run(query(mix_db, closed_at_midnight, zone="UTC")) == [("2026-11-30",)]


def test_call_backs_are_rows_of_their_own_type_with_what_was_recorded(mix_db: str) -> None:
    rows = asyncio.run(
        query(
            mix_db,
            """SELECT a.call_type, a.called, a.caller, a.department, a.agent, a.result,
                      a.answered, a.wait_s, a.talk_s, a.duration_s, c.result
               FROM all_calls a JOIN calls c USING (call_id)
               WHERE a.call_type = 'callback' ORDER BY a.started_at""",
        )
    )
    assert rows == [
        ("callback", "74951112233", "79030000801", "support", None, "no answer", False,
         40.0, None, 40.0, "callback"),  # nobody answered: 40 s of ringing
        ("callback", "74951112233", "79030000801", "support", "sidorova", "done", True,
         10.0, 30.0, 40.0, "callback"),  # the two met after 10 s and talked 30 s
    ]  # fmt: skip


def test_call_steps_has_one_row_per_step_in_order(mix_db: str) -> None:
    rows = asyncio.run(
        query(
            mix_db,
            """SELECT position, node, type, via, exit, t, t_end, in_node_s, last_step
               FROM call_steps WHERE call_id = 'm14' ORDER BY position""",
        )
    )
    assert rows == [  # the caller who gave up 1 s into the menu, 3 s into the call
        (1, "hours", "schedule", "open", "welcome", 0.0, 0.0, 0.0, False),
        (2, "welcome", "play", "next", "menu", 0.0, 2.0, 2.0, False),
        (3, "menu", "menu", None, None, 2.0, 3.0, 1.0, True),
    ]


def test_calls_recorded_before_version_9_get_the_department_of_the_queue_they_waited_in(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mix written by a release before schema version 9 (no queue department), then
    migrated: the callers who gave up in support's queue or left it for a call-back take
    its department from the calls answered in the same queue, and the report by
    department is what it is for calls recorded now."""

    async def written_at_version_8_then_migrated() -> list[int]:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in migrations():
                if migration.version < 9:
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
            later = {"queue_department", "recording"}  # columns of versions 9 and 13
            names = [c for c in TABLES["calls"].names if c not in later]
            rows = [record_row(r, "test", 1) for r in records()]
            await conn.copy_records_to_table(
                "calls", records=[[row[c] for c in names] for row in rows], columns=names
            )
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(written_at_version_8_then_migrated())
    assert applied[0] == 9  # (and any later ones)
    assert asyncio.run(
        query(
            fresh_db,
            """SELECT scenario, result, queue_department, count(*)::int FROM calls
               GROUP BY 1, 2, 3 HAVING scenario <> 'office' ORDER BY 1, 2""",
        )
    ) == [
        ("support", "abandoned", "support", 3), ("support", "callback", "support", 1),
        ("support", "connected", "support", 2), ("tariffs", "connected", None, 3),
    ]  # fmt: skip
    found = by_scenario(as_json(capsys, fresh_db, "--by", "department", "--timezone", "UTC"))
    support = {
        g["group"]: (g["calls"], g["answered_within"], g["offered"])
        for g in found["support"]["groups"]
    }
    assert support == {"support": (6, 2, 6)}


def test_schema_sql_defines_the_views_exactly_as_the_migrations_do(db: str, pg_server: str) -> None:
    views = """SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'
               ORDER BY viewname"""

    async def from_schema_sql() -> list[Any]:
        admin = await asyncpg.connect(pg_server)
        await admin.execute('DROP DATABASE IF EXISTS "schema_sql_views"')
        await admin.execute('CREATE DATABASE "schema_sql_views"')
        dsn = pg_server.rsplit("/", 1)[0] + "/schema_sql_views"
        try:
            conn = await asyncpg.connect(dsn)
            await conn.execute((ROOT / "schema.sql").read_text())
            await conn.close()
            return await query(dsn, views)
        finally:
            await admin.execute('DROP DATABASE "schema_sql_views" WITH (FORCE)')
            await admin.close()

    built = asyncio.run(query(db, views))
    assert [name for name, _ in built] == [
        "all_calls", "call_steps", "call_summary", "config_current", "menu_choices",
        "node_exits", "node_funnel",
    ]  # fmt: skip
    assert asyncio.run(from_schema_sql()) == built


# --- errors: one line each --------------------------------------------------------------


def test_bad_dates_and_thresholds_are_one_line_and_exit_2(
    mix_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(*args: str) -> str:
        assert main(["report", "--dsn", mix_db, *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err.strip()

    assert fails("--from", "2026-13-01", "--to", "2026-12-03") == (
        "switchboard report: --from '2026-13-01' is not a date: use 2026-12-01 "
        "(or 2026-12-01T08:00)"
    )
    assert fails("--from", "2026-12-03", "--to", "2026-12-01") == (
        "switchboard report: --to must be after --from"
    )
    assert fails("--from", "2026-12-01", "--to", "2026-12-03", "--service-level", "0") == (
        "switchboard report: --service-level and --repeat-hours must be positive"
    )
    assert fails("--from", "2026-12-01", "--to", "2026-12-03", "--timezone", "Mars/Olympus") == (
        "switchboard report: unknown timezone 'Mars/Olympus'"
    )


def test_no_dsn_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHBOARD_DSN", raising=False)
    assert main(["report", "--from", "2026-12-01", "--to", "2026-12-02"]) == 2
    assert capsys.readouterr().err == "switchboard report: give --dsn or set SWITCHBOARD_DSN\n"


def test_without_the_schema_or_its_views_it_says_to_migrate(
    fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate_first = (
        "switchboard report: no schema for reports: run `switchboard db migrate` first\n"
    )
    args = ["report", "--dsn", fresh_db, "--from", "2026-12-01", "--to", "2026-12-02"]
    assert main(args) == 1
    assert capsys.readouterr().err == migrate_first

    async def at_version_4() -> None:  # tables, no views: an upgraded binary, not yet migrated
        conn = await asyncpg.connect(fresh_db)
        try:
            for migration in migrations()[:4]:
                await conn.execute(migration.sql)
        finally:
            await conn.close()

    asyncio.run(at_version_4())
    assert main([*args, "--timezone", "Europe/Moscow"]) == 1
    assert capsys.readouterr().err == migrate_first


def test_without_a_stored_configuration_it_needs_a_timezone(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["report", "--dsn", db, "--from", "2026-12-01", "--to", "2026-12-02"]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        "switchboard report: no configuration stored, so no timezone: run "
        "`switchboard config import` first, or give --timezone\n"
    )
    assert main([*args, "--timezone", "Asia/Yekaterinburg"]) == 0
    assert "(Asia/Yekaterinburg, the end not included)" in capsys.readouterr().out


def test_an_unreachable_database_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    dsn = "postgresql://nobody:secret@127.0.0.1:9/none"
    assert main(["report", "--dsn", dsn, "--from", "2026-12-01", "--to", "2026-12-02"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("switchboard report: cannot connect: ")
    assert "secret" not in err


def test_migrate_is_still_idempotent_with_the_views(db: str) -> None:
    async def again() -> list[int]:
        conn = await asyncpg.connect(db)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    assert asyncio.run(again()) == []
