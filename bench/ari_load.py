"""Concurrent calls through examples/call-centre.yaml: the ARI app against the simulator.

The Asterisk simulator runs in its own process (``python -m asterisk_sim``), so
what is measured here is the app's CPU and memory alone; the app (`AriApp`
with a `MemorySink`, logging JSON lines as ``switchboard run --json-logs``
does, to /dev/null) runs in this process.  New callers (distinct numbers: ICM
finds nobody, the CRM lookup is refused at once) arrive through
``POST /_sim/calls`` at a steady ``--rate`` for ``--seconds``.  The three
support agents answer after ``--answer-after`` seconds and talk ``--talk``
seconds, so nearly every caller waits in the queue with hold music and the
calls pile up: at 50/s for 20 s about 1,000 are up at once.  Then every
caller hangs up, the app tears the calls down and the simulator is stopped.

    .venv/bin/python bench/ari_load.py [--rate 50] [--seconds 20] [--talk 30]
        [--answer-after 20] [--only both|latency|memory] [--top N]

tracemalloc slows the app down several times, so the run has two passes, each
with a fresh simulator and app: latency without tracemalloc, then memory with
it.  Each prints:

- calls per second placed, and handled (the app sent its first command);
- p50/p99 time from the simulator sending ``StasisStart`` to the first ARI
  request the app makes for that channel, both read from the simulator: the
  channel's ``creationtime`` (StasisStart goes out in the same step, and
  ``/_sim`` gives no event time finer than this millisecond) and the request
  log's arrival time;
- app memory per concurrent call at peak concurrency (every call placed and
  handled, none hung up), over a baseline taken after the app connected:
  tracemalloc's count (memory pass) divided by the live sessions, and the
  growth of VmRSS per call as a cross-check;
- the app's CPU and garbage-collector pauses, calls failed or not handled,
  ARI errors, log lines by level, anything left over after the teardown.

Targets (issue 3): p99 under 20 ms at 50 new calls/s on a 2-core machine,
under 50 KB of app memory per concurrent call; the last line says whether
they were met.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import dataclasses
import datetime as dt
import gc
import logging
import os
import secrets
import signal
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from ari_app.app import AriApp, AriSettings
from switchboard.calls import MemorySink
from switchboard.config.company import Company
from switchboard.config.load import load_company
from switchboard.demo import endpoint_scripts
from switchboard.serving import tune_gc
from switchboard.simulate import AgentBehaviour

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "call-centre.yaml"
CALLED = "74951112233"
USER = "switchboard"
HOST = "127.0.0.1"
HANDLE_DEADLINE = 10.0  # s after the last call is placed for every call to be handled
TEARDOWN_DEADLINE = 30.0  # s for the app to end every call after the hang-ups
PR_SET_PDEATHSIG = 1
ID_AFTER = frozenset({"channels", "bridges", "playbacks", "play", "live", "stored", "snoop"})


@dataclasses.dataclass
class Placed:
    channel_id: str
    sent: float  # time.monotonic() just before POST /_sim/calls
    answered: float  # ... when its response had arrived


@dataclasses.dataclass
class Memory:
    calls: int
    traced: int  # bytes tracemalloc counts over the baseline (0 without tracemalloc)
    rss: int  # bytes of VmRSS over the baseline
    top: list[tracemalloc.StatisticDiff]


class LogCounter:
    """A structlog processor counting log lines by level and by level + event."""

    def __init__(self) -> None:
        self.levels: Counter[str] = Counter()
        self.events: Counter[tuple[str, str]] = Counter()

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        level = str(event_dict.get("level", method))
        self.levels[level] += 1
        self.events[level, str(event_dict.get("event", ""))] += 1
        return event_dict


def configure_logging(counter: LogCounter) -> None:
    """`switchboard run --json-logs` (switchboard.logs), counted, written to /dev/null."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            counter,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=devnull),
        cache_logger_on_first_use=False,
    )


