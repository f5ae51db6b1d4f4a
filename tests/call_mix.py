"""A known mix of simulated calls of the examples, written to PostgreSQL as `run` writes them.

Each `Kind` is one way a call goes (what the caller does, how the employees
behave) and says what the simulation must give -- result, wait, talk, duration
and the nodes passed -- so a test's expected figures follow from the mix
stated here, and `check_kinds` fails first if a simulation ever stops doing
what the mix says.  Times are Moscow time (both examples' timezone).

In the period 2026-12-01 .. 2026-12-03 (two days):

office (examples/office.yaml), 15 calls
    7  ``sales``     press 1, Ivan answers after 2 s                     (Tue from 10:00)
    2  ``support``   press 2, Anna answers after 2 s                     (Wed 11:00, 11:10)
    2  ``slow``      press nothing, Ivan does not answer, Pyotr after 10 s:
                     a wait of 25 s                                      (Wed 15:00, 15:10)
    2  ``closed``    out of hours: a voicemail message                   (Tue 00:00:00, 20:15)
    1  ``gave_up``   hangs up in the menu after 3 s                      (Tue 09:55)
    1  ``extension`` dials extension 103, Anna answers                   (Wed 12:00)
support (examples/call-centre.yaml), 6 calls
    3  ``queue_abandon`` everyone busy, hangs up in the queue after 50 s  (Tue 11:00, 11:05, 11:10)
    1  ``callback``      everyone busy, presses 1 after 30 s: a call-back (Tue 12:00)
    2  ``queue_answer``  Anna answers after 2 s                           (Wed 10:00, 16:00)
and two call-back attempts for that call-back (Tue 12:05 no answer after 40 s; 12:10
done by Anna: the two met after 10 s and talked 30 s).
tariffs (`TARIFFS`, a line whose menu plays the tariffs and comes back to it), 3 calls
    1  ``tariffs_twice`` hears the tariffs twice (1, 1), then 2: Ivan after 2 s  (Wed 09:00)
    1  ``tariffs_once``  hears them once (1), then 2                         (Wed 09:10)
    1  ``tariffs_none``  presses 2 at once                                  (Wed 09:20)

Repeat callers: the first ``sales`` call's caller gave up 5 minutes before;
the Tue 00:00 ``closed`` caller called at 23:59 the day before (outside the
period); the Wed 16:00 ``queue_answer`` caller abandoned on Tue 11:00 (29 h
before: a repeat within 48 h, not 24).  Outside the period: that Mon 23:59
call and one on Thu 2026-12-03 00:00:00 (the end is not included).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from switchboard.calls import CallRecord
from switchboard.config.company import Company
from switchboard.simulate import AgentBehaviour, Simulation, simulate
from switchboard.storage.callbacks import AttemptTimes, insert_request, record_attempt
from switchboard.storage.config_store import import_config
from switchboard.storage.migrate import migrate
from switchboard.storage.records import TABLES, record_row
from tests.helpers import EXAMPLES, at, company_from, example

OFFICE = "74951234567"
OFFICE_2 = "74957654321"
SUPPORT = "74951112233"
TARIFFS_NUMBER = "74955550000"
BUSY = {k: "busy" for k in ("sidorova", "kuznetsova", "smirnov")}


@dataclass(frozen=True)
class Kind:
    """One way a call goes, and what its simulation must give."""

    config: str
    called: str
    result: str
    wait: float
    talk: float | None
    duration: float
    path: tuple[tuple[str, str | None, str | None], ...]  # (node, via, exit) per step
    dtmf: str = ""
    agents: dict[str, str] = field(default_factory=dict)
    hangup_after: float | None = None
    agent: str | None = None
    department: str | None = None


HOURS_OPEN = ("hours", "open", "welcome")
WELCOME = ("welcome", "next", "menu")
CLOSED = (
    ("hours", "closed", "closed_message"),
    ("closed_message", "next", "voicemail"),
    ("voicemail", "next", "goodbye"),
    ("goodbye", None, None),
)
NOT_FOUND = ("returning", "notfound", "queue")
TARIFFS_LOOP = (("choose", "option 1", "tariffs"), ("tariffs", "next", "choose"))
TO_SALES = (("choose", "option 2", "ring_sales"), ("ring_sales", None, None))

# a line of our own: the examples have no node a call can pass twice
TARIFFS = """
timezone: Europe/Moscow
language: en
numbering: {country_code: "7", city_code: "495", national_prefix: "8"}
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "101"}
departments:
  - {id: sales, name: Sales, members: [ivanov]}
