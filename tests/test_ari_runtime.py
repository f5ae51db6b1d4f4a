"""The Stasis runtime against the Asterisk simulator, over real HTTP and websocket.

Each call here is also run through `simulate`: the live runtime must pass the
same nodes, by the same exits, to the same outcome.
"""

from __future__ import annotations

import pytest

from asterisk_sim import Press
from switchboard.demo import AriStack
from tests.helpers import CallScript, at, example, exits

pytestmark = pytest.mark.asyncio


SCRIPTS = [
    CallScript(
        "office: no key goes to sales", "office.yaml", "2026-12-01T10:15", called="74951234567"
    ),
    CallScript(
        "office: key 2 goes to support",
        "office.yaml",
        "2026-12-01T10:15",
        called="74957654321",
        dtmf="2",
        presses=(Press("2", on_playback="main-menu"),),
        agents={"kuznetsova": "answer:4"},
    ),
    CallScript(
        "office: Ivan's mobile rings, Pyotr answers",
        "office.yaml",
        "2026-12-01T10:15",
        called="74951234567",
        agents={"ivanov": "noanswer"},
    ),
    CallScript(
        "office: first member busy",
        "office.yaml",
        "2026-12-01T10:15",
        called="74951234567",
        agents={"ivanov": "busy"},
    ),
    CallScript(
        "office: evening voicemail",
        "office.yaml",
        "2026-12-01T20:00",
        called="74951234567",
        hangup_after=20,
    ),
    CallScript("multi: analog line 3", "multi-number.yaml", "2026-12-01T10:15", line=3),
    CallScript(
        "multi: E1 DNIS to support",
        "multi-number.yaml",
        "2026-12-01T10:15",
        called="74959876543",
        dtmf="1",
        presses=(Press("1", on_playback="support-menu"),),
        agents={"sidorova": "answer:3", "petrov": "noanswer"},
    ),
    CallScript(
        "multi: unknown number goes to other",
        "multi-number.yaml",
        "2026-12-01T10:15",
        called="74990000000",
    ),
    CallScript(
        "centre: manager answers", "call-centre.yaml", "2026-12-01T10:15", caller="79161112233"
    ),
    CallScript(
        "centre: manager away, queue",
        "call-centre.yaml",
        "2026-12-01T10:15",
        caller="79161112233",
        agents={"ivanov": "noanswer"},
    ),
    CallScript(
        "centre: everyone busy, key 1 for a call-back",
        "call-centre.yaml",
        "2026-12-01T10:15",
        dtmf="w" * 50 + "1",
        presses=(Press("1", at=50),),
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


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
async def test_the_runtime_takes_the_same_path_as_simulate(script: CallScript) -> None:
    company = example(script.config)
    agents = script.behaviours()
    when = at(script.at, company)
    expected = script.simulated(company)
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
    assert exits(record.steps) == exits(expected.steps)
    assert record.outcome.result == expected.outcome.result
    assert record.outcome.agent == expected.outcome.agent
    assert record.scenario == expected.scenario
