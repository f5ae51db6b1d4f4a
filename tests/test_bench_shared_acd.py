"""bench/shared_acd.py (issue 14) runs: tiny sizes on the tests' PostgreSQL, both runs
(2 instances contending, 1 alone), no double reservation, its result line.  How fast the
decision is is the bench's business, never asserted here."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_the_shared_acd_bench_runs_and_prints_its_result(db: str) -> None:
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "shared_acd.py"), "--dsn", db,
            "--agents", "12", "--waiting", "40", "--departments", "3",
            "--decisions", "300", "--hold-ms", "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("environment: PostgreSQL ")
    assert any(line.startswith("2 instances: ") for line in lines)
    assert any(line.startswith("1 instance: ") for line in lines)
    assert "double reservations 0" in done.stdout
    assert "PROBLEM" not in done.stdout
    assert lines[-1].startswith("target p99 <= 5 ms: ")
