"""What `switchboard run` (ARI) and `switchboard agi` (FastAGI) set up alike.

Once the configuration is loaded: the garbage collector tuned for many live
calls (`tune_gc`), and where call records go (`open_records`): PostgreSQL
when a database is configured, spilled to `database.spill_dir` while it is
away (a folder that cannot take the file stops the start: `check_spill_dir`);
otherwise memory only, lost at exit (a warning says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import structlog

from switchboard.acd import Acd, AgentChange
from switchboard.calls import CallSink, MemorySink
from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.driver import Desk
from switchboard.storage.agents import AgentCommands, apply_agent_command, record_agent_change
from switchboard.storage.call_recordings import PRUNE_EVERY, prune
from switchboard.storage.messages import recordings_dir
from switchboard.storage.shared_acd import FreedAgents, SharedAgents, SharedLink
from switchboard.storage.sink import PostgresSink, open_sink
from switchboard.storage.vips import VipList

log = structlog.get_logger("switchboard")
T = TypeVar("T")

# A call allocates many short-lived objects.  With the default (700, 10, 10), full
# collections over a thousand live calls paused every call for 100-200 ms; a
# 50,000 young generation paused 70-80 ms per collection.  Measured with
# bench/ari_load.py: p99 StasisStart -> first command 9.6-9.9 ms at 50 calls/s.
RUN_GC_THRESHOLDS = (5_000, 20, 1_000)

# glibc's malloc raises its mmap threshold each time a large block is freed (up to
# 32 MiB), so the buffers of a big JSON body -- Asterisk's channel list read after
# each reconnection -- end up on the heap, and the freed space is kept there.  Fixed
# thresholds hand such blocks back to the system: in bench/soak.py's 10-minute run
# RSS grew about half as much after warm-up with them.  mallopt(3): M_TRIM_THRESHOLD
# is -1, M_MMAP_THRESHOLD -3.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MALLOC_THRESHOLD = 128 * 1024
# Threads (the resolver aiohttp runs getaddrinfo in, `asyncio.to_thread`) each get a
# malloc arena of their own, whose freed space stays in RSS; the servers' work is on
# the event loop's thread, so two arenas are plenty (glibc's MALLOC_ARENA_MAX).
M_ARENA_MAX = -8
ARENAS = 2


def tune_gc() -> None:
    """Once the configuration is loaded: what lives as long as the process leaves
    every collection (a full one over it paused calls ~120 ms), and the
    thresholds above apply."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*RUN_GC_THRESHOLDS)
    fix_malloc_thresholds()


def fix_malloc_thresholds() -> bool:
    """Keep glibc from holding on to freed large blocks (see MALLOC_THRESHOLD); False
    where there is no glibc (musl, macOS) or it refuses, which changes nothing else."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (M_MMAP_THRESHOLD, MALLOC_THRESHOLD),
            (M_TRIM_THRESHOLD, MALLOC_THRESHOLD),
            (M_ARENA_MAX, ARENAS),
        )
    )


def run_serving(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived server (`run`, `agi`) on uvloop: measured on a real Asterisk
    with bench/real_asterisk_load.py, it takes about a tenth off the app's CPU per
    call.  ``SWITCHBOARD_UVLOOP=0`` keeps asyncio's own loop."""
    if os.environ.get("SWITCHBOARD_UVLOOP", "1") != "0":
        import uvloop  # noqa: PLC0415 - only the servers need it

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def database_dsn(company: Company, env: dict[str, str] | None = None) -> str | None:
    """`database.dsn` of the config, ``SWITCHBOARD_DSN`` winning; None: run without storage."""
    environ = os.environ if env is None else env
    configured = company.config.database.dsn
    return environ.get("SWITCHBOARD_DSN") or (
        configured.get_secret_value() if configured is not None else None
    )


class SpillDirUnusable(Exception):
    """`database.spill_dir` cannot take files: `run` and `agi` say so in one line, exit 2."""

    error_id = "config.spill_dir"


