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
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """What `Clock.call_at` returns: it can be cancelled before it fires."""

    def cancel(self) -> object: ...


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

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` at clock time ``when``: an event loop timer, no task (a call
        keeps several timers, most of them cancelled before they fire)."""
        delay = max(0.0, (when - self.now()) * self.scale)
        return asyncio.get_running_loop().call_later(delay, callback)


class ScaledClock(Clock):
    """A clock whose seconds last ``scale`` real seconds (0.01: 100x faster)."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale


class VirtualClock(Clock):
    """A clock that moves only when told: `sleep` advances it at once.

    For a conversation that is strictly one thing at a time (a FastAGI session:
    command, answer, command ...), the side that plays Asterisk advances this
    clock by what each command would take, and the runtime reads the time it
    reached; a five-minute queue takes no real time and the times are exact.
    """

    scale = 0.001  # `real`: a timeout of N clock seconds waits N ms for real

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        async def later() -> None:
            await self.sleep_until(when)
            callback()

        return asyncio.ensure_future(later())
