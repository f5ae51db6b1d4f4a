"""Issue 14: the shared agents' store on a real PostgreSQL -- reservations no two calls
get at once, one order of waiting callers across instances, leases that free what a
dead instance held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from switchboard.acd import Acd
from switchboard.config.load import load_text
from switchboard.storage.shared_acd import CHANNEL, SharedAgents

WAIT = 10.0  # real seconds a test waits for a notification before it fails
COMPANY = load_text(
    """
employees: [{id: ivanov, name: I, extension: "201"}]
departments: [{id: sales, members: [ivanov]}]
numbers: [{number: "74951234567", scenario: main}]
scenarios: {main: {start: bye, nodes: {bye: {type: hangup}}}}
""",
    "company.yaml",
).raise_for_errors()


@asynccontextmanager
async def pool_on(dsn: str, size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def listening(dsn: str, heard: asyncio.Queue[str]) -> AsyncIterator[None]:
    """What every instance hears on ``switchboard_acd``, on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[3]))
        yield
    finally:
        await conn.close()


async def instances(pool: asyncpg.Pool, *names: str) -> list[SharedAgents]:
    shared = [SharedAgents(name, lease=30.0) for name in names]
    async with pool.acquire() as conn:
        for one in shared:
            await one.renew(conn)
    return shared


