"""Soak: calls through the fault proxy for N minutes, then what is left (issue 10).

    .venv/bin/python -m bench.soak [--minutes 10] [--rate 50] [--fault-rate 0.05]
        [--cut-every 30] [--stall 12] [--seed 1] [--give-up-after 120] [--dsn DSN] [--keep]

(from the repository's root: ``-m`` so that ``tests.faults`` and ``tests.postgres`` import.)

Three processes, as in production: ``switchboard run --json-logs`` (its RSS and
CPU read from /proc), the Asterisk simulator (``python -m asterisk_sim``), and
this one, which runs the fault proxy (`tests.faults.FaultProxy`) between them
and plays the callers.  Records go to PostgreSQL: a throwaway cluster
(`tests.postgres.throwaway_cluster`), or ``--dsn``'s database, migrated first;
this run's records are told apart by their ``instance`` (``SWITCHBOARD_INSTANCE``).

Every call plays a prompt, rings the operators' department (``one_by_one``; the
operators all answer at ``PJSIP/op`` after ``--answer-after`` s and hang up
``--talk`` s later) and is connected through a bridge.  A caller still on the
line ``--give-up-after`` s after calling hangs up (the dialplan fallback's too).  A ``--fault-rate``
share of ARI requests -- over HTTP and on the events websocket alike -- fails
(500), stalls ``--stall`` s (longer than the app's request timeout, then
forwarded or dropped), is dropped, or is forwarded and then failed or left
unanswered; the bridge's create/addChannel/destroy and the channel's
create/dial/hangup by rules of their own (counted apart), everything else by
``any``.  The websocket is cut every ``--cut-every`` s.

After ``--minutes`` of calls at ``--rate`` a second the proxy calms down, and
once the app has sent nothing for ``QUIET`` s (or ``--settle`` s have passed)
it prints: calls placed and ended, records (and the calls with none or more
than one), channels and bridges left in the simulator, the app's RSS every
``--sample-every`` s, its log lines by level, and the proxy's fault counters.
Exit status 1 when an invariant fails:

- each call that reached the app has exactly one record (matched by channel
  name), a call Asterisk could not hand to the app (its websocket was down:
  Stasis() failed) at most one, and no record belongs to a call not placed;
  every call id Asterisk saw (legs, bridges) has its record;
- no channel in the app and no bridge left (callers the app sent to the
  dialplan's fallback live on there, as in Asterisk: counted, not leftovers);
- RSS flat after warm-up: the last sample under load at most 10 % (and 5 MB)
  over the first one after ``--warm-up`` (default: three fifths of the run, at
  most 6 minutes: the app's bounded state fills in the first 5 minutes at 50
  calls/s; not judged on runs too short for it);
- the app alive to the end, and stopping cleanly.

When one fails it also prints the likely causes (the first fault on each failing
call's own requests, counted) and a closer look at a few such calls: the faults
on their requests, what the simulator was asked, what the app logged.  The work
folder (config, the app's log) is kept then; ``--keep`` keeps it anyway, with the
faults injected, the simulator's request log and its final state.

Target (issue 10): 10 minutes at 50 calls/s, 5 % of requests faulty, a cut every
30 s: every call exactly one record, nothing left, RSS flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import math
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import yaml

from ari_app.client import REQUEST_TIMEOUT
from switchboard.serving import run_serving
from switchboard.storage.migrate import migrate
from tests.faults import (
    Action,
    Delay,
    Drop,
    Fail,
    FailAfterForward,
    FaultPlan,
    FaultProxy,
    Injected,
    Rule,
)
from tests.postgres import throwaway_cluster

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
USER = "switchboard"
APP = "switchboard-soak"
OPERATOR_PHONE = "PJSIP/op"
CALLED = "74951112233"
# what matters for a call's resources: a fault there tests the app's clean-up
ROUTES = (
    "POST /bridges",
    "POST /bridges/*/addChannel",
    "DELETE /bridges/*",
    "POST /channels/create",
    "POST /channels/*/dial",
    "DELETE /channels/*",
    "any",
)
QUIET = 20.0  # s without an ARI request from the app (nothing held) once calm: calls are over
READY_WITHIN = 60.0  # s for `switchboard run` to connect
PR_SET_PDEATHSIG = 1
MB = 1024 * 1024


# --- the fault plan ---------------------------------------------------------------------------


def soak_plan(fault_rate: float, stall: float, seed: int) -> FaultPlan:
    """``fault_rate`` of each route's requests: a quarter each failing (500), stalling
    (then forwarded or dropped), dropped, and forwarded then failed or unanswered."""
    quarter = fault_rate / 4
    mix: list[tuple[Action, float]] = [
        (Fail(500), quarter),
        (Delay(stall, then="forward"), quarter / 2),
        (Delay(stall, then="drop"), quarter / 2),
        (Drop(), quarter),
        (FailAfterForward(500), quarter / 2),
        (FailAfterForward(None), quarter / 2),
    ]
    return FaultPlan(
        [Rule(route, action, share) for route in ROUTES for action, share in mix], seed=seed
    )


# --- the company ------------------------------------------------------------------------------


def soak_company(args: argparse.Namespace, spill: Path) -> dict[str, Any]:
    """A prompt, then the operators (enough for every call's conversation at once)."""
    count = max(20, math.ceil(args.rate * (args.answer_after + args.talk + 2) * 2))
    operators = [
        {"id": f"op{n}", "name": f"Operator {n}", "extension": str(1000 + n)}
        for n in range(1, count + 1)
    ]
    return {
        "timezone": "UTC",
        "employees": operators,
        "departments": [
            {
                "id": "ops",
                "name": "Operators",
                "strategy": "one_by_one",
                "ring_delay": 20,
                "ring_timeout": 20,
                "members": [o["id"] for o in operators],
            },
        ],
        "prompts": {"hello": {"duration": 1.0}},
        "default_scenario": "soak",
        "limits": {"max_calls": 5000},
        "asterisk": {"app": APP, "endpoints": {"employee": OPERATOR_PHONE}},
        "database": {"spill_dir": str(spill)},
        "scenarios": {
            "soak": {
                "start": "hello",
                "nodes": {
                    "hello": {"type": "play", "prompt": "hello", "next": "ring"},
                    "ring": {"type": "dial", "target": "ops", "noanswer": "bye"},
                    "bye": {"type": "hangup"},
                },
            }
        },
    }


# --- processes --------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In a child: SIGTERM when this soak dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def spawn(
    *argv: str, log: Path, env: dict[str, str] | None = None, read_stdout: bool = False
) -> asyncio.subprocess.Process:
    """``python ARGV`` from the repository, its output (stdout too, unless read) in ``log``."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if read_stdout else out,
            stderr=out,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )


async def start_simulator(
    config: Path, password: str, work: Path
) -> tuple[asyncio.subprocess.Process, str]:
    """``python -m asterisk_sim`` on a free port; its URL from its first line."""
    proc = await spawn(
        "-m", "asterisk_sim", "--host", HOST, "--port", "0", "--user", USER,
        f"--password={password}", "--durations-from", str(config),
        "--gc-freeze", "1",  # its full collections would stall the calls, not the app
        log=work / "simulator.log", read_stdout=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
    except TimeoutError:
        line = b""
    url = line.decode().strip()
    if not url.startswith(f"http://{HOST}:"):
        await stop(proc)
        raise SystemExit(f"the simulator did not start (said {url!r})")
    return proc, url


async def start_app(
    config: Path, work: Path, ari_url: str, password: str, dsn: str, instance: str
) -> asyncio.subprocess.Process:
    """``switchboard run --json-logs`` against the proxy, once connected."""
    env = {
        **os.environ,
        "SWITCHBOARD_ARI_URL": ari_url,
        "SWITCHBOARD_ARI_PASSWORD": password,
        "SWITCHBOARD_DSN": dsn,
        "SWITCHBOARD_INSTANCE": instance,
    }
    log = work / "app.log"
    proc = await spawn("-m", "switchboard.cli", "run", "--json-logs", str(config), env=env, log=log)
    deadline = time.monotonic() + READY_WITHIN
    while b'"ari connected"' not in log.read_bytes():  # the log is all it says
        if proc.returncode is not None or time.monotonic() > deadline:
            await stop(proc)
            raise SystemExit(f"switchboard run did not connect: see {log}")
        await asyncio.sleep(0.2)
    return proc


async def stop(proc: asyncio.subprocess.Process, within: float = 30.0) -> int:
    """SIGTERM, then SIGKILL after ``within`` s; the exit status."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


