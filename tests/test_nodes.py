"""Each node type's behaviour, on small scenarios run through `simulate`."""

from __future__ import annotations

from switchboard.engine.actions import (
    ContinueInDialplan,
    Hangup,
    Notify,
    Play,
    StartRecording,
)
from tests.helpers import company_from, events, path, run, step

HEAD = """
timezone: Europe/Moscow
numbering: {country_code: "7", city_code: "495", national_prefix: "8"}
employees:
  - {id: ivanov, extension: "101"}
  - {id: petrov, extension: "102"}
  - {id: ops, extension: "11"}
departments:
  - {id: sales, extension: "500", members: [ivanov, petrov]}
default_scenario: main
"""


def scenario(nodes: str, start: str = "first", extra: str = "") -> str:
    indented = "\n".join("      " + line for line in nodes.strip().splitlines())
    return f"{HEAD}{extra}\nscenarios:\n  main:\n    start: {start}\n    nodes:\n{indented}\n"


def sim_of(nodes: str, **kwargs):  # type: ignore[no-untyped-def]
    start = nodes.strip().split(":", 1)[0]
    return run(company_from(scenario(nodes, start=start)), **kwargs)


def test_assign_sets_a_variable_that_a_switch_reads() -> None:
    sim = sim_of(
        """
first: {type: assign, var: tier, value: "vip-{caller}", next: route}
route: {type: switch, value: "{var.tier}", cases: {"prefix:vip-7916": gold}, default: plain}
gold: {type: hangup}
plain: {type: hangup}
""",
        caller="89161234567",
    )
    assert step(sim, "first").details == {"tier": "vip-79161234567"}
    assert path(sim) == ["first", "route", "gold"]


def test_switch_cases_exact_list_prefix_and_regex_first_match_wins() -> None:
    nodes = """
first:
  type: switch
  value: "{caller}"
  cases:
    - {value: ["79160000001", "79160000002"], next: listed}
    - {regex: "^7(495|499)", next: moscow}
    - {prefix: "7495", next: never}
  default: other
listed: {type: hangup}
moscow: {type: hangup}
never: {type: hangup}
other: {type: hangup}
"""
    assert path(sim_of(nodes, caller="+7 916 000-00-02"))[-1] == "listed"
    assert path(sim_of(nodes, caller="84951112233"))[-1] == "moscow"
    assert path(sim_of(nodes, caller="1112233"))[-1] == "moscow"  # local number completed
    assert path(sim_of(nodes, caller="79031112233"))[-1] == "other"
    assert step(sim_of(nodes, caller="79160000001"), "first").via == "case #1"


def test_switch_on_called_normalises_the_case_numbers() -> None:
    sim = sim_of(
        """
first: {type: switch, value: "{called}", cases: {"8 (495) 123-45-67": yes}, default: no}
yes: {type: hangup}
no: {type: hangup}
""",
        called="sip:+74951234567@10.0.0.1:5060",
    )
    assert path(sim) == ["first", "yes"]


def test_notify_writes_the_raw_called_id_to_the_trace_and_log() -> None:
    sim = sim_of(
        """
first: {type: notify, message: "raw={called_raw} norm={called} line={line}", next: bye}
bye: {type: hangup}
""",
        called="<sip:84951234567@10.0.0.1>;tag=x",
    )
    message = "raw=<sip:84951234567@10.0.0.1>;tag=x norm=74951234567 line="
    assert step(sim, "first").details["message"] == message
    assert [a for _, a in sim.actions if isinstance(a, Notify)] == [Notify("info", message)]


def test_caller_name_full_of_html_is_carried_as_plain_text() -> None:
    sim = sim_of(
        """
first: {type: notify, message: "from {caller_name}", next: bye}
bye: {type: hangup}
""",
        caller_name="<script>alert(1)</script>",
    )
    assert step(sim, "first").details["message"] == "from <script>alert(1)</script>"


