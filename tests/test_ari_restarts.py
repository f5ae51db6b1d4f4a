"""Issue 10, finding 4: a deploy or a crash drops no conversation.

`switchboard run` runs as a real process against the Asterisk simulator and a
real PostgreSQL.  Twenty callers are talking to twenty employees when it is
stopped — with SIGTERM (a deploy) or SIGKILL (a crash) — and another process
is started on the same Stasis app.  Before this issue SIGTERM hung up all
twenty conversations and, after a SIGKILL, the new process sent all forty
channels to the fallback context, and no call got a record (371d264).  Now
the conversations stay up, the new process adopts them from the state each
call left on its caller's channel, and each gets its one record when it ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from ari_app.adopt import STATE_VARIABLE
from ari_app.app import AriApp, AriSettings
from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.calls import MemorySink
from switchboard.clock import Clock, ScaledClock
from tests.helpers import company_from, example

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD, APP = "switchboard", "restart-test", "switchboard"
CONVERSATIONS = 20
CALLED = "74951234567"

CONFIG = """
timezone: Europe/Moscow
employees:
{employees}
departments:
  - id: desk
    strategy: one_by_one
    ring_timeout: 20
    members: [{members}]
    record: always
numbers: [{{number: "{called}", scenario: main}}]
database: {{spill_dir: "{spill}"}}
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 0, max_wait: 600, overflow: bye}}
      bye: {{type: hangup}}
"""


def config(tmp_path: Path) -> Path:
    ids = [f"e{n:02}" for n in range(1, CONVERSATIONS + 1)]
    employees = "\n".join(
        f'  - {{id: {e}, name: Employee {e}, extension: "{200 + n}"}}' for n, e in enumerate(ids, 1)
    )
    path = tmp_path / "company.yaml"
    path.write_text(
        CONFIG.format(
            employees=employees, members=", ".join(ids), called=CALLED, spill=tmp_path / "spill"
        )
    )
    return path


@asynccontextmanager
async def switchboard_run(
    sim: AsteriskSimulator, db: str, conf: Path, log: Path, instance: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`switchboard run` as a process of its own, connected to the simulator."""
    env = {
        **os.environ,
        "SWITCHBOARD_ARI_URL": sim.url,
        "SWITCHBOARD_ARI_USER": USER,
        "SWITCHBOARD_ARI_PASSWORD": PASSWORD,
        "SWITCHBOARD_DSN": db,
        "SWITCHBOARD_INSTANCE": instance,
    }
    connected = len([r for r in sim.requests if r.path == "/ari/channels" and r.method == "GET"])
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "switchboard.cli", "run", "--json-logs", str(conf),
            cwd=ROOT, env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        # connected once it has listed the channels in the app (after its websocket is up)
        await sim.wait_for(
            lambda s: (
                len([r for r in s.requests if r.path == "/ari/channels" and r.method == "GET"])
                > connected
            ),
            timeout=30,
            what=f"{instance} connected (see {log})",
        )
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def conversations(sim: AsteriskSimulator) -> list[list[str]]:
    """The channels of each live bridge that has two."""
    return [list(b.channel_ids) for b in sim.live_bridges() if len(b.channel_ids) == 2]


async def twenty_conversations(sim: AsteriskSimulator) -> list[str]:
    for n in range(CONVERSATIONS):
        sim.script_endpoint(f"PJSIP/{201 + n}", EndpointScript("answer", after=0.2))
    callers = [
        await sim.place_call(f"7903555{n:04}", CALLED, app=APP) for n in range(CONVERSATIONS)
    ]
    # talking, and each call has left its state on its caller's channel
    await sim.wait_for(
        lambda s: (
            len(conversations(s)) == CONVERSATIONS
            and all("SWITCHBOARD_CALL" in s.channels[c].variables for c in callers)
        ),
        timeout=60,
        what="20 conversations",
    )
    return callers


