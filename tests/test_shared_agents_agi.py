"""Shared agents over FastAGI (issue 14): two `AgiApp` instances, each with its own
simulated Asterisk's FastAGI side, share one agent through PostgreSQL.

The agent talks to the first instance's caller when a caller of the second instance
arrives: the second instance does not ring them (their reservation is the first's)
until that conversation ends, and then rings them at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from switchboard.clock import ScaledClock
from switchboard.serving import keep_shared_agents
from switchboard.simulate import AgentBehaviour
from switchboard.storage.sink import PostgresSink
from tests.agi_stack import AgiStack
from tests.helpers import company_from
from tests.test_ari_queue_offers import DESK

WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
ANSWER_AFTER, TALK, SECOND_ARRIVES = 3.0, 20.0, 8.0


@pytest.mark.asyncio
async def test_two_fastagi_instances_never_ring_the_agent_the_other_holds(
    db: str, sink: PostgresSink
) -> None:
    company = company_from(DESK + "database: {shared_agents: true}\n")
    clock = ScaledClock(0.02)
    solo = {"solo": AgentBehaviour("answer", ANSWER_AFTER)}
    async with (
        AgiStack(company, WHEN, solo, talk=TALK, clock=clock) as east,
        AgiStack(company, WHEN, solo, talk=TALK, clock=clock) as west,
        keep_shared_agents(east.app.desk, lambda: company, sink, db, "east") as east_link,
        keep_shared_agents(west.app.desk, lambda: company, sink, db, "west") as west_link,
    ):
        assert east_link is not None  # shared, both
        assert west_link is not None
        first = asyncio.create_task(east.call(caller="79031110001", timeout=60))
        await clock.sleep(SECOND_ARRIVES)  # the second caller arrives while they talk
        second = asyncio.create_task(west.call(caller="79031110002", timeout=60))
        await asyncio.gather(first, second)
    (one,) = east.memory.records
    (two,) = west.memory.records
    assert (one.outcome.result, one.outcome.agent) == ("connected", "solo")
    assert (two.outcome.result, two.outcome.agent) == ("connected", "solo")
    rung = [e for e in two.steps[0].events if e["event"] == "ring"]
    taken = [e for e in two.steps[0].events if e["event"] == "taken"]
    assert len(rung) == len(taken) + 1  # each try while east held solo: taken, never rung
    first_ends = ANSWER_AFTER + TALK
    waited = two.steps[0].details["waited"]
    assert first_ends - SECOND_ARRIVES <= waited <= first_ends - SECOND_ARRIVES + ANSWER_AFTER + 2
