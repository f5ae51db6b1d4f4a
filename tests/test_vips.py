"""Issue 11: callers served first, from a table managed with `switchboard vip` -- kept
in PostgreSQL, followed live by a running app, winning over the configuration's
`vip:` list.

`switchboard run` is a real process against the Asterisk simulator and a real
PostgreSQL; `switchboard vip` and `switchboard config import` are run as a user
would.  Who is served first is read from the simulator's bridges.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.clock import Clock
from switchboard.storage.vips import VipList
from tests.test_agent_states_run import cli, switchboard_run
from tests.test_ari_restarts import APP, PASSWORD, ROOT, USER

CALLED = "74951234567"
CONFIG = """
timezone: Europe/Moscow
numbering: {{country_code: "7", city_code: "495", national_prefix: "8"}}
employees:
  - {{id: ivanov, name: Ivan Ivanov, extension: "201"}}
departments:
  - {{id: sales, strategy: all_at_once, ring_timeout: 20, members: [ivanov]}}
numbers: [{{number: "{called}", scenario: main}}]
vip: {{"79035550003": 3}}
database: {{spill_dir: "{spill}"}}
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: sales, announce_every: 0, max_wait: 120, overflow: bye}}
      bye: {{type: hangup}}
"""


async def cli_fails(db: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", *args,
        cwd=ROOT, env={**os.environ, "SWITCHBOARD_DSN": db},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.asyncio
async def test_the_cli_keeps_the_list_and_a_running_listener_follows_it(
    db: str, tmp_path: Path
) -> None:
    conf = tmp_path / "company.yaml"
    conf.write_text(CONFIG.format(called=CALLED, spill=tmp_path / "spill"))
    await cli(db, "config", "import", str(conf))
    vips: dict[str, int] = {}
    following = VipList(vips)
    await following.start(db)
    try:
        # numbers as people write them, normalised by the configuration's numbering plan
        said = await cli(db, "vip", "add", "8 (916) 555-00-01", "10", "--note", "director")
        assert said.strip() == "79165550001: priority 10"
        async with asyncio.timeout(10):
            await following.wait_until(lambda f: f.vips == {"79165550001": 10})
        await cli(db, "vip", "add", "+7 916 555-00-01", "20")  # a change, not a second row
        await cli(db, "vip", "add", "79035550002", "-5", "--note", "<b>late payer</b>")
        async with asyncio.timeout(10):
            await following.wait_until(lambda f: f.vips == {"79165550001": 20, "79035550002": -5})
        listed = json.loads(await cli(db, "vip", "list", "--json"))["vips"]
        assert [(v["caller"], v["priority"], v["note"]) for v in listed] == [
            ("79165550001", 20, ""),
            ("79035550002", -5, "<b>late payer</b>"),
        ]
        assert "taken off" in await cli(db, "vip", "remove", "89165550001")
        async with asyncio.timeout(10):
            await following.wait_until(lambda f: f.vips == {"79035550002": -5})
        assert "nothing to do" in await cli(db, "vip", "remove", "79165550001")
    finally:
        await following.stop()
    code, out = await cli_fails(db, "vip", "add", "79165550001", "5000")
    assert (code, out.strip()) == (2, "switchboard vip add: priority 5000: use -1000..1000")
    code, out = await cli_fails(db, "vip", "add", "anonymous", "5")
    assert (code, out.strip()) == (2, "switchboard vip add: 'anonymous' is not a phone number")


@pytest.mark.asyncio
async def test_a_caller_added_while_the_app_runs_is_served_before_earlier_callers(
    db: str, tmp_path: Path
) -> None:
    """Ivan talks to a first caller; a second caller, then a third wait.  The third was
    added to the list (priority 5) while `switchboard run` ran: when Ivan frees up, he
    is offered the third caller.  The database's entry for a number on the
    configuration's `vip:` too wins: 79035550003 is 3 there, -1 in the table."""
    conf = tmp_path / "company.yaml"
    conf.write_text(CONFIG.format(called=CALLED, spill=tmp_path / "spill"))
    await cli(db, "config", "import", str(conf))
    async with AsteriskSimulator(clock=Clock(), user=USER, password=PASSWORD) as sim:
        sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=0.3))
        async with switchboard_run(sim, db, conf, "first") as (app, log):
            await log.wait_for('"vip list read"')
            await cli(db, "vip", "add", "79035550004", "5")
            await cli(db, "vip", "add", "79035550003", "-1")
            await log.wait_for('"vip list read"', count=3)
            first = await sim.place_call("79035550001", CALLED, app=APP)
            await sim.wait_for(
                lambda s: any(len(b.channel_ids) == 2 for b in s.live_bridges()),
                what="the first conversation",
            )
            callers = {}
            for n, number in enumerate(("79035550003", "79035550002", "79035550004"), 2):
                callers[number] = await sim.place_call(number, CALLED, app=APP)
                await log.wait_for('"call started"', count=n)
            served: list[str] = []
            await sim.hangup(first)
            for _ in callers:
                await sim.wait_for(
                    lambda s: any(
                        len(b.channel_ids) == 2 and not set(b.channel_ids) & set(served)
                        for b in s.live_bridges()
                    ),
                    what="the next conversation",
                )
                bridge = next(
                    b
                    for b in sim.live_bridges()
                    if len(b.channel_ids) == 2 and not set(b.channel_ids) & set(served)
                )
                [talking] = [n for n, c in callers.items() if c in bridge.channel_ids]
                served.append(callers[talking])
                await sim.hangup(callers[talking])
            order = [next(n for n, c in callers.items() if c == cid) for cid in served]
            app.send_signal(signal.SIGTERM)
            assert await app.wait() == 0
    # the table's 5 first; then the table's -1 for 0003 puts it behind 0002's 0
    assert order == ["79035550004", "79035550002", "79035550003"]
