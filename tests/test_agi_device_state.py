"""FastAGI and the agents' phones: ``DEVICE_STATE()`` read before ringing or queueing.

A FastAGI call reads the device state of the desk phones it is about to ring
or queue for (``GET VARIABLE DEVICE_STATE(PJSIP/201)``, funcs/func_devstate.c)
and tells the server's ACD, so a phone busy with any call, or unregistered,
is skipped as over ARI and in `simulate`; ``route`` answers with the ACD's
free members in its order.  The `AgiPeer` plays Asterisk over a real socket;
a test sets what ``DEVICE_STATE()`` reports in ``peer.device_states``.
"""

from __future__ import annotations

import pytest

from asterisk_sim.agi import AgiCall
from asterisk_sim.script import CallerScript
from switchboard.calls import CallRecord
from switchboard.config.company import Company
from switchboard.engine.trace import Step
from switchboard.simulate import AgentBehaviour
from tests.agi_stack import AgiStack
from tests.helpers import CallScript, at, company_from, example, exits
from tests.test_agi_scenario import SCRIPTS, place

pytestmark = pytest.mark.asyncio

TUESDAY = "2026-12-01T10:15"
STRANGER = "79990000000"

# what Asterisk reports for a phone that behaves as `simulate`'s --agent says
DEVICE_OF_BEHAVIOUR = {"busy": "INUSE", "offline": "UNAVAILABLE"}


def phones_as_behaving(stack: AgiStack, agents: dict[str, AgentBehaviour]) -> None:
    """Each employee's desk phone reports the device state their behaviour means."""
    assert stack.peer is not None
    template = stack.company.config.asterisk.endpoints.employee
    for employee, behaviour in agents.items():
        state = DEVICE_OF_BEHAVIOUR.get(behaviour.kind)
        if state is not None:
            extension = stack.company.employees[employee].extension
            stack.peer.device_states[template.format(extension=extension)] = state


def skips(steps: list[Step]) -> list[tuple[str, str, str]]:
    """(node, agent, why) of every member a ring skipped without ringing them."""
    return [
        (step.node, event["agent"], event["status"])
        for step in steps
        for event in step.events
        if event["event"] == "skip"
    ]


def dialled(call: AgiCall) -> list[tuple[str, ...]]:
    return [d.targets for d in call.dials]


def device_reads(call: AgiCall) -> list[str]:
    return [c for _, c in call.commands if c.startswith("GET VARIABLE DEVICE_STATE(")]


# --- the simulator answers DEVICE_STATE() -------------------------------------------


async def test_the_simulated_asterisk_answers_device_state_as_func_devstate_does() -> None:
    """``GET VARIABLE DEVICE_STATE(...)`` over the socket: the state a test set (by
    ast_devstate_val: any case, else UNKNOWN), a ``Custom:`` device from AstDB."""
    company = company_from(ROUTE)
    async with AgiStack(company, at(TUESDAY, company)) as stack:
        assert stack.peer is not None
        peer = stack.peer
        peer.device_states.update({"PJSIP/102": "inuse", "PJSIP/103": "nonsense"})
        peer.database[("CustomDevstate", "lamp")] = "BUSY"
        assert peer.device_state("PJSIP/102") == "INUSE"
        assert peer.device_state("PJSIP/103") == "UNKNOWN"
        assert peer.device_state("PJSIP/199") == "UNKNOWN"  # nobody set it
        assert peer.device_state("Custom:lamp") == "BUSY"
        assert peer.device_state("Custom:dark") == "UNKNOWN"
        # over the socket: Boris (102) is busy, Clara's (103) state unknown: rung
        found, _ = await ask_route(stack, "74950000003")
    assert found["SWITCHBOARD_TARGETS"] == "PJSIP/103"


# --- scenario: a busy phone is not rung ----------------------------------------------


async def office_call(
    devices: dict[str, str], agents: dict[str, str]
) -> tuple[AgiCall, CallRecord]:
    company = example("office.yaml")
    behaviours = {k: AgentBehaviour.parse(v) for k, v in agents.items()}
    async with AgiStack(company, at(TUESDAY, company), behaviours) as stack:
        assert stack.peer is not None
        stack.peer.device_states.update(devices)
        call = await stack.call(
            "scenario", caller=STRANGER, extension="74951234567", args=("74951234567",)
        )
    [record] = stack.memory.records
    return call, record


