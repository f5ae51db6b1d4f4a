"""Beyond `limits.max_calls`, a new call goes to the dialplan's fallback at once.

Asterisk then serves it in plain dialplan (a ring group, a voicemail), rather
than every caller waiting on a saturated Switchboard; the call is recorded as
handed to the dialplan, so supervisors see it was not run.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asterisk_sim import EndpointScript
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from

ONE_AT_A_TIME = """
timezone: Europe/Moscow
employees: [{id: solo, name: Solo, extension: "201"}]
departments: [{id: desk, members: [solo]}]
numbers: [{number: "74951234567", scenario: main}]
limits: {max_calls: 1}
scenarios:
  main:
    start: ring
    nodes:
      ring: {type: dial, target: desk, noanswer: bye}
      bye: {type: hangup}
"""
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.asyncio
async def test_a_call_over_the_limit_is_sent_to_the_fallback_and_recorded() -> None:
    company = company_from(ONE_AT_A_TIME)
    clock = ScaledClock(0.03)
    stack = AriStack(company, clock=clock, when=WHEN)
    async with stack:
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=2, hangup_after=10))
        first = await stack.place(caller="79035550000", called="74951234567")
        await clock.sleep(1.0)
        second = await stack.place(caller="79035550001", called="74951234567")
        shed = await stack.record_of(second, within=30)
        await stack.sim.wait_for(
            lambda s: s.channels[second].continued_to is not None, what="sent on"
        )
        location = stack.sim.channels[second].continued_to
        served = await stack.record_of(first, within=30)
        assert stack.app.runtime.shed == 1
        assert stack.app.runtime.failures == 0
    assert location is not None
    assert (location.context, location.exten) == ("switchboard-fallback", "74951234567")
    assert (shed.outcome.result, shed.outcome.reason) == (
        "dialplan",
        "too many calls (1): sent to the fallback",
    )
    assert (shed.caller, shed.scenario, shed.steps) == ("79035550001", "main", [])
    assert served.outcome.result == "connected"  # the call in progress is not disturbed