async def expire(pool: asyncpg.Pool, instance: str) -> None:
    """Its lease runs out: what a kill -9 leads to once the lease has passed."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE acd_instances SET lease_until = now() - interval '1 second' "
            "WHERE instance = $1",
            instance,
        )


@pytest.mark.asyncio
async def test_of_two_instances_offering_one_agent_at_once_exactly_one_gets_them(
    db: str,
) -> None:
    """Within an instance its ACD in memory has decided already (one call claims an
    agent there); across instances the row decides."""
    async with pool_on(db) as pool:
        a, b = await instances(pool, "office1", "office2")

        async def offer(shared: SharedAgents, n: int) -> str | None:
            async with pool.acquire() as conn:
                got = await shared.reserve(
                    conn, "ivanov", f"{shared.instance}-call-{n}", departments=["sales"]
                )
            return shared.instance if got else None

        for _ in range(10):  # rounds: each starts with the agent free
            won = await asyncio.gather(*(offer(s, n) for n in range(4) for s in (a, b)))
            winners = {w for w in won if w is not None}
            assert len(winners) == 1, won
            async with pool.acquire() as conn:
                [held] = await a.reservations(conn)
                assert held.instance in winners
                owner = a if held.instance == a.instance else b
                assert await owner.release(conn, "ivanov", held.call_id)
                assert await a.reservations(conn) == []


@pytest.mark.asyncio
async def test_the_same_call_may_ask_again_and_another_call_waits_for_the_release(
    db: str,
) -> None:
    async with pool_on(db, 2) as pool, pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        assert await a.reserve(conn, "ivanov", "c1", departments=["sales"])
        assert await a.reserve(conn, "ivanov", "c1", departments=["sales"])  # again: still c1
        assert not await b.reserve(conn, "ivanov", "c3", departments=["sales"])
        assert not await b.release(conn, "ivanov", "c1")  # not b's to free
        # office1's ACD let c1's offer go and gave ivanov to c2: c1's release, written
        # late, frees nothing of c2's
        assert await a.reserve(conn, "ivanov", "c2", departments=["sales"])
        assert not await a.release(conn, "ivanov", "c1")
        assert not await b.reserve(conn, "ivanov", "c3", departments=["sales"])
        assert await a.release(conn, "ivanov", "c2")
        assert await b.reserve(conn, "ivanov", "c3", departments=["sales"])


@pytest.mark.asyncio
async def test_a_caller_waiting_longer_on_the_other_instance_comes_first(db: str) -> None:
    async with pool_on(db, 2) as pool, pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        early = await a.wait(conn, "early", "sales")
        late_arrival = await b.wait(conn, "late", "sales")
        # office2's later caller is refused the agent; office1's earlier one gets them
        assert not await b.reserve(
            conn, "ivanov", "late", departments=["sales"], arrived_at=late_arrival
        )
        assert await a.reserve(conn, "ivanov", "early", departments=["sales"], arrived_at=early)
        await a.leave(conn, "early")
        await a.release(conn, "ivanov", "early")
        assert await b.reserve(
            conn, "ivanov", "late", departments=["sales"], arrived_at=late_arrival
        )


@pytest.mark.asyncio
async def test_priority_comes_before_arrival_and_skills_and_departments_narrow_who_is_ahead(
    db: str,
) -> None:
    async with pool_on(db, 2) as pool, pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        await a.wait(conn, "early", "sales", priority=0)
        vip = await b.wait(conn, "vip", "sales", priority=5)
        assert await b.reserve(
            conn, "ivanov", "vip", departments=["sales"], priority=5, arrived_at=vip
        )
        await b.release(conn, "ivanov", "vip")
        await b.leave(conn, "vip")
        await a.leave(conn, "early")
        # a caller ahead who needs English does not hold back an agent without it
        await a.wait(conn, "english", "sales", skills=["en"])
        later = await b.wait(conn, "later", "sales")
        assert await b.reserve(
            conn, "ivanov", "later", departments=["sales"], arrived_at=later, skills=["fr"]
        )
        await b.release(conn, "ivanov", "later")
        # nor does one waiting in a department the agent does not serve
        assert await b.reserve(
            conn, "petrov", "later", departments=["support"], arrived_at=later, skills=["en"]
        )
        # the agent with English is held back for the caller ahead
        assert not await b.reserve(
            conn, "sidorova", "later", departments=["sales"], arrived_at=later, skills=["en"]
        )


@pytest.mark.asyncio
async def test_a_dead_instances_agents_and_callers_are_released_after_its_lease(
    db: str,
) -> None:
    freed: asyncio.Queue[str] = asyncio.Queue()
    async with pool_on(db, 3) as pool, listening(db, freed), pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        assert await a.reserve(conn, "ivanov", "c1", departments=["sales"])
        await a.wait(conn, "early", "sales")
        later = await b.wait(conn, "late", "sales")
        assert not await b.reserve(conn, "ivanov", "late", departments=["sales"], arrived_at=later)

        await expire(pool, "office1")  # office1 was killed; its lease has run out
        # until it is reaped it counts (after a database outage every lease has run out,
        # and an instance gets its chance to renew before the others take its agents)
        assert not await b.reserve(conn, "ivanov", "late", departments=["sales"], arrived_at=later)
        assert await b.reap(conn) == ["ivanov"]
        async with asyncio.timeout(WAIT):
            assert await freed.get() == "free ivanov"
        assert await b.reserve(conn, "ivanov", "late", departments=["sales"], arrived_at=later)
        assert [r.instance for r in await b.reservations(conn)] == ["office2"]
        assert await conn.fetchval("SELECT count(*) FROM acd_waiting") == 1  # office2's own

        # another dead instance's held agent is freed and told by the reaper
        c = (await instances(pool, "office3"))[0]
        assert await c.reserve(conn, "petrov", "c9", departments=["support"])
        await expire(pool, "office3")
        assert await b.reap(conn) == ["petrov"]
        async with asyncio.timeout(WAIT):
            assert await freed.get() == "free petrov"


@pytest.mark.asyncio
async def test_a_clean_stop_frees_what_the_instance_held(db: str) -> None:
    freed: asyncio.Queue[str] = asyncio.Queue()
    async with pool_on(db, 2) as pool, listening(db, freed), pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        assert await a.reserve(conn, "ivanov", "c1", departments=["sales"])
        await a.wait(conn, "w1", "sales")
        await a.leave_all(conn)
        async with asyncio.timeout(WAIT):
            assert await freed.get() == "free ivanov"
        assert await b.reserve(conn, "ivanov", "c2", departments=["sales"])
        assert await conn.fetchval("SELECT count(*) FROM acd_waiting") == 0
        assert await conn.fetchval("SELECT count(*) FROM acd_instances") == 1


def test_an_instance_needs_a_name_and_a_positive_lease() -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_INSTANCE"):
        SharedAgents("")
    with pytest.raises(ValueError, match="positive"):
        SharedAgents("office1", lease=0)


@pytest.mark.asyncio
async def test_after_an_absence_an_instance_writes_its_rows_again_from_memory(db: str) -> None:
    """office1 lost the database: meanwhile its ACD gave ivanov to c2 and let petrov go,
    c1 stopped waiting and c3 began.  Back, its rows say so; petrov is told free; an
    agent office2 took meanwhile (it reaped office1) is named, not taken back."""
    freed: asyncio.Queue[str] = asyncio.Queue()
    async with pool_on(db, 2) as pool, listening(db, freed), pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        assert not await a.renew(conn)  # renewed: its row was there
        for agent, call in (("ivanov", "c1"), ("petrov", "c1"), ("sidorova", "c0")):
            assert await a.reserve(conn, agent, call, departments=["sales"])
        await a.wait(conn, "w1", "sales")
        await conn.execute("DELETE FROM acd_reservations WHERE agent = 'sidorova'")
        assert await b.reserve(conn, "sidorova", "b1", departments=["support"])  # b's now

        acd = Acd.for_company(COMPANY)
        acd.join("w3", "sales", 1_800_000_000.0, priority=2)
        taken = await a.restore(
            conn,
            {"ivanov": "c2", "sidorova": "c0"},
            [acd.waiting("w3")],  # type: ignore[list-item]
        )
        assert taken == ["sidorova"]
        async with asyncio.timeout(WAIT):
            assert await freed.get() == "free petrov"
        held = {(r.agent, r.instance, r.call_id) for r in await a.reservations(conn)}
        assert held == {("ivanov", "office1", "c2"), ("sidorova", "office2", "b1")}
        arrivals = await a.arrivals(conn)
        assert list(arrivals) == ["w3"]  # w1 gone; w3 with its arrival on this host's clock
        assert arrivals["w3"].timestamp() == 1_800_000_000.0
        assert await b.held_by_others(conn, ["ivanov", "petrov", "sidorova"]) == {"ivanov"}
        assert await a.held_by_others(conn, ["ivanov", "petrov", "sidorova"]) == {"sidorova"}


@pytest.mark.asyncio
async def test_an_instance_reaped_while_alive_learns_it_when_it_renews(db: str) -> None:
    async with pool_on(db, 2) as pool, pool.acquire() as conn:
        a, b = await instances(pool, "office1", "office2")
        left = await b.next_expiry(conn)
        assert left is not None  # office1's lease, as office2 sees it
        assert 29 < left <= 30
        await expire(pool, "office1")  # it stalled for longer than its lease
        await b.reap(conn)
        assert await a.renew(conn)  # its row was gone: it writes its rows again
        assert await a.next_expiry(conn) is not None
