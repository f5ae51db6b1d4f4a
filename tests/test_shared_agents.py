"""Issue 14: two `switchboard run` instances, each next to its own Asterisk (a simulator
each), one PostgreSQL, one set of agents (``database.shared_agents``).

Forty callers arrive on both sides in a known order and wait; then three agents log in,
one after the other, and serve them.  Read from both simulators: no agent ever has two
legs at once; the callers are served in the order they arrived, across both instances;
every call has one record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from asterisk_sim import AsteriskSimulator, EndpointScript
from switchboard.clock import Clock
from switchboard.storage.agents import KeptAgentState, request_agent_change
from tests.postgres import Server
from tests.test_agent_states_run import Log, switchboard_run
from tests.test_ari_restarts import APP, PASSWORD, USER
from tests.test_storage_records import OUTAGE_SECONDS

CALLED = "74951234567"
AGENTS = {"ivanov": "201", "petrov": "202", "sidorova": "203"}
CALLERS = 40
TALK = 1.2  # seconds each conversation lasts
COUNT = {  # what the instances share
    table: f"SELECT count(*) FROM {table}"  # noqa: S608 - the table names above
    for table in ("acd_instances", "acd_reservations", "acd_waiting")
}
# what every configuration here ends with: one number, a queue, shared agents
QUEUE = """
numbers: [{number: "CALLED", scenario: main}]
database: {spill_dir: "SPILL", shared_agents: true, lease: LEASE}
scenarios:
  main:
    start: wait
    nodes:
      wait: {type: queue, department: sales, announce_every: 0, max_wait: 600, overflow: bye}
      bye: {type: hangup}
"""
CONFIG = (
    """
timezone: Europe/Moscow
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
  - {id: petrov, name: Pyotr Petrov, extension: "202"}
  - {id: sidorova, name: Anna Sidorova, extension: "203"}
departments:
  - {id: sales, strategy: least_recent, ring_timeout: 20,
     members: [ivanov, petrov, sidorova]}
"""
    + QUEUE
)


def company_file(folder: Path, template: str, lease: float = 15.0) -> Path:
    """The configuration both instances read, from ``template`` (its CALLED, SPILL and
    LEASE filled in)."""
    conf = folder / "company.yaml"
    text = template.replace("CALLED", CALLED).replace("SPILL", str(folder / "spill"))
    conf.write_text(text.replace("LEASE", str(lease)))
    return conf


@contextlib.asynccontextmanager
async def east_and_west(
    clock: Clock,
) -> AsyncIterator[tuple[AsteriskSimulator, AsteriskSimulator]]:
    """Two Asterisks (simulators) on one clock, so that their times compare."""
    async with (
        AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as east,
        AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as west,
    ):
        yield east, west


async def first_of(*waits: Coroutine[Any, Any, None]) -> None:
    """Until the first of ``waits`` is done (its error raised); the others cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def kept_logs(folder: Path, **logs: Log) -> AsyncIterator[None]:
    """Each instance's log lines, written to ``folder`` when the block ends (to read
    when a test fails: pytest names the folder)."""
    try:
        yield
    finally:
        for name, log in logs.items():
            (folder / f"{name}.log").write_text("".join(log.lines))


def agent_legs(
    sim: AsteriskSimulator, agents: dict[str, str] = AGENTS
) -> dict[str, list[tuple[float, float]]]:
    """Each agent's legs on this Asterisk: (created, destroyed) on the shared clock (each
    simulator's times count from its own start)."""
    legs: dict[str, list[tuple[float, float]]] = {agent: [] for agent in agents}
    zero = sim.pbx.clock_zero
    for channel in sim.pbx.channels.values():
        for agent, extension in agents.items():
            if channel.created_by_ari and channel.endpoint == f"PJSIP/{extension}":
                assert channel.destroyed_at is not None
                legs[agent].append((zero + channel.created_at, zero + channel.destroyed_at))
    return legs


