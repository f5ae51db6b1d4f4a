"""`agi://…/route`, `/schedule` and `/icm`: decisions for a dialplan that rings by itself.

Each case asks over a real socket, as Asterisk's ``AGI()`` does, and reads
the channel variables the server set: the ``Dial()`` string and timeout of
every step of each ring strategy, what the schedule says, what ICM found.
"""

from __future__ import annotations

import pytest

from asterisk_sim.agi import AgiCall
from asterisk_sim.script import CallerScript, Press
from switchboard.config.company import Company
from tests.agi_stack import AgiStack
from tests.helpers import at, company_from, example

pytestmark = pytest.mark.asyncio

CONFIG = """\
timezone: Europe/Moscow
numbering: {country_code: "7", city_code: "495", national_prefix: "8"}
employees:
  - {id: anna, name: Anna, extension: "101"}
  - {id: boris, name: Boris, extension: "102"}
  - {id: clara, name: Clara, extension: "103"}
  - {id: ivan, name: Ivan, extension: "104", mobile: "8 916 123-45-67", forward_to_mobile_after: 10}
  - {id: max, name: Max the manager, extension: "110", mobile: "79160000110"}
  - {id: boss, name: The Director, extension: "100"}
departments:
  - {id: together, strategy: all_at_once, ring_timeout: 25, members: [anna, boris, clara]}
  - {id: each, strategy: one_by_one, ring_delay: 10, ring_timeout: 30,
     members: [anna, boris, clara]}
  - {id: growing, strategy: cascade, ring_delay: 10, ring_timeout: 30,
     members: [anna, boris, clara]}
  - {id: help, strategy: all_at_once, ring_timeout: 20, members: [anna, boris]}
schedules:
  office:
    hours: {mon-fri: "09:00-18:00"}
    breaks: {lunch: {mon-fri: "13:00-14:00"}}
    holidays: ["2027-01-01"]
contacts:
  "79031112233": max
  "79035556677": boss
numbers:
  - {number: "74950000001", scenario: together}
  - {number: "74950000002", scenario: each}
  - {number: "74950000003", scenario: growing}
  - {number: "74950000004", scenario: ivan}
  - {number: "74950000005", scenario: hours}
  - {number: "74950000006", scenario: returning}
  - {number: "74950000007", scenario: waiting}
  - {number: "74950000008", scenario: overflowing}
scenarios:
  together:
    start: ring
    nodes:
      ring: {type: dial, target: together, noanswer: bye}
      bye: {type: hangup}
  each:
    start: ring
    nodes:
      ring: {type: dial, target: each, noanswer: bye}
      bye: {type: hangup}
  growing:
    start: ring
    nodes:
      ring: {type: dial, target: growing, noanswer: bye}
      bye: {type: hangup}
  ivan:
    start: ring
    nodes:
      ring: {type: dial, target: ivan, ring_timeout: 30, noanswer: bye}
      bye: {type: hangup}
  hours:
    start: check
    nodes:
      check:
        {type: schedule, schedule: office, open: ring, closed: bye, lunch: ring_lunch, holiday: bye}
      ring: {type: dial, target: help, noanswer: bye}
      ring_lunch: {type: dial, target: boss, noanswer: bye}
      bye: {type: hangup}
  returning:
    start: icm
    nodes:
      icm:
        type: icm
        sources: [contacts]
        exceptions: [boss]
        ring_timeout: 20
        noanswer: ring
        notfound: ring
      ring: {type: dial, target: help, noanswer: bye}
      bye: {type: hangup}
  waiting:
    start: queue
    nodes:
      queue: {type: queue, department: help, moh: jazz, max_wait: 120, callback_key: "1",
              overflow: bye, callback: cb}
      cb: {type: callback, next: bye}
      bye: {type: hangup}
  overflowing:
    start: queue
    nodes:
      queue: {type: queue, department: help, max_wait: 60, overflow: cb}
      cb: {type: callback, next: bye}
      bye: {type: hangup}
"""

TUESDAY = "2026-12-01T10:15"
STRANGER = "79990000000"


def company() -> Company:
    return company_from(CONFIG)


async def ask(
    path: str,
    called: str,
    caller: str = STRANGER,
    when: str = TUESDAY,
    config: Company | None = None,
    **kwargs: object,
) -> AgiCall:
    config = config or company()
    async with AgiStack(config, at(when, config)) as stack:
        return await stack.call(path, caller=caller, extension=called, args=(called,), **kwargs)


