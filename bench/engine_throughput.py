"""Complete simulated calls per second through examples/call-centre.yaml, on one core.

Each call is a whole run on the virtual clock, engine and simulator together:
ICM (contacts, last_agent lookup, CRM lookup), then the support queue with
hold music and announcements, an agent offered the call, the conversation and
the hang-up -- about ten steps and some forty actions.  A mix of callers:
a returning caller whose manager answers, one whose manager does not answer,
new callers served after a wait, and callers who ask for a call back.

    .venv/bin/python bench/engine_throughput.py [--seconds 5]

Target (issue 2): >= 5,000 calls/s, i.e. < 0.2 ms of CPU per call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import time
from pathlib import Path

from switchboard.config.load import load_company
from switchboard.simulate import AgentBehaviour, simulate

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    company = load_company(ROOT / "examples" / "call-centre.yaml")
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)
    busy = AgentBehaviour.parse("busy:95")
    noanswer = AgentBehaviour.parse("noanswer")
    all_busy = {"sidorova": busy, "kuznetsova": busy, "smirnov": busy}
    mix = [
        {"caller": "79161112233"},  # ivanov answers
        {"caller": "79161112233", "agents": {"ivanov": noanswer}},  # back to the queue
        {"caller": "79035550000", "agents": all_busy},  # served after 95 s in the queue
        {"caller": "79035550001", "dtmf": "w" * 50 + "1", "agents": all_busy},  # call-back
        {"caller": "79035550002"},
    ]
    gc.freeze()  # the config snapshot is long-lived: keep it out of every collection
    results: dict[str, int] = {}
    steps = events = fed = calls = 0
    rates: list[float] = []
    end = time.process_time() + args.seconds
    while time.process_time() < end:
        round_start = time.process_time()
        round_calls = 0
        while time.process_time() - round_start < 0.5:
            for spec in mix:
                sim = simulate(company, at=at, **spec)  # type: ignore[arg-type]
                results[sim.outcome.result] = results.get(sim.outcome.result, 0) + 1
                steps += len(sim.steps)
                fed += sim.events_fed + 1  # + the start
                events += sum(len(step.events) for step in sim.steps)
                round_calls += 1
        rates.append(round_calls / (time.process_time() - round_start))
        calls += round_calls
    rates.sort()
    median = rates[len(rates) // 2]
    print(
        f"{calls} calls, {len(rates)} rounds of 0.5 s CPU: median {median:,.0f} calls/s "
        f"({1e3 / median:.3f} ms per call), best {rates[-1]:,.0f}, worst {rates[0]:,.0f}"
    )
    print(
        f"per call: {fed / calls:.1f} engine steps (events fed), {steps / calls:.1f} nodes, "
        f"{events / calls:.1f} traced events"
    )
    print("outcomes:", ", ".join(f"{k}={v}" for k, v in sorted(results.items())))


if __name__ == "__main__":
    main()
