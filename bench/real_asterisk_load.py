"""What a call costs on a real Asterisk: plain dialplan, a minimal Stasis app, Switchboard.

The other benches measure Switchboard against the simulator; this one puts
real SIP calls through a real Asterisk (22, PJSIP) and asks how many calls a
second each way of running the same call sustains, and what each costs
Asterisk and the app.  The call: a SIPp caller (bench/real_asterisk/uac.xml,
endpoint ``sipp``) is answered, hears a beep, the employee's phone (a SIPp
UAS at PJSIP/op, bench/real_asterisk/uas_answer_bye.xml) is rung, answers at
once, talks ``--talk`` seconds and hangs up; Asterisk then hangs up the caller.
Three flows, the extensions of bench/real_asterisk/extensions-bench.conf:

- ``native``: the call in plain dialplan (Answer, Playback, Dial);
- ``minimal``: bench/minimal_stasis_app.py, a hand-written aiohttp Stasis app;
- ``switchboard``: Switchboard's Stasis app (bench/switchboard_runner.py, as
  ``switchboard run --json-logs`` runs it) with bench/real_asterisk.yaml, or
  ``--switchboard-config``.  Switchboard rings an employee only while they are
  not on a call, so that file's department of operators, all at PJSIP/op, is
  grown to ``--employees`` (1,000) and rings one free operator per call.
  ``--switchboard-profile DIR`` keeps a cProfile of each Switchboard step there.

Setup, once (each file's header says more): that dialplan ``#include``d from
extensions.conf and ``dialplan reload``; pjsip endpoints ``sipp`` (the caller,
from 127.0.0.1:5061, matched by its address, landing in [switchboard-bench])
and ``op`` (contact sip:op@127.0.0.1:5070) -- bench/real_asterisk/pjsip-bench.conf,
or, where ``sipp`` already lands in a context [perf-in], perf-in-bench.conf;
ARI enabled for a user (SWITCHBOARD_TEST_ARI_USER/_PASSWORD).

    .venv/bin/python bench/real_asterisk_load.py [--flows native,minimal,switchboard]
        [--rates 20,40,...,160] [--seconds 20] [--talk 3] [--out results.json]
        [--ari-url URL --ari-user USER --ari-password PASSWORD] [--sipp PATH]
        [--asterisk-pidfile PATH] [--switchboard-config YAML] [--work-dir DIR]

ARI defaults come from SWITCHBOARD_TEST_ARI_URL/_USER/_PASSWORD (as the real-Asterisk
tests), the pidfile from ASTERISK_PIDFILE, SIPp from SIPP or PATH.  One SIPp UAS
answers for the whole run.  For each flow, rates go up until a step falls under
99 % success; each step has a fresh app process,
calls placed at the rate for ``--seconds``, then up to 10 s for Asterisk's
channels to go (what is left is counted, then hung up) and the app stopped
for its numbers.  A call succeeds when the caller's side completed (SIPp:
200, ACK, Asterisk's BYE) and the employee's did too (answered, talked, its
BYE answered): "ok %" is the smaller of the two counts over the calls placed,
so a flow that hangs callers up without ringing the employee does not pass.
The table gives, per step: Asterisk's CPU while calls were placed (% of one
core, over ``--seconds``) and per call (ms, from the first call to the last
one's end: ``--seconds`` + ``--talk`` + 4 s, or SIPp's end if sooner, so the
few calls SIPp may wait 60 s for do not dilute it), the app's CPU per call
over the same time (/proc/PID/stat, 10 ms ticks), and for the Stasis apps
p50/p99 of StasisStart -> answer request sent, as each app measures it.
Everything (SIPp's failure counters, CPU to SIPp's end, the apps' numbers)
goes to ``--out``; logs and SIPp's files to ``--work-dir`` (a fresh temporary
folder unless given).

Calls of other users of this Asterisk (any channel that is not PJSIP/sipp-* or
PJSIP/op-*) are waited out before each step, and never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import ctypes
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from base64 import b64encode
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SCENARIOS = BENCH / "real_asterisk"
HOST = "127.0.0.1"
ASTERISK_SIP = f"{HOST}:5060"
UAC_PORT, UAS_PORT = 5061, 5070
UAC_MEDIA, UAS_MEDIA = 14000, 16000  # SIPp's RTP sockets, apart from each other's
SOCKET_BUFFER = 4 * 1024 * 1024  # SIPp's UDP buffers: no SIP lost in a burst
OURS = ("PJSIP/sipp-", "PJSIP/op-")  # channel names of this bench's calls
OUR_BRIDGE = re.compile(r"^(switchboard-bench-.*|\d+\.\d+-bridge)$")
READY_WITHIN = 20.0  # s for an app to connect
DRAIN_WITHIN = 10.0  # s for Asterisk's channels to go after the last call
IDLE_WITHIN = 300.0  # s to wait for other users' calls to end before a step
SUCCESS = 0.99
CALL_MARGIN = 4.0  # s: a call's beep, ringing and teardown, with room, over its talk
UAC_GRACE = 90.0  # s a UAC may run past its calls and their talk (SIPp waits 60 s for a BYE)
PR_SET_PDEATHSIG = 1


@dataclasses.dataclass(frozen=True)
class Flow:
    name: str  # also the extension SIPp calls
    app: str | None  # the Stasis app, None: plain dialplan


FLOWS = {
    "native": Flow("native", None),
    "minimal": Flow("minimal", "bench-minimal"),
    "switchboard": Flow("switchboard", "switchboard-bench"),
}


@dataclasses.dataclass
class Step:
    flow: str
    rate: int
    planned: int
    placed: int = 0  # SIPp UAC: calls started
    caller_ok: int = 0  # ... completed
    caller_failed: int = 0
    caller_failures: dict[str, int] = dataclasses.field(default_factory=dict)  # SIPp counters
    employee_ok: int = 0  # SIPp UAS: calls answered, talked and hung up during the step
    employee_failed: int = 0
    sipp_rc: int | None = None
    seconds: float = 0.0  # the UAC's whole run
    timed_out: bool = False
    leftovers: int = 0  # our channels still up DRAIN_WITHIN s after the last call
    leftover_names: list[str] = dataclasses.field(default_factory=list)
    leftover_bridges: int = 0
    foreign_channels: int = 0  # other users' channels seen when the step ended
    # CPU seconds (Asterisk, the app) from the first call placed to each mark: "placing"
    # (--seconds), "calls" (the calls' own time after it, or the UAC's end if sooner: a
    # few calls SIPp waits 60 s for do not dilute it), "run" (the UAC's end)
    cpu: dict[str, Cpu] = dataclasses.field(default_factory=dict)
    app: dict[str, Any] | None = None  # the app's stats file
    error: str | None = None

    @property
    def asterisk_core(self) -> float | None:
        """Asterisk's CPU while calls were placed, in cores."""
        mark = self.cpu.get("placing")
        return mark.asterisk / mark.seconds if mark and mark.seconds else None

    def ms_per_call(self, who: str) -> float | None:
        """CPU ms per call placed, of "asterisk" or "app", over the calls' time."""
        mark = self.cpu.get("calls")
        value = None if mark is None else getattr(mark, who)
        return value / self.placed * 1e3 if value is not None and self.placed else None

    @property
    def success(self) -> float:
        return min(self.caller_ok, self.employee_ok) / self.placed if self.placed else 0.0

    @property
    def passed(self) -> bool:
        return self.success >= SUCCESS and self.leftovers == 0 and self.error is None

    def delays_ms(self) -> list[float]:
        return [d * 1e3 for d in (self.app or {}).get("answer_delays", [])]