def switchboard(call: AgiCall) -> dict[str, str]:
    return {k: v for k, v in call.variables.items() if k.startswith("SWITCHBOARD_")}


def steps(call: AgiCall) -> list[tuple[str, str]]:
    found = switchboard(call)
    return [
        (found[f"SWITCHBOARD_TARGETS_{n}"], found[f"SWITCHBOARD_TIMEOUT_{n}"])
        for n in range(1, int(found["SWITCHBOARD_STEPS"]) + 1)
    ]


@pytest.mark.parametrize(
    ("called", "expected"),
    [
        pytest.param("74950000001", [("PJSIP/101&PJSIP/102&PJSIP/103", "25")], id="all_at_once"),
        pytest.param(
            "74950000002",
            [("PJSIP/101", "10"), ("PJSIP/102", "10"), ("PJSIP/103", "10")],
            id="one_by_one",
        ),
        pytest.param(
            "74950000003",
            [
                ("PJSIP/101", "10"),
                ("PJSIP/101&PJSIP/102", "10"),
                ("PJSIP/101&PJSIP/102&PJSIP/103", "10"),
            ],
            id="cascade",
        ),
        pytest.param(
            "74950000004",
            [("PJSIP/104", "10"), ("PJSIP/104&Local/79161234567@switchboard-confirm", "20")],
            id="desk_then_mobile",
        ),
    ],
)
async def test_route_gives_the_dial_string_and_timeout_of_each_step(
    called: str, expected: list[tuple[str, str]]
) -> None:
    call = await ask("route", called)
    found = switchboard(call)
    assert found["SWITCHBOARD_ACTION"] == "dial"
    assert steps(call) == expected
    # the first step is also the plain answer, for a dialplan that dials once
    assert (found["SWITCHBOARD_TARGETS"], found["SWITCHBOARD_TIMEOUT"]) == expected[0]
    assert found["SWITCHBOARD_RING_TIME"] == str(sum(int(t) for _, t in expected))
    assert found["SWITCHBOARD_NODE"] == "ring"
    assert found["SWITCHBOARD_NOANSWER"] == "bye"
    # a pure decision touches nothing on the channel (the dialplan's Dial() gives
    # ringback): it reads each desk phone it may ring once and the channel's linkedid (for
    # the record), then answers in one round trip
    phones = sorted({t for targets, _ in expected for t in targets.split("&") if "PJSIP" in t})
    commands = [c for _, c in call.commands]
    assert commands[:-2] == [f"GET VARIABLE DEVICE_STATE({phone})" for phone in phones]
    assert commands[-2:-1] == ["GET VARIABLE CHANNEL(linkedid)"]
    assert commands[-1].startswith("EXEC MSet ")
    assert not call.answered


async def test_route_leaves_a_call_record_that_says_where_it_went() -> None:
    config = company()
    async with AgiStack(config, at(TUESDAY, config)) as stack:
        call = await stack.call("route", caller=STRANGER, extension="74950000001")
    [record] = stack.memory.records
    assert record.outcome.result == "dialplan"
    assert record.call_id == call.variables["SWITCHBOARD_CALL_ID"]
    assert [s.node for s in record.steps] == ["ring"]


@pytest.mark.parametrize(
    ("when", "action", "targets"),
    [
        pytest.param(TUESDAY, "dial", "PJSIP/101&PJSIP/102", id="open"),
        pytest.param("2026-12-01T13:30", "dial", "PJSIP/100", id="lunch"),
        pytest.param("2026-12-01T20:00", "hangup", None, id="closed"),
        pytest.param("2027-01-01T11:00", "hangup", None, id="holiday"),
    ],
)
async def test_route_follows_the_schedule(when: str, action: str, targets: str | None) -> None:
    found = switchboard(await ask("route", "74950000005", when=when))
    assert found["SWITCHBOARD_ACTION"] == action
    assert found.get("SWITCHBOARD_TARGETS") == targets


@pytest.mark.parametrize(
    ("when", "open_", "state", "break_"),
    [
        pytest.param(TUESDAY, "1", "open", "", id="open"),
        pytest.param("2026-12-01T13:30", "0", "break", "lunch", id="lunch"),
        pytest.param("2026-12-01T20:00", "0", "closed", "", id="evening"),
        pytest.param("2026-12-05T11:00", "0", "closed", "", id="saturday"),
        pytest.param("2027-01-01T11:00", "0", "holiday", "", id="holiday"),
    ],
)
async def test_schedule_says_whether_the_office_is_open(
    when: str, open_: str, state: str, break_: str
) -> None:
    found = switchboard(await ask("schedule?name=office", "74950000005", when=when))
    assert found == {
        "SWITCHBOARD_OPEN": open_,
        "SWITCHBOARD_SCHEDULE_STATE": state,
        "SWITCHBOARD_BREAK": break_,
    }


