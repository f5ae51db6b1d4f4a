"""Switchboard's Stasis app as `switchboard run --json-logs` runs it, with its numbers kept.

bench/real_asterisk_load.py starts this as its own process for the `switchboard`
flow: the same steps as ``switchboard run --json-logs CONFIG`` without a
database (config loaded and checked, JSON log lines on stderr, `tune_gc`, an
`AriApp` with a `MemorySink`), so the CPU the bench reads from /proc is the
app's alone; but it stays reachable for what the CLI does not report.

    .venv/bin/python bench/switchboard_runner.py --stats /tmp/switchboard.json \\
        [--config bench/real_asterisk.yaml] [--employees 1000] [--url http://127.0.0.1:8088] \\
        [--user switchboard] [--password SECRET] [--profile FILE] 2>/tmp/switchboard.log

``--employees N`` gives the config's first department N members in all (``op1`` ...,
each with the first employee's phone), so that many calls can be connected at once;
``--profile FILE`` writes cProfile's statistics of the whole run there.

Prints "ready" once the app is connected (event filter set, channels
reconciled); on SIGTERM (or SIGINT) it stops as `switchboard run` does and
writes {"answer_delays": [s, ...], "calls": N, "failures": N, "results": {...}}
to --stats: the runtime's StasisStart -> answer-request delays, the calls that
left a record, the calls ended by a bug, and the records counted by outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import signal
from collections import Counter
from pathlib import Path

import yaml

from ari_app.app import AriApp, AriSettings
from switchboard.calls import MemorySink
from switchboard.config.company import Company
from switchboard.config.load import load_text
from switchboard.logs import configure_logging
from switchboard.serving import run_serving, tune_gc

ROOT = Path(__file__).resolve().parent.parent


def bench_company(config: Path, employees: int) -> Company:
    """The config, its first department grown to ``employees`` members."""
    data = yaml.safe_load(config.read_text())
    first = data["employees"][0]
    for n in range(len(data["employees"]) + 1, employees + 1):
        data["employees"].append({**first, "id": f"op{n}", "name": f"Operator {n}",
                                  "extension": str(1000 + n)})  # fmt: skip
    data["departments"][0]["members"] = [e["id"] for e in data["employees"]]
    return load_text(yaml.safe_dump(data), str(config)).raise_for_errors()


async def run(args: argparse.Namespace) -> None:
    company = bench_company(args.config, args.employees)
    configure_logging(json_output=True, cache=True)
    tune_gc()  # as `switchboard run` does once the config is loaded
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = AriSettings(args.url, args.user, args.password, company.config.asterisk.app)
    sink = MemorySink()
    app = AriApp(lambda: company, settings, sink=sink)
    async with app:
        await app.wait_ready()
        print("ready", flush=True)
        await stop.wait()
    stats = {
        "answer_delays": list(app.runtime.answer_delays),
        "calls": len(sink.records),
        "failures": app.runtime.failures,
        "results": Counter(record.outcome.result for record in sink.records),
    }
    args.stats.write_text(json.dumps(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", type=Path, default=ROOT / "bench" / "real_asterisk.yaml")
    parser.add_argument("--url", default="http://127.0.0.1:8088")
    parser.add_argument("--user", default="switchboard")
    parser.add_argument("--password", default="")
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--stats", type=Path, required=True, help="JSON written at SIGTERM")
    parser.add_argument("--profile", type=Path, help="cProfile statistics written here")
    args = parser.parse_args()
    if args.profile is None:
        run_serving(run(args))
        return
    profile = cProfile.Profile()
    profile.runcall(run_serving, run(args))
    profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