def test_greeting_boundaries_are_configurable() -> None:
    text = scenario("first: {type: play, prompt: greeting, next: bye}\nbye: {type: hangup}")
    text = text.replace("default_scenario", 'greeting: {morning_until: "10:00"}\ndefault_scenario')
    company = company_from(text)
    assert events(run(company, "2026-12-01T10:30:00"), "play")[0]["prompts"] == ["greeting-day"]
    assert events(run(company, "2026-12-01T09:59:00"), "play")[0]["prompts"] == ["greeting-morning"]


def test_a_non_interruptible_play_ignores_keys_and_plays_to_the_end() -> None:
    sim = sim_of(
        """
first: {type: play, prompt: [welcome, closed], next: menu}
menu: {type: menu, prompt: main-menu, options: {"1": one}, default: other}
one: {type: hangup}
other: {type: hangup}
""",
        dtmf="1",
    )
    assert step(sim, "first").t_end == 7.0  # welcome 3 s + closed 4 s
    assert step(sim, "menu").via == "option 1"  # the key waited for the menu


MENU = """
first:
  type: menu
  prompt: main-menu
  wait: 4
  retries: 1
  extension_dialing: true
  options: {"1": one, "2": two, "55": five}
  default: fallback
one: {type: hangup}
two: {type: hangup}
five: {type: hangup}
fallback: {type: hangup}
"""


def test_menu_wrong_key_replays_then_default_after_retries() -> None:
    sim = sim_of(MENU, dtmf="99")
    menu = step(sim, "first")
    assert [e["attempt"] for e in events(sim, "invalid")] == [1, 2]
    assert menu.via == "default"
    replays = [e["prompts"] for e in events(sim, "play")]
    assert replays[1] == ["invalid-option", "main-menu"]


def test_menu_key_that_starts_longer_choices_waits_the_inter_digit_timeout() -> None:
    sim = sim_of(MENU, dtmf="1")  # "1" is an option, and the start of extension 101
    menu = step(sim, "first")
    assert (menu.via, menu.t_end) == ("option 1", 3.0)  # inter_digit default 3 s


def test_menu_hash_ends_input_at_once() -> None:
    sim = sim_of(MENU, dtmf="1#")
    assert (step(sim, "first").via, step(sim, "first").t_end) == ("option 1", 0.0)


def test_menu_two_key_option_and_extension_dialing() -> None:
    assert step(sim_of(MENU, dtmf="55"), "first").via == "option 55"
    sim = sim_of(MENU, dtmf="102")
    assert step(sim, "first").details["extension"] == "102"
    assert sim.outcome.agent == "petrov"
    dept = sim_of(MENU, dtmf="500", agents={"ivanov": "noanswer", "petrov": "answer:1"})
    assert dept.outcome.agent == "petrov"


def test_menu_dialled_extension_that_does_not_answer_takes_the_default() -> None:
    sim = sim_of(MENU, dtmf="101", agents={"ivanov": "noanswer"})
    assert step(sim, "first").via == "extension_noanswer"
    assert step(sim, "first").exit == "fallback"


def test_menu_no_key_waits_from_the_end_of_the_prompt() -> None:
    sim = sim_of(MENU)
    assert step(sim, "first").t_end == 6.0 + 4  # main-menu is 6 s, wait 4 s


def test_menu_w_in_dtmf_waits_a_second_per_w() -> None:
    sim = sim_of(MENU, dtmf="ww2")
    assert [(e["t"], e["keys"]) for e in events(sim, "key")] == [(2.0, "2")]


def test_caller_who_keeps_pressing_keys_still_leaves_the_menu() -> None:
    sim = sim_of(MENU, dtmf="9" * 500)
    assert step(sim, "first").via == "default"
    assert sim.outcome.result == "hangup"


CALLBACK = """
first: {type: callback, ask_number: true, department: sales, next: bye}
bye: {type: hangup}
"""


def test_callback_asks_for_a_number_when_told_to() -> None:
    sim = sim_of(CALLBACK, dtmf="89031234567#")
    assert [(c.number, c.department) for c in sim.callbacks] == [("79031234567", "sales")]
    assert sim.outcome.result == "callback"
    assert events(sim, "play")[-1]["prompts"] == ["callback-confirm"]