async def test_an_unknown_schedule_is_an_error_the_dialplan_can_read() -> None:
    found = switchboard(await ask("schedule?name=nowhere", "74950000005"))
    assert found == {"SWITCHBOARD_ERROR": "no schedule 'nowhere'"}


async def test_route_to_the_callers_manager_and_back_to_the_scenario_when_nobody_answers() -> None:
    found = switchboard(await ask("route", "74950000006", caller="79031112233"))
    assert found["SWITCHBOARD_ACTION"] == "dial"
    assert (found["SWITCHBOARD_TARGETS"], found["SWITCHBOARD_TIMEOUT"]) == ("PJSIP/110", "20")
    assert found["SWITCHBOARD_ICM"] == "found"
    assert found["SWITCHBOARD_ICM_EMPLOYEE"] == "max"
    assert found["SWITCHBOARD_ICM_SOURCE"] == "contacts"
    assert found["SWITCHBOARD_NOANSWER"] == "ring"
    # the manager did not answer: the dialplan asks again from the node it was given
    again = switchboard(
        await ask(
            f"route?scenario={found['SWITCHBOARD_SCENARIO']}&node={found['SWITCHBOARD_NOANSWER']}",
            "74950000006",
            caller="79031112233",
        )
    )
    assert again["SWITCHBOARD_ACTION"] == "dial"
    assert again["SWITCHBOARD_TARGETS"] == "PJSIP/101&PJSIP/102"
    assert again["SWITCHBOARD_NODE"] == "ring"
    assert "SWITCHBOARD_ICM" not in again


@pytest.mark.parametrize(
    ("caller", "icm", "employee", "next_targets"),
    [
        pytest.param("79035556677", "notfound", "", "PJSIP/101&PJSIP/102", id="an exception"),
        pytest.param(STRANGER, "notfound", "", "PJSIP/101&PJSIP/102", id="a stranger"),
        pytest.param("anonymous", "notfound", "", "PJSIP/101&PJSIP/102", id="withheld"),
    ],
)
async def test_route_past_icm_when_it_finds_nobody(
    caller: str, icm: str, employee: str, next_targets: str
) -> None:
    found = switchboard(await ask("route", "74950000006", caller=caller))
    assert found["SWITCHBOARD_ICM"] == icm
    assert found["SWITCHBOARD_ICM_EMPLOYEE"] == employee
    assert found["SWITCHBOARD_TARGETS"] == next_targets


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        pytest.param(
            "79031112233",
            {
                "SWITCHBOARD_ICM": "found",
                "SWITCHBOARD_ICM_EMPLOYEE": "max",
                "SWITCHBOARD_ICM_SOURCE": "contacts",
                "SWITCHBOARD_ICM_TARGETS": "PJSIP/110",
                "SWITCHBOARD_ICM_TIMEOUT": "20",
            },
            id="found",
        ),
        pytest.param(
            "79035556677",
            {
                "SWITCHBOARD_ICM": "notfound",
                "SWITCHBOARD_ICM_EMPLOYEE": "",
                "SWITCHBOARD_ICM_SOURCE": "",
            },
            id="exception",
        ),
        pytest.param(
            STRANGER,
            {
                "SWITCHBOARD_ICM": "notfound",
                "SWITCHBOARD_ICM_EMPLOYEE": "",
                "SWITCHBOARD_ICM_SOURCE": "",
            },
            id="stranger",
        ),
    ],
)
async def test_icm_names_the_callers_responsible_employee(
    caller: str, expected: dict[str, str]
) -> None:
    config = company()
    async with AgiStack(config, at(TUESDAY, config)) as stack:
        call = await stack.call("icm", caller=caller, extension="74950000006")
    found = switchboard(call)
    found.pop("SWITCHBOARD_CALL_ID")
    assert found == expected
    assert stack.memory.records == []  # a lookup, not a call