@pytest.mark.asyncio
async def test_two_instances_never_ring_one_agent_twice_and_serve_callers_in_arrival_order(
    db: str, tmp_path: Path
) -> None:
    conf = company_file(tmp_path, CONFIG)
    for agent in AGENTS:  # they log in once every caller waits
        await change(db, agent, "logged_out")
    clock = Clock()  # one clock for both: their times compare
    async with east_and_west(clock) as (east, west):
        for sim in (east, west):
            for extension in AGENTS.values():
                sim.script_endpoint(
                    f"PJSIP/{extension}", EndpointScript("answer", after=0.2, hangup_after=TALK)
                )
        async with (
            switchboard_run(east, db, conf, "east") as (east_run, east_log),
            switchboard_run(west, db, conf, "west") as (west_run, west_log),
            kept_logs(tmp_path, east=east_log, west=west_log),
        ):
            for n in range(CALLERS):
                sim = east if n % 2 == 0 else west
                caller = await sim.place_call(f"7903555{n:04}", CALLED, app=APP)
                # the next caller comes once this one is answered (it waits in the queue)
                await sim.wait_for(lambda s, c=caller: s.channels[c].state == "Up", timeout=10)
            for agent, extension in AGENTS.items():
                # one by one, each once the one before talks: their conversations end at
                # different moments, and each freed agent goes to the first caller waiting
                await change(db, agent, "available")  # as `switchboard agents login` does
                await either(east, west, lambda s, e=extension: talking(s, e), "talking")
            for sim in (east, west):
                await sim.wait_for(lambda s: not s.live_channels(), timeout=120, what="all over")
            for run in (east_run, west_run):  # a clean stop: the last records written
                run.send_signal(signal.SIGTERM)
            for run in (east_run, west_run):
                assert await asyncio.wait_for(run.wait(), 30) == 0

    # never two legs to one agent at the same time, across both Asterisks
    for agent in AGENTS:
        legs = sorted(agent_legs(east)[agent] + agent_legs(west)[agent])
        assert legs, agent
        for (_, ended), (started, _) in itertools.pairwise(legs):
            assert started >= ended, f"{agent} rung twice at once: {legs}"

    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            """SELECT call_id, caller, instance, result, agent, started_at,
                      started_at + make_interval(secs => wait_s) AS answered
               FROM calls ORDER BY started_at"""
        )
        left = [await conn.fetchval(COUNT[table]) for table in COUNT]
    finally:
        await conn.close()
    assert len(rows) == CALLERS == len({r["call_id"] for r in rows})  # one record each
    assert {r["instance"] for r in rows} == {"east", "west"}
    assert all((r["result"], r["agent"] in AGENTS) == ("connected", True) for r in rows)
    arrived = [r["caller"] for r in rows]
    served = [r["caller"] for r in sorted(rows, key=lambda r: r["answered"])]
    assert served == arrived
    assert left == [0, 0, 0]  # both stopped cleanly: nothing of theirs stays shared


async def change(db: str, agent: str, state: KeptAgentState) -> None:
    """An agent's state changed from outside (stored, and told to every instance)."""
    conn = await asyncpg.connect(db)
    try:
        await request_agent_change(conn, agent, state)
    finally:
        await conn.close()


def talking(sim: AsteriskSimulator, extension: str) -> bool:
    """Is the agent at ``extension`` in a conversation on this Asterisk?"""
    return any(
        sim.pbx.channels[c].endpoint == f"PJSIP/{extension}"
        for bridge in sim.live_bridges()
        for c in bridge.channel_ids
    )


async def either(
    east: AsteriskSimulator,
    west: AsteriskSimulator,
    predicate: Callable[[AsteriskSimulator], bool],
    what: str,
) -> None:
    """Until ``predicate`` holds on one of the two simulators."""
    waits = [
        asyncio.create_task(s.wait_for(predicate, timeout=30, what=what)) for s in (east, west)
    ]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await next(iter(done))


ONE_AGENT = (
    """
timezone: Europe/Moscow
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
departments:
  - {id: sales, ring_timeout: 20, members: [ivanov]}
"""
    + QUEUE
)


