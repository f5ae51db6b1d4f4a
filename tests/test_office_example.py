"""Example (a), examples/office.yaml: schedule, greeting, menu, one-by-one sales, mobile."""

from __future__ import annotations

import pytest

from switchboard.engine.actions import Ring
from tests.helpers import EXAMPLES, company_from, events, example, path, rings, run, step


@pytest.fixture(scope="module")
def office():  # type: ignore[no-untyped-def]
    return example("office.yaml")


def test_tuesday_morning_no_key_goes_to_sales_five_seconds_after_the_menu(office) -> None:
    sim = run(office, "2026-12-01T10:15:00", called="+7 (495) 123-45-67")
    assert path(sim)[:4] == ["hours", "welcome", "menu", "ring_sales"]
    assert events(sim, "play")[0]["prompts"] == ["greeting-morning"]
    menu = step(office_sim := sim, "menu")
    menu_prompt_end = menu.t + office.prompt_duration("main-menu")
    assert step(office_sim, "ring_sales").t == pytest.approx(menu_prompt_end + 5)
    assert menu.via == "default"
    assert sim.outcome.result == "connected"
    assert sim.outcome.agent == "ivanov"


def test_key_2_goes_to_support(office) -> None:
    sim = run(office, "2026-12-01T10:15:00", called="84957654321", dtmf="2")
    assert step(sim, "menu").via == "option 2"
    assert "ring_support" in path(sim)
    assert sim.outcome.department == "support"


def test_key_during_the_greeting_skips_it_and_chooses_in_the_menu(office) -> None:
    sim = run(office, "2026-12-01T10:15:00", called="84957654321", dtmf="2")
    assert step(sim, "welcome").t_end == 0.0  # interrupted at once
    assert step(sim, "ring_support").t == 0.0


def test_evening_call_is_closed_and_goes_to_voicemail(office) -> None:
    sim = run(office, "2026-12-01T20:00:00", called="74951234567")
    assert path(sim) == ["hours", "closed_message", "voicemail", "goodbye"]
    assert step(sim, "hours").via == "closed"
    assert sim.outcome.result == "voicemail"
    assert [m.caller for m in sim.messages] == [sim.call.caller]


def test_saturday_eleven_is_open(office) -> None:
    sim = run(office, "2026-12-05T11:00:00", called="74951234567")
    assert step(sim, "hours").via == "open"
    assert events(sim, "play")[0]["prompts"] == ["greeting-day"]  # 11:00 is no longer morning


def test_saturday_afternoon_is_closed(office) -> None:
    sim = run(office, "2026-12-05T14:30:00", called="74951234567")
    assert step(sim, "hours").via == "closed"


def test_a_holiday_is_closed_even_on_a_weekday(office) -> None:
    sim = run(office, "2027-01-07T11:00:00", called="74951234567")  # a Thursday
    assert step(sim, "hours").via == "holiday"
    assert path(sim)[1] == "closed_message"


def test_a_yearly_holiday_is_closed_every_year(office) -> None:
    sim = run(office, "2028-05-09T11:00:00", called="74951234567")
    assert path(sim)[1] == "closed_message"


def test_lunch_break_has_its_own_exit(office) -> None:
    sim = run(office, "2026-12-01T13:30:00", called="74951234567")
    assert step(sim, "hours").via == "lunch"
    assert path(sim)[1] == "lunch_message"


def test_afternoon_greeting_after_eleven_and_evening_after_seventeen(office) -> None:
    day = run(office, "2026-12-01T11:00:00", called="74951234567")
    evening = run(office, "2026-12-01T17:30:00", called="74951234567")
    assert events(day, "play")[0]["prompts"] == ["greeting-day"]
    assert events(evening, "play")[0]["prompts"] == ["greeting-evening"]


def test_first_sales_member_busy_rings_the_second_at_once(office) -> None:
    sim = run(office, called="74951234567", agents={"ivanov": "busy"})
    start = step(sim, "ring_sales").t
    assert rings(sim) == [(start, "petrov", "desk")]
    assert events(sim, "skip")[0]["agent"] == "ivanov"


def test_first_sales_member_no_answer_rings_the_second_after_ring_delay(office) -> None:
    sim = run(office, called="74951234567", agents={"ivanov": "noanswer"})
    start = step(sim, "ring_sales").t
    petrov = [r for r in rings(sim) if r[1] == "petrov"]
    assert petrov == [(start + 15, "petrov", "desk")]
    assert (start + 15, "ivanov", "desk") in rings(sim, "stop")


def test_forwarded_employee_mobile_rings_from_second_ten_while_the_desk_rings(office) -> None:
    sim = run(office, called="74951234567", agents={"ivanov": "noanswer", "petrov": "noanswer"})
    start = step(sim, "ring_sales").t
    ivanov = [r for r in rings(sim) if r[1] == "ivanov"]
    assert ivanov == [(start, "ivanov", "desk"), (start + 10, "ivanov", "mobile")]
    desk_stopped = [r for r in rings(sim, "stop") if r[1:] == ("ivanov", "desk")]
    assert desk_stopped[0][0] == start + 15  # still ringing when the mobile started
    mobile_ring = next(e for e in events(sim, "ring") if e["device"] == "mobile")
    assert mobile_ring["agent"] == "ivanov"
    mobile_rings = [a for _, a in sim.actions if isinstance(a, Ring) and a.device == "mobile"]
    assert [(a.number, a.confirm) for a in mobile_rings] == [("79161234567", True)]


def test_nobody_in_sales_answers_goes_to_voicemail(office) -> None:
    sim = run(office, called="74951234567", agents={"ivanov": "noanswer", "petrov": "noanswer"})
    assert step(sim, "ring_sales").via == "noanswer"
    assert path(sim)[-2:] == ["voicemail", "goodbye"]


def test_dialling_an_extension_in_the_menu_rings_that_employee(office) -> None:
    sim = run(office, called="74951234567", dtmf="103")
    assert step(sim, "menu").details["extension"] == "103"
    assert sim.outcome.agent == "sidorova"
    assert sim.outcome.result == "connected"


def test_a_caller_listed_under_callers_starts_where_the_entry_says() -> None:
    """Issue 11: a blacklist works like a VIP list: the caller -> a node of a scenario."""
    text = (EXAMPLES / "office.yaml").read_text(encoding="utf-8")
    company = company_from(
        text
        + """
callers:
  - {caller: "+7 900 000-00-01", scenario: office, node: goodbye}
"""
    )
    blocked = run(company, called="74951234567", caller="89000000001")
    assert path(blocked) == ["goodbye"]
    assert blocked.outcome.result == "hangup"
    other = run(company, called="74951234567", caller="79000000002")
    assert path(other)[0] != "goodbye"
