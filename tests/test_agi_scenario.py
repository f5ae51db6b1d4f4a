"""`agi://…/scenario`: whole scenarios over AGI commands, call for call like `simulate`.

An `AgiPeer` plays Asterisk over a real socket on a virtual clock; each call
script is also run through `simulate` and must pass the same nodes, by the
same exits, to the same outcome, agent and scenario.

Where the AGI model differs (dialplan/README.md, "FastAGI"): the engine does
not learn who is busy before it rings (no device states over AGI), so a busy
employee is rung and answers BUSY at once where `simulate` (told the agent is
busy) skips them; the path through the scenario is the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from asterisk_sim.agi import AgiCall
from asterisk_sim.script import CallerScript, Press
from switchboard.config.company import Company
from switchboard.simulate import AgentBehaviour, Simulation, simulate
from tests.agi_stack import AgiStack
from tests.helpers import example

pytestmark = pytest.mark.asyncio


@dataclass(frozen=True)
class Script:
    """One call, said both ways: `simulate` flags and the AGI peer's caller script."""

    name: str
    config: str
    at: str = "2026-12-01T10:15"
    caller: str = "79035550000"
    called: str = ""
    line: int | None = None
    dtmf: str = ""
    presses: tuple[Press, ...] = ()
    agents: dict[str, str] = field(default_factory=dict)
    hangup_after: float | None = None


SCRIPTS = [
    Script("office: no key goes to sales", "office.yaml", called="74951234567"),
    Script(
        "office: key 2 goes to support",
        "office.yaml",
        called="74957654321",
        dtmf="2",
        presses=(Press("2", on_playback="main-menu"),),
        agents={"kuznetsova": "answer:4"},
    ),
    Script(
        "office: Ivan's mobile rings, Pyotr answers",
        "office.yaml",
        called="74951234567",
        agents={"ivanov": "noanswer"},
    ),
    Script(
        "office: first member busy", "office.yaml", called="74951234567", agents={"ivanov": "busy"}
    ),
    Script(
        "office: nobody answers in sales",
        "office.yaml",
        called="74951234567",
        agents={"ivanov": "noanswer", "petrov": "noanswer"},
    ),
    Script(
        "office: evening voicemail",
        "office.yaml",
        at="2026-12-01T20:00",
        called="74951234567",
        hangup_after=20,
    ),
    Script(
        "office: the caller gives up in the menu",
        "office.yaml",
        called="74951234567",
        hangup_after=3,
    ),
    Script("multi: analog line 3", "multi-number.yaml", line=3),
    Script(
        "multi: E1 DNIS to support",
        "multi-number.yaml",
        called="74959876543",
        dtmf="1",
        presses=(Press("1", on_playback="support-menu"),),
        agents={"sidorova": "answer:3", "petrov": "noanswer"},
    ),
    Script("multi: unknown number goes to other", "multi-number.yaml", called="74990000000"),
    Script("centre: manager answers", "call-centre.yaml", caller="79161112233"),
    Script(
        "centre: manager away, queue",
        "call-centre.yaml",
        caller="79161112233",
        agents={"ivanov": "noanswer"},
    ),
    Script(
        "centre: everyone busy, key 1 for a call-back",
        "call-centre.yaml",
        dtmf="w" * 50 + "1",
        presses=(Press("1", at=50),),
        agents={"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"},
    ),
    Script(
        "centre: everyone busy, the queue overflows",
        "call-centre.yaml",
        agents={"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"},
    ),
]


def local(company: Company, text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=company.tz)


def path(steps: list[object]) -> list[tuple[str, str | None, str | None]]:
    return [(s.node, s.via, s.exit) for s in steps]  # type: ignore[attr-defined]


def expected(script: Script, company: Company) -> Simulation:
    return simulate(
        company,
        called=script.called or None,
        caller=script.caller,
        line=script.line,
        at=local(company, script.at),
        dtmf=script.dtmf,
        agents={k: AgentBehaviour.parse(v) for k, v in script.agents.items()},
        hangup_after=script.hangup_after,
    )


async def place(stack: AgiStack, script: Script) -> AgiCall:
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
async def test_a_scenario_over_agi_takes_the_same_path_as_simulate(script: Script) -> None:
    company = example(script.config)
    want = expected(script, company)
    agents = {k: AgentBehaviour.parse(v) for k, v in script.agents.items()}
    async with AgiStack(company, local(company, script.at), agents) as stack:
        call = await place(stack, script)
    [record] = stack.sink.records
    assert path(record.steps) == path(want.steps)
    assert record.outcome.result == want.outcome.result
    assert record.outcome.agent == want.outcome.agent
    assert record.scenario == want.scenario
    # the dialplan learns how it ended
    assert call.variables["SWITCHBOARD_RESULT"] == want.outcome.result
    assert call.variables["SWITCHBOARD_CALL_ID"] == record.call_id
