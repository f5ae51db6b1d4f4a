"""The three ring strategies, read from the trace's times: who rings when."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from switchboard.config.company import Company
from switchboard.engine.actions import Ring
from switchboard.engine.call import CallInfo, CallRun
from switchboard.engine.events import LegBusy
from tests.helpers import company_from, events, rings, run, step


def at(company: Company) -> dt.datetime:
    return dt.datetime(2026, 12, 1, 10, 0, tzinfo=company.tz)


def _as_sim(call: CallRun) -> Any:
    return SimpleNamespace(steps=call.trace)


CONFIG = """
timezone: Europe/Moscow
employees:
  - {{id: a, extension: "101"}}
  - {{id: b, extension: "102"}}
  - {{id: c, extension: "103", mobile: "79161234567", forward_to_mobile_after: 5}}
departments:
  - {{id: team, strategy: {strategy}, ring_delay: 10, ring_timeout: {timeout}, members: [a, b, c]}}
numbers: [{{number: "74951234567", scenario: main}}]
scenarios:
  main:
    start: ring
    nodes:
      ring: {{type: dial, target: team, noanswer: sorry, busy: all_busy, unavailable: nobody}}
      sorry: {{type: hangup}}
      all_busy: {{type: hangup}}
      nobody: {{type: hangup}}