def vm_rss() -> int:
    """This process's resident memory in bytes (/proc/self/status VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    """In the simulator's process: SIGTERM when this bench dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def start_simulator(password: str) -> tuple[asyncio.subprocess.Process, str]:
    """``python -m asterisk_sim`` on a free loopback port; its URL from its first line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asterisk_sim",
        "--host",
        HOST,
        "--port",
        "0",
        "--user",
        USER,
        f"--password={password}",  # token_urlsafe may start with "-"
        "--durations-from",
        str(CONFIG),
        "--gc-freeze",  # the simulator's own pauses would count as the app's latency
        "1",
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
    except TimeoutError:
        line = b""
    url = line.decode().strip()
    if not url.startswith(f"http://{HOST}:"):
        await stop_simulator(proc)
        raise SystemExit(f"the simulator did not start (said {url!r})")
    return proc, url


async def stop_simulator(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def wall_zero(http: aiohttp.ClientSession, url: str, password: str) -> tuple[float, float]:
    """The simulator's wall-clock origin (epoch seconds): its timestamps are that plus its
    clock ``now``; and how precisely it is known (+- s).

    Both processes read the same CLOCK_MONOTONIC and CLOCK_REALTIME, so the origin is
    the simulator's monotonic start plus (realtime - monotonic): each ``GET /_sim/state``
    bounds it by its round trip, ``startup_time`` (the origin to the ms) bounds it too,
    and the bounds are intersected.
    """
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    async with http.get(
        f"{url}/ari/asterisk/info", headers={"Authorization": f"Basic {token}"}
    ) as response:
        startup = (await response.json())["status"]["startup_time"]
    low = wall_seconds(startup) - 0.0002
    high = low + 0.0012
    for _ in range(30):
        before = time.monotonic()
        async with http.get(f"{url}/_sim/state") as response:
            now = float((await response.json())["now"])
        after = time.monotonic()
        offset = time.time() - time.monotonic()
        low = max(low, before - now + offset)
        high = min(high, after - now + offset)
    if low > high:
        raise SystemExit("cannot place the simulator's clock: is it on this machine?")
    return (low + high) / 2, (high - low) / 2


def wall_seconds(timestamp: str) -> float:
    """An ARI timestamp (``2026-12-01T10:15:00.123+0000``) in epoch seconds."""
    return dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def sim_time(timestamp: str, origin: float) -> float:
    """A simulator timestamp (to the ms) in its clock seconds: the middle of its ms."""
    return wall_seconds(timestamp) + 0.0005 - origin


async def until(predicate: Callable[[], bool], within: float = HANDLE_DEADLINE) -> bool:
    """Poll ``predicate`` (app state has no event for it) until true or ``within`` s."""
    for _ in range(round(within / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def shape(path: str) -> str:
    """``/ari/channels/1734.5/moh`` -> ``/channels/{id}/moh``."""
    parts = path.removeprefix("/ari").split("/")
    for i in range(2, len(parts)):
        if parts[i - 1] in ID_AFTER and parts[i] != "create":
            parts[i] = "{id}"
    return "/".join(parts)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def script_agents(
    http: aiohttp.ClientSession, url: str, company: Company, answer_after: float, talk: float
) -> None:
    agents = {e: AgentBehaviour("answer", answer_after) for e in company.employees}
    for endpoint, script in endpoint_scripts(company, agents, talk).items():
        body = {"endpoint": endpoint, **dataclasses.asdict(script)}
        async with http.post(f"{url}/_sim/endpoints", json=body) as response:
            response.raise_for_status()


async def place_calls(
    http: aiohttp.ClientSession, url: str, app: str, rate: float, total: int
) -> tuple[list[Placed], int]:
    """``total`` new callers at ``rate`` a second; the calls placed and the POSTs refused."""
    placed: list[Placed] = []
    refused = 0

    async def place(i: int) -> None:
        nonlocal refused
        body = {"caller": f"7903{5_000_000 + i:07d}", "called": CALLED, "app": app}
        sent = time.monotonic()
        async with http.post(f"{url}/_sim/calls", json=body) as response:
            if response.status != 201:
                refused += 1
                return
            channel_id = str((await response.json())["channel_id"])
        placed.append(Placed(channel_id, sent, time.monotonic()))

    start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(place(i)))
    await asyncio.gather(*tasks)
    return placed, refused


async def first_commands(
    http: aiohttp.ClientSession, url: str, wanted: set[str], within: float
) -> tuple[dict[str, tuple[float, str]], list[dict[str, Any]]]:
    """Each wanted channel's first ARI request (clock t, "METHOD path"), waiting up to
    ``within`` s for all of them; and the whole request log."""
    deadline = time.monotonic() + within
    while True:
        async with http.get(f"{url}/_sim/requests") as response:
            log: list[dict[str, Any]] = await response.json()
        first: dict[str, tuple[float, str]] = {}
        for record in log:
            parts = record["path"].split("/")  # "", "ari", "channels", id, ...
            if len(parts) > 3 and parts[2] == "channels" and parts[3] in wanted:
                what = "/".join(["/channels/{id}", *parts[4:]])
                first.setdefault(parts[3], (record["t"], f"{record['method']} {what}"))
        if len(first) == len(wanted) or time.monotonic() > deadline:
            return first, log
        await asyncio.sleep(0.5)


def measure_memory(
    baseline: tracemalloc.Snapshot | None, baseline_rss: int, calls: int, top: int = 0
) -> Memory:
    gc.collect()
    rss = vm_rss() - baseline_rss
    if baseline is None:
        return Memory(calls, 0, rss, [])
    snapshot = _snapshot()
    diff = snapshot.compare_to(baseline, "lineno")
    return Memory(calls, sum(d.size_diff for d in diff), rss, diff[:top])


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, __file__),  # the bench's own bookkeeping
        ]
    )


async def hang_up_all(http: aiohttp.ClientSession, url: str, channel_ids: list[str]) -> None:
    """Every caller still on the line hangs up (their far end), 20 at a time."""
    gate = asyncio.Semaphore(20)

    async def hang_up(channel_id: str) -> None:
        async with gate, http.post(f"{url}/_sim/channels/{channel_id}/hangup") as response:
            await response.read()  # 404: the call had already ended

    await asyncio.gather(*(hang_up(c) for c in channel_ids))


@dataclasses.dataclass
class Result:
    """One pass: the calls placed, what the app did with them, what it cost."""

    traced: bool
    rss_valid: bool = True  # the first pass in this process: later ones reuse its heap
    placed: int = 0
    refused: int = 0
    placing: float = 0.0  # s from the first call placed to the last
    latencies: list[float] = dataclasses.field(default_factory=list)  # ms
    # StasisStart -> the answer request (the first command is the channel's marks)
    answer_latencies: list[float] = dataclasses.field(default_factory=list)  # ms
    handled_rate: float = 0.0
    first_kinds: Counter[str] = dataclasses.field(default_factory=Counter)
    timing_error: float = 0.0  # ms, +-
    outside: int = 0
    memory: Memory | None = None
    cpu_user: float = 0.0  # s of the app process while calls arrived
    cpu_system: float = 0.0
    cpu_sim: float = 0.0
    window: float = 0.0  # s those CPU figures cover
    gc_pauses: dict[int, list[float]] = dataclasses.field(default_factory=dict)  # gen -> ms
    not_answered: int = 0
    failures: int = 0
    ended_early: int = 0
    stuck: int = 0
    sim_left: int = 0
    reconnects: int = 0
    requests: int = 0
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    levels: Counter[str] = dataclasses.field(default_factory=Counter)
    warnings: Counter[str] = dataclasses.field(default_factory=Counter)


class GcPauses:
    """How long each of this process's garbage collections took, by generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1e3)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def run(args: argparse.Namespace) -> list[Result]:
    counter = LogCounter()
    configure_logging(counter)
    company = load_company(CONFIG)
    passes = {"both": [False, True], "latency": [False], "memory": [True]}[args.only]
    print(
        f"{round(args.rate * args.seconds)} new callers at {args.rate:g}/s for {args.seconds:g} s "
        f"through {CONFIG.relative_to(ROOT)}; agents answer after {args.answer_after:g} s and "
        f"talk {args.talk:g} s; the simulator in its own process"
    )
    results = []
    for n, traced in enumerate(passes):
        password = secrets.token_urlsafe(12)
        proc, url = await start_simulator(password)
        try:
            result = await one_pass(args, company, counter, traced, proc.pid, url, password)
        finally:
            await stop_simulator(proc)
        result.rss_valid = n == 0
        report(result)
        results.append(result)
    return results


