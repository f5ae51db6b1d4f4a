"""The wallboard of `switchboard agi`: a call carried over FastAGI shows on it.

The FastAGI server listens on a loopback port and the simulator's AGI side
(`AgiPeer`, through `AgiStack`) plays Asterisk over the socket; the admin
server -- over the status `AgiApp.status` gives, as `serve` starts it --
serves the wallboard on another port, read as a browser's EventSource reads
it.  The only agent is paused, so the caller waits in the queue until the
test resumes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from switchboard.admin.server import AdminServer
from switchboard.clock import ScaledClock
from switchboard.simulate import AgentBehaviour
from tests.agi_stack import AgiStack
from tests.helpers import company_from

pytestmark = pytest.mark.asyncio

DESK = """
timezone: Europe/Moscow
language: en
employees:
  - {id: solo, name: Solo, extension: "201"}
departments:
  - {id: desk, name: Front desk, members: [solo]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: desk, announce_every: 0, max_wait: 600, overflow: bye}
      bye: {type: hangup}
"""
CALLED = "74951234567"
CALLER = "79031110001"
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
WITHIN = 15.0  # real seconds a wait for the wallboard gives up after


@asynccontextmanager
async def agi_desk() -> AsyncIterator[tuple[AgiStack, AdminServer]]:
    """The FastAGI server on a clock 20 times faster than real time, and its admin server."""
    stack = AgiStack(
        company_from(DESK),
        WHEN,
        {"solo": AgentBehaviour.parse("answer:1")},
        talk=10,  # half a second of real time: long enough to be seen talking
        clock=ScaledClock(0.05),
    )
    async with stack, AdminServer(stack.app.status(stack.server)) as server:
        server.wallboard.today.wall = lambda: WHEN
        await server.start("127.0.0.1", 0)
        yield stack, server


async def events(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """The JSON of each ``data:`` event of the stream (comments skipped)."""
    async for line in content:
        if line.startswith(b"data: "):
            snapshot: dict[str, Any] = orjson.loads(line[len(b"data: ") :])
            yield snapshot


async def next_where(
    stream: AsyncIterator[dict[str, Any]], holds: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The first snapshot the stream sends that ``holds``."""
    try:
        async with asyncio.timeout(WITHIN):
            async for snapshot in stream:
                if holds(snapshot):
                    return snapshot
    except TimeoutError:
        raise AssertionError(f"waited {WITHIN} s for {what}") from None
    raise AssertionError(f"the stream ended before {what}")


def desk(snapshot: dict[str, Any]) -> dict[str, Any]:
    [queue] = snapshot["queues"]
    assert queue["department"] == "desk"
    found: dict[str, Any] = queue
    return found


async def test_a_call_over_fastagi_shows_waiting_in_the_queue_then_in_todays_funnel() -> None:
    async with (
        agi_desk() as (stack, server),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.get(server.url + "/wallboard/events") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        stream = events(response.content)
        idle = await anext(stream)
        assert idle["calls"] == []
        assert desk(idle)["waiting"] == 0
        assert idle["today"]["source"] == "process"  # no database: the records in memory

        acd = stack.app.acd
        acd.pause("solo", stack.clock.now(), "lunch")
        paused = await next_where(
            stream, lambda s: s["agents"][0]["state"] == "paused", "solo paused"
        )
        assert paused["agents"][0]["reason"] == "lunch"

        call = asyncio.create_task(
            stack.call("scenario", caller=CALLER, extension=CALLED, dnid=CALLED, timeout=60)
        )
        waiting = await next_where(
            stream, lambda s: desk(s)["waiting"] == 1 and bool(s["calls"]), "the caller waiting"
        )
        [now] = waiting["calls"]
        assert (now["caller"], now["called"]) == (CALLER, CALLED)
        assert (now["scenario"], now["node"], now["state"]) == ("main", "wait", "queue")
        assert (now["department"], now["agent"]) == ("desk", None)
        assert desk(waiting)["longest_wait"] is not None
        longer = await next_where(
            stream, lambda s: (desk(s)["longest_wait"] or 0) >= 3, "the wait growing"
        )
        assert longer["calls"][0]["seconds"] >= 3

        acd.resume("solo", stack.clock.now())  # offered the caller at once
        # the conversation runs inside the dialplan's Dial(): the agent is shown busy with
        # the caller (ringing until Dial() returns: FastAGI hears of the answer then)
        offered = await next_where(
            stream, lambda s: s["agents"][0]["state"] in ("ringing", "talking"), "solo offered"
        )
        assert [c["caller"] for c in offered["calls"]] == [CALLER]

        done = await call
        assert done.closed_by != "peer"  # the server ended the session, not the guard
        after = await next_where(stream, lambda s: not s["calls"], "the call over")
        assert after["funnel"] == [
            {
                "scenario": "main",
                "nodes": [{"node": "wait", "type": "queue", "calls": 1, "abandoned": 0}],
            }
        ]
        assert desk(after)["offered_today"] == 1
    [record] = stack.memory.records
    assert (record.outcome.result, record.outcome.agent) == ("connected", "solo")
