"""Time for the runtimes: real seconds, optionally running faster for tests and demos.

The engine takes call time as input; the runtimes read it from a `Clock`.  A
``ScaledClock(0.01)`` runs a hundred times faster than the wall clock, so a
test or the demo can play a five-minute queue in three seconds while the ARI
runtime and the Asterisk simulator still talk over real sockets.  Both sides
of such a test must share one clock.
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Wall-clock time: `now` in seconds (monotonic), `sleep` for real."""

    scale = 1.0  # real seconds per clock second

    def now(self) -> float:
        return time.monotonic() / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.scale)

    async def sleep_until(self, when: float) -> None:
        await self.sleep(when - self.now())

    def real(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of this clock last."""
        return seconds * self.scale


class ScaledClock(Clock):
    """A clock whose seconds last ``scale`` real seconds (0.01: 100x faster)."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