numbers:
  - {number: "74955550000", scenario: tariffs}
scenarios:
  tariffs:
    start: choose
    nodes:
      choose:
        type: menu
        prompt: tariffs-menu
        wait: 5
        options: {"1": tariffs, "2": ring_sales}
        default: goodbye
      tariffs: {type: play, prompt: tariffs, next: choose}
      ring_sales: {type: dial, target: sales, noanswer: goodbye}
      goodbye: {type: hangup, prompt: goodbye}
prompts:
  tariffs-menu: {file: tariffs-menu, duration: 4}
  tariffs: {file: tariffs, duration: 20}
"""

KINDS: dict[str, Kind] = {
    "sales": Kind(
        "office.yaml", OFFICE, "connected", 2, 60, 65,
        (HOURS_OPEN, WELCOME, ("menu", "option 1", "ring_sales"), ("ring_sales", None, None)),
        dtmf="1", agent="ivanov", department="sales",
    ),
    "support": Kind(
        "office.yaml", OFFICE_2, "connected", 2, 60, 62,
        (HOURS_OPEN, WELCOME, ("menu", "option 2", "ring_support"), ("ring_support", None, None)),
        dtmf="2", agent="sidorova", department="support",
    ),
    "slow": Kind(
        "office.yaml", OFFICE, "connected", 25, 60, 98,
        (HOURS_OPEN, WELCOME, ("menu", "default", "ring_sales"), ("ring_sales", None, None)),
        agents={"ivanov": "noanswer", "petrov": "answer:10"}, agent="petrov", department="sales",
    ),
    "closed": Kind("office.yaml", OFFICE, "voicemail", 129.5, None, 129.5, CLOSED),
    "gave_up": Kind(
        "office.yaml", OFFICE, "abandoned", 3, None, 3,
        (HOURS_OPEN, WELCOME, ("menu", None, None)), hangup_after=3,
    ),
    "extension": Kind(
        "office.yaml", OFFICE, "connected", 2, 60, 62,
        (HOURS_OPEN, WELCOME, ("menu", None, None)), dtmf="103", agent="sidorova",
    ),
    "queue_abandon": Kind(
        "call-centre.yaml", SUPPORT, "abandoned", 50, None, 50,
        (NOT_FOUND, ("queue", None, None)), agents=BUSY, hangup_after=50,
    ),
    "callback": Kind(
        "call-centre.yaml", SUPPORT, "callback", 34.5, None, 34.5,
        (
            NOT_FOUND, ("queue", "callback", "take_callback"),
            ("take_callback", "next", "goodbye"), ("goodbye", None, None),
        ),
        agents=BUSY, dtmf="w" * 30 + "1",
    ),
    "queue_answer": Kind(
        "call-centre.yaml", SUPPORT, "connected", 2, 60, 62,
        (NOT_FOUND, ("queue", None, None)), agent="sidorova", department="support",
    ),
    "tariffs_twice": Kind(
        "tariffs", TARIFFS_NUMBER, "connected", 2, 60, 102, (*TARIFFS_LOOP * 2, *TO_SALES),
        dtmf="112", agent="ivanov", department="sales",
    ),
    "tariffs_once": Kind(
        "tariffs", TARIFFS_NUMBER, "connected", 2, 60, 82, (*TARIFFS_LOOP, *TO_SALES),
        dtmf="12", agent="ivanov", department="sales",
    ),
    "tariffs_none": Kind(
        "tariffs", TARIFFS_NUMBER, "connected", 2, 60, 62, TO_SALES,
        dtmf="2", agent="ivanov", department="sales",
    ),
}  # fmt: skip

# (kind, Moscow time, caller): the period's calls, then the two outside it
MIX: tuple[tuple[str, str, str], ...] = (
    *(("sales", f"2026-12-01T{10 + i // 6:02d}:{i % 6 * 10:02d}", f"7916000010{i + 1}")
      for i in range(7)),
    ("support", "2026-12-02T11:00", "79160000201"),
    ("support", "2026-12-02T11:10", "79160000202"),
    ("slow", "2026-12-02T15:00", "79160000301"),
    ("slow", "2026-12-02T15:10", "79160000302"),
    ("closed", "2026-12-01T00:00:00", "79160000401"),
    ("closed", "2026-12-01T20:15", "79160000402"),
    ("gave_up", "2026-12-01T09:55", "79160000101"),
    ("extension", "2026-12-02T12:00", "79160000601"),
    ("queue_abandon", "2026-12-01T11:00", "79030000701"),
    ("queue_abandon", "2026-12-01T11:05", "79030000702"),
    ("queue_abandon", "2026-12-01T11:10", "79030000703"),
    ("callback", "2026-12-01T12:00", "79030000801"),
    ("queue_answer", "2026-12-02T10:00", "79030000901"),
    ("queue_answer", "2026-12-02T16:00", "79030000701"),
    ("tariffs_twice", "2026-12-02T09:00", "79160000701"),
    ("tariffs_once", "2026-12-02T09:10", "79160000702"),
    ("tariffs_none", "2026-12-02T09:20", "79160000703"),
    ("closed", "2026-11-30T23:59", "79160000401"),  # before the period
    ("closed", "2026-12-03T00:00:00", "79160000999"),  # at its end: not included
)  # fmt: skip
IN_PERIOD = len(MIX) - 2
PERIOD = ("2026-12-01", "2026-12-03")


def companies() -> dict[str, Company]:
    found = {name: example(name) for name in ("office.yaml", "call-centre.yaml")}
    return found | {"tariffs": company_from(TARIFFS)}


def simulated(kind: Kind, company: Company, when: str, caller: str) -> Simulation:
    return simulate(
        company,
        called=kind.called,
        caller=caller,
        at=at(when, company),
        dtmf=kind.dtmf,
        agents={k: AgentBehaviour.parse(v) for k, v in kind.agents.items()},
        hangup_after=kind.hangup_after,
    )


def check_kinds() -> None:
    """Every kind's simulation does what the mix says of it."""
    found = companies()
    for name, kind in KINDS.items():
        sim = simulated(kind, found[kind.config], "2026-12-01T10:00", "79000000000")
        if name == "closed":
            sim = simulated(kind, found[kind.config], "2026-12-01T20:15", "79000000000")
        outcome = sim.outcome
        got = (
            outcome.result, outcome.wait, outcome.talk, outcome.duration,
            outcome.agent, outcome.department, tuple((s.node, s.via, s.exit) for s in sim.steps),
        )  # fmt: skip
        want = (
            kind.result, kind.wait, kind.talk, kind.duration,
            kind.agent, kind.department, kind.path,
        )  # fmt: skip
        assert got == want, f"{name}: the simulation gives {got}, the mix says {want}"