async def one_pass(
    args: argparse.Namespace,
    company: Company,
    counter: LogCounter,
    traced: bool,
    sim_pid: int,
    url: str,
    password: str,
) -> Result:
    result = Result(traced)
    counter.levels.clear()
    counter.events.clear()
    total = round(args.rate * args.seconds)
    app_name = company.config.asterisk.app
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as http:
        origin, origin_error = await wall_zero(http, url, password)
        zero = origin - (time.time() - time.monotonic())  # its clock's 0 on time.monotonic()
        await script_agents(http, url, company, args.answer_after, args.talk)
        settings = AriSettings(url, USER, password, app_name)
        if traced:
            tracemalloc.start()  # before the app: everything it allocates is traced
        sink = MemorySink()
        try:
            async with AriApp(lambda: company, settings, sink=sink) as app:
                await app.wait_ready()
                tune_gc()  # as `switchboard run` does once the config is loaded
                baseline = _snapshot() if traced else None
                baseline_rss = vm_rss()
                with GcPauses() as pauses:
                    cpu, cpu_sim, started = os.times(), cpu_seconds(sim_pid), time.monotonic()
                    placed, result.refused = await place_calls(
                        http, url, app_name, args.rate, total
                    )
                    result.placing = time.monotonic() - started
                    # every call placed has reached the app and sent its first request
                    runtime = app.runtime
                    await until(lambda: len(runtime.sessions) + len(sink.records) >= len(placed))
                    await asyncio.sleep(0.2)
                    now = os.times()
                    result.cpu_user, result.cpu_system = (
                        now.user - cpu.user,
                        now.system - cpu.system,
                    )
                    result.cpu_sim = cpu_seconds(sim_pid) - cpu_sim
                    result.window = time.monotonic() - started
                result.gc_pauses = pauses.pauses
                # the snapshot stops the app for a while: only once every call has been handled
                wanted = {p.channel_id for p in placed}
                # (the request log itself must not be alive at the snapshot)
                first = (await first_commands(http, url, wanted, HANDLE_DEADLINE))[0]
                result.memory = measure_memory(
                    baseline, baseline_rss, len(app.runtime.sessions), args.top
                )
                result.ended_early = len(sink.records)
                await hang_up_all(http, url, [p.channel_id for p in placed])
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TEARDOWN_DEADLINE):
                        await app.runtime.wait_idle()
                result.stuck = len(app.runtime.sessions)
                result.failures = app.runtime.failures
                result.reconnects = app.supervisor.connections - 1
        finally:
            if traced:
                tracemalloc.stop()
        async with http.get(f"{url}/_sim/state") as response:
            state = await response.json()
        _, log = await first_commands(http, url, set(), 0)

    channels = {c["id"]: c for c in state["channels"]}
    tolerance = origin_error + 0.0006
    stasis: dict[str, float] = {}
    for p in placed:
        if p.channel_id not in first:
            continue
        stasis[p.channel_id] = t = sim_time(channels[p.channel_id]["creationtime"], origin)
        result.latencies.append((first[p.channel_id][0] - t) * 1e3)
        if not p.sent - zero - tolerance <= t <= p.answered - zero + tolerance:
            result.outside += 1
    if stasis:
        span = max(first[c][0] for c in stasis) - min(stasis.values())
        result.handled_rate = len(stasis) / span if span > 0 else 0.0
    result.placed = len(placed)
    result.timing_error = (origin_error + 0.0005) * 1e3
    result.first_kinds = Counter(first[c][1] for c in first)
    answered_at: dict[str, float] = {}
    for r in log:
        if r["path"].endswith("/answer"):
            answered_at.setdefault(r["path"].split("/")[3], r["t"])
    result.answer_latencies = [
        (answered_at[c] - t) * 1e3 for c, t in stasis.items() if c in answered_at
    ]
    answers = set(answered_at)
    result.not_answered = len(wanted - answers)
    result.requests = len(log)
    result.errors = Counter(
        f"{r['status']} {r['method']} {shape(r['path'])}" for r in log if r["status"] >= 400
    )
    result.sim_left = sum(1 for c in state["channels"] if c["live"])
    result.levels = Counter(counter.levels)
    result.warnings = Counter(
        {f"{lvl} {event}": n for (lvl, event), n in counter.events.items() if lvl != "info"}
    )
    return result


