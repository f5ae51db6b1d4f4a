"""Memory of callers waiting in a queue while the employees turn over (issue 10, finding 6).

    python bench/queue_waiting.py [--waiting 5000] [--agents 2] [--talk 1.0]
        [--turnover 150] [--rate 250]

The simulator (``python -m asterisk_sim``) and ``switchboard run`` run as
processes of their own.  ``--waiting`` callers are placed at ``--rate`` a second
into one queue served by ``--agents`` employees who answer at once and talk
``--talk`` seconds; nobody hangs up.  The app's resident memory (``/proc``) is
read before the first call, once every caller is waiting, and every 30 s of
``--turnover``; it prints the memory per waiting caller (the target is 50 KB)
and how much it grew while employees freed up and took callers (the target:
flat — a waiting caller's state does not grow with what happens to others).
No database: records stay in the app's memory (those of served callers only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ari_load import CALLED, HOST, USER, place_calls, stop_simulator

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
timezone: Europe/Moscow
employees:
{employees}
departments:
  - {{id: desk, strategy: one_by_one, ring_timeout: 20, members: [{members}]}}
numbers: [{{number: "{called}", scenario: main}}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: desk, announce_every: 60, max_wait: 86400, overflow: bye}}
      bye: {{type: hangup}}
"""


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def start(argv: list[str], env: dict[str, str], out: Path) -> asyncio.subprocess.Process:
    with out.open("w") as log:
        return await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


async def sim_state(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(f"{url}/_sim/state") as response:
        data: dict[str, object] = await response.json()
        return data


async def main(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    ids = [f"a{n:02}" for n in range(1, args.agents + 1)]
    employees = "\n".join(
        f'  - {{id: {e}, name: {e}, extension: "{200 + n}"}}' for n, e in enumerate(ids, 1)
    )
    config = folder / "queue.yaml"
    config.write_text(CONFIG.format(employees=employees, members=", ".join(ids), called=CALLED))
    password = secrets.token_urlsafe(12)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asterisk_sim", "--host", HOST, "--port", "0", "--user", USER,
        f"--password={password}", "--gc-freeze", "5", cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert sim.stdout is not None
    url = (await asyncio.wait_for(sim.stdout.readline(), 30)).decode().strip()
    env = {
        **os.environ,
        "SWITCHBOARD_ARI_URL": url,
        "SWITCHBOARD_ARI_USER": USER,
        "SWITCHBOARD_ARI_PASSWORD": password,
    }
    app = await start(
        [sys.executable, "-m", "switchboard.cli", "run", "--json-logs", str(config)],
        env,
        folder / "app.log",
    )
    try:
        async with aiohttp.ClientSession() as http:
            for n in range(1, args.agents + 1):
                body = {"endpoint": f"PJSIP/{200 + n}", "kind": "answer", "after": 0.2,
                        "hangup_after": args.talk}  # fmt: skip
                async with http.post(f"{url}/_sim/endpoints", json=body) as response:
                    response.raise_for_status()
            # connected: its event filter is set
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                state = await sim_state(http, url)
                if state.get("applications"):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)  # settled after start
            base = rss(app.pid)
            started = time.monotonic()
            placed, refused = await place_calls(http, url, "switchboard", args.rate, args.waiting)
            await asyncio.sleep(5)
            full = rss(app.pid)
            print(
                f"{len(placed)} callers placed in {time.monotonic() - started:.0f} s "
                f"({refused} refused); app RSS {base / 2**20:.0f} MiB before, "
                f"{full / 2**20:.0f} MiB with them waiting: "
                f"{(full - base) / max(1, len(placed)) / 1024:.1f} KiB per waiting caller"
            )
            samples = [full]
            for elapsed in range(30, int(args.turnover) + 1, 30):
                await asyncio.sleep(30)
                samples.append(rss(app.pid))
                print(f"  after {elapsed:4d} s of turnover: {samples[-1] / 2**20:.0f} MiB")
            log = (folder / "app.log").read_text()
            served = log.count('"result":"connected"')
            print(
                f"served meanwhile: {served}; RSS grew {(samples[-1] - full) / 2**20:+.1f} MiB "
                f"during turnover; {(samples[-1] - base) / max(1, len(placed) - served) / 1024:.1f}"
                " KiB per caller still waiting"
            )
    finally:
        with contextlib.suppress(ProcessLookupError):
            app.send_signal(signal.SIGKILL)
        await app.wait()
        await stop_simulator(sim)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--talk", type=float, default=1.0)
    parser.add_argument("--turnover", type=float, default=150.0)
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--folder", default=".bench-queue-waiting")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
