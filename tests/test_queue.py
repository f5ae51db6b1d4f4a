"""The queue of examples/call-centre.yaml: hold music, announcements, call-back, overflow."""

from __future__ import annotations

import datetime as dt

import pytest

from switchboard.acd import Acd
from switchboard.config.company import Company
from switchboard.engine.actions import (
    Action,
    JoinQueue,
    Lookup,
    Play,
    Ring,
    StartMoh,
    StartTimer,
    StopMoh,
)
from switchboard.engine.call import CallInfo, CallRun
from switchboard.engine.events import (
    AgentState,
    AgentStatus,
    LegAnswered,
    LegBusy,
    LegNoAnswer,
    LookupResult,
    PlaybackFinished,
    TimerFired,
)
from switchboard.prompts import minutes_prompt
from tests.helpers import EXAMPLES, company_from, events, example, path, rings, run, step

NEW_CALLER = "79035550000"  # in no contacts list, no history: straight to the queue
ALL_BUSY = {"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"}


@pytest.fixture(scope="module")
def centre() -> Company:
    return example("call-centre.yaml")


def test_everyone_busy_hears_announcements_every_40_seconds(centre: Company) -> None:
    sim = run(centre, caller=NEW_CALLER, agents=ALL_BUSY, dtmf="w" * 130 + "1")
    assert step(sim, "queue").t == 0
    assert [e["t"] for e in events(sim, "announce")] == [40, 80, 120]


def test_key_1_at_130_seconds_takes_a_callback(centre: Company) -> None:
    sim = run(centre, caller=NEW_CALLER, agents=ALL_BUSY, dtmf="w" * 130 + "1")
    queue = step(sim, "queue")
    assert (queue.via, queue.t_end) == ("callback", 130)
    assert path(sim) == ["returning", "queue", "take_callback", "goodbye"]
    assert sim.outcome.result == "callback"
    assert [(c.number, c.department) for c in sim.callbacks] == [(NEW_CALLER, "support")]


def test_nobody_frees_up_overflows_at_max_wait(centre: Company) -> None:
    sim = run(centre, caller=NEW_CALLER, agents=ALL_BUSY)
    queue = step(sim, "queue")
    assert (queue.via, queue.t_end, queue.exit) == ("overflow", 300, "voicemail")
    assert [e["t"] for e in events(sim, "announce")] == [40, 80, 120, 160, 200, 240, 280]
    assert sim.outcome.result == "voicemail"


def overflow_to_callback(department: str = "") -> Company:
    """call-centre.yaml whose max_wait leads to the call-back, not the voicemail."""
    text = (EXAMPLES / "call-centre.yaml").read_text(encoding="utf-8")
    text = text.replace("        overflow: voicemail\n", "        overflow: take_callback\n")
    if department:
        text = text.replace(
            "        type: callback\n",
            f"        type: callback\n        department: {department}\n",
        )
        text = text.replace("departments:\n", "departments:\n  - {id: sales, members: [ivanov]}\n")
    return company_from(text)


def test_overflow_to_the_callback_node_promises_a_callback_of_the_queue_department() -> None:
    """Issue 11: the department is known when max_wait, not the key, led to the call-back."""
    sim = run(overflow_to_callback(), caller=NEW_CALLER, agents=ALL_BUSY)
    queue = step(sim, "queue")
    assert (queue.via, queue.t_end, queue.exit) == ("overflow", 300, "take_callback")
    assert sim.outcome.result == "callback"
    assert [(c.number, c.department) for c in sim.callbacks] == [(NEW_CALLER, "support")]


def test_a_department_named_on_the_callback_node_wins_over_the_queue() -> None:
    sim = run(overflow_to_callback("sales"), caller=NEW_CALLER, agents=ALL_BUSY)
    assert [(c.number, c.department) for c in sim.callbacks] == [(NEW_CALLER, "sales")]
    sim = run(overflow_to_callback("sales"), caller=NEW_CALLER, agents=ALL_BUSY, dtmf="w" * 5 + "1")
    assert step(sim, "queue").via == "callback"
    assert [c.department for c in sim.callbacks] == ["sales"]