"""


def team(strategy: str, timeout: int = 30):  # type: ignore[no-untyped-def]
    return company_from(CONFIG.format(strategy=strategy, timeout=timeout))


NOBODY = {"a": "noanswer", "b": "noanswer", "c": "noanswer"}


def test_all_at_once_rings_everybody_together_until_the_timeout() -> None:
    sim = run(team("all_at_once"), called="74951234567", agents=NOBODY)
    assert rings(sim) == [(0, "a", "desk"), (0, "b", "desk"), (0, "c", "desk"), (5, "c", "mobile")]
    assert {r[0] for r in rings(sim, "stop")} == {30}
    assert step(sim, "ring").via == "noanswer"


def test_all_at_once_first_answer_wins_and_the_others_stop() -> None:
    sim = run(
        team("all_at_once"),
        called="74951234567",
        agents={"a": "answer:7", "b": "answer:4", "c": "noanswer"},
    )
    assert sim.outcome.agent == "b"
    assert sim.outcome.wait == 4
    stopped = {(t, agent) for t, agent, _ in rings(sim, "stop")}
    assert stopped == {(4, "a"), (4, "c")}


def test_one_by_one_rings_one_member_at_a_time_for_ring_delay() -> None:
    sim = run(team("one_by_one"), called="74951234567", agents=NOBODY)
    assert rings(sim) == [
        (0, "a", "desk"),
        (10, "b", "desk"),
        (20, "c", "desk"),
        (25, "c", "mobile"),
    ]
    assert rings(sim, "stop") == [
        (10, "a", "desk"),
        (20, "b", "desk"),
        (30, "c", "desk"),
        (30, "c", "mobile"),
    ]


def test_one_by_one_skips_busy_and_offline_members_at_once() -> None:
    sim = run(team("one_by_one"), called="74951234567", agents={"a": "busy", "b": "offline"})
    assert rings(sim) == [(0, "c", "desk")]
    assert sim.outcome.agent == "c"


def test_one_by_one_moves_on_at_once_when_a_ringing_phone_answers_busy() -> None:
    """The runtime thought ``a`` was free, but the phone rejects the call as busy."""
    company = team("one_by_one")
    call = CallRun(company, CallInfo.from_raw(company, "74951234567", "79160000000"), at(company))
    first = [a for a in call.start() if isinstance(a, Ring)]
    assert [(r.employee_id, r.device) for r in first] == [("a", "desk")]
    after_busy = call.handle(LegBusy(first[0].leg_id), 0.5)
    rung = [a for a in after_busy if isinstance(a, Ring)]
    assert [(r.employee_id, r.device) for r in rung] == [("b", "desk")]
    assert rings(call_sim := _as_sim(call)) == [(0, "a", "desk"), (0.5, "b", "desk")]
    assert rings(call_sim, "busy") == [(0.5, "a", "desk")]


def test_cascade_adds_one_member_every_ring_delay_while_earlier_ones_keep_ringing() -> None:
    sim = run(team("cascade"), called="74951234567", agents=NOBODY)
    assert rings(sim) == [
        (0, "a", "desk"),
        (10, "b", "desk"),
        (20, "c", "desk"),
        (25, "c", "mobile"),
    ]
    assert {r[0] for r in rings(sim, "stop")} == {30}  # nobody stopped before the timeout


def test_cascade_answer_by_an_early_member_stops_the_later_ones() -> None:
    sim = run(team("cascade"), called="74951234567", agents={"a": "answer:15", "b": "noanswer"})
    assert sim.outcome.agent == "a"
    assert sim.outcome.wait == 15
    assert rings(sim) == [(0, "a", "desk"), (10, "b", "desk")]
    assert rings(sim, "stop") == [(15, "b", "desk")]


@pytest.mark.parametrize("strategy", ["all_at_once", "one_by_one", "cascade"])
def test_everybody_busy_takes_the_busy_exit(strategy: str) -> None:
    sim = run(team(strategy), called="74951234567", agents={k: "busy" for k in "abc"})
    assert step(sim, "ring").via == "busy"
    assert step(sim, "ring").t_end == 0
    assert rings(sim) == []


@pytest.mark.parametrize("strategy", ["all_at_once", "one_by_one", "cascade"])
def test_nobody_reachable_takes_the_unavailable_exit(strategy: str) -> None:
    sim = run(team(strategy), called="74951234567", agents={k: "offline" for k in "abc"})
    assert step(sim, "ring").via == "unavailable"


def test_busy_and_unavailable_fall_back_to_noanswer_when_not_given() -> None:
    text = CONFIG.format(strategy="all_at_once", timeout=30).replace(
        ", busy: all_busy, unavailable: nobody", ""
    )
    text = text.replace("      all_busy: {type: hangup}\n      nobody: {type: hangup}\n", "")
    sim = run(company_from(text), called="74951234567", agents={k: "busy" for k in "abc"})
    assert step(sim, "ring").via == "busy"
    assert step(sim, "ring").exit == "sorry"


def test_ring_timeout_cuts_a_one_by_one_round_short() -> None:
    sim = run(team("one_by_one", timeout=15), called="74951234567", agents=NOBODY)
    assert rings(sim) == [(0, "a", "desk"), (10, "b", "desk")]
    assert rings(sim, "stop")[-1][0] == 15
    assert step(sim, "ring").t_end == 15


def test_a_caller_who_hangs_up_while_ringing_stops_every_leg() -> None:
    sim = run(team("all_at_once"), called="74951234567", agents=NOBODY, hangup_after=3)
    assert sim.outcome.result == "abandoned"
    assert {(t, a) for t, a, _ in rings(sim, "stop")} == {(3, "a"), (3, "b"), (3, "c")}
    assert sim.outcome.reason == "caller hung up"


def test_a_big_department_names_ten_skipped_members_then_counts_the_rest() -> None:
    """A record stays small however many members are busy before the free one."""
    members = [f"e{i}" for i in range(40)]
    config = "\n".join(
        [
            "timezone: UTC",
            "employees:",
            *[f'  - {{id: {m}, extension: "{100 + i}"}}' for i, m in enumerate(members)],
            "departments:",
            f"  - {{id: big, strategy: one_by_one, members: [{', '.join(members)}]}}",
            'numbers: [{number: "74951234567", scenario: main}]',
            "scenarios:",
            "  main:",
            "    start: ring",
            "    nodes:",
            "      ring: {type: dial, target: big, noanswer: bye}",
            "      bye: {type: hangup}",
        ]
    )
    busy = {m: "busy" for m in members[:35]}
    sim = run(company_from(config), called="74951234567", agents=busy)
    assert [e["agent"] for e in events(sim, "skip")] == members[:10]
    assert [e["more"] for e in events(sim, "skipped")] == [25]
    assert sim.outcome.agent == "e35"