def agent_leg(sim: AsteriskSimulator, extension: str) -> list[float]:
    """When each leg to the agent at ``extension`` was created, on the shared clock."""
    return [
        sim.pbx.clock_zero + c.created_at
        for c in sim.pbx.channels.values()
        if c.created_by_ari and c.endpoint == f"PJSIP/{extension}"
    ]


@pytest.mark.asyncio
async def test_a_killed_instances_agent_and_callers_are_released_within_the_lease(
    db: str, tmp_path: Path
) -> None:
    """East's caller talks to the only agent and another east caller waits, ahead of
    west's; east is killed (-9).  West rings the agent within the lease of the kill,
    and not before: east's reservation held them, and its waiting caller came first."""
    lease = 2.0
    conf = company_file(tmp_path, ONE_AGENT, lease=lease)
    clock = Clock()
    async with east_and_west(clock) as (east, west):
        for sim in (east, west):  # a long conversation: east dies in the middle of it
            sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=0.2, hangup_after=600))
        async with (
            switchboard_run(east, db, conf, "east") as (east_run, east_log),
            switchboard_run(west, db, conf, "west") as (_west_run, west_log),
            kept_logs(tmp_path, east=east_log, west=west_log),
        ):
            await east.place_call("79035550001", CALLED, app=APP)
            await east.wait_for(lambda s: talking(s, "201"), timeout=10, what="talking")
            for sim, caller in ((east, "79035550002"), (west, "79035550003")):
                channel = await sim.place_call(caller, CALLED, app=APP)
                await sim.wait_for(lambda s, c=channel: s.channels[c].state == "Up", timeout=10)
            # the west caller is in the queue, its place shared (written in the
            # background as it joined): west has nobody to ring
            assert agent_leg(west, "201") == []
            east_run.kill()
            killed = clock.now()
            await east_run.wait()
            await west.wait_for(lambda s: bool(agent_leg(s, "201")), timeout=lease + 10)
            (rung,) = agent_leg(west, "201")
            print(f"offered {rung - killed:.3f} s after the kill")
            assert killed < rung <= killed + lease + 0.5, (rung - killed, lease)
            await west.wait_for(lambda s: talking(s, "201"), timeout=10, what="west talking")


TWO_AGENTS = (
    """
timezone: Europe/Moscow
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201"}
  - {id: petrov, name: Pyotr Petrov, extension: "202"}
departments:
  - {id: sales, strategy: all_at_once, ring_timeout: 20, members: [ivanov, petrov]}
"""
    + QUEUE
)