async def test_icm_asks_the_contacts_table_when_the_config_does_not_know_the_caller() -> None:
    config = example("call-centre.yaml")
    async with AgiStack(config, at(TUESDAY, config)) as stack:
        stack.memory.contacts["79035550000"] = "petrov"
        call = await stack.call("icm", caller="79035550000", extension="74951112233")
    found = switchboard(call)
    assert found["SWITCHBOARD_ICM"] == "found"
    assert found["SWITCHBOARD_ICM_SOURCE"] == "contacts"
    assert found["SWITCHBOARD_ICM_TARGETS"] == "PJSIP/102"


async def test_route_to_a_queue_names_the_department_and_the_longest_wait() -> None:
    found = switchboard(await ask("route", "74950000007"))
    assert found["SWITCHBOARD_ACTION"] == "queue"
    assert found["SWITCHBOARD_QUEUE"] == "help"
    assert found["SWITCHBOARD_TARGETS"] == "PJSIP/101&PJSIP/102"
    assert found["SWITCHBOARD_TIMEOUT"] == "120"
    assert found["SWITCHBOARD_MOH"] == "jazz"
    assert found["SWITCHBOARD_NOANSWER"] == "bye"


async def test_a_route_back_from_a_queue_overflow_promises_a_callback_of_its_department() -> None:
    """The dialplan's Queue() timed out: the route from `overflow` is a new run, and the
    callback node there still calls back for the queue's department (issue 11)."""
    config = company()
    async with AgiStack(config, at(TUESDAY, config)) as stack:
        first = await stack.call("route", caller=STRANGER, extension="74950000008")
        found = switchboard(first)
        assert (found["SWITCHBOARD_ACTION"], found["SWITCHBOARD_QUEUE"]) == ("queue", "help")
        assert found["SWITCHBOARD_NOANSWER"] == "cb"
        # the same channel comes back, its variables still set (dialplan `overflow`)
        again = await stack.call(
            f"route?scenario={found['SWITCHBOARD_SCENARIO']}&node={found['SWITCHBOARD_NOANSWER']}",
            caller=STRANGER,
            extension="74950000008",
            variables=found,
        )
    assert switchboard(again)["SWITCHBOARD_ACTION"] == "hangup"
    assert [(c.number, c.department) for c in stack.memory.callbacks] == [(STRANGER, "help")]


async def test_route_plays_the_menu_over_agi_then_leaves_the_ringing_to_the_dialplan() -> None:
    config = example("office.yaml")
    call = await ask(
        "route",
        "74951234567",
        config=config,
        script=CallerScript((Press("2", on_playback="main-menu"),)),
    )
    found = switchboard(call)
    assert call.answered
    assert any("main-menu" in file for _, file in call.played)
    assert found["SWITCHBOARD_ACTION"] == "dial"
    assert found["SWITCHBOARD_NODE"] == "ring_support"
    assert found["SWITCHBOARD_TARGETS"] == "PJSIP/103&PJSIP/104"
    assert found["SWITCHBOARD_TIMEOUT"] == "30"
    assert call.hung_up_by is None  # the dialplan goes on with the call


async def test_route_that_ends_in_voicemail_says_so_and_leaves_the_hangup_to_the_dialplan() -> None:
    config = example("office.yaml")
    call = await ask(
        "route",
        "74951234567",
        when="2026-12-01T20:00",
        config=config,
        script=CallerScript((), hangup_after=None),
    )
    found = switchboard(call)
    assert found["SWITCHBOARD_ACTION"] == "hangup"
    assert found["SWITCHBOARD_RESULT"] == "voicemail"
    assert call.recordings
    assert call.hung_up_by is None


@pytest.mark.parametrize(
    ("path", "called", "error"),
    [
        pytest.param("nowhere", "74950000001", "unknown service 'nowhere'", id="unknown service"),
        pytest.param("route", "74959999999", "no scenario for called number", id="unknown number"),
        pytest.param("route?node=nope", "74950000001", "has no node 'nope'", id="unknown node"),
    ],
)
async def test_a_request_the_server_cannot_serve_is_an_error_the_dialplan_can_read(
    path: str, called: str, error: str
) -> None:
    call = await ask(path, called)
    assert error in call.variables["SWITCHBOARD_ERROR"]
    assert call.closed_by == "server"


async def test_scenario_for_an_unknown_number_goes_to_the_fallback_context() -> None:
    call = await ask("scenario", "74959999999")
    assert "no scenario" in call.variables["SWITCHBOARD_ERROR"]
    assert (call.context, call.extension, call.priority) == ("switchboard-fallback", "s", 1)
