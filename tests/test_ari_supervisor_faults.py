"""The ARI connection's owner cannot die: whatever Asterisk (or our own code) throws at it,
it logs the cause, backs off and connects again (issue 10, finding 1).

The Asterisk here is a deliberately broken test double on a real socket: its channel
list holds an item that is no channel, and its websocket sends a frame nested 100,000
levels deep before a normal event.  And an ``ari_url`` with credentials in it is
refused before anything starts, without showing the password.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from ari_app.client import AriClient
from ari_app.models import AriEvent, Channel, StasisStart
from ari_app.supervisor import AriSupervisor
from switchboard.config.load import load_text
from tests.helpers import ROOT

CHANNEL = {"id": "c1", "name": "PJSIP/trunk-00000001", "state": "Ring"}
START = {"type": "StasisStart", "args": [], "channel": CHANNEL, "application": "a"}


@asynccontextmanager
async def broken_asterisk() -> AsyncIterator[str]:
    """An ARI that answers a bad channel list and sends a frame nested too deep."""

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("[" * 100_000 + "]" * 100_000)
        await ws.send_str(json.dumps(START))
        async for _ in ws:
            pass
        return ws

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    async def channels(request: web.Request) -> web.Response:
        return web.json_response([{"name": "no id"}, CHANNEL, "not even an object"])

    app = web.Application()
    app.router.add_get("/ari/events", events)
    app.router.add_put("/ari/applications/a/eventFilter", ok)
    app.router.add_get("/ari/asterisk/ping", ok)
    app.router.add_get("/ari/channels", channels)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Recorder:
    """What the supervisor hands its event sink; the first connection's hand-over fails
    as a bug in the runtime would."""

    def __init__(self) -> None:
        self.connected: list[list[str]] = []
        self.events: list[AriEvent] = []
        self.started = asyncio.Event()

    async def on_connected(self, channels: list[Channel]) -> None:
        self.connected.append([c.id for c in channels])
        if len(self.connected) == 1:
            raise RuntimeError("a bug in the runtime")

    def on_event(self, event: AriEvent) -> None:
        self.events.append(event)
        if isinstance(event, StasisStart):
            self.started.set()

    def on_disconnected(self) -> None:
        pass


@pytest.mark.asyncio
async def test_a_bad_channel_list_a_frame_too_deep_and_a_bug_never_stop_the_supervisor() -> None:
    sink = Recorder()
    async with broken_asterisk() as url, AriClient(url, "u", "p", "a") as client:
        supervisor = AriSupervisor(client, sink, backoff_first=0.01)
        with capture_logs() as logs:
            task = asyncio.create_task(supervisor.run())
            try:
                async with asyncio.timeout(10):
                    await supervisor.ready.wait()
                    await sink.started.wait()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    assert sink.connected == [["c1"], ["c1"]]  # the bad items left out, twice
    assert supervisor.connections == 1  # the second connection, after the bug
    failed = [e for e in logs if e["event"] == "ari connection failed unexpectedly"]
    assert len(failed) == 1
    assert [e["event"] for e in logs if e["event"] == "ari event unreadable"]


def test_an_ari_url_with_credentials_is_a_check_error_that_hides_the_password() -> None:
    text = (ROOT / "examples" / "office.yaml").read_text() + (
        "asterisk:\n  ari_url: http://admin:s3cret@127.0.0.1:8088\n"
    )
    line = text.count("\n")
    result = load_text(text, "company.yaml")
    assert result.company is None
    messages = [problem.format("company.yaml") for problem in result.errors]
    assert len(messages) == 1
    assert messages[0].startswith(f"company.yaml:{line}: asterisk.ari_url: no user or password")
    assert "ari_user" in messages[0]
    assert "s3cret" not in messages[0]


def test_switchboard_run_refuses_credentials_in_switchboard_ari_url_in_one_line() -> None:
    env = {**os.environ, "SWITCHBOARD_ARI_URL": "http://admin:s3cret@127.0.0.1:1"}
    done = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "run", str(ROOT / "examples" / "office.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(ROOT),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("switchboard run: SWITCHBOARD_ARI_URL: no user or password")
    assert "s3cret" not in done.stderr