def test_a_member_freeing_up_at_95_seconds_is_offered_the_call(centre: Company) -> None:
    agents = {"sidorova": "busy", "kuznetsova": "busy:95", "smirnov": "busy"}
    sim = run(centre, caller=NEW_CALLER, agents=agents)
    assert rings(sim) == [(95, "kuznetsova", "desk")]
    assert sim.outcome.result == "connected"
    assert sim.outcome.agent == "kuznetsova"
    assert sim.outcome.wait == 95
    assert sim.outcome.department == "support"


def test_the_caller_hears_hold_music_between_announcements(centre: Company) -> None:
    sim = run(centre, caller=NEW_CALLER, agents=ALL_BUSY, hangup_after=50)
    moh = [(t, type(a).__name__) for t, a in sim.actions if isinstance(a, StartMoh | StopMoh)]
    # music from the start, paused for the announcement at 40 s (the caller is first in
    # line), back when it ends
    announcement = sum(
        centre.prompt_duration(p)
        for p in ("please-hold", "callback-offer", "position-is", "number:1")
    )
    assert moh == [
        (0, "StartMoh"),
        (40, "StopMoh"),
        (40 + announcement, "StartMoh"),
        (50, "StopMoh"),
    ]
    assert sim.outcome.result == "abandoned"
    assert sim.outcome.wait == 50


def test_free_members_are_offered_the_call_by_the_department_strategy(centre: Company) -> None:
    sim = run(centre, caller=NEW_CALLER, agents={k: "noanswer" for k in ALL_BUSY}, hangup_after=70)
    # support rings one by one, 15 s each, then a new round after `retry` (5 s)
    assert [r[:2] for r in rings(sim)] == [
        (0, "sidorova"),
        (15, "kuznetsova"),
        (30, "smirnov"),
        (50, "sidorova"),
        (65, "kuznetsova"),
    ]


def test_announcements_tell_the_position_in_the_runtimes_acd(centre: Company) -> None:
    acd = Acd.for_company(centre)
    for agent in ALL_BUSY:
        acd.device(agent, "in_use", 0.0)
    acd.join("earlier-1", "support", 0.0)
    acd.join("earlier-2", "support", 0.5)
    call = CallRun(
        centre,
        CallInfo.from_raw(centre, None, NEW_CALLER),
        dt.datetime(2026, 12, 1, 10, 0, tzinfo=centre.tz),
        acd=acd,
        call_key="mine",
        acd_clock0=1.0,
    )
    actions = call.start()
    # the icm in front asks the contacts table, call history, then the CRM: nobody knows
    for now in (0.05, 0.1, 0.2):
        lookup = next(a for a in actions if isinstance(a, Lookup))
        actions = call.handle(LookupResult(lookup.request_id, None), now)
    assert step_of(call) == "queue"
    # the run says it joins the queue; the runtime tells its ACD
    join = next(a for a in actions if isinstance(a, JoinQueue))
    assert join == JoinQueue("support")
    assert not acd.waits("mine")  # the run never writes a shared ACD itself
    acd.join("mine", join.department, 1.2, join.priority, join.skills, join.widen_after)
    announce = next(a for a in actions if isinstance(a, StartTimer) and a.at == 40.2)
    first = call.handle(TimerFired(announce.timer_id), 40.2)
    played = [a for a in first if isinstance(a, Play)]
    assert played[0].prompts == ("please-hold", "callback-offer", "position-is", "number:3")
    after = call.handle(PlaybackFinished(played[0].playback_id), 47.0)
    assert StartMoh("default") in after
    acd.leave("earlier-1")  # someone ahead is served: the next announcement says so
    again = next(a for a in first if isinstance(a, StartTimer) and a.at == 80.2)
    played = [a for a in call.handle(TimerFired(again.timer_id), 80.2) if isinstance(a, Play)]
    assert played[0].prompts[-2:] == ("position-is", "number:2")


def step_of(call: CallRun) -> str:
    return call.trace[-1].node


ONE_MEMBER_QUEUE = """
timezone: Europe/Moscow
employees:
  - {id: solo, name: Solo, extension: "201"}
  - {id: duo, name: Duo, extension: "202"}
departments:
  - {id: desk, strategy: all_at_once, ring_timeout: 30, retry: 7, members: [solo]}
  - {id: pair, strategy: all_at_once, ring_timeout: 30, members: [solo, duo]}
numbers:
  - {number: "74951234567", scenario: main}
  - {number: "74951234568", scenario: pair}
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 0, max_wait: 300, overflow: bye}
      bye: {type: hangup}
  pair:
    start: wait
    nodes:
      wait: {type: queue, department: pair, announce_every: 0, max_wait: 300, retry: 3,
             overflow: bye}
      bye: {type: hangup}
"""