def report(r: Result) -> None:
    """A few readable lines for one pass."""
    mode = "memory, with tracemalloc" if r.traced else "latency, no tracemalloc"
    print(f"-- {mode}")
    print(
        f"  placed {r.placed} calls in {r.placing:.2f} s ({r.placed / r.placing:.1f}/s), "
        f"{r.refused} refused; handled {len(r.latencies)} (first command sent): "
        f"{r.handled_rate:.1f} calls/s"
    )
    if r.latencies:
        kinds = ", ".join(f"{k} x{v}" for k, v in r.first_kinds.most_common(3))
        print(
            f"  StasisStart -> first command: p50 {percentile(r.latencies, 0.5):.1f} ms, "
            f"p99 {percentile(r.latencies, 0.99):.1f} ms, max {max(r.latencies):.1f} ms, "
            f"mean {statistics.fmean(r.latencies):.1f} ms (+-{r.timing_error:.1f} ms; {kinds})"
        )
    if r.answer_latencies:
        print(
            f"  StasisStart -> answer: p50 {percentile(r.answer_latencies, 0.5):.1f} ms, "
            f"p99 {percentile(r.answer_latencies, 0.99):.1f} ms, "
            f"max {max(r.answer_latencies):.1f} ms"
        )
    if r.outside:
        print(f"  !! {r.outside} StasisStart times outside their POST /_sim/calls: clock mismatch")
    m = r.memory
    if m is not None and m.calls:
        figures = [f"{m.traced / m.calls / 1024:.1f} KB traced per call"] if r.traced else []
        if r.rss_valid:
            note = " (with tracemalloc's own records)" if r.traced else ""
            figures.append(f"VmRSS +{m.rss / m.calls / 1024:.1f} KB per call{note}")
        print(f"  app memory at peak, {m.calls} calls up: " + ", ".join(figures))
    calls = max(1, r.placed)
    print(
        f"  CPU while calls arrived: app process {r.cpu_user / calls * 1e3:.2f} ms user + "
        f"{r.cpu_system / calls * 1e3:.2f} ms system per call "
        f"({(r.cpu_user + r.cpu_system) / r.window:.0%} of a core), "
        f"simulator {r.cpu_sim / r.window:.0%} of a core"
    )
    print(
        "  app GC pauses: "
        + ", ".join(
            f"gen{g} x{len(p)} longest {max(p, default=0):.0f} ms"
            for g, p in sorted(r.gc_pauses.items(), reverse=True)
        )
    )
    print(
        f"  calls not handled {r.placed - len(r.latencies)}, not answered {r.not_answered}, "
        f"failed (runtime.failures) {r.failures}, ended before the hang-up {r.ended_early}, "
        f"sessions left {r.stuck}, simulator channels left {r.sim_left}, "
        f"reconnects {r.reconnects}"
    )
    errors = ", ".join(f"{e} x{n}" for e, n in r.errors.most_common(4))
    more = len(r.errors) - 4
    print(
        f"  ARI requests {r.requests}, failed: {errors or 'none'}"
        + (f" and {more} more kinds" if more > 0 else "")
    )
    print(
        "  log lines: "
        + ", ".join(f"{lvl} {n}" for lvl, n in sorted(r.levels.items()))
        + "".join(f"; {e} x{n}" for e, n in r.warnings.most_common(5))
    )
    if m is not None and m.top:
        print_top(m)


