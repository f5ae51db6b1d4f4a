"""`agi://…/scenario`: whole scenarios over AGI commands, call for call like `simulate`.

An `AgiPeer` plays Asterisk over a real socket on a virtual clock; each call
script is also run through `simulate` and must pass the same nodes, by the
same exits, to the same outcome, agent and scenario.

Here the simulated phones report no device state (``DEVICE_STATE()`` says
UNKNOWN, which is rung), so a busy employee is rung and answers BUSY at once
where `simulate` (told the agent is busy) skips them; the path through the
scenario is the same.  With the phones reporting what the agents do, FastAGI
skips them too: tests/test_agi_device_state.py runs these scripts that way.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from asterisk_sim.agi import AgiCall
from asterisk_sim.script import CallerScript, Press
from switchboard.clock import ScaledClock
from switchboard.simulate import AgentBehaviour
from tests.agi_stack import AgiStack
from tests.helpers import CallScript, at, company_from, example, exits

pytestmark = pytest.mark.asyncio


SCRIPTS = [
    CallScript("office: no key goes to sales", "office.yaml", called="74951234567"),
    CallScript(
        "office: key 2 goes to support",
        "office.yaml",
        called="74957654321",
        dtmf="2",
        presses=(Press("2", on_playback="main-menu"),),
        agents={"kuznetsova": "answer:4"},
    ),
    CallScript(
        "office: Ivan's mobile rings, Pyotr answers",
        "office.yaml",
        called="74951234567",
        agents={"ivanov": "noanswer"},
    ),
    CallScript(
        "office: first member busy", "office.yaml", called="74951234567", agents={"ivanov": "busy"}
    ),
    CallScript(
        "office: the caller dials extension 103 in the menu",
        "office.yaml",
        called="74951234567",
        dtmf="103",
        presses=(Press("103", on_playback="main-menu"),),
    ),
    CallScript(
        "office: the caller presses a key the menu does not have, then 1",
        "office.yaml",
        called="74951234567",
        dtmf="9w1",
        presses=(Press("9", on_playback="main-menu"), Press("1", on_playback="main-menu")),
    ),
    CallScript(
        "office: nobody answers in sales",
        "office.yaml",
        called="74951234567",
        agents={"ivanov": "noanswer", "petrov": "noanswer"},
    ),
    CallScript(
        "office: evening voicemail",
        "office.yaml",
        at="2026-12-01T20:00",
        called="74951234567",
        hangup_after=20,
    ),
    CallScript(
        "office: the caller gives up in the menu",
        "office.yaml",
        called="74951234567",
        hangup_after=3,
    ),
    CallScript("multi: analog line 3", "multi-number.yaml", line=3),
    CallScript(
        "multi: E1 DNIS to support",
        "multi-number.yaml",
        called="74959876543",
        dtmf="1",
        presses=(Press("1", on_playback="support-menu"),),
        agents={"sidorova": "answer:3", "petrov": "noanswer"},
    ),
    CallScript("multi: unknown number goes to other", "multi-number.yaml", called="74990000000"),
    CallScript("centre: manager answers", "call-centre.yaml", caller="79161112233"),
    CallScript(
        "centre: manager away, queue",
        "call-centre.yaml",
        caller="79161112233",
        agents={"ivanov": "noanswer"},
    ),
    CallScript(
        "centre: everyone busy, key 1 for a call-back",
        "call-centre.yaml",
        dtmf="w" * 50 + "1",
        presses=(Press("1", at=50),),
        agents={"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"},
    ),
    CallScript(
        "centre: everyone busy, the queue overflows",
        "call-centre.yaml",
        agents={"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"},
    ),
    CallScript(
        "agents: an English caller gets the best English speaker",
        "agents.yaml",
        called="74957770000",
        dtmf="1",
        presses=(Press("1", on_playback="language-menu"),),
    ),
    CallScript(
        "agents: a Russian caller, Olga busy: the tier-1 lead speaks it best",
        "agents.yaml",
        called="74957770000",
        dtmf="2",
        presses=(Press("2", on_playback="language-menu"),),
        agents={"olga": "busy"},
    ),
    CallScript(
        "agents: Olga and the lead busy: Irina after the widening",
        "agents.yaml",
        called="74957770000",
        dtmf="2",
        presses=(Press("2", on_playback="language-menu"),),
        agents={"olga": "busy", "lead": "busy"},
    ),
]


async def place(stack: AgiStack, script: CallScript) -> AgiCall:
    if script.line is not None:
        return await stack.call(
            "scenario",
            caller=script.caller,
            channel=f"DAHDI/{script.line}-1",
            extension="s",
            dnid=None,
            script=CallerScript(script.presses, script.hangup_after),
        )
    return await stack.call(
        "scenario",
        caller=script.caller,
        extension=script.called,
        dnid=script.called,
        args=(script.called,),
        script=CallerScript(script.presses, script.hangup_after),
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
async def test_a_scenario_over_agi_takes_the_same_path_as_simulate(script: CallScript) -> None:
    company = example(script.config)
    want = script.simulated(company)
    async with AgiStack(company, at(script.at, company), script.behaviours()) as stack:
        call = await place(stack, script)
    [record] = stack.memory.records
    assert exits(record.steps) == exits(want.steps)
    assert record.outcome.result == want.outcome.result
    assert record.outcome.agent == want.outcome.agent
    assert record.scenario == want.scenario
    # the dialplan learns how it ended
    assert call.variables["SWITCHBOARD_RESULT"] == want.outcome.result
    assert call.variables["SWITCHBOARD_CALL_ID"] == record.call_id


def dials(call: AgiCall) -> list[tuple[float, tuple[str, ...], float | None, str]]:
    return [(round(d.t_start, 3), d.targets, d.timeout, d.status) for d in call.dials]


async def office_call(agents: dict[str, str], presses: tuple[Press, ...] = ()) -> AgiCall:
    company = example("office.yaml")
    behaviours = {k: AgentBehaviour.parse(v) for k, v in agents.items()}
    called = "74951234567"
    async with AgiStack(company, at("2026-12-01T10:15", company), behaviours) as stack:
        return await stack.call(
            "scenario", extension=called, args=(called,), script=CallerScript(presses)
        )


async def test_one_by_one_is_a_dial_per_member_and_the_mobile_joins_the_desk() -> None:
    """Sales rings Ivan 15 s, then Pyotr; Ivan's mobile joins his desk after 10 s: over
    AGI that is a new Dial of desk and mobile (the desk is rung again)."""
    call = await office_call({"ivanov": "noanswer", "petrov": "answer:5"})
    start = call.dials[0].t_start
    assert [
        (t - start, targets, timeout, status) for t, targets, timeout, status in dials(call)
    ] == [
        (0.0, ("PJSIP/101",), 10, "NOANSWER"),
        (10.0, ("PJSIP/101", "Local/79161234567@switchboard-confirm"), 5, "NOANSWER"),
        (15.0, ("PJSIP/102",), 15, "ANSWER"),
    ]
    assert call.dials[-1].t_answer is not None
    assert call.dials[-1].t_answer - start == pytest.approx(20.0)
    assert all("g" in d.options for d in call.dials)  # the call goes on after the employee


async def test_all_at_once_is_one_dial_of_every_member() -> None:
    call = await office_call(
        {"sidorova": "answer:3", "kuznetsova": "noanswer"}, (Press("2", on_playback="main-menu"),)
    )
    [(_, targets, timeout, status)] = dials(call)[-1:]
    assert targets == ("PJSIP/103", "PJSIP/104")
    assert timeout == 30
    assert status == "ANSWER"
    assert call.dials[-1].answered_by == "PJSIP/103"


async def test_a_queue_holds_the_caller_with_music_announcements_and_offers() -> None:
    company = example("call-centre.yaml")
    busy = {e: AgentBehaviour.parse("busy") for e in ("sidorova", "kuznetsova", "smirnov")}
    async with AgiStack(company, at("2026-12-01T10:15", company), busy) as stack:
        call = await stack.call(
            "scenario",
            extension="74951112233",
            args=("74951112233",),
            script=CallerScript((), hangup_after=100),
        )
    # hold music from the start of the queue, and back on after every announcement
    # and every offer (a prompt and Dial's m option stop it)
    moh_on = [t for t, cls in call.moh if cls == "default"]
    assert moh_on
    announcements = [t for t, file in call.played if file.endswith("please-hold")]
    assert [round(t - announcements[0]) for t in announcements] == [0, 40]
    offers = [d for d in call.dials if d.moh == "default"]
    assert offers
    assert all(d.status == "BUSY" for d in offers)
    # one by one (support's strategy): each member answers BUSY at once, the next is
    # offered the call; the round starts again after the queue's `retry` (5 s)
    assert [d.targets for d in offers[:6]] == [("PJSIP/201",), ("PJSIP/202",), ("PJSIP/203",)] * 2
    rounds = [d.t_start for d in offers if d.targets == ("PJSIP/201",)]
    assert min(b - a for a, b in itertools.pairwise(rounds)) >= 5
    assert call.hung_up_by == "caller"
    assert stack.memory.records[0].outcome.result == "abandoned"


QUEUE = """
timezone: Europe/Moscow
employees: [{id: solo, name: Solo, extension: "201"}]
departments: [{id: desk, members: [solo]}]
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 10, announce_prompt: please-hold,
             max_wait: 300, overflow: bye}
      bye: {type: hangup}
