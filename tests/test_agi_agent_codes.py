"""Issue 11: agents change their state from their desk phones over FastAGI.

``AGI(agi://127.0.0.1:4573/agent?action=logout)`` (``*72`` in
extensions-switchboard-agi.conf) asked over a real socket, as Asterisk's
``AGI()`` does: the server's ACD changes, the phone hears the confirmation
(STREAM FILE) and ``SWITCHBOARD_AGENT_STATE`` tells the dialplan; a `route`
asked afterwards rings only the agents taking calls.
"""

from __future__ import annotations

import pytest

from asterisk_sim.agi import AgiCall
from tests.agi_stack import AgiStack
from tests.helpers import at, company_from

pytestmark = pytest.mark.asyncio

CONFIG = """\
timezone: Europe/Moscow
language: ru
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
  - {id: petrov, name: Pyotr Petrov, extension: "202"}
departments:
  - {id: sales, strategy: all_at_once, ring_timeout: 25, members: [ivanov, petrov]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: sales, noanswer: bye}
      bye: {type: hangup}
"""
WHEN = "2026-12-01T10:15"


def switchboard(call: AgiCall) -> dict[str, str]:
    return {k: v for k, v in call.variables.items() if k.startswith("SWITCHBOARD_")}


def sounds(call: AgiCall) -> list[str]:
    return [sound for _, sound in call.played]


async def code(stack: AgiStack, query: str, caller: str = "201") -> AgiCall:
    """The phone of extension ``caller`` runs the dialplan's feature code."""
    return await stack.call(
        f"agent?{query}", caller=caller, dnid=None, extension="*7x",
        context="switchboard-agent-codes", channel=f"PJSIP/{caller}-0000000a",
    )  # fmt: skip


async def targets(stack: AgiStack) -> str:
    call = await stack.call("route", caller="79035550001", args=("74951234567",))
    return switchboard(call)["SWITCHBOARD_TARGETS"]


async def test_an_agent_logs_out_pauses_and_logs_in_over_fastagi() -> None:
    company = company_from(CONFIG)
    async with AgiStack(company, at(WHEN, company)) as stack:
        acd = stack.app.acd
        assert await targets(stack) == "PJSIP/201&PJSIP/202"

        out = await code(stack, "action=logout")
        assert switchboard(out) == {
            "SWITCHBOARD_AGENT": "ivanov", "SWITCHBOARD_AGENT_STATE": "logged_out",
        }  # fmt: skip
        assert out.answered
        assert sounds(out) == ["switchboard/agent-logged-out"]
        assert out.language == "ru"  # the company's language, not the channel's
        assert (acd.agents["ivanov"].state, acd.changes[-1].by) == ("logged_out", "phone")
        assert await targets(stack) == "PJSIP/202"

        back = await code(stack, "action=login")
        assert switchboard(back)["SWITCHBOARD_AGENT_STATE"] == "available"
        assert sounds(back) == ["switchboard/agent-logged-in"]

        paused = await code(stack, "action=toggle&reason=lunch")
        assert switchboard(paused)["SWITCHBOARD_AGENT_STATE"] == "paused"
        assert sounds(paused) == ["switchboard/agent-paused"]
        assert acd.agents["ivanov"].reason == "lunch"
        assert await targets(stack) == "PJSIP/202"

        resumed = await code(stack, "action=toggle")
        assert switchboard(resumed)["SWITCHBOARD_AGENT_STATE"] == "available"
        assert sounds(resumed) == ["switchboard/agent-resumed"]
        assert await targets(stack) == "PJSIP/201&PJSIP/202"
    assert [(c.agent, c.state, c.reason, c.by) for c in acd.changes] == [
        ("ivanov", "logged_out", "", "phone"), ("ivanov", "available", "", "phone"),
        ("ivanov", "paused", "lunch", "phone"), ("ivanov", "available", "", "phone"),
    ]  # fmt: skip
    # the feature codes leave no call record (the four routes do)
    assert len(stack.memory.records) == 4


async def test_pausing_a_logged_out_agent_only_says_they_are_logged_out() -> None:
    company = company_from(CONFIG)
    async with AgiStack(company, at(WHEN, company)) as stack:
        await code(stack, "action=logout", caller="202")
        paused = await code(stack, "action=pause", caller="202")
        assert switchboard(paused)["SWITCHBOARD_AGENT_STATE"] == "logged_out"
        assert sounds(paused) == ["switchboard/agent-logged-out"]
        assert [c.state for c in stack.app.acd.changes] == ["logged_out"]


async def test_a_phone_that_is_no_employees_or_an_unknown_action_is_refused() -> None:
    company = company_from(CONFIG)
    async with AgiStack(company, at(WHEN, company)) as stack:
        stranger = await code(stack, "action=logout", caller="299")
        assert sounds(stranger) == ["switchboard/agent-unknown"]
        assert switchboard(stranger) == {"SWITCHBOARD_ERROR": "caller '299' is no employee's phone"}
        odd = await code(stack, "action=dance")
        assert sounds(odd) == []
        assert switchboard(odd)["SWITCHBOARD_ERROR"].startswith("unknown agent action")
        assert list(stack.app.acd.changes) == []
        assert stack.memory.records == []


async def test_a_phone_without_caller_id_is_known_by_its_device() -> None:
    company = company_from(CONFIG)
    async with AgiStack(company, at(WHEN, company)) as stack:
        call = await stack.call(
            "agent?action=pause&reason=training", caller=None, dnid=None, extension="*73",
            channel="PJSIP/202-0000000b",
        )  # fmt: skip
        assert switchboard(call)["SWITCHBOARD_AGENT"] == "petrov"
        assert (stack.app.acd.agents["petrov"].reason, stack.app.acd.changes[-1].by) == (
            "training", "phone",
        )  # fmt: skip
