"""An office for the wallboard's tests: `switchboard run` (the ARI app against the Asterisk
simulator over real HTTP and websocket, `AriStack`) and its admin server on a loopback
port, the wallboard's "today" fixed to the day the calls start on."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from switchboard.admin.server import AdminServer
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from switchboard.storage.probe import DatabaseProbe
from switchboard.storage.sink import PostgresSink
from tests.helpers import company_from

T = TypeVar("T")
DEADLINE = 15.0  # real seconds a wait gives up after
POLL = 0.02  # seconds between two looks while waiting for a change

# names full of HTML: the page must show them as text
EVIL = '<img src=x onerror="window.pwned=1">'
OFFICE = f"""
timezone: Europe/Moscow
language: ru
employees:
  - {{id: anna, extension: "101", name: 'Anna {EVIL}'}}
  - {{id: boris, extension: "102", name: Boris}}
departments:
  - {{id: support, name: 'Support {EVIL}', members: [anna]}}
  - {{id: sales, members: [boris]}}
numbers: [{{number: "74951234567", scenario: main}}]
scenarios:
  main:
    start: hello
    nodes:
      hello: {{type: play, prompt: hello, next: wait}}
      wait: {{type: queue, department: support, announce_every: 0, max_wait: 3600, overflow: bye}}
      bye: {{type: hangup}}
prompts:
  hello: {{file: hello, duration: 0.5}}
"""
CALLED = "74951234567"
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@asynccontextmanager
async def office(store: PostgresSink | None = None) -> AsyncIterator[tuple[AriStack, AdminServer]]:
    """The app connected to the simulator (its records also going to ``store``), and its
    admin server listening."""
    stack = AriStack(company_from(OFFICE), clock=ScaledClock(0.02), when=WHEN, store=store)
    async with stack:
        status = stack.app.status()
        if store is not None:  # the probe `runtime_status` gives a runtime writing to PostgreSQL
            status.database = DatabaseProbe(store.pool)
        server = AdminServer(status)
        server.wallboard.today.wall = lambda: WHEN
        async with server:
            await server.start("127.0.0.1", 0)
            yield stack, server


async def until(ask: Callable[[], Awaitable[T]], holds: Callable[[T], bool], what: str) -> T:
    """``ask()`` again until ``holds(answer)``; AssertionError after `DEADLINE` s."""
    answer = await ask()
    try:
        async with asyncio.timeout(DEADLINE):
            while not holds(answer):
                await asyncio.sleep(POLL)  # pacing the looks, not waiting for a time
                answer = await ask()
    except TimeoutError:
        raise AssertionError(f"waited {DEADLINE} s for {what}; last: {answer!r}") from None
    return answer


def queue(snapshot: dict[str, Any], department: str) -> dict[str, Any]:
    return next(q for q in snapshot["queues"] if q["department"] == department)


def agent(snapshot: dict[str, Any], agent_id: str) -> dict[str, Any]:
    return next(a for a in snapshot["agents"] if a["agent"] == agent_id)