def check_spill_dir(company: Company) -> Path:
    """The folder records spill to, created if need be and shown to take a new file.

    Checked at start, before any call: found out at the first database outage,
    an unusable folder would lose the records it was meant to keep.  Raises
    `SpillDirUnusable` (a file where the folder should be, no permission, a
    read-only file system ...).
    """
    folder = Path(company.config.database.spill_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SpillDirUnusable(
            f"database.spill_dir {str(folder)!r} cannot take the call records' spill file: "
            f"{exc.strerror or exc}"
        ) from None
    return folder


@contextlib.asynccontextmanager
async def open_records(
    company: Company, instance: str
) -> AsyncIterator[tuple[CallSink, PostgresSink | None]]:
    """Where this instance's calls leave their records: (the sink, the PostgreSQL sink
    when there is a database, for what else needs its pool)."""
    dsn = database_dsn(company)
    if dsn is None:
        log.warning("no database configured: call records are kept in memory only")
        yield MemorySink(), None
        return
    spill = check_spill_dir(company) / f"records-{instance}.jsonl"
    async with await open_sink(dsn, spill, instance) as sink:
        yield sink, sink


@contextlib.asynccontextmanager
async def keep_agent_states(
    acd: Acd, clock: Clock, stored: PostgresSink | None, dsn: str | None, instance: str
) -> AsyncIterator[None]:
    """With a database: the agents' states as kept there before the first call
    (logged out and paused agents stay so across a restart), requests from
    ``switchboard agents`` applied as they come, and every change an agent makes
    here kept and recorded.  Without one: states live as long as the process."""
    if stored is None or dsn is None:
        yield
        return
    commands = AgentCommands(
        lambda agent, state, reason, by: apply_agent_command(
            acd, clock.now(), agent, state, reason, by
        )
    )
    try:
        kept = await commands.start(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("agent states not read: everyone starts available", error=str(exc))
        yield
        return
    acd.restore(kept)
    away = {agent: state for agent, (state, _) in kept.items() if state != "available"}
    log.info("agent states read", logged_out_or_paused=len(away))
    writes: set[asyncio.Task[None]] = set()

    async def write(change: AgentChange) -> None:
        try:
            async with stored.pool.acquire() as conn:
                await record_agent_change(conn, change, instance)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("agent change not recorded", agent=change.agent, error=str(exc))

    def changed(change: AgentChange) -> None:
        log.info(
            "agent state changed", agent=change.agent, state=change.state,
            reason=change.reason, by=change.by,
        )  # fmt: skip
        # the ACD's clock is the runtime's (monotonic); the record says when, in UTC
        task = asyncio.create_task(write(dataclasses.replace(change, at=time.time())))
        writes.add(task)
        task.add_done_callback(writes.discard)

    acd.on_change(changed)
    try:
        yield
    finally:
        await commands.stop()
        if writes:
            await asyncio.gather(*writes, return_exceptions=True)


@contextlib.asynccontextmanager
async def keep_vips(
    vips: dict[str, int], stored: PostgresSink | None, dsn: str | None
) -> AsyncIterator[None]:
    """With a database: ``vips`` kept equal to its ``vips`` table (`switchboard vip`), read
    before the first call and again at each change.  Without one, or when it cannot be
    read: only the configuration's `vip:` list counts (a warning says so)."""
    if stored is None or dsn is None:
        yield
        return
    following = VipList(vips)
    try:
        await following.start(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning("vip table not read: the configuration's vip list only", error=str(exc))
        yield
        return
    log.info("vip table read", vips=len(vips))
    try:
        yield
    finally:
        await following.stop()


@contextlib.asynccontextmanager
async def keep_pruning_recordings(
    company: Callable[[], Company], stored: PostgresSink | None
) -> AsyncIterator[None]:
    """With a database: conversation recordings older than `recording.keep_days` removed
    now and every hour (`switchboard.storage.call_recordings.prune`) -- by every instance,
    harmlessly: a file removed twice is "already gone"."""
    if stored is None:
        yield
        return
    pool = stored.pool

    async def pruning() -> None:
        while True:
            try:
                async with asyncio.timeout(PRUNE_EVERY / 2), pool.acquire() as conn:
                    done = await prune(conn, recordings_dir(), company().config.recording.keep_days)
                if done.removed or done.missing or done.failed:
                    log.info(
                        "recordings pruned",
                        removed=done.removed,
                        missing=done.missing,
                        failed=done.failed,
                    )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("recordings not pruned: tried again in an hour", error=str(exc))
            await asyncio.sleep(PRUNE_EVERY)

    task = asyncio.create_task(pruning(), name="switchboard-prune-recordings")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class FileConfig:
    """A configuration file `run` and `agi` serve, read again on SIGHUP (``systemctl
    reload``): new calls take the new version, calls up keep theirs.  A version that does
    not load is refused with its problems and the running one stays.  What is set up once
    at start (the ``asterisk:``, ``database:`` and ``admin:`` sections) needs a restart;
    a reload that changes them says so."""

    def __init__(self, path: str, company: Company) -> None:
        self.path = path
        self._company = company
        self.reloads = 0  # versions taken since the start

    def company(self) -> Company:
        """The current version (fit for the runtimes' ``company``)."""
        return self._company

    async def reload(self) -> bool:
        """Read the file again; True when its version is now the current one."""
        from switchboard.config.load import load_file  # noqa: PLC0415

        try:
            result = await asyncio.to_thread(load_file, self.path)
        except Exception:  # a loader crash must not end a running server
            log.exception("config reload failed: keeping the running one", path=self.path)
            return False
        if result.company is None:
            log.error(
                "config reload refused: keeping the running one",
                path=self.path,
                problems=[p.format(self.path) for p in result.errors],
            )
            return False
        before, after = self._company.config, result.company.config
        fixed = [
            name
            for name in ("asterisk", "database", "admin")
            if getattr(before, name) != getattr(after, name)
        ]
        if fixed:
            log.warning(
                "config reload: these sections are read at start only: restart to apply them",
                sections=fixed,
            )
        self._company = result.company
        self.reloads += 1
        log.info("config reloaded: new calls take it", path=self.path, reloads=self.reloads)
        return True


@contextlib.asynccontextmanager
async def keep_shared_agents(
    desk: Desk,
    company: Callable[[], Company],
    stored: PostgresSink | None,
    dsn: str | None,
    instance: str,
) -> AsyncIterator[SharedLink | None]:
    """With ``database.shared_agents``: this instance's queue offers reserve their agents
    in the database, its queued callers have their place there, its lease is renewed,
    and agents other instances free are offered here (`switchboard.storage.shared_acd`).
    Otherwise the agents are this instance's own."""
    database = company().config.database
    if stored is None or dsn is None or not database.shared_agents:
        yield None
        return
    link = SharedLink(stored.pool, SharedAgents(instance, database.lease), company, desk)
    heard = FreedAgents(link)
    await link.start()
    await heard.start(dsn)
    desk.acd.on_device(link.device_changed)
    desk.shared = link
    keeping = asyncio.create_task(link.keep_up(), name="shared-agents-lease")
    log.info("shared agents: this instance shares them", instance=instance, lease=database.lease)
    try:
        yield link
    finally:
        keeping.cancel()
        await asyncio.gather(keeping, return_exceptions=True)
        await heard.stop()
        desk.shared = None
        await link.close()