@pytest.mark.parametrize(
    ("state", "why"),
    [
        pytest.param("INUSE", "busy", id="in use"),
        pytest.param("RINGING", "busy", id="ringing"),
        pytest.param("UNAVAILABLE", "offline", id="unregistered"),
    ],
)
async def test_scenario_does_not_ring_a_member_whose_phone_is_busy_or_unreachable(
    state: str, why: str
) -> None:
    """Sales rings Ivan (101), then Pyotr (102), one by one: Ivan's phone is busy with
    another call, so Pyotr is rung at once and Ivan never is."""
    call, record = await office_call({"PJSIP/101": state}, {"petrov": "answer:3"})
    assert all("PJSIP/101" not in targets for targets in dialled(call))
    assert dialled(call)[0] == ("PJSIP/102",)
    assert call.dials[0].status == "ANSWER"
    assert record.outcome.agent == "petrov"
    assert skips(record.steps) == [("ring_sales", "ivanov", why)]
    # both phones read once, before the department was rung, not while the menu played
    assert sorted(device_reads(call)) == [
        "GET VARIABLE DEVICE_STATE(PJSIP/101)",
        "GET VARIABLE DEVICE_STATE(PJSIP/102)",
    ]
    commands = [c for _, c in call.commands]
    first_read = next(i for i, c in enumerate(commands) if "DEVICE_STATE" in c)
    assert any(c.startswith("STREAM FILE") for c in commands[:first_read])
    assert commands[first_read + 2].startswith("EXEC Dial")


async def test_scenario_rings_a_phone_that_is_idle_or_that_asterisk_cannot_tell() -> None:
    call, record = await office_call(
        {"PJSIP/101": "NOT_INUSE", "PJSIP/102": "UNKNOWN"}, {"ivanov": "answer:3"}
    )
    assert dialled(call)[0] == ("PJSIP/101",)
    assert skips(record.steps) == []


async def test_every_phone_busy_is_the_departments_busy_exit_without_a_dial() -> None:
    call, record = await office_call({"PJSIP/101": "INUSE", "PJSIP/102": "BUSY"}, {})
    assert dialled(call) == []
    sales = [s for s in record.steps if s.node == "ring_sales"]
    assert sales[0].via == "busy"


async def test_a_queue_offers_the_call_to_free_phones_only() -> None:
    """Support's queue (call-centre): Sidorova's phone is in use; the offers go to the
    others, and she is never rung."""
    company = example("call-centre.yaml")
    async with AgiStack(company, at(TUESDAY, company)) as stack:
        assert stack.peer is not None
        stack.peer.device_states["PJSIP/201"] = "INUSE"
        call = await stack.call(
            "scenario",
            extension="74951112233",
            args=("74951112233",),
            script=CallerScript((), hangup_after=40),
        )
    offers = [d for d in call.dials if d.moh == "default"]
    assert offers
    assert all("PJSIP/201" not in d.targets for d in offers)
    assert offers[0].targets == ("PJSIP/202",)


# --- the same path as simulate, phones reporting what the agents do ------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
async def test_with_device_states_a_scenario_over_agi_skips_whom_simulate_skips(
    script: CallScript,
) -> None:
    """`simulate` never rings a busy or offline agent; neither does FastAGI when their
    phones say so: the same path, the same members skipped for the same reason."""
    company = example(script.config)
    want = script.simulated(company)
    behaviours = script.behaviours()
    async with AgiStack(company, at(script.at, company), behaviours) as stack:
        phones_as_behaving(stack, behaviours)
        await place(stack, script)
    [record] = stack.memory.records
    assert exits(record.steps) == exits(want.steps)
    assert skips(record.steps) == skips(want.steps)
    assert record.outcome.result == want.outcome.result
    assert record.outcome.agent == want.outcome.agent


# --- route: the ACD's free members, in its order -------------------------------------