@pytest.mark.asyncio
async def test_through_a_database_outage_both_instances_serve_and_nothing_is_offered_twice(
    own_server: Server, tmp_path: Path
) -> None:
    """East's caller talks to ivanov, west's to petrov; PostgreSQL stops.  Callers keep
    coming on both sides and are answered and queued; each instance serves its own with
    the agent it held, never the other's.  PostgreSQL starts again: more callers, and the
    agents go where they are free.  No agent ever has two legs at once, across both
    Asterisks; every call has exactly one record."""
    lease, talk = 2.0, 3.0
    outage = max(OUTAGE_SECONDS, 3 * lease)  # every lease runs out meanwhile
    db = own_server.dsn
    conf = company_file(tmp_path, TWO_AGENTS, lease=lease)
    clock = Clock()
    placed = 0

    async def call(sim: AsteriskSimulator) -> str:
        nonlocal placed
        placed += 1
        channel = await sim.place_call(f"7903555{placed:04}", CALLED, app=APP)
        await sim.wait_for(lambda s: s.channels[channel].state == "Up", timeout=10, what="answered")
        return channel

    async with east_and_west(clock) as (east, west):
        for sim in (east, west):
            for extension in ("201", "202"):
                sim.script_endpoint(
                    f"PJSIP/{extension}", EndpointScript("answer", after=0.2, hangup_after=talk)
                )
        async with (
            switchboard_run(east, db, conf, "east") as (east_run, east_log),
            switchboard_run(west, db, conf, "west") as (west_run, west_log),
            kept_logs(tmp_path, east=east_log, west=west_log),
        ):
            await call(east)
            await east.wait_for(lambda s: bridged(s) == 1, timeout=10, what="east talking")
            await call(west)
            await west.wait_for(lambda s: bridged(s) == 1, timeout=10, what="west talking")
            east_agent = "201" if talking(east, "201") else "202"
            west_agent = "202" if east_agent == "201" else "201"

            await own_server.stop()
            stopped = clock.now()
            for sim in (east, west, east, west):  # answered and queued without the database
                await call(sim)
            # each serves its next caller with the agent it held, once their talk ends
            for sim, extension in ((east, east_agent), (west, west_agent)):
                await sim.wait_for(
                    lambda s, e=extension: len(agent_leg(s, e)) == 2, timeout=talk + 10
                )
                assert agent_leg(sim, extension)[1] < stopped + outage
            await asyncio.sleep(max(0.0, stopped + outage - clock.now()))  # the outage itself
            await own_server.start()

            for sim in (east, west, east, west):
                await call(sim)
            for sim in (east, west):
                await sim.wait_for(lambda s: not s.live_channels(), timeout=120, what="all over")
            for run in (east_run, west_run):
                run.send_signal(signal.SIGTERM)
            for run in (east_run, west_run):
                assert await asyncio.wait_for(run.wait(), 30) == 0

    # each instance rang, during the outage, only the agent it held
    assert all(
        rung < stopped or rung > stopped + outage
        for sim, other in ((east, west_agent), (west, east_agent))
        for rung in agent_leg(sim, other)
    )
    # never two legs to one agent at the same time, across both Asterisks
    for agent, extension in (("ivanov", "201"), ("petrov", "202")):
        legs = sorted(
            agent_legs(east, {agent: extension})[agent]
            + agent_legs(west, {agent: extension})[agent]
        )
        for (_, ended), (started, _) in itertools.pairwise(legs):
            assert started >= ended, f"{agent} rung twice at once: {legs}"
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch("SELECT call_id, result FROM calls")
    finally:
        await conn.close()
    assert len(rows) == placed == len({r["call_id"] for r in rows})  # exactly once each
    assert {r["result"] for r in rows} == {"connected"}


def bridged(sim: AsteriskSimulator) -> int:
    """Conversations on this Asterisk now."""
    return sum(1 for b in sim.live_bridges() if len(b.channel_ids) == 2)


HOMED = """
timezone: Europe/Moscow
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "201", asterisk: east}
departments:
  - {id: sales, ring_timeout: 20, members: [ivanov]}
""" + QUEUE.replace("announce_every: 0", "announce_every: 1")


def subscribed(sim: AsteriskSimulator, source: str) -> bool:
    """Did the app subscribe to ``source`` (``deviceState:PJSIP/201``)?"""
    return any(
        r.method == "POST"
        and r.path.endswith("/subscription")
        and source in str(r.query.get("eventSource", ""))
        for r in sim.requests
    )


@pytest.mark.asyncio
async def test_a_phone_on_one_asterisk_is_rung_through_the_trunk_and_its_state_counts_on_both(
    db: str, tmp_path: Path
) -> None:
    """ivanov's desk phone is on east's Asterisk (``asterisk: east``).  East follows its
    device state; west rings it through the trunk to east (``PJSIP/201@east``) and,
    told the state by east, does not ring it while it is busy with a call of its own."""
    conf = company_file(tmp_path, HOMED)
    clock = Clock()
    async with east_and_west(clock) as (east, west):
        west.script_endpoint("PJSIP/201@east", EndpointScript("answer", after=0.2, hangup_after=1))
        async with (
            switchboard_run(east, db, conf, "east") as (_east_run, east_log),
            switchboard_run(west, db, conf, "west") as (_west_run, west_log),
            kept_logs(tmp_path, east=east_log, west=west_log),
        ):
            own = await east.call_from("PJSIP/201", "74957654321")  # a call of ivanov's own
            assert east.device_state("PJSIP/201") == "INUSE"
            await until_told(db, "ivanov", "in_use")
            caller = await west.place_call("79035550001", CALLED, app=APP)
            # the first announcement comes after the step that joined the queue, and any
            # ring of that step, were carried out (one call's steps run one at a time)
            await west.wait_for(lambda s: announced(s, caller), timeout=10, what="announced")
            assert not any(c.created_by_ari for c in west.pbx.channels.values())
            await east.hangup(own)
            hung_up = clock.now()
            await west.wait_for(lambda s: talking(s, "201@east"), timeout=10, what="talking")
            (leg,) = [c for c in west.pbx.channels.values() if c.created_by_ari]
            assert leg.endpoint == "PJSIP/201@east"
            assert west.pbx.clock_zero + leg.created_at > hung_up
    assert subscribed(east, "deviceState:PJSIP/201")
    assert not subscribed(west, "deviceState:PJSIP/201")  # not a device of west's Asterisk


