"""`switchboard run` hands freed large blocks back to the system (issue 10's soak).

glibc raises its mmap threshold each time a large block is freed, so later
blocks of that size -- the buffers of the channel list read after each
reconnection -- land on the heap and the freed space stays in the process's
RSS.  `tune_gc` fixes the thresholds; this runs the pattern in a fresh
interpreter and reads /proc/self/status."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from pathlib import Path
from switchboard.serving import tune_gc

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")

if sys.argv[1] == "tuned":
    tune_gc()
big = bytearray(16 * 2**20)
del big  # one 16 MiB block freed: glibc now keeps blocks under 16 MiB on the heap
before = rss_mb()
blocks = [bytearray(1_000_000) for _ in range(200)]
del blocks
print(rss_mb() - before)
"""


def kept_mb(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_after_tune_gc_200_mb_of_freed_1_mb_blocks_leave_the_process() -> None:
    untuned = kept_mb("untuned")
    tuned = kept_mb("tuned")
    assert tuned < 10, f"{tuned:.0f} MB kept after freeing 200 MB (untuned: {untuned:.0f} MB)"