ROUTE = """\
timezone: Europe/Moscow
employees:
  - {id: anna, name: Anna, extension: "101"}
  - {id: boris, name: Boris, extension: "102"}
  - {id: clara, name: Clara, extension: "103"}
  - {id: dina, name: Dina, extension: "104"}
  - {id: egor, name: Egor, extension: "105"}
  - {id: fedor, name: Fedor, extension: "106"}
departments:
  - id: help
    strategy: one_by_one
    ring_delay: 10
    ring_timeout: 60
    members:
      - {employee: anna, penalty: 1}
      - boris
      - clara
      - dina
      - {employee: egor, penalty: 2}
      - fedor
  - {id: all, strategy: all_at_once, members: [{employee: anna, penalty: 1}, boris, clara]}
numbers:
  - {number: "74950000001", scenario: queue}
  - {number: "74950000002", scenario: dial}
  - {number: "74950000003", scenario: ringall}
scenarios:
  queue:
    start: wait
    nodes:
      wait: {type: queue, department: help, max_wait: 120, overflow: bye}
      bye: {type: hangup}
  ringall:
    start: wait
    nodes:
      wait: {type: queue, department: all, max_wait: 120, overflow: bye}
      bye: {type: hangup}
  dial:
    start: ring
    nodes:
      ring: {type: dial, target: help, noanswer: bye}
      bye: {type: hangup}
"""


async def ask_route(stack: AgiStack, called: str) -> tuple[dict[str, str], AgiCall]:
    call = await stack.call("route", caller=STRANGER, extension=called, args=(called,))
    found = {k: v for k, v in call.variables.items() if k.startswith("SWITCHBOARD_")}
    return found, call


async def route(
    called: str, devices: dict[str, str], *, logged_out: str = "", paused: str = ""
) -> tuple[dict[str, str], AgiCall]:
    config: Company = company_from(ROUTE)
    async with AgiStack(config, at(TUESDAY, config)) as stack:
        assert stack.peer is not None
        stack.peer.device_states.update(devices)
        acd = stack.app.acd  # the agents' own states, as `switchboard agents` sets them
        if logged_out:
            acd.logout(logged_out, stack.clock.now())
        if paused:
            acd.pause(paused, stack.clock.now(), "lunch")
        return await ask_route(stack, called)


async def test_route_to_a_queue_lists_only_free_members_in_the_acds_order() -> None:
    """Help's tiers: boris, clara, dina, fedor (penalty 0), anna (1), egor (2).  Clara is
    logged out, Dina paused, Fedor's phone in use: the queue would offer the call to
    Boris, then Anna, then Egor."""
    found, call = await route(
        "74950000001", {"PJSIP/106": "INUSE"}, logged_out="clara", paused="dina"
    )
    assert found["SWITCHBOARD_ACTION"] == "queue"
    assert found["SWITCHBOARD_TARGETS"] == "PJSIP/102&PJSIP/101&PJSIP/105"
    # every member's phone read once (whatever the ACD already knew of them), then one MSet
    assert sorted(device_reads(call)) == [
        f"GET VARIABLE DEVICE_STATE(PJSIP/10{n})" for n in range(1, 7)
    ]


async def test_route_to_a_queue_with_every_member_free_keeps_the_tiers() -> None:
    found, _ = await route("74950000001", {})
    assert (
        found["SWITCHBOARD_TARGETS"]
        == "PJSIP/102&PJSIP/103&PJSIP/104&PJSIP/106&PJSIP/101&PJSIP/105"
    )


async def test_route_to_an_all_at_once_queue_lists_its_best_free_tier() -> None:
    found, _ = await route("74950000003", {})
    assert found["SWITCHBOARD_TARGETS"] == "PJSIP/102&PJSIP/103"
    # the best tier all busy: the next one is the best free tier
    found, _ = await route("74950000003", {"PJSIP/102": "INUSE", "PJSIP/103": "UNAVAILABLE"})
    assert found["SWITCHBOARD_TARGETS"] == "PJSIP/101"


async def test_route_dial_of_a_department_rings_in_the_acds_order_skipping_busy_phones() -> None:
    """The ring plan is the engine's, on the ACD's order: tier 0 one by one (Fedor's
    phone busy: skipped), then Anna (tier 1), then Egor (tier 2)."""
    found, _ = await route("74950000002", {"PJSIP/106": "BUSY"}, paused="clara")
    steps = [
        found[f"SWITCHBOARD_TARGETS_{n}"] for n in range(1, int(found["SWITCHBOARD_STEPS"]) + 1)
    ]
    assert steps == ["PJSIP/102", "PJSIP/104", "PJSIP/101", "PJSIP/105"]
    # and with everyone free again, the plan kept for the snapshot is not the busy one
    found, _ = await route("74950000002", {})
    assert int(found["SWITCHBOARD_STEPS"]) == 6