def announced(sim: AsteriskSimulator, channel: str) -> bool:
    return any(p.target_id == channel for p in sim.playbacks.values())


async def until_told(db: str, agent: str, state: str) -> None:
    """Until the instance next to the phone has told its state to the others (the
    database keeps what it told: LISTEN for the notification, then look)."""
    conn = await asyncpg.connect(db)
    heard = asyncio.Event()
    try:
        await conn.add_listener("switchboard_acd", lambda *args: heard.set())
        async with asyncio.timeout(10):
            while (
                await conn.fetchval("SELECT state FROM acd_devices WHERE agent = $1", agent)
                != state
            ):
                heard.clear()
                await heard.wait()
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_a_conversation_adopted_after_a_restart_keeps_its_agent_held_across_instances(
    db: str, tmp_path: Path
) -> None:
    """East is killed while ivanov talks to its caller, and started again at once under
    the same name: it adopts the conversation Asterisk kept, and ivanov stays held for
    it past the lease (west's caller waits); once the conversation ends west rings him."""
    lease = 1.0
    conf = company_file(tmp_path, ONE_AGENT, lease=lease)
    clock = Clock()
    async with east_and_west(clock) as (east, west):
        for sim in (east, west):
            sim.script_endpoint("PJSIP/201", EndpointScript("answer", after=0.2, hangup_after=600))
        async with switchboard_run(west, db, conf, "west") as (_west_run, west_log):
            async with switchboard_run(east, db, conf, "east") as (first, first_log):
                caller = await east.place_call("79035550001", CALLED, app=APP)
                # talking: the conversation's state left on the caller's channel, to adopt
                await east.wait_for(
                    lambda s: "SWITCHBOARD_CALL" in s.channels[caller].variables,
                    timeout=10,
                    what="the state left",
                )
                first.kill()
                await first.wait()
            async with (
                switchboard_run(east, db, conf, "east") as (_again, again_log),
                kept_logs(tmp_path, first=first_log, again=again_log, west=west_log),
            ):
                await again_log.wait_for('"conversation adopted"')
                waiting = await west.place_call("79035550002", CALLED, app=APP)
                await west.wait_for(lambda s: s.channels[waiting].state == "Up", timeout=10)
                # past the lease: the new run freed the earlier run's other agents, or --
                # when it started later than a lease after the kill -- west had already
                # reaped the earlier run (then the adoption alone holds ivanov again)
                await first_of(
                    again_log.wait_for("agents not adopted are free", within=lease + 10),
                    west_log.wait_for("instances gone", within=lease + 10),
                )
                conn = await asyncpg.connect(db)
                try:
                    held = await conn.fetch("SELECT agent, instance FROM acd_reservations")
                finally:
                    await conn.close()
                assert [tuple(r) for r in held] == [("ivanov", "east")]
                assert agent_leg(west, "201") == []
                await east.hangup(caller)
                ended = clock.now()
                await west.wait_for(lambda s: talking(s, "201"), timeout=10, what="west talks")
                (rung,) = agent_leg(west, "201")
                assert rung > ended
