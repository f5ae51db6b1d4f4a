"""Ringing legs as a real Asterisk 22 makes them: late to enter the app, left until hung up.

A created channel enters the Stasis app on a thread of its own, after the
create's answer; a dial before its StasisStart is refused (409); and a
channel the app created stays in Asterisk until the app hangs it up unless
its SIP session ends.  The simulator behaves so (see ``asterisk_sim``); these
tests hold the runtime to it: a leg is dialled once it is in the app, a 409
never turns a leg into a failure, every leg that ends without a conversation
is hung up, and a busy or unreachable queue member is not rung in a loop.
Read from the simulator's request log and its channel list.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asterisk_sim import EndpointScript, Press
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from, example

WHEN = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)  # 10:15 in Moscow, a Tuesday
CREATE = "/ari/channels/create"
LATE = 1.5  # clock seconds a created leg takes to enter the app: longer than any round trip

QUEUE = """
timezone: Europe/Moscow
employees:
  - {{id: solo, name: Solo, extension: "201"}}
departments:
  - {{id: desk, strategy: all_at_once, ring_timeout: 30, members: [solo]}}
numbers: [{{number: "74951234567", scenario: main}}]
asterisk:
  endpoints: {{employee: "{endpoint}"}}
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 0, max_wait: 300, overflow: bye}}
      bye: {{type: hangup}}
"""


def requests(stack: AriStack, method: str, suffix: str) -> list[int]:
    """The statuses of the app's requests ``method ...suffix``, in order."""
    return [
        r.status or 0
        for r in stack.sim.requests
        if r.method == method and r.path.endswith(suffix) and r.path.startswith("/ari/channels")
    ]


@pytest.mark.asyncio
async def test_a_leg_that_enters_the_app_late_is_dialled_once_it_is_in() -> None:
    """Issue 9: extension 104 dialled in the menu went to the default because of a 409."""
    company = example("office.yaml")
    stack = AriStack(company, clock=ScaledClock(0.02), when=WHEN, stasis_delay=LATE)
    async with stack:
        stack.sim.script_endpoint("PJSIP/104", EndpointScript("answer", after=2, hangup_after=5))
        record = await stack.call(
            caller="79035550000",
            called="74951234567",
            presses=[Press("104", on_playback="main-menu", delay=0.5)],
        )
        await stack.settled()
    assert (record.outcome.result, record.outcome.agent) == ("connected", "kuznetsova")
    assert requests(stack, "POST", "/dial") == [204]


@pytest.mark.asyncio
async def test_a_queue_member_whose_phone_is_busy_is_rung_once_per_retry_not_in_a_loop() -> None:
    """Issue 9: one waiting caller made 27,015 ring attempts in 30 s on the simulator."""
    company = company_from(QUEUE.format(endpoint="PJSIP/{extension}"))
    stack = AriStack(company, clock=ScaledClock(0.02), when=WHEN)
    async with stack:
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("busy"))
        record = await stack.call(caller="79035550000", called="74951234567", hangup_after=30)
        await stack.settled()
    assert record.outcome.result == "abandoned"
    # the department's retry is 5 s: at 0, 5, 10, 15, 20, 25 (a late one may slip to 30)
    assert 5 <= len(requests(stack, "POST", "/create")) <= 7


@pytest.mark.asyncio
async def test_a_leg_whose_phone_signals_busy_is_hung_up_at_once_not_at_the_end_of_the_call() -> (
    None
):
    """A Local channel's busy is a control frame: Asterisk keeps the channel; we hang it up."""
    company = company_from(QUEUE.format(endpoint="Local/{extension}@phones/n"))
    stack = AriStack(company, clock=ScaledClock(0.02), when=WHEN)
    async with stack:
        stack.sim.script_endpoint("Local/201@phones", EndpointScript("busy"))
        record = await stack.call(caller="79035550000", called="74951234567", hangup_after=12)
        await stack.settled()
    assert record.outcome.result == "abandoned"
    created = [r for r in stack.sim.requests if r.method == "POST" and r.path == CREATE]
    assert 2 <= len(created) <= 4
    for leg in created:
        channel_id = leg.query["channelId"]
        hangup = next(
            r
            for r in stack.sim.requests
            if r.method == "DELETE" and r.path == f"/ari/channels/{channel_id}"
        )
        assert hangup.t - leg.t < 1.0, "the busy leg was left in Asterisk"


@pytest.mark.asyncio
async def test_a_leg_stopped_before_it_entered_the_app_is_hung_up_and_nothing_is_left() -> None:
    company = company_from(QUEUE.format(endpoint="PJSIP/{extension}"))
    stack = AriStack(company, clock=ScaledClock(0.02), when=WHEN, stasis_delay=3.0)
    async with stack:
        stack.sim.script_endpoint("PJSIP/201", EndpointScript("noanswer"))
        record = await stack.call(caller="79035550000", called="74951234567", hangup_after=1)
        await stack.settled(within=10)
    assert record.outcome.result == "abandoned"
    assert requests(stack, "POST", "/dial") == []  # never dialled: it was not in the app yet
    legs = [r.query["channelId"] for r in stack.sim.requests if r.path == CREATE]
    assert len(legs) == 1
    assert requests(stack, "DELETE", f"/channels/{legs[0]}") == [204]


@pytest.mark.asyncio
async def test_a_leg_that_never_enters_the_app_is_given_up_and_the_scenario_goes_on() -> None:
    company = company_from(
        QUEUE.format(endpoint="PJSIP/{extension}").replace("max_wait: 300", "max_wait: 12")
    )
    stack = AriStack(company, clock=ScaledClock(0.02), when=WHEN, stasis_delay=20.0)
    async with stack:
        record = await stack.call(caller="79035550000", called="74951234567")
        await stack.settled(within=10)
    # the queue gave the leg up after 5 s (hung up) and overflowed at max_wait
    assert [s.node for s in record.steps] == ["wait", "bye"]
    assert requests(stack, "POST", "/dial") == []
