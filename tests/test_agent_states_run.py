"""Issue 11: agents' states set with `switchboard agents` reach a running `switchboard
run` at once, and survive its restart (PostgreSQL).

`switchboard run` is a real process against the Asterisk simulator and a real
PostgreSQL; `switchboard agents` and `switchboard config import` are run as a
user would.  Which phone the app rings is read from the simulator's requests.
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

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.clock import Clock
from tests.test_ari_restarts import APP, PASSWORD, ROOT, USER

CALLED = "74951234567"
CONFIG = """
timezone: Europe/Moscow
employees:
  - {{id: ivanov, name: Ivan Ivanov, extension: "201"}}
  - {{id: petrov, name: Pyotr Petrov, extension: "202"}}
departments:
  - {{id: sales, strategy: one_by_one, ring_delay: 5, ring_timeout: 20, members: [ivanov, petrov]}}
numbers: [{{number: "{called}", scenario: main}}]
database: {{spill_dir: "{spill}"}}
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: sales, announce_every: 0, max_wait: 60, overflow: bye}}
      bye: {{type: hangup}}
"""


async def cli(db: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", *args,
        cwd=ROOT, env={**os.environ, "SWITCHBOARD_DSN": db},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


class Log:
    """The app's JSON log lines, read from its stdout as they come."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Condition()

    async def follow(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self.changed:
                self.lines.append(line.decode(errors="replace"))
                self.changed.notify_all()

    async def wait_for(self, text: str, count: int = 1, within: float = 30.0) -> None:
        """Until ``count`` lines have ``text``."""
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: sum(text in x for x in self.lines) >= count)


@asynccontextmanager
async def switchboard_run(
    sim: AsteriskSimulator, db: str, conf: Path, instance: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Log]]:
    """`switchboard run` as a process of its own, connected to the simulator."""
    env = {
        **os.environ,
        "SWITCHBOARD_ARI_URL": sim.url,
        "SWITCHBOARD_ARI_USER": USER,
        "SWITCHBOARD_ARI_PASSWORD": PASSWORD,
        "SWITCHBOARD_DSN": db,
        "SWITCHBOARD_INSTANCE": instance,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "run", "--json-logs", str(conf),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    log = Log()
    reader = asyncio.create_task(log.follow(process.stdout))
    try:
        await log.wait_for('"ari connected"')
        yield process, log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader


def rung(sim: AsteriskSimulator) -> list[str]:
    """The desk phones the app rang, in order."""
    return [
        str(r.query.get("endpoint", ""))
        for r in sim.requests
        if r.method == "POST" and r.path == "/ari/channels/create"
    ]


async def one_call(sim: AsteriskSimulator, n: int) -> list[str]:
    """A call answered by whoever is rung first; the phones rung for it."""
    before = len(rung(sim))
    caller = await sim.place_call(f"7903555{n:04}", CALLED, app=APP)
    await sim.wait_for(
        lambda s: any(len(b.channel_ids) == 2 for b in s.live_bridges()), what="a conversation"
    )
    await sim.hangup(caller)
    await sim.wait_for(lambda s: not s.live_channels(), what="the call over")
    return rung(sim)[before:]


@pytest.mark.asyncio
async def test_a_logged_out_agent_is_not_rung_and_stays_logged_out_after_a_restart(
    db: str, tmp_path: Path
) -> None:
    conf = tmp_path / "company.yaml"
    conf.write_text(CONFIG.format(called=CALLED, spill=tmp_path / "spill"))
    await cli(db, "config", "import", str(conf))
    async with AsteriskSimulator(clock=Clock(), user=USER, password=PASSWORD) as sim:
        for phone in ("PJSIP/201", "PJSIP/202"):
            sim.script_endpoint(phone, EndpointScript("answer", after=0.5))
        async with switchboard_run(sim, db, conf, "first") as (first, log):
            assert await one_call(sim, 1) == ["PJSIP/201"]  # config order: ivanov first
            assert "ivanov logged out" in await cli(db, "agents", "logout", "ivanov")
            await log.wait_for('"agent state changed"')
            assert await one_call(sim, 2) == ["PJSIP/202"]
            first.send_signal(signal.SIGTERM)
            assert await first.wait() == 0
        async with switchboard_run(sim, db, conf, "second") as (second, log):
            await log.wait_for('"agent states read"')
            assert await one_call(sim, 3) == ["PJSIP/202"]  # still logged out
            await cli(db, "agents", "login", "ivanov")
            await log.wait_for('"agent state changed"')
            assert await one_call(sim, 4) == ["PJSIP/201"]
            listed = await cli(db, "agents", "list")
            second.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
    ivanov = next(line for line in listed.splitlines() if line.startswith("ivanov"))
    assert ivanov.split()[1] == "available"


async def agent_changes(db: str) -> list[tuple[str, str, str, str, str | None]]:
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            "SELECT agent, state, reason, by, instance FROM agent_changes ORDER BY id"
        )
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


@pytest.mark.asyncio
async def test_a_feature_code_from_the_phone_is_applied_and_kept(db: str, tmp_path: Path) -> None:
    """``*72`` / ``*73`` from ivanov's desk phone (``Stasis(switchboard,agent,...)``):
    the running app stops offering him calls and the change is kept, ``by = phone``."""
    conf = tmp_path / "company.yaml"
    conf.write_text(CONFIG.format(called=CALLED, spill=tmp_path / "spill"))
    await cli(db, "config", "import", str(conf))
    async with AsteriskSimulator(clock=Clock(), user=USER, password=PASSWORD) as sim:
        for phone in ("PJSIP/201", "PJSIP/202"):
            sim.script_endpoint(phone, EndpointScript("answer", after=0.5))
        async with switchboard_run(sim, db, conf, "first") as (first, log):
            await sim.place_call(
                "201", "*72", tech="PJSIP/201", app_args=["agent", "logout"], app=APP
            )
            await log.wait_for('"agent state changed"')
            await sim.wait_for(lambda s: not s.live_channels(), what="the code call over")
            assert await one_call(sim, 1) == ["PJSIP/202"]
            for n, args in enumerate((["agent", "login"], ["agent", "pause", "lunch"]), 2):
                await sim.place_call("201", "*7x", tech="PJSIP/201", app_args=args, app=APP)
                await log.wait_for('"agent state changed"', count=n)
            await sim.wait_for(lambda s: not s.live_channels(), what="the code calls over")
            first.send_signal(signal.SIGTERM)
            assert await first.wait() == 0
    assert await agent_changes(db) == [
        ("ivanov", "logged_out", "", "phone", "first"),
        ("ivanov", "available", "", "phone", "first"),
        ("ivanov", "paused", "lunch", "phone", "first"),
    ]
    listed = await cli(db, "agents", "list")
    ivanov = next(line for line in listed.splitlines() if line.startswith("ivanov"))
    assert ivanov.split()[1] == "paused"