def test_callback_with_nothing_entered_uses_the_caller_number() -> None:
    sim = sim_of(CALLBACK, dtmf="#", caller="84951112233")
    assert [c.number for c in sim.callbacks] == ["74951112233"]


def test_callback_from_a_withheld_number_asks_for_one() -> None:
    sim = sim_of(
        "first: {type: callback, department: sales, next: bye}\nbye: {type: hangup}",
        caller="anonymous",
    )
    assert events(sim, "play")[0]["prompts"] == ["callback-enter-number"]
    assert sim.callbacks == []
    assert sim.outcome.result == "hangup"


def test_voicemail_records_with_a_beep_and_leaves_a_message() -> None:
    sim = sim_of(
        "first: {type: voicemail, max_length: 60, mailbox: sales, next: bye}\nbye: {type: hangup}"
    )
    record = next(a for _, a in sim.actions if isinstance(a, StartRecording))
    assert (record.max_length, record.beep) == (60, True)
    assert [(m.length, m.mailbox) for m in sim.messages] == [(60, "sales")]
    assert sim.outcome.result == "voicemail"


def test_caller_hanging_up_during_the_recording_still_leaves_the_message() -> None:
    sim = sim_of("first: {type: voicemail, next: bye}\nbye: {type: hangup}", hangup_after=20)
    assert [m.length for m in sim.messages] == [16.0]  # the intro takes 4 s
    assert sim.outcome.result == "voicemail"


def test_caller_hanging_up_during_the_intro_is_abandoned_with_no_message() -> None:
    sim = sim_of("first: {type: voicemail, next: bye}\nbye: {type: hangup}", hangup_after=2)
    assert sim.messages == []
    assert sim.outcome.result == "abandoned"


def test_goto_continues_in_another_scenario() -> None:
    text = scenario("first: {type: goto, scenario: other}") + (
        "  other:\n    start: a\n    nodes:\n"
        "      a: {type: play, prompt: welcome, next: b}\n      b: {type: hangup}\n"
    )
    sim = run(company_from(text))
    assert [(s.scenario, s.node) for s in sim.steps] == [
        ("main", "first"),
        ("other", "a"),
        ("other", "b"),
    ]
    assert sim.steps[0].exit == "other.a"


def test_dialplan_hands_the_call_to_asterisk() -> None:
    sim = sim_of("first: {type: dialplan, context: fax, extension: '{called}', priority: 2}")
    actions = [a for _, a in sim.actions]
    assert ContinueInDialplan("fax", sim.call.called, 2) in actions
    assert not any(isinstance(a, Hangup) for a in actions)
    assert sim.outcome.result == "dialplan"


def test_hangup_plays_its_prompt_first() -> None:
    sim = sim_of("first: {type: hangup, prompt: goodbye}")
    kinds = [type(a).__name__ for _, a in sim.actions if isinstance(a, Play | Hangup)]
    assert kinds == ["Play", "Hangup"]
    assert sim.outcome.duration == 1.5


def test_the_call_is_answered_only_when_it_needs_audio() -> None:
    sim = sim_of("first: {type: dial, target: ivanov, noanswer: bye}\nbye: {type: hangup}")
    assert not [a for _, a in sim.actions if type(a).__name__ == "Answer"]


def test_max_call_duration_ends_a_call_that_never_ends() -> None:
    text = scenario(
        "first: {type: menu, prompt: main-menu, options: {'1': first}, default: first}"
    ).replace("default_scenario", "limits: {max_call_duration: 100}\ndefault_scenario")
    sim = run(company_from(text))
    assert sim.outcome.reason == "max call duration"
    assert sim.outcome.duration == 100


def test_prompt_language_comes_from_the_number_then_the_scenario_then_the_company() -> None:
    text = scenario("first: {type: hangup, prompt: goodbye}").replace(
        "default_scenario: main",
        "default_scenario: main\nlanguage: en\n"
        'numbers: [{number: "74951234567", scenario: main, language: ru}]',
    )
    company = company_from(text)
    ru = run(company, called="84951234567")
    en = run(company, called="74990000000")
    plays = [[a.language for _, a in sim.actions if isinstance(a, Play)] for sim in (ru, en)]
    assert plays == [["ru"], ["en"]]
