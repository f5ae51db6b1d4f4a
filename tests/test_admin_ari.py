"""The admin server of `switchboard run`: metrics that move with the calls, readiness that
follows the ARI connection.

The Stasis app runs against the Asterisk simulator over real HTTP and websocket
(`AriStack`), and its admin server -- the one `serve` starts, over the status
`AriApp.status` gives -- listens on a loopback port of its own; the tests ask
it over HTTP as Prometheus and a load balancer would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from asterisk_sim import EndpointScript
from switchboard.admin.server import AdminServer
from switchboard.clock import ScaledClock
from switchboard.demo import AriStack
from tests.admin_client import AdminClient, Scrape
from tests.helpers import company_from

pytestmark = pytest.mark.asyncio

OFFICE = """
timezone: Europe/Moscow
employees:
  - {id: anna, extension: "101"}
  - {id: boris, extension: "102"}
departments:
  - {id: support, members: [anna]}
  - {id: sales, members: [boris]}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: support, announce_every: 0, max_wait: 3600, overflow: bye}
      bye: {type: hangup}
"""
CALLED = "74951234567"
WHEN = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


@asynccontextmanager
async def office() -> AsyncIterator[tuple[AriStack, AdminClient]]:
    """The app connected to the simulator, and a client of its admin server."""
    stack = AriStack(company_from(OFFICE), clock=ScaledClock(0.02), when=WHEN)
    async with stack, AdminServer(stack.app.status()) as server:
        await server.start("127.0.0.1", 0)
        async with AdminClient(server.url) as admin:
            yield stack, admin


def agents(scrape: Scrape) -> dict[str, float]:
    return {
        state: scrape.get("switchboard_agents", state=state)
        for state in ("available", "ringing", "talking", "wrapup", "paused", "logged_out")
    }


async def test_the_metrics_follow_a_call_from_the_queue_to_the_conversation_and_its_end() -> None:
    async with office() as (stack, admin):
        before = await admin.scrape()
        assert before.get("switchboard_calls_total", result="connected") == 0
        assert before["switchboard_calls_in_progress"] == 0
        assert agents(before) == {
            "available": 2, "ringing": 0, "talking": 0, "wrapup": 0, "paused": 0, "logged_out": 0,
        }  # fmt: skip
        assert before.get("switchboard_queue_callers", department="support") == 0
        assert before.get("switchboard_queue_callers", department="sales") == 0
        assert before.requests() >= 1  # connecting asked Asterisk already: the channel list
        assert before["switchboard_records_written_total"] == 0

        runtime = stack.app.runtime
        runtime.acd.pause("anna", runtime.clock.now(), "lunch")
        stack.sim.script_endpoint("PJSIP/101", EndpointScript("answer", after=1.0))
        caller = await stack.place(caller="79035550001", called=CALLED)

        waiting = await admin.scrape_until(
            lambda s: s.value("switchboard_queue_callers", department="support") == 1,
            "the caller waiting in support's queue",
        )
        assert waiting["switchboard_calls_in_progress"] == 1
        assert agents(waiting)["paused"] == 1
        assert agents(waiting)["available"] == 1  # boris, of sales

        runtime.acd.resume("anna", runtime.clock.now())  # offered the caller at once
        talking = await admin.scrape_until(
            lambda s: s.value("switchboard_agents", state="talking") == 1,
            "anna talking to the caller",
        )
        assert any(len(bridge.channel_ids) == 2 for bridge in stack.sim.live_bridges())
        assert talking.get("switchboard_queue_callers", department="support") == 0
        assert talking["switchboard_calls_in_progress"] == 1
        assert talking.requests() > waiting.requests() > before.requests()

        await stack.sim.hangup(caller)
        record = await stack.record_of(caller)
        assert record.outcome.result == "connected"
        runtime.acd.pause("anna", runtime.clock.now(), "lunch")
        gives_up = await stack.place(caller="79035550002", called=CALLED)
        await admin.scrape_until(
            lambda s: s.value("switchboard_queue_callers", department="support") == 1,
            "the second caller waiting",
        )
        await stack.sim.hangup(gives_up)
        assert (await stack.record_of(gives_up)).outcome.result == "abandoned"

        after = await admin.scrape_until(
            lambda s: s["switchboard_calls_in_progress"] == 0, "no call in progress"
        )
        assert after.get("switchboard_calls_total", result="connected") == 1
        assert after.get("switchboard_calls_total", result="abandoned") == 1
        assert after.get("switchboard_calls_total", result="voicemail") == 0
        assert after.get("switchboard_queue_callers", department="support") == 0
        assert after["switchboard_records_written_total"] == 2  # kept in memory: no database
        assert after["switchboard_records_buffered"] == 0
        assert agents(after)["talking"] == 0
        assert agents(after)["paused"] == 1
        assert after.requests() > talking.requests()
        for method in ("GET", "POST", "DELETE"):
            count = after.get("switchboard_ari_request_duration_seconds_count", method=method)
            in_inf = after.get(
                "switchboard_ari_request_duration_seconds_bucket", method=method, le="+Inf"
            )
            assert count == in_inf > 0
        await stack.settled()


async def test_readyz_says_not_ready_while_asterisk_is_away_and_ready_again_when_it_is_back() -> (
    None
):
    async with office() as (stack, admin):
        status, body = await admin.json("/readyz")
        assert (status, body) == (200, {"ready": True, "checks": {"ari": "ok"}})
        connected = await admin.scrape()
        assert connected["switchboard_ari_connected"] == 1
        assert connected["switchboard_ari_reconnects_total"] == 0

        url = stack.sim.url
        port = int(url.rsplit(":", 1)[1])
        await stack.sim.stop()
        body = await admin.ready_until(503, "not ready while Asterisk is away")
        assert body == {"ready": False, "checks": {"ari": f"not connected to ARI at {url}"}}
        assert await admin.json("/healthz") == (200, {"status": "ok"})
        assert (await admin.scrape())["switchboard_ari_connected"] == 0

        await stack.sim.start(port=port)
        body = await admin.ready_until(200, "ready again once Asterisk is back")
        assert body == {"ready": True, "checks": {"ari": "ok"}}
        back = await admin.scrape()
        assert back["switchboard_ari_connected"] == 1
        assert back["switchboard_ari_reconnects_total"] == 1
        assert await admin.json("/healthz") == (200, {"status": "ok"})


async def test_readyz_says_stopping_while_the_app_hands_its_calls_on() -> None:
    async with office() as (stack, admin):
        stack.app.runtime.draining = True  # what `drain` sets first on SIGTERM
        status, body = await admin.json("/readyz")
        assert status == 503
        assert body["checks"]["ari"].startswith("stopping")


async def test_metrics_are_prometheus_text_with_help_and_type_and_the_process_figures() -> None:
    async with office() as (_, admin):
        status, content_type, text = await admin.get("/metrics")
        assert status == 200
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"
        for line in (
            "# TYPE switchboard_calls_total counter",
            "# TYPE switchboard_calls_in_progress gauge",
            "# TYPE switchboard_queue_callers gauge",
            "# TYPE switchboard_agents gauge",
            "# TYPE switchboard_ari_request_duration_seconds histogram",
            "# TYPE switchboard_ari_reconnects_total counter",
            "# TYPE switchboard_records_written_total counter",
            "# TYPE switchboard_records_spilled_total counter",
            "# TYPE switchboard_records_buffered gauge",
        ):
            assert line in text.splitlines(), text
        assert "# HELP switchboard_calls_total Calls finished, by result." in text
        assert "switchboard_agi_" not in text  # the FastAGI server's, not `run`'s
        assert "switchboard_callbacks_pending" not in text  # no database
        assert "process_resident_memory_bytes" in text