def records() -> list[CallRecord]:
    """The mix's calls, as the runtime hands them to the sink (call ids m01, m02 ...)."""
    found = companies()
    out = []
    for n, (name, when, caller) in enumerate(MIX, start=1):
        kind = KINDS[name]
        company = found[kind.config]
        sim = simulated(kind, company, when, caller)
        out.append(
            CallRecord.for_call(
                f"m{n:02d}", f"PJSIP/trunk-{n:08d}", f"1764000000.{n}", sim.call, company,
                started_at=sim.started_at, scenario=sim.scenario, steps=sim.steps,
                outcome=sim.outcome,
            )
        )  # fmt: skip
    return out


async def write_rows(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Rows of ``calls`` in one COPY, as the record writer's staging COPY takes them."""
    names = TABLES["calls"].names
    await conn.copy_records_to_table(
        "calls", records=[[row[c] for c in names] for row in rows], columns=names
    )


async def fill(dsn: str) -> None:
    """Migrate, store examples/office.yaml as the configuration (its timezone is the
    report's), write the mix and the call-back attempts."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        office = EXAMPLES / "office.yaml"
        await import_config(conn, office.read_text(), str(office))
        made = records()
        await write_rows(conn, [record_row(r, "test", 1) for r in made])
        callback = next(r for r in made if r.outcome.result == "callback")
        zone = callback.started_at.tzinfo
        request = await insert_request(
            conn,
            request_id=f"{callback.call_id}:1",
            call_id=callback.call_id,
            number=callback.caller,
            caller=callback.caller,
            department="support",
            scenario="support",
            node="take_callback",
        )
        for minute, result, agent, times in (
            (5, "no answer", None, AttemptTimes(40.0, None, 40.0)),
            (10, "done", "sidorova", AttemptTimes(10.0, 30.0, 40.0)),
        ):
            began = dt.datetime(2026, 12, 1, 12, minute, tzinfo=zone)
            ended = began + dt.timedelta(seconds=40)
            await record_attempt(conn, request, "test", began, result, agent, ended, times)
    finally:
        await conn.close()
