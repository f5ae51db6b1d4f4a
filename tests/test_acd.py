"""The ACD's decisions on its own, on a virtual clock: strategies, tiers, agent
states, skills, priority, the wait estimate (issue 11)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from switchboard.acd import Acd, AgentChange
from switchboard.config.model import Department, RingStrategy

AGENTS = ("anna", "boris", "vera")


def acd_for(strategy: RingStrategy, members: object = AGENTS, **more: object) -> Acd:
    department = Department.model_validate(
        {"id": "sales", "strategy": strategy, "members": list(members), **more}  # type: ignore[call-overload]
    )
    return Acd([department], seed=7)


def first_offer(acd: Acd, now: float, call: str | None = None) -> str:
    tiers = acd.ranked("sales", now, call)
    assert tiers, "nobody to offer"
    return tiers[0][0]


def serve(acd: Acd, calls: int, talk: float = 60.0, gap: float = 10.0) -> Counter[str]:
    """``calls`` calls one after another, each taken by the first agent offered."""
    taken: Counter[str] = Counter()
    now = 0.0
    for n in range(calls):
        call = f"call-{n}"
        agent = first_offer(acd, now)
        assert acd.claim(agent, call, now)
        acd.talking(agent, call, now)
        now += talk
        acd.finished(agent, call, now, talk, "sales")
        taken[agent] += 1
        now += gap
    return taken


@pytest.mark.parametrize("strategy", ["least_recent", "round_robin", "fewest_calls"])
def test_fair_strategies_give_each_of_three_free_agents_ten_of_thirty_calls(
    strategy: RingStrategy,
) -> None:
    assert serve(acd_for(strategy), 30) == {"anna": 10, "boris": 10, "vera": 10}


def test_one_by_one_keeps_the_configuration_order() -> None:
    assert serve(acd_for("one_by_one"), 30) == {"anna": 30}
    acd = acd_for("one_by_one")
    assert acd.ranked("sales", 0.0) == [["anna", "boris", "vera"]]


def test_fewest_calls_lets_a_preloaded_agent_catch_up_last() -> None:
    acd = acd_for("fewest_calls")
    acd.agents["anna"].stats.calls = 6  # anna took six calls before
    taken = serve(acd, 30)
    assert taken == {"anna": 6, "boris": 12, "vera": 12}  # 12 each, in all
    totals = {a: taken[a] + (6 if a == "anna" else 0) for a in AGENTS}
    assert max(totals.values()) - min(totals.values()) <= 1


def test_round_robin_starts_after_whoever_took_the_last_call() -> None:
    acd = acd_for("round_robin")
    acd.claim("boris", "c1", 0.0)
    acd.talking("boris", "c1", 0.0)
    acd.finished("boris", "c1", 5.0, 5.0, "sales")
    assert acd.ranked("sales", 6.0) == [["vera", "anna", "boris"]]


def test_random_reaches_everyone_and_is_reproducible_with_a_seed() -> None:
    taken = serve(acd_for("random"), 30)
    assert set(taken) == set(AGENTS)
    assert serve(acd_for("random"), 30) == taken


def test_tiers_are_rung_in_penalty_order_whatever_the_strategy() -> None:
    members = [{"employee": "vera", "penalty": 1}, "anna", {"employee": "boris", "penalty": 2}]
    for strategy in ("all_at_once", "least_recent", "round_robin"):
        acd = acd_for(strategy, members)  # type: ignore[arg-type]
        assert acd.ranked("sales", 0.0) == [["anna"], ["vera"], ["boris"]]
    acd = acd_for("least_recent", members)
    taken = serve(acd, 30)
    assert taken == {"anna": 30}  # a free tier-0 member always goes first


@pytest.mark.parametrize("why", ["wrapup", "paused", "logged_out", "device busy", "ringing"])
def test_no_offer_to_an_agent_who_cannot_take_a_call(why: str) -> None:
    acd = acd_for("one_by_one", wrapup=30)
    now = 0.0
    match why:
        case "wrapup":
            acd.claim("anna", "c0", now)
            acd.talking("anna", "c0", now)
            acd.finished("anna", "c0", 10.0, 10.0, "sales")
            now = 20.0  # 10 s into 30 s of wrap-up
        case "paused":
            acd.pause("anna", now, reason="lunch")
        case "logged_out":
            acd.logout("anna", now)
        case "device busy":
            acd.device("anna", "in_use", now)  # an internal call on the desk phone
        case "ringing":
            assert acd.claim("anna", "c0", now)
    acd.join("c1", "sales", now)
    assert acd.ranked("sales", now, "c1") == [["boris", "vera"]]
    assert acd.who_takes("anna", now) is None
    assert not acd.claim("anna", "c1", now)


def test_wrapup_ends_by_itself_and_says_when() -> None:
    acd = acd_for("one_by_one", wrapup=30)
    freed: list[str] = []
    acd.on_free(freed.append)
    acd.claim("anna", "c0", 0.0)
    acd.talking("anna", "c0", 0.0)
    acd.finished("anna", "c0", 10.0, 10.0, "sales")
    assert acd.next_change(10.0) == 40.0
    assert acd.agents["anna"].shown_state(39.9) == "wrapup"
    assert acd.agents["anna"].shown_state(40.0) == "available"
    acd.join("c1", "sales", 20.0)
    assert acd.who_takes("anna", 40.0) == "c1"
    assert "anna" not in freed  # wrap-up is not free: the runtime wakes at next_change


def test_resume_and_an_idle_phone_tell_the_queue() -> None:
    acd = acd_for("one_by_one")
    freed: list[str] = []
    acd.on_free(freed.append)
    acd.pause("anna", 0.0, reason="training")
    acd.device("boris", "in_use", 0.0)
    acd.resume("anna", 5.0)
    acd.device("boris", "idle", 6.0)
    assert freed == ["anna", "boris"]


def test_the_states_agents_chose_are_told_and_taken_back_after_a_restart() -> None:
    acd = Acd([Department(id="sales", members=AGENTS)])
    told: list[AgentChange] = []
    acd.on_change(told.append)
    acd.logout("anna", 1.0, by="phone")
    acd.pause("boris", 2.0, reason="lunch", by="cli")
    acd.claim("vera", "c1", 3.0)  # the ACD's own change: not an agent's choice
    assert [(c.agent, c.state, c.reason, c.by) for c in told] == [
        ("anna", "logged_out", "", "phone"),
        ("boris", "paused", "lunch", "cli"),
    ]
    kept = acd.kept_states()
    assert kept == {
        "anna": ("logged_out", ""),
        "boris": ("paused", "lunch"),
        "vera": ("available", ""),
    }
    again = Acd([Department(id="sales", members=AGENTS)], states=kept)
    assert again.agents["anna"].state == "logged_out"
    assert (again.agents["boris"].state, again.agents["boris"].reason) == ("paused", "lunch")
    assert again.agents["vera"].state == "available"


def test_a_paused_agent_cannot_pause_when_logged_out() -> None:
    acd = acd_for("one_by_one")
    acd.logout("anna", 0.0)
    with pytest.raises(ValueError, match="logged out"):
        acd.pause("anna", 1.0)


# --- skills and priority -------------------------------------------------------------------


def skilled() -> Acd:
    department = Department(id="sales", strategy="least_recent", members=AGENTS)
    skills = {"anna": {"en": 2}, "boris": {"en": 5, "ru": 3}, "vera": {"ru": 5}}
    return Acd([department], skills)


def test_an_english_caller_reaches_the_best_english_first_and_anyone_after_widening() -> None:
    acd = skilled()
    acd.join("en-caller", "sales", 0.0, skills=("en",), widen_after=30)
    assert acd.ranked("sales", 0.0, "en-caller") == [["boris"]]
    acd.claim("boris", "other", 0.0)  # boris is busy: the caller waits for him
    assert acd.ranked("sales", 10.0, "en-caller") == []
    assert acd.who_takes("anna", 10.0) is None
    assert acd.ranked("sales", 30.0, "en-caller") == [["anna"]]  # any English level
    assert acd.who_takes("anna", 30.0) == "en-caller"
    assert acd.who_takes("vera", 59.0) is None
    assert acd.ranked("sales", 60.0, "en-caller") == [["anna", "vera"]]  # anyone
    assert acd.who_takes("vera", 60.0) == "en-caller"


def test_without_widen_after_a_skilled_call_waits_for_the_best() -> None:
    acd = skilled()
    acd.join("ru-caller", "sales", 0.0, skills=("ru",))
    assert acd.ranked("sales", 3600.0, "ru-caller") == [["vera"]]


def test_a_vip_who_arrives_last_is_offered_the_freed_agent_first() -> None:
    acd = acd_for("one_by_one")
    for n in range(5):
        acd.join(f"c{n}", "sales", float(n))
    acd.join("vip", "sales", 10.0, priority=10)
    acd.join("c5", "sales", 11.0)
    assert list(acd.line("sales")) == ["vip", "c0", "c1", "c2", "c3", "c4", "c5"]
    assert acd.position("vip") == 1
    assert acd.position("c0") == 2
    assert acd.who_takes("anna", 12.0) == "vip"
    acd.leave("vip")
    assert acd.who_takes("anna", 12.0) == "c0"


def test_a_freed_agent_serving_two_departments_takes_the_longest_waiting_call() -> None:
    sales = Department(id="sales", members=("anna",))
    support = Department(id="support", members=("anna", "boris"))
    acd = Acd([sales, support])
    acd.join("s1", "support", 1.0)
    acd.join("x1", "sales", 2.0)
    assert acd.who_takes("anna", 3.0) == "s1"
    acd.join("x2", "sales", 4.0, priority=1)
    assert acd.who_takes("anna", 5.0) == "x2"


def test_a_call_rests_an_agent_who_did_not_answer_it() -> None:
    acd = acd_for("one_by_one")
    acd.join("c1", "sales", 0.0)
    acd.claim("anna", "c1", 0.0)
    acd.release("anna", "c1", 15.0, rest=5.0)
    assert acd.ranked("sales", 16.0, "c1") == [["boris", "vera"]]
    acd.join("c2", "sales", 16.0)
    assert acd.who_takes("anna", 16.0) == "c2"  # the next caller may have her
    acd.leave("c2")
    assert acd.who_takes("anna", 16.0) is None
    assert acd.who_takes("anna", 20.0) == "c1"


# --- the wait estimate ---------------------------------------------------------------------


def test_the_estimate_is_position_over_logged_in_agents_times_the_smoothed_handle_time() -> None:
    acd = acd_for("one_by_one", wrapup=10)
    acd.join("c0", "sales", 0.0)
    assert acd.estimate("c0") is None  # no conversation seen yet
    handles = []
    for n, talk in enumerate((50.0, 110.0, 90.0)):
        acd.claim("anna", f"t{n}", 0.0)
        acd.talking("anna", f"t{n}", 0.0)
        acd.finished("anna", f"t{n}", talk, talk, "sales")
        handles.append(talk + 10)
    smoothed = handles[0]
    for handle in handles[1:]:
        smoothed = smoothed * 0.75 + handle * 0.25
    for n in range(1, 7):
        acd.join(f"c{n}", "sales", float(n))
    acd.logout("vera", 10.0)  # two agents logged in
    for n, position in ((0, 1), (1, 2), (2, 3), (6, 7)):
        assert acd.position(f"c{n}") == position
        expected = math.ceil(position / 2) * smoothed
        assert acd.estimate(f"c{n}") == pytest.approx(expected)
    acd.logout("anna", 11.0)
    acd.logout("boris", 11.0)
    assert acd.estimate("c0") is None  # nobody logged in: no promise


def test_skills_are_levels_and_a_plain_list_is_level_one_each() -> None:
    from switchboard.config.model import Employee

    assert Employee(id="a", skills=["en", "ru"]).skills == {"en": 1, "ru": 1}  # type: ignore[arg-type]
    assert Employee(id="a", skills={"en": 5, "ru": 2}).skills == {"en": 5, "ru": 2}
    department = Department.model_validate(
        {"id": "d", "members": ["a", {"employee": "b", "penalty": 2}], "wrapup": 15}
    )
    assert (department.members, department.penalties, department.wrapup) == (
        ("a", "b"),
        {"b": 2},
        15,
    )


def test_an_agent_held_for_one_offer_is_taken_for_every_other_caller() -> None:
    acd = acd_for("all_at_once", ["solo"])
    freed: list[str] = []
    acd.on_free(freed.append)
    assert acd.claim("solo", "first", 0.0)
    assert acd.claim("solo", "first", 0.0)  # their mobile, in the same offer
    assert not acd.claim("solo", "second", 0.0)
    acd.release("solo", "second", 1.0)  # not theirs to release
    assert acd.agents["solo"].state == "ringing"
    acd.release("solo", "first", 2.0)
    assert acd.agents["solo"].state == "available"
    assert freed == ["solo"]
    assert acd.claim("solo", "second", 3.0)


def test_a_call_back_takes_the_place_its_caller_kept_in_the_queue() -> None:
    acd = acd_for("one_by_one", ["solo"])
    acd.join("first", "sales", 0.0)
    acd.join("second", "sales", 1.0)
    acd.join("third", "sales", 2.0)
    assert acd.park("second")  # asked for a call-back: leaves, keeps the place
    assert acd.who_takes("solo", 3.0) == "first"
    acd.leave("first")
    assert acd.who_takes("solo", 3.0) == "third"  # a parked place is offered nobody
    assert acd.bind("second", "callback:second/1")
    assert list(acd.line("sales")) == ["callback:second/1", "third"]
    assert acd.who_takes("solo", 4.0) == "callback:second/1"
    assert not acd.waits("second")
    assert not acd.bind("third", "x")  # not parked
