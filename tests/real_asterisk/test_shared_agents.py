"""Two Switchboard instances share one agent on a real Asterisk 22 (issue 14).

Both `switchboard run` processes talk to the same Asterisk under two Stasis apps
(``switchboard-test`` and ``switchboard-test-2``; the suite's dialplan sends callers
into either), on one PostgreSQL, with ``database.shared_agents``.  Callers arrive on
both sides in a known order; the one agent serves them all.  Read from Asterisk's own
events: the agent's phone never has two channels at once; read from the records: the
callers were served in the order they arrived, each recorded once.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.real_asterisk.harness import APP, APP_2, CALLERS, CALLERS_2, PHONES, RealAsterisk
from tests.real_asterisk.test_restarts import switchboard_run, until_logged

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
NUMBER = "74951234568"
CALLERS_EACH = 3

CONFIG = f"""
timezone: Europe/Moscow
employees: [{{id: e107, name: E107, extension: "107"}}]
departments: [{{id: desk, ring_timeout: 20, members: [e107]}}]
numbers: [{{number: "{NUMBER}", scenario: main}}]
asterisk:
  app: {APP}
  endpoints: {{employee: "Local/{{extension}}@{PHONES}/n", mobile: "Local/{{number}}@{PHONES}/n"}}
database: {{spill_dir: "{{spill}}", shared_agents: true}}
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 0, max_wait: 600, overflow: bye}}
      bye: {{type: hangup}}
"""


def phone_channels_at_once(pbx: RealAsterisk, extension: str) -> int:
    """The most channels the phone ``extension`` had at one moment, by Asterisk's events
    (one websocket: in the order they happened)."""
    prefix = f"Local/{extension}@{PHONES}-"
    live: set[str] = set()
    most = 0
    for event in pbx.events:
        name = event.get("channel", {}).get("name", "")
        if not (name.startswith(prefix) and name.endswith(";1")):
            continue
        if event["type"] == "ChannelCreated":
            live.add(name)
        elif event["type"] == "ChannelDestroyed":
            live.discard(name)
        most = max(most, len(live))
    return most


async def test_two_instances_on_one_asterisk_share_the_agent_and_keep_the_callers_order(
    pbx: RealAsterisk, db: str, tmp_path: Path
) -> None:
    conf = tmp_path / "company.yaml"
    conf.write_text(CONFIG.replace("{spill}", str(tmp_path / "spill")))
    await pbx.phone("107", "answer:1:2")
    east_log, west_log = tmp_path / "east.log", tmp_path / "west.log"
    async with (
        switchboard_run(conf, db, east_log, "east", APP) as east,
        switchboard_run(conf, db, west_log, "west", APP_2) as west,
    ):
        calls = []
        for n in range(2 * CALLERS_EACH):
            context = CALLERS if n % 2 == 0 else CALLERS_2
            call = await pbx.call(NUMBER, f"790355501{n:02}", context=context)
            await call.answered()  # in the queue before the next caller comes
            calls.append(call)
        for log in (east_log, west_log):
            await until_logged(log, '"event":"call finished"', CALLERS_EACH, within=120)
        for process in (east, west):
            process.terminate()
            assert await process.wait() == 0
    assert phone_channels_at_once(pbx, "107") == 1

    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            """SELECT caller, instance, result, agent,
                      started_at + make_interval(secs => wait_s) AS answered
               FROM calls ORDER BY started_at"""
        )
        left = await conn.fetchval("SELECT count(*) FROM acd_reservations")
    finally:
        await conn.close()
    assert len(rows) == 2 * CALLERS_EACH
    assert [r["instance"] for r in rows] == ["east", "west"] * CALLERS_EACH
    assert {(r["result"], r["agent"]) for r in rows} == {("connected", "e107")}
    served = [r["caller"] for r in sorted(rows, key=lambda r: r["answered"])]
    assert served == [r["caller"] for r in rows]
    assert left == 0
