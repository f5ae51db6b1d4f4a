"""Whisper (issue 15): before the employee is put through, their leg hears an announcement
made from the call ("call for sales, from 7903..."), and may press a key to refuse it --
then the next member is rung, as after a no-answer.  The caller keeps waiting (ringing
or hold music) meanwhile and is never bridged to silence.

On the ARI runtime against the Asterisk simulator (the phones' own playbacks and keys),
and in `simulate`: the same whisper and the same refusal path.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asterisk_sim import EndpointScript
from switchboard.demo import AriStack
from switchboard.simulate import AgentBehaviour, simulate
from tests.agi_stack import AgiStack
from tests.helpers import company_from

CALLER = "79035550000"
OFFICE = """
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "101", language: ru}
  - {id: petrov, name: Pyotr Petrov, extension: "102"}
departments:
  - id: sales
    strategy: one_by_one
    ring_delay: 15
    members: [ivanov, petrov]
    whisper: {prompts: [call-for-sales, "digits:{caller}"], refuse_key: "*"}
prompts:
  call-for-sales: {duration: 2}
default_scenario: main
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: sales, ring_timeout: 60, noanswer: bye}
      bye: {type: hangup}
"""
AGENTS = {"ivanov": AgentBehaviour("refuse", 1.0), "petrov": AgentBehaviour("answer", 1.0)}


def ring_path(record_steps: list) -> list[tuple[str, str]]:
    return [
        (e["event"], e["agent"])
        for step in record_steps
        for e in step.events
        if e["event"] in ("ring", "answer", "noanswer", "stop")
    ]


@pytest.mark.asyncio
async def test_the_employee_hears_the_whisper_before_the_bridge_and_a_refusal_rings_the_next() -> (
    None
):
    async with AriStack(company_from(OFFICE)) as stack:
        stack.script(AGENTS)
        record = await stack.call(caller=CALLER)
        sim = stack.sim
        legs = {c.endpoint: c for c in sim.pbx.channels.values() if c.created_by_ari}
        whispers = {p.target_id: p for p in sim.playbacks.values() if p.target_kind == "channel"}
        added = [
            (r.t, dict(r.query))
            for r in sim.requests
            if r.method == "POST" and r.path.endswith("/addChannel")
        ]
    assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
    ivanov, petrov = legs["PJSIP/101"], legs["PJSIP/102"]
    # each heard the whisper: the department's prompt (a declared one: its own sound
    # file), then the caller's digits said by Asterisk; ivanov's in his own language
    for leg in (ivanov, petrov):
        played = whispers[leg.id]
        assert played.media == ["sound:call-for-sales", f"digits:{CALLER}"]
    assert whispers[ivanov.id].language == "ru"
    # ivanov pressed * during his: never bridged, hung up; petrov was rung next
    assert ivanov.bridge_id is None
    assert ivanov.destroyed_at is not None
    assert ivanov.destroyed_at <= petrov.created_at
    # petrov's whisper ended before the bridge took him: the caller never met silence
    petrov_added = [t for t, query in added if petrov.id in query.get("channel", "")]
    assert petrov_added
    assert whispers[petrov.id].finished_at is not None
    assert whispers[petrov.id].finished_at <= petrov_added[0]
    assert ring_path(record.steps) == [
        ("ring", "ivanov"), ("noanswer", "ivanov"), ("ring", "petrov"), ("answer", "petrov"),
    ]  # fmt: skip


def test_simulate_shows_the_same_whisper_and_refusal_path() -> None:
    company = company_from(OFFICE)
    result = simulate(
        company,
        caller=CALLER,
        at=dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC),
        agents=AGENTS,
    )
    assert (result.outcome.result, result.outcome.agent) == ("connected", "petrov")
    assert ring_path(result.steps) == [
        ("ring", "ivanov"), ("noanswer", "ivanov"), ("ring", "petrov"), ("answer", "petrov"),
    ]  # fmt: skip
    rings = [e for step in result.steps for e in step.events if e["event"] == "ring"]
    assert rings[0]["whisper"] == ["call-for-sales", f"digits:{CALLER}"]
    # petrov answers a second after his phone rings, then hears the 2 s prompt and
    # the caller's 11 digits before he is put through
    answered = next(e for s in result.steps for e in s.events if e["event"] == "answer")
    petrov_rung = rings[1]["t"]
    whisper = 2.0 + company.prompt_duration(f"digits:{CALLER}")
    assert answered["t"] == pytest.approx(petrov_rung + 1.0 + whisper)


@pytest.mark.asyncio
async def test_an_employee_who_hangs_up_during_the_whisper_has_not_taken_the_call() -> None:
    async with AriStack(company_from(OFFICE)) as stack:
        stack.script(AGENTS)
        # ivanov answers, then hangs up a second into his whisper (which lasts longer)
        stack.sim.script_endpoint(
            "PJSIP/101", EndpointScript("answer", after=1.0, hangup_after=1.0)
        )
        record = await stack.call(caller=CALLER)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
    assert ring_path(record.steps) == [
        ("ring", "ivanov"), ("noanswer", "ivanov"), ("ring", "petrov"), ("answer", "petrov"),
    ]  # fmt: skip


WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.asyncio
async def test_over_fastagi_the_whisper_and_the_refusal_take_simulates_path_and_times() -> None:
    """Dial's ``U(switchboard-whisper)`` runs the shipped subroutine on the answered
    phone: a FastAGI session of its own plays the whisper, in the phone's language,
    and ivanov's refuse key sends the call on to petrov -- the path, and the moments,
    `simulate` shows."""
    company = company_from(OFFICE)
    async with AgiStack(company, WHEN, AGENTS, talk=30.0) as stack:
        call = await stack.call(caller=CALLER)
        (record,) = stack.memory.records
    expected = simulate(company, caller=CALLER, at=WHEN, agents=AGENTS)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
    assert ring_path(record.steps) == ring_path(expected.steps)
    answer = [e for s in record.steps for e in s.events if e["event"] == "answer"]
    answer_simulated = [e for s in expected.steps for e in s.events if e["event"] == "answer"]
    assert answer[0]["t"] == pytest.approx(answer_simulated[0]["t"], abs=0.01)

    to_ivanov, to_petrov = call.dials
    for dial in (to_ivanov, to_petrov):
        assert "U(switchboard-whisper)" in dial.options
        assert dial.status == "ANSWER"
    ivanov, petrov = to_ivanov.subroutine, to_petrov.subroutine
    assert ivanov is not None
    assert petrov is not None
    # the department's prompt, then the caller's digits said by Asterisk, each escaped by
    # the refuse key; ivanov pressed it during the first
    played = {
        name: [c for _, c in heard.commands if c.startswith(("STREAM FILE", "SAY"))]
        for name, heard in (("ivanov", ivanov), ("petrov", petrov))
    }
    assert played == {
        "ivanov": ["STREAM FILE call-for-sales *"],
        "petrov": ["STREAM FILE call-for-sales *", f"SAY DIGITS {CALLER} *"],
    }
    assert ivanov.language == "ru"  # ivanov's own language
    assert ivanov.variables["GOSUB_RESULT"] == "CONTINUE"  # refused: Dial goes on
    assert ivanov.variables["SWITCHBOARD_WHISPER_RESULT"] == "refused"
    assert petrov.variables["SWITCHBOARD_WHISPER_RESULT"].startswith("accepted:")
    # ivanov's phone was hung up at his key, the caller never bridged to him
    assert to_ivanov.t_end == pytest.approx(2.0)


@pytest.mark.asyncio
async def test_over_fastagi_a_phone_hung_up_during_the_whisper_has_not_taken_the_call() -> None:
    company = company_from(OFFICE)
    agents = {"ivanov": AgentBehaviour("answer", 1.0), "petrov": AgentBehaviour("answer", 1.0)}
    async with AgiStack(company, WHEN, agents, talk=30.0) as stack:
        assert stack.peer is not None
        # ivanov answers and hangs up a second into his whisper (which lasts longer)
        stack.peer.endpoints["PJSIP/101"] = EndpointScript("answer", after=1.0, hangup_after=1.0)
        await stack.call(caller=CALLER)
        (record,) = stack.memory.records
    assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
    assert ring_path(record.steps) == [
        ("ring", "ivanov"), ("noanswer", "ivanov"), ("ring", "petrov"), ("answer", "petrov"),
    ]  # fmt: skip
