"""The call driver: one place where every runtime's calls meet the ACD.

Two calls of one runtime share a `Desk`.  The port here stands in for Asterisk's
media side: it notes what it is asked to do and hands back the events the
driver makes; the test plays the phones by feeding the engine's events.
"""

from __future__ import annotations

import datetime as dt

import pytest

from switchboard.acd import Acd
from switchboard.calls import MemorySink
from switchboard.clock import Clock
from switchboard.driver import CallDriver, Desk, call_now
from switchboard.engine import actions as act
from switchboard.engine import events as ev
from switchboard.engine.call import CallInfo, CallRun
from tests.helpers import company_from

DESK = """
timezone: Europe/Moscow
employees:
  - {id: solo, name: Solo, extension: "201"}
departments:
  - {id: desk, strategy: all_at_once, ring_timeout: 30, wrapup: 15, members: [solo]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 0, max_wait: 300, retry: 5,
             overflow: bye}
      bye: {type: hangup}
"""


class StoppedClock(Clock):
    """The ACD's clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def now(self) -> float:
        return self.t


class Port:
    """Asterisk's side of one call, as far as the test needs it."""

    def __init__(self) -> None:
        self.rung: list[act.Ring] = []
        self.bridged: list[str] = []
        self.events: list[ev.Event] = []

    def deliver(self, event: ev.Event) -> None:
        self.events.append(event)

    def wake_at(self, timer_id: str, at: float) -> None:
        pass

    def unwake(self, timer_id: str) -> None:
        pass

    async def ring(self, ring: act.Ring) -> None:
        self.rung.append(ring)

    async def bridge(self, leg_id: str) -> None:
        self.bridged.append(leg_id)

    async def _nothing(self, *args: object) -> None:
        pass

    answer = start_moh = stop_moh = play = stop_playback = _nothing
    stop_ringing = start_recording = stop_recording = _nothing
    continue_in_dialplan = hangup = _nothing


def a_call(desk: Desk, caller: str) -> tuple[CallDriver, Port]:
    company = company_from(DESK)
    run = CallRun(
        company,
        CallInfo.from_raw(company, "74951234567", caller),
        dt.datetime(2026, 12, 1, 10, 0, tzinfo=company.tz),
        acd=desk.acd,
        call_key=caller,
        acd_clock0=desk.clock.now(),
    )
    port = Port()
    driver = CallDriver(run, caller, port, MemorySink(), look_up=lambda *_: None, desk=desk)
    return driver, port


@pytest.mark.asyncio
async def test_an_offered_agent_is_rung_for_one_call_and_freed_to_the_next_in_line() -> None:
    clock = StoppedClock()
    desk = Desk(Acd.for_company(company_from(DESK)), clock)
    first, first_port = a_call(desk, "79031110001")
    second, second_port = a_call(desk, "79031110002")
    await first.start()
    [ring] = first_port.rung
    assert (ring.employee_id, desk.acd.agents["solo"].state) == ("solo", "ringing")
    await second.start()  # solo rings for the first caller: the second only waits
    assert second_port.rung == []
    assert desk.acd.position("79031110002") == 2  # the first waits until connected

    clock.t += 3
    await first.handle(ev.LegAnswered(ring.leg_id), 3.0)
    assert first_port.bridged == [ring.leg_id]
    assert desk.acd.agents["solo"].state == "talking"
    assert desk.acd.position("79031110002") == 1

    clock.t += 40  # they talk 40 s; solo hangs up
    await first.handle(ev.LegHungUp(ring.leg_id), 43.0)
    first.let_go()
    solo = desk.acd.agents["solo"]
    assert (solo.state, solo.stats.calls, solo.stats.talk) == ("wrapup", 1, 40.0)
    assert second_port.events == []  # no offer during the department's 15 s wrap-up

    clock.t += 15
    desk.acd.tick(clock.now())  # what the desk's wrap-up timer does
    # the freed agent is offered to the one caller waiting, who rings them
    assert second_port.events == [ev.AgentStatus("solo", "available")]
    await second.handle(second_port.events.pop(), 21.0)
    assert [r.employee_id for r in second_port.rung] == ["solo"]


@pytest.mark.asyncio
async def test_a_call_that_ends_while_its_offer_rings_frees_the_agent_at_once() -> None:
    clock = StoppedClock()
    desk = Desk(Acd.for_company(company_from(DESK)), clock)
    first, first_port = a_call(desk, "79031110001")
    second, second_port = a_call(desk, "79031110002")
    await first.start()
    await second.start()
    assert [r.employee_id for r in first_port.rung] == ["solo"]
    await first.handle(ev.CallerHungUp(), 2.0)  # the first caller gives up while solo rings
    first.let_go()
    assert desk.acd.agents["solo"].state == "available"
    assert second_port.events == [ev.AgentStatus("solo", "available")]


@pytest.mark.asyncio
async def test_an_agent_who_transfers_the_caller_is_done_while_the_call_goes_on() -> None:
    """A blind transfer: the caller talks to the target; the agent's talk is counted up
    to the transfer and their wrap-up begins then, not when the caller hangs up."""
    clock = StoppedClock()
    desk = Desk(Acd.for_company(company_from(DESK)), clock)
    call, port = a_call(desk, "79031110001")
    await call.start()
    [ring] = port.rung
    await call.handle(ev.LegAnswered(ring.leg_id), 3.0)
    clock.t += 30
    await call.handle(ev.LegTransferred(ring.leg_id, "777@phones"), 33.0)
    solo = desk.acd.agents["solo"]
    assert (solo.state, solo.stats.calls, solo.stats.talk) == ("wrapup", 1, 30.0)
    assert not call.run.finished
    clock.t += 100
    await call.handle(ev.LegHungUp(ring.leg_id), 133.0)  # the target hangs up
    call.let_go()
    assert call.run.outcome is not None
    outcome = call.run.outcome
    assert (outcome.result, outcome.agent, outcome.reason) == (
        "connected", "solo", "transfer target hung up",
    )  # fmt: skip
    assert (outcome.extra["transfers"], outcome.extra["transferred_to"]) == (1, "777@phones")
    assert outcome.extra["ended_by"] == "transfer target"
    assert solo.stats.calls == 1  # counted once


@pytest.mark.asyncio
async def test_calls_now_says_where_each_call_is_for_supervisors() -> None:
    clock = StoppedClock()
    desk = Desk(Acd.for_company(company_from(DESK)), clock)
    first, first_port = a_call(desk, "79031110001")
    await first.start()
    clock.t += 5
    second, _ = a_call(desk, "79031110002")  # arrives 5 s later
    await second.start()
    [ring] = first_port.rung
    clock.t += 2
    await first.handle(ev.LegAnswered(ring.leg_id), 7.0)
    now = {c.caller: c for c in (call_now(first), call_now(second))}
    talking, waiting = now["79031110001"], now["79031110002"]
    assert (talking.state, talking.agent, talking.department, talking.seconds) == (
        "talking", "solo", "desk", 7.0,
    )  # fmt: skip
    assert (waiting.state, waiting.node, waiting.department, waiting.seconds) == (
        "queue", "wait", "desk", 2.0,
    )  # fmt: skip