def _queue_call(
    called: str, agents: dict[str, AgentState] | None = None
) -> tuple[CallRun, list[Action]]:
    company = company_from(ONE_MEMBER_QUEUE)
    call = CallRun(
        company,
        CallInfo.from_raw(company, called, NEW_CALLER),
        dt.datetime(2026, 12, 1, 10, 0, tzinfo=company.tz),
        agents=agents,
    )
    return call, call.start()


def test_a_member_whose_phone_was_busy_is_not_offered_the_call_again_until_retry() -> None:
    """The runaway of issue 9: a busy phone frees the member at once (the runtime's pool
    says "available"), and the queue must not ring them again before `retry` seconds."""
    call, actions = _queue_call("74951234567")
    first = [a for a in actions if isinstance(a, Ring)]
    assert [r.employee_id for r in first] == ["solo"]
    actions = call.handle(LegBusy(first[0].leg_id), 0.01)
    # the pool tells every waiting call the member is free again: this call included
    actions += call.handle(AgentStatus("solo", "available"), 0.02)
    actions += call.handle(AgentStatus("solo", "available"), 3.0)
    assert not [a for a in actions if isinstance(a, Ring)]
    # the department's retry (7 s), not app_queue's default 5
    retry = [a for a in actions if isinstance(a, StartTimer)]
    assert [round(t.at, 2) for t in retry] == [7.01]
    again = call.handle(TimerFired(retry[0].timer_id), 7.01)
    assert [a.employee_id for a in again if isinstance(a, Ring)] == ["solo"]


def test_a_resting_member_does_not_hold_back_another_who_frees_up() -> None:
    call, actions = _queue_call("74951234568", agents={"solo": "busy"})
    first = [a for a in actions if isinstance(a, Ring)]
    assert [r.employee_id for r in first] == ["duo"]
    call.handle(LegNoAnswer(first[0].leg_id), 0.01)  # duo rests 3 s (the node's retry)
    actions = call.handle(AgentStatus("solo", "available"), 1.0)
    assert [a.employee_id for a in actions if isinstance(a, Ring)] == ["solo"]


def test_announcements_say_the_estimated_wait_by_app_queues_formula(centre: Company) -> None:
    """position 1, three members logged in, conversations of 250 s: ceil(1/3) * 250 s,
    said as "about 5 minutes"; `simulate` prints the position and the estimate."""
    sim = run(centre, caller=NEW_CALLER, agents=ALL_BUSY, hangup_after=50, handle_time=250)
    (played,) = [a for _, a in sim.actions if isinstance(a, Play)][-1:]
    assert played.prompts[-5:] == (
        "position-is", "number:1", "estimated-wait", "number:5", "minutes-5",
    )  # fmt: skip
    announce = events(sim, "announce")[0]
    assert (announce["position"], announce["estimate"]) == (1, 250)


def test_without_a_handle_time_no_estimate_is_promised(centre: Company) -> None:
    sim = run(centre, caller=NEW_CALLER, agents=ALL_BUSY, hangup_after=50)
    (played,) = [a for _, a in sim.actions if isinstance(a, Play)][-1:]
    assert "estimated-wait" not in played.prompts


@pytest.mark.parametrize(
    ("count", "ru", "en"),
    [
        (1, "minutes-1", "minutes-1"),
        (2, "minutes-2", "minutes-5"),
        (4, "minutes-2", "minutes-5"),
        (5, "minutes-5", "minutes-5"),
        (11, "minutes-5", "minutes-5"),
        (12, "minutes-5", "minutes-5"),
        (21, "minutes-1", "minutes-5"),
        (22, "minutes-2", "minutes-5"),
        (111, "minutes-5", "minutes-5"),
    ],
)
def test_minutes_are_said_in_the_languages_plural_form(count: int, ru: str, en: str) -> None:
    assert (minutes_prompt(count, "ru"), minutes_prompt(count, "en")) == (ru, en)