@dataclasses.dataclass(frozen=True)
class Cpu:
    seconds: float  # since the first call was placed
    asterisk: float  # CPU seconds over them
    app: float | None


class CpuMarks:
    """CPU of Asterisk and the app since ``start()``, sampled at given moments."""

    def __init__(self, asterisk_pid: int, app_pid: int | None) -> None:
        self.pids = (asterisk_pid, app_pid)
        self.started = 0.0
        self.zero = (0.0, 0.0)
        self.marks: dict[str, Cpu] = {}
        self.names: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def _now(self) -> tuple[float, float | None]:
        asterisk, app = self.pids
        try:
            app_cpu = cpu_seconds(app) if app is not None else None
        except (FileNotFoundError, ProcessLookupError):
            app_cpu = None  # the app is gone
        return cpu_seconds(asterisk), app_cpu

    def start(self, marks: dict[str, float]) -> None:
        """Zero now; take mark ``name`` ``after`` s from now (or at ``finish()``)."""
        self.started = time.monotonic()
        asterisk, app = self._now()
        self.zero = (asterisk, app or 0.0)
        self.names = list(marks)
        self.tasks = [asyncio.create_task(self._at(name, after)) for name, after in marks.items()]

    def take(self, name: str) -> None:
        if name in self.marks:
            return
        asterisk, app = self._now()
        self.marks[name] = Cpu(
            time.monotonic() - self.started,
            asterisk - self.zero[0],
            None if app is None else app - self.zero[1],
        )

    async def _at(self, name: str, after: float) -> None:
        await asyncio.sleep(after)
        self.take(name)

    def finish(self, last: str) -> dict[str, Cpu]:
        """Marks not reached yet are taken now, and ``last``."""
        for task in self.tasks:
            task.cancel()
        for name in [*self.names, last]:
            self.take(name)
        return self.marks