def print_top(memory: Memory) -> None:
    print(f"  top {len(memory.top)} allocation sites at peak (over the baseline):")
    for stat in memory.top:
        frame = stat.traceback[0]
        where = short_path(frame.filename)
        print(
            f"    {stat.size_diff / memory.calls:8.0f} B/call {stat.count_diff:+8d} blocks"
            f"  {where}:{frame.lineno}"
        )


def short_path(filename: str) -> str:
    """A project file from the project's folder, anything else as package/file."""
    path = Path(filename)
    if path.is_relative_to(ROOT) and ".venv" not in path.parts:
        return str(path.relative_to(ROOT))
    return "/".join(path.parts[-2:])


def verdict(results: list[Result], rate: float) -> None:
    latency = next((r for r in results if not r.traced), None)
    memory = next((r for r in results if r.traced), None)
    parts = []
    if latency is not None and latency.latencies:
        p99 = percentile(latency.latencies, 0.99)
        parts.append(
            f"p99 {p99:.1f} ms at {rate:g} calls/s (< 20 ms): {'met' if p99 < 20 else 'MISSED'}"
        )
    if memory is not None and memory.memory is not None and memory.memory.calls:
        kb = memory.memory.traced / memory.memory.calls / 1024
        parts.append(f"memory {kb:.1f} KB per call (< 50 KB): {'met' if kb < 50 else 'MISSED'}")
    if parts:
        print("targets: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=50.0, help="new calls a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long calls arrive")
    parser.add_argument("--talk", type=float, default=30.0, help="an agent's conversation, s")
    parser.add_argument("--answer-after", type=float, default=20.0, help="agents answer after, s")
    parser.add_argument(
        "--only",
        choices=("both", "latency", "memory"),
        default="both",
        help="latency: a pass without tracemalloc; memory: one with it (default both)",
    )
    parser.add_argument(
        "--top", type=int, default=0, help="memory pass: the N biggest allocation sites"
    )
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    with contextlib.suppress(KeyboardInterrupt):
        results = asyncio.run(run(args))
        verdict(results, args.rate)


if __name__ == "__main__":
    main()