async def records(db: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db)
    try:
        return await conn.fetch(
            "SELECT call_id, instance, channel, result, reason, agent, talk_s, duration_s, steps,"
            " recording"
            " FROM calls ORDER BY call_id"
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.asyncio
async def test_conversations_survive_a_restart_and_each_gets_its_record_when_it_ends(
    db: str, tmp_path: Path, stop: signal.Signals
) -> None:
    conf = config(tmp_path)
    async with AsteriskSimulator(clock=Clock(), user=USER, password=PASSWORD) as sim:
        async with switchboard_run(sim, db, conf, tmp_path / "first.log", "first") as first:
            callers = await twenty_conversations(sim)
            os.kill(first.pid, stop)
            async with asyncio.timeout(20):
                code = await first.wait()
        assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
        # Asterisk kept every conversation; nothing was hung up or sent on
        assert len(conversations(sim)) == CONVERSATIONS
        assert all(sim.channels[c].continued_to is None for c in callers)
        assert await records(db) == []

        async with switchboard_run(sim, db, conf, tmp_path / "second.log", "second") as second:
            # the second instance asks each parked caller for its state and adopts it
            await sim.wait_for(
                lambda s: (
                    sum(
                        1
                        for r in s.requests
                        if r.path.endswith("/variable")
                        and r.method == "GET"
                        and r.status == 200
                        and r.query.get("variable") == STATE_VARIABLE  # not CHANNEL(linkedid)
                    )
                    == CONVERSATIONS
                ),
                timeout=30,
                what="20 conversations adopted",
            )
            assert len(conversations(sim)) == CONVERSATIONS  # still talking
            # half the callers hang up, in the other half the employee does
            for n, pair in enumerate(conversations(sim)):
                caller = next(c for c in pair if c in callers)
                employee = next(c for c in pair if c not in callers)
                await sim.hangup(caller if n % 2 == 0 else employee)
            await sim.wait_for(
                lambda s: not s.live_channels() and not s.live_bridges(),
                timeout=30,
                what="every channel and bridge gone",
            )
            # stopped: it writes what it holds before it exits
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                assert await second.wait() == 0
    rows = await records(db)
    assert len(rows) == CONVERSATIONS
    assert {r["channel"] for r in rows} == {sim.channels[c].name for c in callers}
    assert {r["instance"] for r in rows} == {"second"}
    assert all(r["call_id"].startswith("first-") for r in rows)  # the calls the first began
    assert {r["result"] for r in rows} == {"connected"}
    assert sorted(r["reason"] for r in rows) == ["agent hung up"] * 10 + ["caller hung up"] * 10
    assert len({r["agent"] for r in rows}) == CONVERSATIONS  # twenty employees, one each
    assert all(r["talk_s"] > 0 and r["duration_s"] >= r["talk_s"] for r in rows)
    # each conversation was recorded by the first; the second's records link the files
    assert {r["recording"] for r in rows} == {
        f"switchboard-{r['call_id']}-conversation" for r in rows
    }


WHEN = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)  # 10:15 in Moscow, a Tuesday


@pytest.mark.asyncio
async def test_on_stop_a_caller_in_the_menu_is_handed_to_the_fallback_with_its_record() -> None:
    """SIGTERM (`AriApp` leaving): the caller keeps the number dialled, in the dialplan."""
    company = example("office.yaml")
    clock = ScaledClock(0.02)
    sink = MemorySink()
    async with AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim:
        settings = AriSettings(sim.url, USER, PASSWORD, company.config.asterisk.app)
        app = AriApp(lambda: company, settings, sink=sink, clock=clock, wall_clock=lambda: WHEN)
        async with app:
            await app.wait_ready()
            caller = await sim.place_call("79035550000", CALLED, app=company.config.asterisk.app)
            await sim.wait_for(
                lambda s: any(p.target_id == caller for p in s.playbacks.values()),
                what="the menu playing",
            )
        location = sim.channels[caller].continued_to
        (record,) = sink.records
    assert location is not None
    assert (location.context, location.exten) == ("switchboard-fallback", CALLED)
    assert (record.outcome.result, record.outcome.reason) == (
        "dialplan",
        "switchboard stopping: handed to the dialplan",
    )
    assert record.steps, "the record keeps the path the caller took"


@pytest.mark.asyncio
async def test_a_call_arriving_while_switchboard_stops_goes_to_the_fallback() -> None:
    company = company_from(
        """
timezone: Europe/Moscow
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main:
    start: bye
    nodes:
      bye: {type: hangup}
"""
    )
    clock = ScaledClock(0.02)
    sink = MemorySink()
    async with AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim:
        settings = AriSettings(sim.url, USER, PASSWORD, "switchboard")
        app = AriApp(lambda: company, settings, sink=sink, clock=clock)
        async with app:
            await app.wait_ready()
            await app.runtime.drain()  # the stop has begun: nothing to hand on yet
            caller = await sim.place_call("79035550000", CALLED, app="switchboard")
            await sim.wait_for(
                lambda s: s.channels[caller].continued_to is not None, what="sent on"
            )
    (record,) = sink.records
    assert record.outcome.reason == "switchboard stopping: sent to the fallback"
