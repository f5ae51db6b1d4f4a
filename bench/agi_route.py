"""FastAGI ``route`` decisions through examples/call-centre.yaml: the real `switchboard agi`.

The server is the real command, in its own process (``.venv/bin/switchboard
agi CONFIG --listen 127.0.0.1:0 --json-logs``, no ``SWITCHBOARD_DSN``: records
in memory), so what is measured is the server's latency and cost alone; its
log goes to a temporary file and the port it bound is read from its
``listening`` line.  This process plays Asterisk with a lean raw-asyncio peer
(no `asterisk_sim.agi.AgiPeer`, whose bookkeeping would compete with the
server for the same two cores): it connects, sends the environment block of
``AGI(agi://host/route,74951112233)`` and answers every command as Asterisk
would (``SET VARIABLE`` ``200 result=1``, ``EXEC MSet`` -- the decision's
variables in one command -- ``200 result=0``, ``STREAM FILE`` ``200 result=0
endpos=0``, anything else ``200 result=0``) until the server closes the
socket.  Half the callers are a known contact (79161112233: ICM finds ivanov
at once -> ``SWITCHBOARD_ACTION=dial``, ``PJSIP/101``), half distinct new
numbers (contacts and last_agent find nobody, the CRM at 127.0.0.1:8099
refuses the connection -> ``queue``).

    .venv/bin/python bench/agi_route.py [--rate 200] [--seconds 10] [--concurrent 500]
        [--config examples/call-centre.yaml] [--profile FILE.pstats] [--top 25]

After a warm-up of a few sessions (not counted) there are two phases:

- A, rate: open-loop arrivals at ``--rate`` sessions/s for ``--seconds`` (each
  session starts at its time, whether the previous ones are done or not).
  Decision time is from writing the environment block (its final empty line)
  to the server closing the connection: all the dialplan waits for.  Printed:
  sessions attempted, served (``SWITCHBOARD_ACTION`` set, dial or queue; one
  served without its caller's own decision -- ``PJSIP/101``, or the queue's
  members ``&``-joined -- is listed), failed; sessions/s achieved; decision
  time p50/p90/p99/max, the part of it before the first command (reading the
  environment, the engine up to the decision) and by kind of caller; the
  server's CPU per session (utime and stime of /proc/PID/stat) and its RSS;
  how late the generator started sessions and its own CPU, to tell a slow
  server from a slow client.
- B, concurrency: ``--concurrent`` sessions started at once (one gather),
  each a complete ``route``; every one must be served.  Printed: served,
  wall time, decision time p50/p99/max.

Then the server gets SIGTERM and must exit 0; its log lines are counted by
level (each new caller logs one ``lookup failed`` warning for the CRM).
``--profile`` runs the server under cProfile instead (several times slower,
so its latency figures are not the real ones) and prints the functions it
spent its time in.

Targets (issue 5): p99 decision time under 10 ms at 200 sessions/s on a
2-core machine, and all 500 concurrent sessions served; the last line says
whether they were met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import os
import pstats
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO

from asterisk_sim.agi import environment_block, parse_args, separate_args

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "call-centre.yaml"
HOST = "127.0.0.1"
CALLED = "74951112233"
KNOWN = "79161112233"  # a contact of ivanov's: dial his desk at once
KNOWN_TARGETS = "PJSIP/101"
QUEUE_TARGETS = "PJSIP/201&PJSIP/202&PJSIP/203"
WATCHED = frozenset({"SWITCHBOARD_ACTION", "SWITCHBOARD_TARGETS", "SWITCHBOARD_CALL_ID"})
SESSION_TIMEOUT = 30.0  # s: a session still open then has failed
START_TIMEOUT = 30.0  # s for the server to say it listens
STOP_TIMEOUT = 10.0  # s for it to exit after SIGTERM
WARM_UP = 20
PR_SET_PDEATHSIG = 1
PROFILED = (
    "import cProfile, sys\n"
    "from switchboard.cli import main\n"
    "profile = cProfile.Profile()\n"
    "code = profile.runcall(main, sys.argv[2:])\n"
    "profile.dump_stats(sys.argv[1])\n"
    "raise SystemExit(code)\n"
)


@dataclasses.dataclass
class Session:
    """One ``route`` session as the peer saw it."""

    caller: str
    known: bool
    variables: dict[str, str] = dataclasses.field(default_factory=dict)
    commands: int = 0
    decision: float = 0.0  # ms from the environment written to the server's EOF
    first: float = 0.0  # ms from the environment written to the first command
    error: str = ""

    @property
    def served(self) -> bool:
        """A decision came back: SWITCHBOARD_ACTION dial or queue, and a call id."""
        if self.error or not self.variables.get("SWITCHBOARD_CALL_ID"):
            return False
        return self.variables.get("SWITCHBOARD_ACTION") in ("dial", "queue")

    @property
    def expected(self) -> bool:
        """The decision this caller should get, with the documented ``&``-joined targets."""
        action = self.variables.get("SWITCHBOARD_ACTION")
        targets = self.variables.get("SWITCHBOARD_TARGETS")
        if self.known:
            return action == "dial" and targets == KNOWN_TARGETS
        return action == "queue" and targets == QUEUE_TARGETS

    def failure(self) -> str:
        if self.error:
            return self.error
        return f"{'known' if self.known else 'new'} caller got no dial/queue decision"

    def surprise(self) -> str:
        action = self.variables.get("SWITCHBOARD_ACTION")
        targets = self.variables.get("SWITCHBOARD_TARGETS")
        return f"{'known' if self.known else 'new'} caller got {action} {targets}"


def reply(line: str) -> bytes:
    """What Asterisk answers a command (the route service only sets variables)."""
    if line.startswith("SET VARIABLE "):
        return b"200 result=1\n"
    if line.startswith("STREAM FILE "):
        return b"200 result=0 endpos=0\n"
    return b"200 result=0\n"  # GET VARIABLE (unset), ANSWER, WAIT FOR DIGIT, SET MUSIC ...


async def route_session(
    port: int, caller: str, known: bool, serial: int, within: float = SESSION_TIMEOUT
) -> Session:
    """One ``AGI(agi://host/route,74951112233)`` from ``caller``, until the server closes."""
    session = Session(caller, known)
    env = environment_block(
        "route",
        host=HOST,
        port=port,
        channel=f"PJSIP/trunk-{serial:08x}",
        uniqueid=f"1733050000.{serial}",
        caller=caller,
        dnid=CALLED,
        extension=CALLED,
        args=(CALLED,),
    )
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(env)
            sent = time.perf_counter()
            while True:
                raw = await reader.readline()
                if not raw:
                    session.decision = (time.perf_counter() - sent) * 1e3
                    break
                line = raw.decode().rstrip("\r\n")
                session.commands += 1
                if session.commands == 1:
                    session.first = (time.perf_counter() - sent) * 1e3
                if line.startswith("SET VARIABLE "):
                    name = line.split(" ", 3)[2]
                    if name in WATCHED:
                        words = parse_args(line)
                        session.variables[name] = words[3] if len(words) > 3 else ""
                elif line.startswith("EXEC MSet "):
                    words = parse_args(line)
                    for pair in separate_args(words[2] if len(words) > 2 else ""):
                        name, _, value = pair.partition("=")
                        if name in WATCHED:
                            session.variables[name] = value
                writer.write(reply(line))
    except TimeoutError:
        session.error = f"no end within {within:g} s"
    except OSError as exc:
        session.error = f"{exc.__class__.__name__}"
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return session


def caller_of(i: int, base: int) -> tuple[str, bool]:
    """Even sessions: the known contact; odd ones: a number nobody has seen."""
    if i % 2 == 0:
        return KNOWN, True
    return f"7903{base + i:07d}", False


# -- the server process --------------------------------------------------------------


def _die_with_parent() -> None:
    """In the server's process: SIGTERM when this bench dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def start_server(
    config: Path, log: IO[bytes], log_path: Path, profile: Path | None
) -> tuple[asyncio.subprocess.Process, int]:
    """`switchboard agi` on a port the OS picks; that port, from its ``listening`` line."""
    env = {k: v for k, v in os.environ.items() if k not in ("SWITCHBOARD_DSN",)}
    args = ["agi", str(config), "--listen", f"{HOST}:0", "--json-logs"]
    if profile is None:
        command = [str(Path(sys.executable).with_name("switchboard")), *args]
    else:
        command = [sys.executable, "-c", PROFILED, str(profile), *args]
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.returncode is None:
        for record in log_records(log_path):
            port = record.get("port")
            if record.get("event") == "listening" and isinstance(port, int):
                return proc, port
        # the log is a file (a pipe could fill up and stall the server): poll it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
    await stop_server(proc)
    raise SystemExit(f"the server did not start listening; its log ends:\n{log_tail(log_path)}")


async def stop_server(proc: asyncio.subprocess.Process) -> int:
    """SIGTERM, then wait (SIGKILL after STOP_TIMEOUT); its exit code."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


def log_tail(path: Path, size: int = 2000) -> str:
    return path.read_text(errors="replace")[-size:]


def log_records(path: Path) -> list[dict[str, object]]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (utime, stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_since(pid: int, before: tuple[float, float]) -> tuple[float, float]:
    now = cpu_seconds(pid)
    return now[0] - before[0], now[1] - before[1]


def memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM (peak) of process ``pid``, bytes."""
    out = {"VmRSS:": 0, "VmHWM:": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, *rest = line.split()
        if key in out:
            out[key] = int(rest[0]) * 1024
    return out["VmRSS:"], out["VmHWM:"]


# -- the phases ----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass
class Phase:
    sessions: list[Session]
    wall: float  # s from the first session started to the last one ended
    cpu_server: tuple[float, float] = (0.0, 0.0)  # s user, system
    cpu_client: float = 0.0  # s, this process
    lag: list[float] = dataclasses.field(default_factory=list)  # ms each start was late

    @property
    def served(self) -> list[Session]:
        return [s for s in self.sessions if s.served]

    @property
    def decisions(self) -> list[float]:
        return [s.decision for s in self.served]

    def failures(self) -> Counter[str]:
        return Counter(s.failure() for s in self.sessions if not s.served)

    def surprises(self) -> Counter[str]:
        return Counter(s.surprise() for s in self.served if not s.expected)

    def times(self) -> str:
        return spread(self.decisions)

    def detail(self) -> str:
        """Where the decision time goes: the first command, and by kind of caller."""
        served = self.served
        first = [s.first for s in served]
        known = [s.decision for s in served if s.known]
        new = [s.decision for s in served if not s.known]
        commands = sum(s.commands for s in served) / max(1, len(served))
        return (
            f"to the first command {spread(first, full=False)}; "
            f"known callers {spread(known, full=False)}, new {spread(new, full=False)}; "
            f"{commands:.1f} commands a session"
        )


def spread(values: list[float], full: bool = True) -> str:
    if not values:
        return "none"
    if not full:
        return f"p50 {percentile(values, 0.5):.1f}/p99 {percentile(values, 0.99):.1f} ms"
    return (
        f"p50 {percentile(values, 0.5):.1f} ms, p90 {percentile(values, 0.9):.1f} ms, "
        f"p99 {percentile(values, 0.99):.1f} ms, max {max(values):.1f} ms"
    )


async def warm_up(port: int) -> None:
    """First calls import and build what the later ones reuse: not counted."""
    for i in range(WARM_UP):
        caller, known = caller_of(i, 1_000_000)
        session = await route_session(port, caller, known, 900_000 + i)
        if not session.served:
            raise SystemExit(f"warm-up session failed: {session.failure()}")
        if not session.expected:
            print(f"  !! warm-up: {session.surprise()}")


async def phase_rate(port: int, pid: int, rate: float, seconds: float) -> Phase:
    """Open loop: session i starts at i / rate, whatever the others are doing."""
    total = round(rate * seconds)
    tasks: list[asyncio.Task[Session]] = []
    lag: list[float] = []
    cpu_server, cpu_client = cpu_seconds(pid), os.times()
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lag.append(max(0.0, time.monotonic() - due) * 1e3)
        caller, known = caller_of(i, 2_000_000)
        tasks.append(asyncio.create_task(route_session(port, caller, known, i + 1)))
    sessions = await asyncio.gather(*tasks)
    wall = time.monotonic() - start
    client = os.times()
    return Phase(
        list(sessions),
        wall,
        cpu_since(pid, cpu_server),
        (client.user - cpu_client.user) + (client.system - cpu_client.system),
        lag,
    )


async def phase_concurrent(port: int, pid: int, concurrent: int) -> Phase:
    """``concurrent`` sessions at once, every one to its end."""
    cpu_server = cpu_seconds(pid)
    start = time.monotonic()
    sessions = await asyncio.gather(
        *(route_session(port, *caller_of(i, 3_000_000), 100_000 + i) for i in range(concurrent))
    )
    wall = time.monotonic() - start
    return Phase(list(sessions), wall, cpu_since(pid, cpu_server))


def report_rate(phase: Phase, rate: float, rss: tuple[int, int]) -> None:
    n, served = len(phase.sessions), len(phase.served)
    print(f"-- A: {rate:g} sessions/s, open loop")
    print(
        f"  attempted {n}, served {served} (ACTION dial/queue set), "
        f"failed {n - served}; achieved {served / phase.wall:.1f} sessions/s "
        f"over {phase.wall:.2f} s"
    )
    print(f"  decision time (environment written -> server EOF): {phase.times()}")
    print(f"  ({phase.detail()})")
    print(f"  {server_cpu(phase)}; {server_rss(rss)}")
    print(
        f"  generator: started sessions late by p99 {percentile(phase.lag, 0.99):.1f} ms, "
        f"max {max(phase.lag):.1f} ms; its CPU {phase.cpu_client / phase.wall:.0%} of a core"
    )
    report_failures(phase)


def report_concurrent(phase: Phase, rss: tuple[int, int]) -> None:
    n, served = len(phase.sessions), len(phase.served)
    print(f"-- B: {n} sessions at once")
    print(f"  served {served}/{n} in {phase.wall * 1e3:.0f} ms wall; decision time {phase.times()}")
    print(f"  {server_cpu(phase)}; {server_rss(rss)}")
    report_failures(phase)


def server_rss(rss: tuple[int, int]) -> str:
    return f"server RSS {rss[0] / 2**20:.1f} MiB (peak {rss[1] / 2**20:.1f} MiB)"


def server_cpu(phase: Phase) -> str:
    user, system = phase.cpu_server
    n = max(1, len(phase.sessions))
    return (
        f"server CPU {(user + system) / n * 1e3:.2f} ms per session ({user / n * 1e3:.2f} user + "
        f"{system / n * 1e3:.2f} system; {(user + system) / phase.wall:.0%} of a core)"
    )


def report_failures(phase: Phase) -> None:
    failures = phase.failures()
    if failures:
        print("  !! failed: " + ", ".join(f"{why} x{k}" for why, k in failures.most_common(5)))
    surprises = phase.surprises()
    if surprises:
        print(
            "  !! served, but not the expected decision: "
            + ", ".join(f"{why} x{k}" for why, k in surprises.most_common(4))
        )


def report_log(path: Path, code: int) -> None:
    records = log_records(path)
    levels = Counter(str(r.get("level", "?")) for r in records)
    others = Counter(
        f"{r.get('level')} {r.get('event')}"
        for r in records
        if r.get("level") not in ("info", "debug")
    )
    finished = sum(1 for r in records if r.get("event") == "call finished")
    print(
        f"server: exit code {code}{'' if code == 0 else ' !!'}; calls finished {finished}; "
        "log lines: "
        + ", ".join(f"{lvl} {k}" for lvl, k in sorted(levels.items()))
        + "".join(f"; {e} x{k}" for e, k in others.most_common(4))
    )


def report_profile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]  # (func) -> (cc, nc, tt, ct, callers)
    total = sum(tt for _, _, tt, _, _ in raw.values()) or 1.0
    print(f"server profile ({total:.2f} s in Python functions), by own time:")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (file, line, name), (_, calls, tt, ct, _) in rows:
        where = short_path(file)
        print(f"  {tt / total:6.1%} own {ct / total:6.1%} cum {calls:8d} x {name} ({where}:{line})")


def short_path(filename: str) -> str:
    path = Path(filename)
    if path.is_relative_to(ROOT) and ".venv" not in path.parts:
        return str(path.relative_to(ROOT))
    return "/".join(path.parts[-2:])


async def run(
    args: argparse.Namespace, config: Path, log_path: Path, profile: Path | None
) -> tuple[Phase, Phase, int]:
    """Start the server, run both phases, stop it: the phases and its exit code."""
    with log_path.open("wb") as log:
        proc, port = await start_server(config, log, log_path, profile)
        shown = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
        print(
            f"`switchboard agi {shown}` pid {proc.pid} on {HOST}:{port}"
            + (" under cProfile (latency not representative)" if profile else "")
            + "; half the callers a known contact (dial), half new (queue)"
        )
        try:
            await warm_up(port)
            rate = await phase_rate(port, proc.pid, args.rate, args.seconds)
            report_rate(rate, args.rate, memory(proc.pid))
            concurrent = await phase_concurrent(port, proc.pid, args.concurrent)
            report_concurrent(concurrent, memory(proc.pid))
        finally:
            code = await stop_server(proc)
    return rate, concurrent, code


def verdict(rate: Phase, concurrent: Phase, args: argparse.Namespace) -> None:
    decisions = rate.decisions
    p99 = percentile(decisions, 0.99) if decisions else float("inf")
    fast = p99 < 10 and len(rate.served) == len(rate.sessions)
    served = len(concurrent.served)
    everyone = served == len(concurrent.sessions)
    print(
        f"targets: p99 decision time under 10 ms at {args.rate:g} sessions/s: "
        f"{'met' if fast else 'MISSED'} ({p99:.1f} ms, {len(rate.served)}/{len(rate.sessions)} "
        f"served); all {len(concurrent.sessions)} concurrent sessions served: "
        f"{'met' if everyone else 'MISSED'} ({served})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=200.0, help="new sessions a second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long they arrive")
    parser.add_argument("--concurrent", type=int, default=500, help="sessions at once (B)")
    parser.add_argument("--config", default=str(CONFIG), help="the configuration file")
    parser.add_argument("--profile", metavar="FILE", help="run the server under cProfile")
    parser.add_argument("--top", type=int, default=25, help="--profile: functions to print")
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.concurrent <= 0:
        parser.error("--rate, --seconds and --concurrent must be positive")
    config = Path(args.config).resolve()
    with tempfile.TemporaryDirectory(prefix="agi-route-") as tmp:
        log_path = Path(tmp) / "server.log"
        profile = Path(tmp) / "server.pstats" if args.profile else None
        try:
            rate, concurrent, code = asyncio.run(run(args, config, log_path, profile))
        except KeyboardInterrupt:
            return
        report_log(log_path, code)
        if profile is not None and profile.exists():
            Path(args.profile).write_bytes(profile.read_bytes())
            report_profile(profile, args.top)
    verdict(rate, concurrent, args)


if __name__ == "__main__":
    main()
