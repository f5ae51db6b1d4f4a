"""Queues over FastAGI: an agent is never rung for two calls at once, and a caller
waiting in the queue is offered an agent the moment another call frees them.

Both calls run through one `AgiApp` (one ACD, one desk) against the simulated
Asterisk's FastAGI side, on a clock 100 times faster than real time.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from switchboard.clock import ScaledClock
from switchboard.simulate import AgentBehaviour
from tests.agi_stack import AgiStack
from tests.helpers import company_from
from tests.test_ari_queue_offers import DESK  # the same queue, over FastAGI

WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
ANSWER_AFTER, TALK, SECOND_ARRIVES = 3.0, 20.0, 8.0


@pytest.mark.asyncio
async def test_a_caller_waiting_is_offered_the_agent_the_moment_the_first_call_ends() -> None:
    company = company_from(DESK)
    clock = ScaledClock(0.01)
    solo = {"solo": AgentBehaviour("answer", ANSWER_AFTER)}
    async with AgiStack(company, WHEN, solo, talk=TALK, clock=clock) as stack:
        first = asyncio.create_task(stack.call(caller="79031110001", timeout=60))
        await clock.sleep(SECOND_ARRIVES)  # the second caller arrives while they talk
        second = asyncio.create_task(stack.call(caller="79031110002", timeout=60))
        await asyncio.gather(first, second)
    by_caller = {r.caller: r for r in stack.memory.records}
    one, two = by_caller["79031110001"], by_caller["79031110002"]
    assert (one.outcome.result, one.outcome.agent) == ("connected", "solo")
    assert (two.outcome.result, two.outcome.agent) == ("connected", "solo")
    rung = [e for e in two.steps[0].events if e["event"] == "ring"]
    # solo was talking when the second caller joined: not rung for them until free...
    assert len(rung) == 1
    first_ends = ANSWER_AFTER + TALK
    waited = two.steps[0].details["waited"]
    # ...and then at once (a second's poll, plus the ring), not at max_wait (300 s)
    assert first_ends - SECOND_ARRIVES <= waited <= first_ends - SECOND_ARRIVES + ANSWER_AFTER + 2
