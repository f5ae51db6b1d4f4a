"""The Stasis runtime against the Asterisk simulator, over real HTTP and websocket.

Each call here is also run through `simulate`: the live runtime must pass the
same nodes, by the same exits, to the same outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from asterisk_sim import Press
from switchboard.config.company import Company
from switchboard.demo import AriStack
from switchboard.simulate import AgentBehaviour, simulate
from tests.helpers import example

pytestmark = pytest.mark.asyncio


@dataclass(frozen=True)
class Script:
    """One call, said both ways: `simulate` flags and the simulator's caller script."""

    name: str
    config: str
    at: str
    caller: str = "79035550000"
    called: str = ""
    line: int | None = None
    dtmf: str = ""
    presses: tuple[Press, ...] = ()
    agents: dict[str, str] = field(default_factory=dict)
    hangup_after: float | None = None


SCRIPTS = [
    Script("office: no key goes to sales", "office.yaml", "2026-12-01T10:15", called="74951234567"),
    Script(
        "office: key 2 goes to support",
        "office.yaml",
        "2026-12-01T10:15",
        called="74957654321",
        dtmf="2",
        presses=(Press("2", on_playback="main-menu"),),
        agents={"kuznetsova": "answer:4"},
    ),
    Script(
        "office: Ivan's mobile rings, Pyotr answers",
        "office.yaml",
        "2026-12-01T10:15",
        called="74951234567",
        agents={"ivanov": "noanswer"},
    ),
    Script(
        "office: first member busy",
        "office.yaml",
        "2026-12-01T10:15",
        called="74951234567",
        agents={"ivanov": "busy"},
    ),
    Script(
        "office: evening voicemail",
        "office.yaml",
        "2026-12-01T20:00",
        called="74951234567",
        hangup_after=20,
    ),
    Script("multi: analog line 3", "multi-number.yaml", "2026-12-01T10:15", line=3),
    Script(
        "multi: E1 DNIS to support",
        "multi-number.yaml",
        "2026-12-01T10:15",
        called="74959876543",
        dtmf="1",
        presses=(Press("1", on_playback="support-menu"),),
        agents={"sidorova": "answer:3", "petrov": "noanswer"},
    ),
    Script(
        "multi: unknown number goes to other",
        "multi-number.yaml",
        "2026-12-01T10:15",
        called="74990000000",
    ),
    Script("centre: manager answers", "call-centre.yaml", "2026-12-01T10:15", caller="79161112233"),
    Script(
        "centre: manager away, queue",
        "call-centre.yaml",
        "2026-12-01T10:15",
        caller="79161112233",
        agents={"ivanov": "noanswer"},
    ),
    Script(
        "centre: everyone busy, key 1 for a call-back",
        "call-centre.yaml",
        "2026-12-01T10:15",
        dtmf="w" * 50 + "1",
        presses=(Press("1", at=50),),
        agents={"sidorova": "busy", "kuznetsova": "busy", "smirnov": "busy"},
    ),
]


def local(company: Company, text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=company.tz)


def route(steps: list[object]) -> list[tuple[str, str | None, str | None]]:
    return [(s.node, s.via, s.exit) for s in steps]  # type: ignore[attr-defined]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
async def test_the_runtime_takes_the_same_path_as_simulate(script: Script) -> None:
    company = example(script.config)
    agents = {k: AgentBehaviour.parse(v) for k, v in script.agents.items()}
    when = local(company, script.at)
    expected = simulate(
        company,
        called=script.called or None,
        caller=script.caller,
        line=script.line,
        at=when,
        dtmf=script.dtmf,
        agents=agents,
        hangup_after=script.hangup_after,
    )
    async with AriStack(company, when=when) as stack:
        stack.script(agents)
        record = await stack.call(
            caller=script.caller,
            called=script.called,
            line=script.line,
            presses=script.presses,
            hangup_after=script.hangup_after,
        )
        await stack.settled()
    assert route(record.steps) == route(expected.steps)
    assert record.outcome.result == expected.outcome.result
    assert record.outcome.agent == expected.outcome.agent
    assert record.scenario == expected.scenario
