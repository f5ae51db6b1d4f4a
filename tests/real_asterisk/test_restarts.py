"""Issue 10 on a real Asterisk: conversations outlive `switchboard run`.

`switchboard run` runs as a process; three callers are talking to three
employees when it is killed (SIGKILL) or stopped (SIGTERM); another process
on the same Stasis app adopts the conversations from the state each call left
on its caller's channel, and each gets its one record when it ends.  What a
real Asterisk must do for that — keep channels bridged in a Stasis app whose
websocket went away, list them to the next connection, answer a channel
variable — is what this checks, next to the simulator's test_ari_restarts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.real_asterisk.conftest import PASSWORD, URL, USER
from tests.real_asterisk.harness import APP, PHONES, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
ROOT = Path(__file__).resolve().parents[2]
NUMBER = "74951234567"
EXTENSIONS = ("104", "105", "106")

CONFIG = f"""
timezone: Europe/Moscow
employees:
  - {{id: e104, name: E104, extension: "104"}}
  - {{id: e105, name: E105, extension: "105"}}
  - {{id: e106, name: E106, extension: "106"}}
departments:
  - {{id: desk, strategy: one_by_one, ring_timeout: 20, members: [e104, e105, e106]}}
numbers: [{{number: "{NUMBER}", scenario: main}}]
asterisk:
  app: {APP}
  endpoints: {{employee: "Local/{{extension}}@{PHONES}/n", mobile: "Local/{{number}}@{PHONES}/n"}}
database: {{spill_dir: "{{spill}}"}}
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 0, max_wait: 600, overflow: bye}}
      bye: {{type: hangup}}
"""


async def until_logged(log: Path, text: str, count: int, within: float = 30.0) -> None:
    """Until ``text`` appears ``count`` times in the process's log (a file: polled)."""
    async with asyncio.timeout(within):
        while log.read_text().count(text) < count:  # noqa: ASYNC110, ASYNC240 - a file has no event
            await asyncio.sleep(0.1)


@asynccontextmanager
async def switchboard_run(
    conf: Path, db: str, log: Path, instance: str, app: str = APP
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        "SWITCHBOARD_ARI_APP": app,
        **os.environ,
        "SWITCHBOARD_ARI_URL": URL,
        "SWITCHBOARD_ARI_USER": USER,
        "SWITCHBOARD_ARI_PASSWORD": PASSWORD,
        "SWITCHBOARD_DSN": db,
        "SWITCHBOARD_INSTANCE": instance,
    }
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "switchboard.cli", "run", "--json-logs", str(conf),
            cwd=ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        await until_logged(log, '"event":"ari connected"', 1)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_conversations_outlive_the_process_and_are_recorded_by_the_next(
    pbx: RealAsterisk, db: str, tmp_path: Path, stop: signal.Signals
) -> None:
    conf = tmp_path / "company.yaml"
    conf.write_text(CONFIG.replace("{spill}", str(tmp_path / "spill")))
    for extension in EXTENSIONS:
        await pbx.phone(extension, "answer:1:600")  # they would talk for ten minutes
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with switchboard_run(conf, db, first_log, "first") as first:
        calls = [await pbx.call(NUMBER, f"790355500{n}") for n in range(len(EXTENSIONS))]
        # talking: each call has left its state on its caller's channel
        await until_logged(first_log, '"event":"call started"', len(calls))
        for call in calls:
            await _state_left(pbx, call.inner)
        os.kill(first.pid, stop)
        async with asyncio.timeout(20):
            await first.wait()
    _, bridges = await pbx.leftovers()
    assert len(bridges) == len(calls), "Asterisk kept every conversation"
    async with switchboard_run(conf, db, second_log, "second") as second:
        await until_logged(second_log, '"event":"conversation adopted"', len(calls))
        for call in calls:  # each caller hangs up: the adopter hangs the employee up
            await call.hang_up()
        channels, bridges = await pbx.settled(within=20)
        assert (channels, bridges) == ([], [])
        second.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await second.wait() == 0
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch("SELECT call_id, instance, result, reason, agent FROM calls")
    finally:
        await conn.close()
    assert len(rows) == len(calls)
    assert {r["instance"] for r in rows} == {"second"}
    assert all(r["call_id"].startswith("first-") for r in rows)
    assert {(r["result"], r["reason"]) for r in rows} == {("connected", "caller hung up")}
    assert {r["agent"] for r in rows} == {"e104", "e105", "e106"}


async def _state_left(pbx: RealAsterisk, channel: str, within: float = 20.0) -> None:
    """Until the caller's channel carries SWITCHBOARD_CALL (polled: no event says so)."""
    async with asyncio.timeout(within):
        while True:
            try:
                await pbx.request(
                    "GET", f"/channels/{channel}/variable", {"variable": "SWITCHBOARD_CALL"}
                )
                return
            except Exception:  # noqa: BLE001 - 404 until it is set
                await asyncio.sleep(0.2)