WIDENING_QUEUE = """
timezone: Europe/Moscow
employees:
  - {id: olga, name: Olga, extension: "301", skills: {ru: 5}}
  - {id: irina, name: Irina, extension: "303", skills: {ru: 3}}
departments:
  - {id: desk, strategy: all_at_once, ring_timeout: 100, retry: 150, members: [olga, irina]}
numbers:
  - {number: "74951234567", scenario: main}
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, skills: [ru], widen_after: 120,
             announce_every: 0, max_wait: 600, overflow: bye}
      bye: {type: hangup}
"""


def test_a_retry_due_while_a_widened_offer_rings_does_not_orphan_that_offer() -> None:
    """Found over FastAGI: Olga (the best ru speaker) was busy, so a retry was due at
    150 s; at 120 s the widening rang Irina, and the retry at 150 s replaced that offer
    with a new one -- Irina's phone rang on, forgotten, and her answer was ignored."""
    company = company_from(WIDENING_QUEUE)
    call = CallRun(
        company,
        CallInfo.from_raw(company, "74951234567", NEW_CALLER),
        dt.datetime(2026, 12, 1, 10, 0, tzinfo=company.tz),
    )
    actions = call.start()
    [widening] = [a for a in actions if isinstance(a, StartTimer) and a.at == 120.0]
    [olga] = [a for a in actions if isinstance(a, Ring)]
    assert olga.employee_id == "olga"
    actions = call.handle(LegBusy(olga.leg_id), 0.0)  # she rests 150 s: a retry then
    [retry] = [a for a in actions if isinstance(a, StartTimer) and a.at == 150.0]
    [irina] = [a for a in call.handle(TimerFired(widening.timer_id), 120.0) if isinstance(a, Ring)]
    assert irina.employee_id == "irina"
    again = call.handle(TimerFired(retry.timer_id), 150.0)
    assert not [a for a in again if isinstance(a, Ring)]  # Irina's offer still rings
    call.handle(LegAnswered(irina.leg_id), 151.0)
    assert call.connected
    assert call.outcome_now("connected", "").agent == "irina"


def callback_at_a_chosen_time() -> Company:
    text = (EXAMPLES / "call-centre.yaml").read_text(encoding="utf-8")
    return company_from(
        text.replace("        type: callback\n", "        type: callback\n        ask_time: true\n")
    )


@pytest.mark.parametrize(
    ("keys", "due"),
    [
        ("1500", "2026-12-01T15:00:00+03:00"),  # later today (the call is at 10:15)
        ("930#", "2026-12-02T09:30:00+03:00"),  # passed today: tomorrow
        ("9#", "2026-12-02T09:00:00+03:00"),  # an hour alone: on the hour
        ("1015", "2026-12-02T10:15:00+03:00"),  # this very minute: tomorrow
    ],
)
def test_a_caller_chooses_the_call_back_time_with_keys(keys: str, due: str) -> None:
    sim = run(callback_at_a_chosen_time(), caller=NEW_CALLER, agents=ALL_BUSY,
              dtmf="w" * 50 + "1" + "w" * 7 + keys)  # fmt: skip
    [request] = sim.callbacks
    assert (request.number, request.department, request.due) == (NEW_CALLER, "support", due)
    hour, minute = int(due[11:13]), int(due[14:16])
    said = [p for e in events(sim, "play") for p in e["prompts"]]
    confirm = said[said.index("callback-confirm") : said.index("goodbye")]
    assert confirm == [
        "callback-confirm", "callback-at", f"number:{hour}",
        *([f"number:{minute}"] if minute else []),
    ]  # fmt: skip


@pytest.mark.parametrize("keys", ["#", "2575", "", "2400"])
def test_no_time_or_not_a_time_of_day_means_as_soon_as_possible(keys: str) -> None:
    sim = run(callback_at_a_chosen_time(), caller=NEW_CALLER, agents=ALL_BUSY,
              dtmf="w" * 50 + "1" + "w" * 7 + keys)  # fmt: skip
    [request] = sim.callbacks
    assert request.due == ""
    details = step(sim, "take_callback").details
    assert "at" not in details
    if keys.rstrip("#"):
        assert details["time ignored"] == keys.rstrip("#")[:4]