"""


async def test_callers_waiting_side_by_side_hear_their_places_in_the_queue() -> None:
    """Two calls at once (a scaled real clock, not the one-call virtual one): the first
    is next, the second second until the first gives up, then next."""
    company = company_from(QUEUE)
    busy = {"solo": AgentBehaviour.parse("busy")}
    clock = ScaledClock(0.02)
    async with AgiStack(company, at("2026-12-01T10:15", company), busy, clock=clock) as stack:

        async def caller(n: int, delay: float, hangup: float) -> AgiCall:
            await clock.sleep(delay)
            return await stack.call(
                "scenario",
                caller=f"7903555000{n}",
                extension="74951234567",
                args=("74951234567",),
                script=CallerScript((), hangup_after=hangup),
                channel=f"PJSIP/trunk-0000000{n}",
            )

        first, second = await asyncio.gather(caller(1, 0, 29), caller(2, 2, 48))
    heard = [[f for _, f in call.played if f.startswith("number:")] for call in (first, second)]
    assert heard[0] == ["number:1", "number:1"]
    assert heard[1][:2] == ["number:2", "number:2"]
    assert heard[1][-1] == "number:1"


async def test_prompts_play_in_the_numbers_language_whatever_the_channels() -> None:
    """The number says ru; Asterisk's channel says en: the sounds come from sounds/ru/."""
    company = company_from(
        QUEUE.replace(
            '[{number: "74951234567", scenario: main}]',
            '[{number: "74951234567", scenario: main, language: ru}]',
        )
    )
    busy = {"solo": AgentBehaviour.parse("busy")}
    async with AgiStack(company, at("2026-12-01T10:15", company), busy) as stack:
        call = await stack.call(
            "scenario",
            extension="74951234567",
            args=("74951234567",),
            language="en",
            script=CallerScript((), hangup_after=15),
        )
    commands = [c for _, c in call.commands]
    switch = commands.index("SET VARIABLE CHANNEL(language) ru")
    first_prompt = next(i for i, c in enumerate(commands) if c.startswith("STREAM FILE"))
    assert switch < first_prompt
    assert call.language == "ru"
    assert commands.count("SET VARIABLE CHANNEL(language) ru") == 1
