"""Screen-pop webhooks (issue 15): ring, answer and end POSTed in order, signed; a
receiver that hangs or fails never delays a call.

The receivers are real aiohttp servers on loopback.  A call runs on the ARI runtime
against the Asterisk simulator, and, for the timings, over FastAGI on a virtual clock,
where a call's every time is exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from switchboard.calls import CallRecord
from switchboard.config.load import load_text
from switchboard.demo import AriStack
from switchboard.simulate import AgentBehaviour
from switchboard.webhooks import SIGNATURE, verify
from tests.agi_stack import AgiStack
from tests.helpers import company_from
from tests.test_crm_bounds import _serve

CALLER = "79035550000"
SECRET = "hook-secret-9"  # noqa: S105 - a test's secret, in the test's environment
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@dataclass
class Receiver:
    """A webhook receiver: ``behaviour`` is ok, fail (500) or hang."""

    behaviour: str = "ok"
    url: str = ""
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.got]

    async def until(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.got) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest_asyncio.fixture
async def receivers() -> AsyncIterator[dict[str, Receiver]]:
    found = {name: Receiver(name) for name in ("ok", "fail", "hang")}

    def handler(receiver: Receiver) -> Any:
        async def receive(request: web.Request) -> web.Response:
            receiver.got.append((dict(request.headers), await request.read()))
            receiver.changed.set()
            if receiver.behaviour == "fail":
                return web.Response(status=500)
            if receiver.behaviour == "hang":
                await asyncio.Event().wait()
            return web.Response(status=204)

        return receive

    runners = []
    for receiver in found.values():
        app = web.Application()
        app.router.add_post("/hook", handler(receiver))
        runner, port = await _serve(app, "127.0.0.1")
        runners.append(runner)
        receiver.url = f"http://127.0.0.1:{port}/hook"
    yield found
    for runner in runners:
        await runner.cleanup()


def office(hooks: str) -> str:
    """ICM finds the caller's manager (the contacts map: petrov); petrov answers."""
    return f"""
employees:
  - {{id: petrov, name: Pyotr Petrov, extension: "101"}}
departments:
  - {{id: sales, members: [petrov]}}
contacts:
  "{CALLER}": petrov
webhooks: {hooks}
default_scenario: main
scenarios:
  main:
    start: manager
    nodes:
      manager:
        type: icm
        sources: [contacts]
        noanswer: sales
        notfound: sales
      sales: {{type: dial, target: sales, ring_timeout: 20, noanswer: bye}}
      bye: {{type: hangup}}
"""


@pytest.mark.asyncio
async def test_ring_answer_and_end_arrive_in_order_signed_with_the_call_so_far(
    receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    ok = receivers["ok"]
    hooks = f'[{{url: "{ok.url}", secret: "{{env.HOOK_SECRET}}"}}]'
    async with AriStack(company_from(office(hooks))) as stack:
        stack.script({"petrov": AgentBehaviour("answer", 1.0)})
        record = await stack.call(caller=CALLER, caller_name="Ivan <b>Ivanov</b>")
        await ok.until(3)
    events = ok.events()
    assert [e["event"] for e in events] == ["ringing", "answered", "ended"]
    for headers, body in ok.got:  # each one signed with the secret, and fresh
        assert verify(SECRET, headers[SIGNATURE], body, time.time())
        assert not verify("another secret", headers[SIGNATURE], body, time.time())
        assert headers["Content-Type"] == "application/json"
    assert len({h["X-Switchboard-Delivery"] for h, _ in ok.got}) == 3
    ringing = events[0]
    assert ringing["call_id"] == record.call_id
    assert (ringing["caller"], ringing["caller_name"]) == (CALLER, "Ivan <b>Ivanov</b>")
    assert ringing["agent"] == {
        "id": "petrov", "name": "Pyotr Petrov", "extension": "101", "device": "desk",
    }  # fmt: skip
    assert [p["node"] for p in ringing["path"]] == ["manager"]  # rung by ICM
    assert ringing["icm"]["manager"] == "petrov"
    assert events[1]["agent"]["id"] == "petrov"
    assert events[2]["outcome"]["result"] == "connected"
    assert events[2]["outcome"]["agent"] == "petrov"
    assert SECRET.encode() not in b"".join(body for _, body in ok.got)


async def agi_call(hooks: str) -> CallRecord:
    """One FastAGI call on a virtual clock: every time in its record is exact."""
    company = company_from(office(hooks))
    petrov = {"petrov": AgentBehaviour("answer", 3.0)}
    async with AgiStack(company, WHEN, petrov, talk=30.0) as stack:
        await stack.call(caller=CALLER, timeout=60)
        (record,) = stack.memory.records
        await stack.app.news.webhooks.close(within=5.0)  # what the receivers got, settled
    return record


def timings(record: CallRecord) -> list[Any]:
    return [
        record.outcome.as_json(),
        [(s.node, s.t, s.t_end, [(e["event"], e["t"]) for e in s.events]) for s in record.steps],
    ]


@pytest.mark.asyncio
async def test_a_receiver_that_hangs_or_fails_never_delays_the_call(
    receivers: dict[str, Receiver],
) -> None:
    hang, fail = receivers["hang"], receivers["fail"]
    alone = await agi_call("[]")
    hooks = (
        f'[{{url: "{hang.url}", timeout: 1, retries: 0}}, '
        f'{{url: "{fail.url}", timeout: 1, retries: 2}}]'
    )
    told = await agi_call(hooks)
    # to the millisecond of the virtual clock, the call went as it did without webhooks
    assert timings(told) == timings(alone)
    assert told.outcome.result == "connected"
    # ...though the webhooks were sent: the hanging one got the first event (and held
    # it past its timeout, so the rest waited in its queue); the failing one got each
    # event three times (1 + 2 retries)
    assert [orjson.loads(b)["event"] for _, b in hang.got][:1] == ["ringing"]
    assert [orjson.loads(b)["event"] for _, b in fail.got] == [
        "ringing", "ringing", "ringing", "answered", "answered", "answered",
        "ended", "ended", "ended",
    ]  # fmt: skip
    deliveries = [h["X-Switchboard-Delivery"] for h, _ in fail.got]
    assert len(set(deliveries)) == 3  # one per event, the same on its retries


def test_check_names_a_webhook_that_cannot_be_sent() -> None:
    problems = [
        p.message
        for p in load_text(
            office(
                '[{url: "ftp://crm/x"}, {url: "https://crm/{caller}"}, '
                '{url: "https://x", events: []}]'
            ),
            "hooks.yaml",
        ).problems
    ]
    assert any("use http:// or https://" in p for p in problems), problems
    assert any("{caller}: only {env.NAME} may be used here" in p for p in problems), problems
    assert any("no event" in p for p in problems), problems
