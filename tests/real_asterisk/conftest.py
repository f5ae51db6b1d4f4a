"""The real-Asterisk suite runs only when the environment names an Asterisk.

    SWITCHBOARD_TEST_ARI_URL=http://127.0.0.1:8088 \\
    SWITCHBOARD_TEST_ARI_USER=... SWITCHBOARD_TEST_ARI_PASSWORD=... \\
        scripts/test tests/real_asterisk

That Asterisk must have ARI enabled for that user, the suite's dialplan
(``extensions-switchboard-test.conf`` here) and, for the FastAGI tests, the shipped
``dialplan/extensions-switchboard-agi.conf`` included, and Switchboard's
prompts installed (``sounds/en/switchboard`` in its sounds folder).  It must
carry no other calls: after every test its channel and bridge lists must be
empty.  Without ``SWITCHBOARD_TEST_ARI_URL`` every test here is skipped (CI).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from agi_server.app import AgiApp
from agi_server.server import AgiServer
from ari_app.app import AriApp, AriSettings
from switchboard.calls import CallRecord, MemorySink
from switchboard.config.company import Company
from switchboard.config.load import load_text
from tests.real_asterisk.harness import APP, PHONES, RealAsterisk, TestCall

URL = os.environ.get("SWITCHBOARD_TEST_ARI_URL", "")
USER = os.environ.get("SWITCHBOARD_TEST_ARI_USER", "switchboard")
PASSWORD = os.environ.get("SWITCHBOARD_TEST_ARI_PASSWORD", "")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AGI_PORT = 4573  # the shipped dialplan's agi://127.0.0.1:4573
# a Tuesday, 10:15 in Moscow: every example's office is open
OPEN_HOURS = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if URL:
        return
    skip = pytest.mark.skip(reason="no real Asterisk: set SWITCHBOARD_TEST_ARI_URL to run")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest_asyncio.fixture
async def pbx() -> AsyncIterator[RealAsterisk]:
    """The real Asterisk, empty before the test and checked empty after it."""
    async with RealAsterisk(URL, USER, PASSWORD) as asterisk:
        channels, bridges = await asterisk.settled(within=10)
        if channels or bridges:
            pytest.fail(f"the Asterisk is not idle before the test: {channels} {bridges}")
        sounds = await asterisk.request("GET", "/sounds", {"lang": "en"})
        if not any(s["id"] == "switchboard/main-menu" for s in sounds):
            pytest.fail("install sounds/en/switchboard into Asterisk's sounds folder first")
        yield asterisk
        channels, bridges = await asterisk.settled(within=20)
        assert (channels, bridges) == ([], []), "left behind in Asterisk"


def example(name: str, shorten: Callable[[dict[str, object]], None]) -> Company:
    """An example configuration, its timings shortened by ``shorten``, ringing the test
    dialplan's phones and connected to the suite's Stasis app."""
    data = yaml.safe_load((EXAMPLES / name).read_text())
    shorten(data)
    data["asterisk"] = {
        "app": APP,
        "endpoints": {
            "employee": f"Local/{{extension}}@{PHONES}/n",
            "mobile": f"Local/{{number}}@{PHONES}/n",
        },
    }
    return load_text(yaml.safe_dump(data), name).raise_for_errors()


async def record_of(sink: MemorySink, call: TestCall, within: float) -> CallRecord:
    """The record of ``call`` (Switchboard's half of it), once written."""
    async with asyncio.timeout(within):
        while True:
            for record in sink.records:
                if record.channel_id == call.inner:
                    return record
            sink.finished.clear()
            await sink.finished.wait()


class Running:
    """Switchboard's Stasis app, in this process, on the real Asterisk."""

    def __init__(self, app: AriApp, sink: MemorySink) -> None:
        self.app = app
        self.sink = sink

    async def record(self, call: TestCall, within: float = 60.0) -> CallRecord:
        return await record_of(self.sink, call, within)


class RunningAgi:
    """Switchboard's FastAGI server, in this process, where the shipped dialplan's
    ``AGI(agi://127.0.0.1:4573/…)`` reaches it."""

    def __init__(self, sink: MemorySink) -> None:
        self.sink = sink

    async def record(self, call: TestCall, within: float = 60.0) -> CallRecord:
        return await record_of(self.sink, call, within)  # its channel_id: agi_uniqueid


@pytest.fixture
def agi_switchboard() -> Callable[[Company], AbstractAsyncContextManager[RunningAgi]]:
    @asynccontextmanager
    async def start(company: Company) -> AsyncIterator[RunningAgi]:
        sink = MemorySink()
        app = AgiApp(lambda: company, sink, wall_clock=lambda: OPEN_HOURS)
        server = AgiServer(app.handle)
        await server.start("127.0.0.1", AGI_PORT)
        try:
            yield RunningAgi(sink)
        finally:
            await server.close()
            await app.close()

    return start


@pytest.fixture
def switchboard() -> Callable[[Company], AbstractAsyncContextManager[Running]]:
    @asynccontextmanager
    async def start(company: Company) -> AsyncIterator[Running]:
        sink = MemorySink()
        app = AriApp(
            lambda: company,
            AriSettings(URL, USER, PASSWORD, APP),
            sink=sink,
            wall_clock=lambda: OPEN_HOURS,
        )
        async with app:
            await app.wait_ready()
            yield Running(app, sink)

    return start