class Children:
    """Every process the bench starts: each is stopped however the bench ends."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(
        self, *cmd: str, cwd: Path, stdout: int | None, stderr: Path
    ) -> asyncio.subprocess.Process:
        with stderr.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=err,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.procs.append(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, within: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``within`` s; its exit status."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), within)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)
        assert proc.returncode is not None
        return proc.returncode

    async def stop_all(self) -> None:
        for proc in list(self.procs):
            await self.stop(proc, within=5.0)


def _die_with_parent() -> None:
    """In a child: SIGTERM when the bench dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (/proc/PID/stat utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sipp_counters(stat_file: Path) -> dict[str, int]:
    """The cumulative counters of SIPp's last statistics line (-trace_stat)."""
    try:
        rows = list(csv.reader(stat_file.read_text().splitlines(), delimiter=";"))
    except FileNotFoundError:
        return {}
    if len(rows) < 2:
        return {}
    return {
        name.removesuffix("(C)"): int(value)
        for name, value in zip(rows[0], rows[-1], strict=False)
        if name.endswith("(C)") and value.isdigit()
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Ari:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.base = url.rstrip("/") + "/ari"
        token = b64encode(f"{user}:{password}".encode()).decode()
        self.http = aiohttp.ClientSession(
            headers={"Authorization": f"Basic {token}"},
            timeout=aiohttp.ClientTimeout(total=10),
        )

    async def get(self, path: str) -> Any:
        async with self.http.get(self.base + path) as response:
            response.raise_for_status()
            return await response.json()

    async def status(self, method: str, path: str) -> int:
        async with self.http.request(method, self.base + path) as response:
            await response.read()
            return response.status

    async def channels(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Asterisk's channels: (this bench's, everybody else's)."""
        every: list[dict[str, Any]] = await self.get("/channels")
        ours = [c for c in every if str(c.get("name", "")).startswith(OURS)]
        return ours, [c for c in every if c not in ours]


class Bench:
    def __init__(self, args: argparse.Namespace, ari: Ari, work: Path) -> None:
        self.args = args
        self.ari = ari
        self.work = work
        self.children = Children()
        self.uas_stats = work / "uas.csv"

    async def start_uas(self) -> None:
        """The employee's phone, for the whole run."""
        cmd = [
            self.args.sipp,
            "-sf",
            str(SCENARIOS / "uas_answer_bye.xml"),
            "-i",
            HOST,
            "-p",
            str(UAS_PORT),
            "-mp",
            str(UAS_MEDIA),
            "-d",
            str(round(self.args.talk * 1000)),
            "-nostdin",
            "-buff_size",
            str(SOCKET_BUFFER),
            "-trace_stat",
            "-stf",
            str(self.uas_stats),
            "-fd",
            "1",
            "-trace_err",
            "-error_file",
            str(self.work / "uas_errors.log"),
        ]
        proc = await self.children.start(
            *cmd, cwd=self.work, stdout=asyncio.subprocess.DEVNULL, stderr=self.work / "uas.err"
        )
        await asyncio.sleep(1.0)
        if proc.returncode is not None:
            raise SystemExit(
                f"the SIPp UAS on {HOST}:{UAS_PORT} exited at once ({proc.returncode}): "
                f"see {self.work / 'uas.err'}"
            )

    async def uas_counts(self) -> tuple[int, int]:
        """The UAS's calls so far (successful, failed): its stats file, a second fresh."""
        await asyncio.sleep(1.2)
        counters = sipp_counters(self.uas_stats)
        return counters.get("SuccessfulCall", 0), counters.get("FailedCall", 0)

    async def wait_idle(self) -> str | None:
        """Until no call of another user is up (None), or why not."""
        deadline = time.monotonic() + IDLE_WITHIN
        said = False
        while True:
            _, foreign = await self.ari.channels()
            if not foreign:
                return None
            if time.monotonic() > deadline:
                return f"{len(foreign)} channels of other users still up after {IDLE_WITHIN:g} s"
            if not said:
                names = ", ".join(str(c.get("name")) for c in foreign[:3])
                print(f"  waiting for {len(foreign)} calls of other users to end ({names} ...)")
                said = True
            await asyncio.sleep(2.0)

    async def start_app(
        self, flow: Flow, tag: str, stats: Path
    ) -> asyncio.subprocess.Process | None:
        if flow.app is None:
            return None
        ari = ["--url", self.args.ari_url, "--user", self.args.ari_user]
        ari.append(f"--password={self.args.ari_password}")
        if flow.name == "minimal":
            cmd = [sys.executable, str(BENCH / "minimal_stasis_app.py"), *ari]
        else:
            cmd = [sys.executable, str(BENCH / "switchboard_runner.py"), *ari]
            cmd += ["--config", str(self.args.switchboard_config)]
            cmd += ["--employees", str(self.args.employees)]
            if self.args.switchboard_profile is not None:
                self.args.switchboard_profile.mkdir(parents=True, exist_ok=True)
                cmd += ["--profile", str(self.args.switchboard_profile / f"{tag}.prof")]
        cmd += ["--stats", str(stats)]
        log = self.work / f"{tag}-app.log"
        proc = await self.children.start(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=log)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_WITHIN)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.children.stop(proc)
            raise StepError(f"the {flow.name} app did not connect: see {log}")
        if await self.ari.status("GET", f"/applications/{flow.app}") != 200:
            await self.children.stop(proc)
            raise StepError(f"app {flow.app} is not registered in Asterisk after 'ready'")
        return proc

    async def run_uac(self, flow: Flow, step: Step, tag: str) -> None:
        stat_file = self.work / f"{tag}-uac.csv"
        cmd = [
            self.args.sipp,
            "-sf",
            str(SCENARIOS / "uac.xml"),
            "-s",
            flow.name,
            ASTERISK_SIP,
            "-i",
            HOST,
            "-p",
            str(UAC_PORT),
            "-mp",
            str(UAC_MEDIA),
            "-r",
            str(step.rate),
            "-m",
            str(step.planned),
            "-l",
            str(step.planned),  # never throttled by SIPp's default limit
            "-nostdin",
            "-buff_size",
            str(SOCKET_BUFFER),
            "-trace_stat",
            "-stf",
            str(stat_file),
            "-fd",
            "1",
            "-trace_err",
            "-error_file",
            str(self.work / f"{tag}-uac_errors.log"),
            "-trace_screen",
            "-screen_file",
            str(self.work / f"{tag}-uac_screen.log"),
        ]
        proc = await self.children.start(
            *cmd, cwd=self.work, stdout=asyncio.subprocess.DEVNULL, stderr=self.work / "uac.err"
        )
        hard = self.args.seconds + self.args.talk + UAC_GRACE
        try:
            step.sipp_rc = await asyncio.wait_for(proc.wait(), hard)
        except TimeoutError:
            step.timed_out = True
            step.error = f"SIPp UAC still running after {hard:g} s: stopped"
            step.sipp_rc = await self.children.stop(proc, within=5.0)
        if proc in self.children.procs:
            self.children.procs.remove(proc)
        counters = sipp_counters(stat_file)
        step.placed = counters.get("OutgoingCall", 0)
        step.caller_ok = counters.get("SuccessfulCall", 0)
        step.caller_failed = counters.get("FailedCall", 0)
        step.caller_failures = {
            k: v for k, v in counters.items() if k.startswith("Failed") and k != "FailedCall" and v
        }
        if step.placed == 0 and step.error is None:
            step.error = f"SIPp UAC placed no call (exit {step.sipp_rc}): see {self.work}/uac.err"

    async def drain(self, step: Step) -> None:
        """Up to DRAIN_WITHIN s for our channels to go; count and hang up what is left."""
        deadline = time.monotonic() + DRAIN_WITHIN
        while True:
            ours, foreign = await self.ari.channels()
            if not ours or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        step.leftovers = len(ours)
        step.leftover_names = [str(c.get("name")) for c in ours[:20]]
        step.foreign_channels = len(foreign)
        step.leftover_bridges = (await self.hang_up_ours())[1]

    async def hang_up_ours(self) -> tuple[int, int]:
        """Hang up this bench's channels and destroy its bridges: how many of each."""
        ours, _ = await self.ari.channels()
        for channel in ours:
            await self.ari.status("DELETE", f"/channels/{channel['id']}")
        bridges: list[dict[str, Any]] = await self.ari.get("/bridges")
        ours_b = [b for b in bridges if OUR_BRIDGE.match(str(b.get("id", "")))]
        for bridge in ours_b:
            await self.ari.status("DELETE", f"/bridges/{bridge['id']}")
        return len(ours), len(ours_b)

    async def step(self, flow: Flow, rate: int, asterisk_pid: int) -> Step:
        step = Step(flow.name, rate, rate * self.args.seconds)
        tag = f"{flow.name}-{rate}"
        stats = self.work / f"{tag}-app.json"
        busy = await self.wait_idle()
        if busy is not None:
            step.error = busy
            return step
        app: asyncio.subprocess.Process | None = None
        cpu: CpuMarks | None = None
        try:
            app = await self.start_app(flow, tag, stats)
            employee_before = await self.uas_counts()
            cpu = CpuMarks(asterisk_pid, app.pid if app else None)
            # a call: the beep, the ringing and answering, the talk; and a margin
            calls_end = self.args.seconds + self.args.talk + CALL_MARGIN
            cpu.start({"placing": self.args.seconds, "calls": calls_end})
            await self.run_uac(flow, step, tag)
            step.cpu = cpu.finish("run")
            step.seconds = step.cpu["run"].seconds
            await self.drain(step)
            employee_after = await self.uas_counts()
            step.employee_ok = employee_after[0] - employee_before[0]
            step.employee_failed = employee_after[1] - employee_before[1]
        except StepError as exc:
            step.error = str(exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            step.error = f"{type(exc).__name__}: {exc}"
        finally:
            for task in cpu.tasks if cpu is not None else []:
                task.cancel()
            if app is not None:
                rc = await self.children.stop(app)
                if rc != 0 and step.error is None:
                    step.error = f"the {flow.name} app exited with {rc}"
                with contextlib.suppress(FileNotFoundError, ValueError):
                    step.app = json.loads(stats.read_text())
        return step


class StepError(Exception):
    """A step that could not run (an app that did not connect ...): reported, not raised."""


def progress(step: Step) -> None:
    core, app = step.asterisk_core, step.ms_per_call("app")
    print(
        f"  {step.flow} {step.rate}/s: {step.placed} calls, caller ok {step.caller_ok}, "
        f"employee ok {step.employee_ok}, {step.leftovers} left"
        + (f"; Asterisk {core:.0%} of a core" if core is not None else "")
        + (f", app {app:.2f} ms/call" if app is not None else "")
        + (f"; {step.error}" if step.error else ""),
        flush=True,
    )


def cell(value: float | None, width: int, digits: int = 2) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def table(steps: list[Step], header: str) -> list[str]:
    lines = [
        header,
        f"{'flow':<12}{'rate/s':>7}{'calls':>7}{'ok %':>7}{'caller%':>8}{'empl%':>7}"
        f"{'left':>6}{'ast %core':>10}{'ast ms/call':>12}{'app ms/call':>12}"
        f"{'p50 ms':>8}{'p99 ms':>8}",
    ]
    for s in steps:
        calls = max(s.placed, 1)
        delays = s.delays_ms()
        core = s.asterisk_core
        lines.append(
            f"{s.flow:<12}{s.rate:>7}{s.placed:>7}{s.success * 100:>7.1f}"
            f"{s.caller_ok / calls * 100:>8.1f}{s.employee_ok / calls * 100:>7.1f}"
            f"{s.leftovers:>6}{cell(core * 100 if core is not None else None, 10, 1)}"
            f"{cell(s.ms_per_call('asterisk'), 12)}{cell(s.ms_per_call('app'), 12)}"
            f"{cell(percentile(delays, 0.5) if delays else None, 8)}"
            f"{cell(percentile(delays, 0.99) if delays else None, 8)}" + (" !" if s.error else "")
        )
    return lines


def best_rates(steps: list[Step], flows: list[str]) -> dict[str, int | None]:
    """Each flow's highest rate with >= 99 % success and nothing left over."""
    return {
        flow: max((s.rate for s in steps if s.flow == flow and s.passed), default=None)
        for flow in flows
    }


async def run(args: argparse.Namespace) -> int:
    work: Path = args.work_dir
    asterisk_pid: int = args.asterisk_pid
    ari = Ari(args.ari_url, args.ari_user, args.ari_password)
    bench = Bench(args, ari, work)
    steps: list[Step] = []
    interrupted = False
    try:
        info = await ari.get("/asterisk/info")
        version = info.get("system", {}).get("version", "?")
        nproc = len(os.sched_getaffinity(0))
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = (
            f"Asterisk {version}, {now}, nproc {nproc}; {args.seconds} s per step, "
            f"talk {args.talk:g} s; StasisStart -> answer sent (p50/p99) as each app measures it"
        )
        print(f"{header}\nlogs and SIPp files in {work}", flush=True)
        await bench.start_uas()
        for name in args.flows:
            flow = FLOWS[name]
            print(f"{name}:", flush=True)
            for rate in args.rates:
                step = await bench.step(flow, rate, asterisk_pid)
                steps.append(step)
                progress(step)
                if step.success < SUCCESS or step.error is not None:
                    break
    except asyncio.CancelledError:
        interrupted = True
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the clean-up below may wait (asyncio.timeout counts cancels)
        print("interrupted: results so far", flush=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"cannot reach Asterisk's ARI at {args.ari_url}: {exc}", file=sys.stderr)
    finally:
        await bench.children.stop_all()
        if interrupted:  # calls cut short: nothing of ours stays in Asterisk
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.5)
                channels, bridges = await bench.hang_up_ours()
                print(f"hung up {channels} channels, destroyed {bridges} bridges left over")
        await ari.http.close()
    if not steps:
        return 1
    lines = table(steps, header)
    best = best_rates(steps, args.flows)
    lines.append(
        "highest rate with >= 99 % ok and 0 left: "
        + ", ".join(f"{f} {r if r is not None else 'none'}" for f, r in best.items())
    )
    if any(s.error for s in steps):
        lines.append("! " + "; ".join(f"{s.flow} {s.rate}/s: {s.error}" for s in steps if s.error))
    print("\n" + "\n".join(lines))
    result = {
        "asterisk": version,
        "date": now,
        "nproc": nproc,
        "work_dir": str(work),
        "args": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
            if k != "ari_password"
        },
        "interrupted": interrupted,
        "highest_rate": best,
        "steps": [
            {
                **dataclasses.asdict(s),
                "success": s.success,
                "passed": s.passed,
                "answer_delay_ms": {
                    "p50": percentile(s.delays_ms(), 0.5),
                    "p99": percentile(s.delays_ms(), 0.99),
                    "mean": statistics.fmean(s.delays_ms()),
                }
                if s.delays_ms()
                else None,
            }
            for s in steps
        ],
        "table": lines,
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(f"raw numbers: {args.out}")
    return 130 if interrupted else 0


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--ari-url", default=env("SWITCHBOARD_TEST_ARI_URL", "http://127.0.0.1:8088")
    )
    parser.add_argument("--ari-user", default=env("SWITCHBOARD_TEST_ARI_USER", "switchboard"))
    parser.add_argument("--ari-password", default=env("SWITCHBOARD_TEST_ARI_PASSWORD", ""))
    parser.add_argument("--sipp", default=env("SIPP") or shutil.which("sipp") or "sipp")
    parser.add_argument(
        "--asterisk-pidfile",
        type=Path,
        default=Path(env("ASTERISK_PIDFILE", "/var/run/asterisk/asterisk.pid")),
        help="where Asterisk writes its pid (astrundir/asterisk.pid; env ASTERISK_PIDFILE)",
    )
    parser.add_argument(
        "--flows",
        default="native,minimal,switchboard",
        type=lambda text: text.split(","),
        help="comma-separated, of native, minimal, switchboard",
    )
    parser.add_argument(
        "--rates",
        default="20,40,60,80,100,120,140,160",
        type=lambda text: sorted(int(r) for r in text.split(",")),
        help="new calls a second, one step each (ascending)",
    )
    parser.add_argument("--seconds", type=int, default=20, help="how long each step places calls")
    parser.add_argument("--talk", type=float, default=3.0, help="the conversation, s")
    parser.add_argument("--out", type=Path, default=Path("results.json"))
    parser.add_argument("--switchboard-config", type=Path, default=BENCH / "real_asterisk.yaml")
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--switchboard-profile", type=Path)
    parser.add_argument(
        "--work-dir", type=Path, help="logs and SIPp's files (default: a new temp dir)"
    )
    args = parser.parse_args()
    unknown = [f for f in args.flows if f not in FLOWS]
    if unknown:
        parser.error(f"unknown flows {unknown}: choose from {', '.join(FLOWS)}")
    if args.seconds <= 0 or args.talk < 0 or not args.rates or min(args.rates) <= 0:
        parser.error("--seconds and --rates must be positive, --talk not negative")
    if not os.access(args.sipp, os.X_OK):
        parser.error(f"SIPp not found at {args.sipp} (--sipp or SIPP)")
    try:
        args.asterisk_pid = int(args.asterisk_pidfile.read_text().split()[0])
        cpu_seconds(args.asterisk_pid)
    except (OSError, ValueError, IndexError) as exc:
        parser.error(f"no running Asterisk from {args.asterisk_pidfile}: {exc}")
    args.work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(_main(args)))


async def _main(args: argparse.Namespace) -> int:
    """`run` in a task that SIGINT and SIGTERM cancel: it stops its children and reports."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    inner = asyncio.create_task(run(args))
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.cancel()
        return await inner


if __name__ == "__main__":
    main()
