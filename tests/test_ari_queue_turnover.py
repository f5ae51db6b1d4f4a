"""Issue 10, finding 6: a waiting caller's record does not grow with what happens to others.

Before this issue every freed employee was announced to every waiting caller;
all but one had their offer refused, and each refusal was written into that
caller's record as a ring and a busy (563k entries in 150 s with 5,000
waiting) and made the caller rest on an employee who was free — so employees
sat idle while callers waited (371d264: 2 of 30 callers served in 20 s).  Now
a freed employee is offered to the one caller who would ring them, and a
step's offers are held before any request is awaited: every ring in a record
is a channel that was really created, and the employees are kept busy.
"""

from __future__ import annotations

import datetime as dt

import pytest

from asterisk_sim import EndpointScript
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.helpers import company_from

WHEN = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)  # 10:15 in Moscow, a Tuesday
CALLERS = 40
PATIENCE = 40.0  # clock seconds each caller waits before hanging up
TALK = 2.0

QUEUE = """
timezone: Europe/Moscow
employees:
  - {id: a1, name: A1, extension: "201"}
  - {id: a2, name: A2, extension: "202"}
departments:
  - {id: desk, strategy: all_at_once, ring_timeout: 30, members: [a1, a2]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 0, max_wait: 600, overflow: bye}
      bye: {type: hangup}
"""


@pytest.mark.asyncio
async def test_forty_callers_two_employees_records_hold_only_real_rings_and_nobody_idles() -> None:
    company = company_from(QUEUE)
    stack = AriStack(company, clock=ScaledClock(0.05), when=WHEN)
    async with stack:
        for extension in ("201", "202"):
            stack.sim.script_endpoint(
                f"PJSIP/{extension}", EndpointScript("answer", after=0.3, hangup_after=TALK)
            )
        channels = [
            await stack.place(caller=f"7903555{n:04}", called="74951234567", hangup_after=PATIENCE)
            for n in range(CALLERS)
        ]
        records = [await stack.record_of(c, within=120) for c in channels]
        await stack.settled(within=20)
        created = {
            r.query["channelId"]
            for r in stack.sim.requests
            if r.method == "POST" and r.path == "/ari/channels/create"
        }
    served = [r for r in records if r.outcome.result == "connected"]
    # two employees talking 2 s (plus 0.3 s to answer) for 40 s serve about 30 callers
    assert len(served) >= 20, f"employees idled: {len(served)} of {CALLERS} served"
    for record in records:
        events = [e for step in record.steps for e in step.events]
        rings = [e["leg"] for e in events if e["event"] == "ring"]
        # every ring in a record is a leg Asterisk was asked to create: none made up
        assert {f"{record.call_id}-{leg}" for leg in rings} <= created, record.call_id
        assert not [e for e in events if e["event"] == "busy"], record.call_id
        # however many employees freed up meanwhile
        assert len(events) <= 8, (record.call_id, events)