def rss(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (/proc/PID/stat)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


# --- the calls --------------------------------------------------------------------------------


@dataclasses.dataclass
class Placed:
    caller: str
    channel_id: str


class Callers:
    """Places calls at a steady rate through the simulator's control API."""

    def __init__(self, http: aiohttp.ClientSession, sim_url: str, give_up_after: float) -> None:
        self.http = http
        self.sim_url = sim_url
        self.give_up_after = give_up_after
        self.placed: dict[str, Placed] = {}  # by channel name
        self.refused = 0

    async def place(self, n: int) -> None:
        caller = f"7903{n:07d}"
        # a caller still on the line after ``give_up_after`` s hangs up, as people do: a
        # caller Asterisk could not hand to the app (Stasis() failed during a cut) would
        # otherwise sit in the dialplan's fallback for good and grow Asterisk's channel
        # list, which the app reads after each reconnection
        script = {"hangup_after": self.give_up_after}
        body = {"caller": caller, "called": CALLED, "app": APP, "script": script}
        async with self.http.post(f"{self.sim_url}/_sim/calls", json=body) as response:
            if response.status != 201:
                self.refused += 1
                return
            data = await response.json()
        self.placed[str(data["name"])] = Placed(caller, str(data["channel_id"]))

    async def run(self, rate: float, seconds: float, alive: Callable[[], bool]) -> None:
        """``rate`` calls a second for ``seconds`` (while ``alive()``)."""
        start = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        for n in range(round(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not alive():
                break
            task = asyncio.create_task(self.place(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)


async def script_operators(
    http: aiohttp.ClientSession, sim_url: str, answer_after: float, talk: float
) -> None:
    body = {
        "endpoint": OPERATOR_PHONE,
        "kind": "answer",
        "after": answer_after,
        "hangup_after": talk,
    }
    async with http.post(f"{sim_url}/_sim/endpoints", json=body) as response:
        response.raise_for_status()


# --- watching ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Sample:
    at: float  # s since the calls started
    rss: int
    placing: bool


class Watch:
    """The app's RSS every ``every`` s, with a progress line each time."""

    def __init__(
        self, pid: int, every: float, proxy: FaultProxy, db: asyncpg.Connection, instance: str
    ) -> None:
        self.pid = pid
        self.every = every
        self.proxy = proxy
        self.db = db
        self.instance = instance
        self.samples: list[Sample] = []
        self.placing = True
        self.start = time.monotonic()
        self._one_at_a_time = asyncio.Lock()

    async def sample(self, callers: Callers) -> None:
        async with self._one_at_a_time:  # one database connection
            await self._sample(callers)

    async def _sample(self, callers: Callers) -> None:
        at = time.monotonic() - self.start
        if self.samples and at - self.samples[-1].at < 1.0:
            return  # the periodic one and the end of placing, at once
        self.samples.append(Sample(at, rss(self.pid), self.placing))
        records = await count_records(self.db, self.instance)
        faults = sum(
            n
            for key, n in self.proxy.counts.items()
            if key.split()[-1] not in ("requests", "websockets", "cuts")
        )
        print(
            f"  {clock(at)}  placed {len(callers.placed):6d}  records {records:6d}  "
            f"RSS {self.samples[-1].rss / MB:6.1f} MB  faults {faults:5d}  "
            f"cuts {self.proxy.counts['cuts']:3d}  held {self.proxy.holding:3d}",
            flush=True,
        )

    async def run(self, callers: Callers) -> None:
        while True:
            await self.sample(callers)
            await asyncio.sleep(self.every - (time.monotonic() - self.start) % self.every)


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


async def count_records(db: asyncpg.Connection, instance: str) -> int:
    count = await db.fetchval("SELECT count(*) FROM calls WHERE instance = $1", instance)
    return int(count)


async def quiet(proxy: FaultProxy, within: float) -> float:
    """Until the app has asked nothing for `QUIET` s with nothing held; s it took."""
    start = time.monotonic()

    def asked() -> int:
        return proxy.counts["http requests"] + proxy.counts["ws requests"]

    seen, since = asked(), time.monotonic()
    while time.monotonic() - start < within:
        await asyncio.sleep(1.0)
        if asked() != seen or proxy.holding:
            seen, since = asked(), time.monotonic()
        elif time.monotonic() - since >= QUIET:
            break
    return time.monotonic() - start


# --- what is left -------------------------------------------------------------------------------


@dataclasses.dataclass
class Findings:
    placed: int = 0
    refused: int = 0
    never_offered: int = 0  # Stasis() failed: the websocket was down (the dialplan's call)
    to_dialplan: int = 0  # the app sent them to the fallback: they live on there
    ended: int = 0
    records: int = 0
    results: Counter[str] = dataclasses.field(default_factory=Counter)
    one_record: int = 0
    no_record: list[str] = dataclasses.field(default_factory=list)
    many_records: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)  # not offered, 1 record
    # not offered, more than one: the simulator leaves a channel whose Stasis() failed
    # parked there (Asterisk moves on in the dialplan), so each reconnection finds it again
    unoffered_many: list[str] = dataclasses.field(default_factory=list)
    strangers: list[str] = dataclasses.field(default_factory=list)  # a record of no call placed
    unrecorded_ids: list[str] = dataclasses.field(default_factory=list)  # in Asterisk, no record
    callers_left: list[str] = dataclasses.field(default_factory=list)
    legs_left: list[str] = dataclasses.field(default_factory=list)  # ids: the call's id first
    bridges_left: list[str] = dataclasses.field(default_factory=list)


def findings(
    callers: Callers, state: dict[str, Any], rows: list[asyncpg.Record], instance: str
) -> Findings:
    found = Findings(placed=len(callers.placed), refused=callers.refused, records=len(rows))
    found.results = Counter(str(r["result"]) for r in rows)
    per_channel = Counter(str(r["channel"]) for r in rows)
    channels = {str(c["name"]): c for c in state["channels"]}
    for name in callers.placed:
        channel = channels.get(name, {})
        offered = not channel.get("stasis_failed", False)
        found.never_offered += not offered
        found.to_dialplan += channel.get("continued_to") is not None
        found.ended += not channel.get("live", True)
        have = per_channel[name]
        if not offered:
            # the app never heard of it; a reconnection may find it parked and send it on
            if have == 1:
                found.unexpected.append(name)
            elif have > 1:
                found.unoffered_many.append(name)
        elif have == 1:
            found.one_record += 1
        elif have == 0:
            found.no_record.append(name)
        else:
            found.many_records.append(name)
    found.strangers = sorted(set(per_channel) - set(callers.placed))
    call_id = call_id_pattern(instance)
    seen: set[str] = set()
    for item in [*state["channels"], *state["bridges"]]:
        match = call_id.match(str(item["id"]))
        if match:
            seen.add(match.group())
    found.unrecorded_ids = sorted(seen - {str(r["call_id"]) for r in rows})
    for c in state["channels"]:
        if c["live"] and not c["stasis_failed"] and c["continued_to"] is None:
            if c["name"] in callers.placed:
                found.callers_left.append(c["name"])
            else:
                found.legs_left.append(c["id"])
    found.bridges_left = [str(b["id"]) for b in state["bridges"] if b["live"]]
    return found


def call_id_pattern(instance: str) -> re.Pattern[str]:
    """A call id (`ari_app.runtime`: instance and 12 hex digits), which starts the ids of
    its legs and bridge."""
    return re.compile(re.escape(instance) + r"-[0-9a-f]{12}")


# --- a closer look at the calls that went wrong --------------------------------------------

EXAMPLES = 3  # calls of each kind of failure looked at closely


@dataclasses.dataclass
class Suspect:
    what: str  # "no record: PJSIP/trunk-00000003"
    channel: str = ""  # the caller's channel: name and id
    channel_id: str = ""
    call_ids: set[str] = dataclasses.field(default_factory=set)

    def _ids(self) -> re.Pattern[str]:
        """Its ids as whole words: channel ``17.8`` is not ``17.80``."""
        ids = [self.channel_id, *self.call_ids]
        alternatives = "|".join(re.escape(i) for i in ids if i) or "(?!)"
        return re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w.])")

    def concerns(self, text: str) -> bool:
        named = bool(self.channel) and f'"{self.channel}"' in text
        return named or self._ids().search(text) is not None

    def shorten(self, path: str) -> str:
        """``/channels/{caller}/answer``, ``/bridges/{call}-bridge``."""
        for call_id in self.call_ids:
            path = path.replace(call_id, "{call}")
        return path.replace(self.channel_id, "{caller}") if self.channel_id else path


def suspects(found: Findings, callers: Callers, instance: str) -> list[Suspect]:
    picked = [
        Suspect(f"{what}: {name}", name, callers.placed[name].channel_id)
        for what, names in (("no record", found.no_record), ("records", found.many_records))
        for name in names[:EXAMPLES]
    ]
    pattern = call_id_pattern(instance)
    for what, ids in (("leg left", found.legs_left), ("bridge left", found.bridges_left)):
        for item in ids[:EXAMPLES]:
            match = pattern.match(item)
            picked.append(Suspect(f"{what}: {item}", call_ids={match.group()} if match else set()))
    return picked


def read_log(path: Path, picked: list[Suspect]) -> dict[int, list[dict[str, Any]]]:
    """Each suspect's log lines; a caller's call id learnt from them on the way."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(picked))}
    with path.open() as lines:
        for line in lines:
            for i, suspect in enumerate(picked):
                if suspect.concerns(line):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        entry = orjson.loads(line)
                        found[i].append(entry)
                        if entry.get("call_id"):
                            suspect.call_ids.add(str(entry["call_id"]))
    return found


def explain(
    suspect: Suspect,
    log: list[dict[str, Any]],
    injected: list[Injected],
    requests: list[dict[str, Any]],
    most: int = 20,
) -> list[str]:
    """What the proxy did to a call, what Asterisk saw of it, what the app logged."""
    faults = [
        f"{f.transport} {f.kind} {f.method} {suspect.shorten(f.path)}"
        for f in injected
        if suspect.concerns(f"{f.path}?{f.query}")
    ]
    asked = [
        f"{r['t']:.1f} {r['method']} {suspect.shorten(r['path'].removeprefix('/ari'))} "
        f"{r['status']}"
        for r in requests
        if suspect.concerns(f"{r['path']} {' '.join(map(str, r['query'].values()))}")
    ]
    said = [
        f"{e.get('level')} {e.get('event')}"
        + (f" ({suspect.shorten(str(e['error']))})" if e.get("error") else "")
        + (f" [{e['reason']}]" if e.get("reason") else "")
        for e in log
    ]
    calls = f" (call {', '.join(sorted(suspect.call_ids))})" if suspect.channel else ""
    return [
        suspect.what + calls,
        "    faults: " + _some(faults, most),
        "    Asterisk saw (t, request, status): " + _some(asked, most),
        "    app log: " + _some(said, most),
    ]


def _some(items: list[str], most: int) -> str:
    return "; ".join(items[:most]) + (f" ... ({len(items)})" if len(items) > most else "") or "-"


def call_ids_by_channel(log: Path) -> dict[str, set[str]]:
    """Channel name -> the call ids the app gave it (its ``call started`` lines)."""
    found: dict[str, set[str]] = {}
    with log.open("rb") as lines:
        for line in lines:
            if b'"call started"' in line:
                with contextlib.suppress(orjson.JSONDecodeError):
                    entry = orjson.loads(line)
                    found.setdefault(str(entry.get("channel")), set()).add(str(entry["call_id"]))
    return found


def causes(
    found: Findings, callers: Callers, instance: str, injected: list[Injected], log: Path
) -> list[str]:
    """For every call without a record and every bridge left: the first fault on its own
    requests (shortened), counted."""
    pattern = call_id_pattern(instance)
    by_id: dict[str, list[int]] = {}  # a channel or call id -> its faults (their order)
    for n, fault in enumerate(injected):
        for token in [*fault.path.split("/"), *re.split(r"[=&,]", fault.query)]:
            match = pattern.match(token)
            for key in {token, match.group() if match else token}:
                by_id.setdefault(key, []).append(n)
    calls = call_ids_by_channel(log)
    lines = []
    for what, failing in (
        (
            "no record",
            [(n, callers.placed[n].channel_id, calls.get(n, set())) for n in found.no_record],
        ),
        ("bridge left", [(b, "", {b.removesuffix("-bridge")}) for b in found.bridges_left]),
    ):
        first: Counter[str] = Counter()
        for _, channel_id, call_ids in failing:
            suspect = Suspect(what, channel_id=channel_id, call_ids=call_ids)
            hits = sorted({i for key in (channel_id, *call_ids) if key for i in by_id.get(key, [])})
            if not hits:
                first["no fault on its own requests"] += 1
                continue
            fault = injected[hits[0]]
            first[f"{fault.kind} {fault.method} {suspect.shorten(fault.path)}"] += 1
        if first:
            lines.append(
                f"{what} ({len(failing)}), by the first fault on its requests: "
                + "; ".join(f"{cause} x{n}" for cause, n in first.most_common(6))
            )
    return lines


async def keep_evidence(
    work: Path, proxy: FaultProxy, http: aiohttp.ClientSession, sim_url: str, state: Any
) -> None:
    """For a post-mortem: the faults injected, what the simulator was asked, its state."""
    with (work / "faults.jsonl").open("wb") as out:
        for fault in proxy.injected:
            out.write(orjson.dumps(fault) + b"\n")
    async with http.get(f"{sim_url}/_sim/requests") as response:
        (work / "requests.json").write_bytes(await response.read())
    (work / "state.json").write_bytes(orjson.dumps(state))


async def diagnose(
    found: Findings,
    callers: Callers,
    instance: str,
    proxy: FaultProxy,
    http: aiohttp.ClientSession,
    sim_url: str,
    log: Path,
) -> list[str]:
    """A few failing calls, closely; nothing when every call was fine."""
    picked = suspects(found, callers, instance)
    if not picked:
        return []
    injected = list(proxy.injected)
    summary = causes(found, callers, instance, injected, log)
    logs = read_log(log, picked)
    async with http.get(f"{sim_url}/_sim/requests") as response:
        requests = orjson.loads(await response.read())
    return summary + [
        line for i, s in enumerate(picked) for line in explain(s, logs[i], injected, requests)
    ]


def rss_verdict(samples: list[Sample], warm_up: float) -> tuple[bool | None, str]:
    """Flat after warm-up? (None: too short to say) and the samples, labelled."""
    labels = []
    for i, s in enumerate(samples):
        label = "start" if i == 0 else "end" if i == len(samples) - 1 else clock(s.at)
        labels.append(f"{label} {s.rss / MB:.1f}")
    text = ", ".join(labels)
    under_load = [s for s in samples if s.placing and s.at >= warm_up]
    if len(under_load) < 2:
        return None, f"{text} (not judged: under 2 samples after the {warm_up:g} s warm-up)"
    first, last = under_load[0], under_load[-1]
    growth = last.rss - first.rss
    flat = growth <= max(0.10 * first.rss, 5 * MB)
    verdict = "flat" if flat else "GROWING"
    return flat, (
        f"{text}; after warm-up {first.rss / MB:.1f} -> {last.rss / MB:.1f} "
        f"({growth / MB:+.1f} MB, {growth / first.rss:+.1%}): {verdict}"
    )


def log_summary(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """Lines by level, warnings and worse by event, and how often the app connected."""
    levels: Counter[str] = Counter()
    events: Counter[str] = Counter()
    connected = 0
    with path.open("rb") as lines:
        for line in lines:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                levels["(not JSON)"] += 1
                continue
            level, event = str(entry.get("level", "?")), str(entry.get("event", ""))
            levels[level] += 1
            connected += event == "ari connected"
            if level not in ("debug", "info"):
                events[f"{level} {event}"] += 1
    return levels, events, connected


# --- the run ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    found: Findings
    samples: list[Sample]
    app_died: int | None  # exit status, if it died before the end
    placing: float  # s calls arrived
    settling: float  # s they took to end once calm
    counts: Counter[str]  # the proxy's
    by_rule: Counter[str]
    closer: list[str]  # a closer look at a few calls that went wrong
    app_exit: int = 0
    app_cpu: float = 0.0  # s
    sim_cpu: float = 0.0
    own_cpu: float = 0.0


async def soak(args: argparse.Namespace, dsn: str, work: Path) -> Outcome:
    instance = f"soak-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    config = work / "soak.yaml"
    config.write_text(yaml.safe_dump(soak_company(args, work / "spill"), sort_keys=False))
    db = await asyncpg.connect(dsn)
    try:
        await migrate(db)
        sim, sim_url = await start_simulator(config, password, work)
        try:
            plan = soak_plan(args.fault_rate, args.stall, args.seed)
            async with (
                FaultProxy(sim_url, plan) as proxy,
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as http,
            ):
                await script_operators(http, sim_url, args.answer_after, args.talk)
                app = await start_app(config, work, proxy.url, password, dsn, instance)
                try:
                    outcome = await drive(
                        args, http, sim_url, proxy, app, db, instance, work / "app.log", args.keep
                    )
                    outcome.sim_cpu = cpu_seconds(sim.pid)
                finally:
                    app_cpu = cpu_seconds(app.pid)
                    app_exit = await stop(app)
                outcome.app_cpu, outcome.app_exit = app_cpu, app_exit
        finally:
            await stop(sim)
    finally:
        await db.close()
    outcome.own_cpu = sum(os.times()[:2])
    return outcome


async def drive(
    args: argparse.Namespace,
    http: aiohttp.ClientSession,
    sim_url: str,
    proxy: FaultProxy,
    app: asyncio.subprocess.Process,
    db: asyncpg.Connection,
    instance: str,
    log: Path,
    keep: bool,
) -> Outcome:
    callers = Callers(http, sim_url, args.give_up_after)
    watch = Watch(app.pid, args.sample_every, proxy, db, instance)
    watcher = asyncio.create_task(watch.run(callers))
    if args.cut_every > 0:
        proxy.cut_every(args.cut_every)
    try:
        await callers.run(args.rate, args.minutes * 60, lambda: app.returncode is None)
        placing = time.monotonic() - watch.start
        await watch.sample(callers)  # the last one under load
        watch.placing = False
        proxy.calm()
        print(
            f"  {clock(placing)}  calm: no more faults or cuts; waiting for the calls to end",
            flush=True,
        )
        settling = await quiet(proxy, args.settle)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    await watch.sample(callers)
    async with http.get(f"{sim_url}/_sim/state") as response:
        state = orjson.loads(await response.read())
    rows = await db.fetch(
        "SELECT call_id, channel, result FROM calls WHERE instance = $1", instance
    )
    found = findings(callers, state, rows, instance)
    closer = await diagnose(found, callers, instance, proxy, http, sim_url, log)
    if keep:
        await keep_evidence(log.parent, proxy, http, sim_url, state)
    return Outcome(
        found=found,
        closer=closer,
        samples=watch.samples,
        app_died=app.returncode,
        placing=placing,
        settling=settling,
        counts=Counter(proxy.counts),
        by_rule=Counter(proxy.by_rule),
    )


# --- the printout -------------------------------------------------------------------------------


def examples(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" ... ({len(names)})" if len(names) > limit else "")


def report(args: argparse.Namespace, outcome: Outcome, work: Path) -> list[str]:
    """Print the findings; the invariants that failed."""
    f = outcome.found
    failed: list[str] = []
    print(
        f"calls: placed {f.placed} in {outcome.placing:.0f} s (refused {f.refused}); "
        f"{f.never_offered} arrived while the websocket was down (Stasis() failed: the "
        f"dialplan's, no record); ended {f.ended}; sent to the fallback by the app "
        f"{f.to_dialplan}; settled in {outcome.settling:.0f} s"
    )
    unrecorded = f.never_offered - len(f.unexpected) - len(f.unoffered_many)
    print(
        f"records: {f.records} ({', '.join(f'{k} {v}' for k, v in f.results.most_common())})\n"
        f"  calls that reached the app: {f.one_record} with exactly 1 record, "
        f"{len(f.no_record)} with none, {len(f.many_records)} with more\n"
        f"  calls never offered: {unrecorded} with no record, {len(f.unexpected)} with 1 (found "
        f"parked after a reconnection, sent to the fallback), {len(f.unoffered_many)} with more\n"
        f"  records of no call placed: {len(f.strangers)}; call ids Asterisk saw without a "
        f"record: {len(f.unrecorded_ids)}"
    )
    for label, names in (
        ("no record", f.no_record),
        ("more than one record", f.many_records),
        ("never offered, more than one record", f.unoffered_many),
        ("records of no call placed", f.strangers),
        ("call ids without a record", f.unrecorded_ids),
    ):
        if names:
            failed.append(f"{len(names)} {label}")
            print(f"  {label}: {examples(names)}")
    left = len(f.callers_left) + len(f.legs_left)
    print(
        f"left in the simulator: {left} channels in the app ({len(f.callers_left)} callers, "
        f"{len(f.legs_left)} legs), {len(f.bridges_left)} bridges"
    )
    for label, names in (
        ("callers", f.callers_left),
        ("legs", f.legs_left),
        ("bridges", f.bridges_left),
    ):
        if names:
            failed.append(f"{len(names)} {label} left")
            print(f"  {label} left: {examples(names)}")
    flat, text = rss_verdict(outcome.samples, args.warm_up)
    print(f"app RSS (MB, every {args.sample_every:g} s): {text}")
    if flat is False:
        failed.append("RSS growing")
    levels, events, connected = log_summary(work / "app.log")
    span = outcome.placing + outcome.settling
    print(
        f"app: CPU {outcome.app_cpu / span:.0%} of a core (simulator {outcome.sim_cpu / span:.0%}, "
        f"proxy and callers {outcome.own_cpu / span:.0%}); connected {connected} times; "
        f"log lines {', '.join(f'{k} {v}' for k, v in sorted(levels.items()))}"
    )
    for event, n in events.most_common(8):
        print(f"  {n:6d}  {event}")
    if outcome.app_died is not None:
        failed.append(f"the app died (exit {outcome.app_died})")
    elif outcome.app_exit != 0:
        failed.append(f"the app stopped with exit {outcome.app_exit}")
    print("proxy: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items())))
    print("  faults by rule: " + ", ".join(f"{k} x{v}" for k, v in outcome.by_rule.most_common()))
    if outcome.closer:
        print("a closer look (request paths shortened: {caller} channel, {call} id):")
        for line in outcome.closer:
            print("  " + line)
    return failed


async def main_async(args: argparse.Namespace, dsn: str, work: Path) -> int:
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} calls/s through the fault proxy; "
        f"{args.fault_rate:.0%} of ARI requests faulty (stalls {args.stall:g} s, the app's "
        f"timeout is {REQUEST_TIMEOUT:g} s); websocket cut every {args.cut_every:g} s; "
        f"seed {args.seed}; work folder {work}",
        flush=True,
    )
    outcome = await soak(args, dsn, work)
    failed = report(args, outcome, work)
    print("verdict: " + ("FAILED: " + "; ".join(failed) if failed else "every invariant held"))
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long calls arrive")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls a second")
    parser.add_argument(
        "--fault-rate", type=float, default=0.05, help="share of ARI requests faulted"
    )
    parser.add_argument(
        "--cut-every", type=float, default=30.0, help="s between websocket cuts (0: none)"
    )
    parser.add_argument(
        "--stall", type=float, default=REQUEST_TIMEOUT + 2, help="s a stalled request is held"
    )
    parser.add_argument("--seed", type=int, default=1, help="the fault plan's random seed")
    parser.add_argument("--answer-after", type=float, default=1.0, help="s an operator rings")
    parser.add_argument("--talk", type=float, default=3.0, help="s an operator talks")
    parser.add_argument(
        "--give-up-after",
        type=float,
        default=120.0,
        help="s after which a caller still on the line hangs up (the fallback's callers too)",
    )
    parser.add_argument("--sample-every", type=float, default=30.0, help="s between RSS samples")
    parser.add_argument(
        "--warm-up",
        type=float,
        default=None,
        help="s before RSS must be flat (default: three fifths of the run, at most 360)",
    )
    parser.add_argument(
        "--settle", type=float, default=120.0, help="s at most for calls to end once calm"
    )
    parser.add_argument("--dsn", help="PostgreSQL to record into (default: a throwaway cluster)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work folder: config, logs, faults, the simulator's requests and state "
        "(kept anyway when an invariant fails, without the last three)",
    )
    args = parser.parse_args()
    if args.rate <= 0 or args.minutes <= 0 or not 0 <= args.fault_rate <= 1:
        parser.error("--rate and --minutes must be positive, --fault-rate between 0 and 1")
    if args.warm_up is None:
        # at 50 calls/s RSS climbs for about 5 minutes while the app's bounded state
        # fills (the 10,000 callers it remembers, the allocator's high-water mark under
        # the cuts' bursts), then stays flat: 103.2 -> 103.6 MB from 6:00 to 21:30 of a
        # 20-minute run (issue 10)
        args.warm_up = min(360.0, args.minutes * 60 * 3 / 5)
    work = Path(tempfile.mkdtemp(prefix="switchboard-soak-"))
    with contextlib.ExitStack() as stack:
        dsn = args.dsn or stack.enter_context(throwaway_cluster())
        code = run_serving(main_async(args, dsn, work))
    if code == 0 and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
