"""Channels the app creates to ring someone: what Asterisk requires of them, in one place.

Both the call runtime and the call-back worker ring with ``POST /channels/create``
then ``POST /channels/{id}/dial``.  Asterisk 22 puts a created channel into
the Stasis application on another thread: the create's HTTP answer may come
before its ``StasisStart``, and a dial sent before that ``StasisStart`` is
answered ``409 Channel not in Stasis application``
(``res/ari/resource_channels.c``: ``ast_ari_channels_dial`` finds no control
for a channel not yet in the app).  So a leg is dialled only once its
``StasisStart`` has arrived, and a leg whose ``StasisStart`` never comes is
given up after `STASIS_WAIT`.  A created channel stays in Asterisk until the
app hangs it up, whether its dial failed, timed out or was never made: every
leg that ends without a conversation is hung up by its owner.

How a leg ended is read from its hang-up cause as much as from ``Dial``
events: a real PJSIP leg often ends with no final dial status.

`RingBudget` caps how fast one call may start legs, and `RepeatedWarnings`
keeps a storm of one failure to a line and a count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

LEG_MARKER = "switchboard-leg"  # StasisStart argument of the runtime's ringing legs
STASIS_WAIT = 5.0  # clock seconds a created channel has to enter the app before it is given up
CAUSE_BUSY = 17  # Q.850 user busy
CAUSES_NO_ANSWER = frozenset({16, 18, 19})  # normal clearing, no user responding, no answer

LegEnd = Literal["busy", "noanswer", "failed"]


def leg_end(cause: int, answered: bool = False) -> LegEnd:
    """How an unbridged leg ended, by the cause of its ``ChannelDestroyed``."""
    if cause == CAUSE_BUSY:
        return "busy"
    if answered or cause in CAUSES_NO_ANSWER:
        return "noanswer"
    return "failed"


RINGS_PER_SECOND = 10.0  # a call's sustained ring rate at most (legs started per second)
RING_BURST = 30  # legs a call may start at once (an all_at_once department)


class RingBudget:
    """A token bucket: how long one call must wait before it may start its next leg.

    However the scenario and the phones behave, a call starts at most
    `RING_BURST` legs at once and `RINGS_PER_SECOND` after that: a fault that
    would ring in a tight loop rings at a bounded pace instead.
    """

    def __init__(self, now: float, rate: float = RINGS_PER_SECOND, burst: int = RING_BURST) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def wait(self, now: float) -> float:
        """Take one leg's token; the seconds to wait before starting it (0: at once)."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass
class _Run:
    first: float
    repeats: int = 0


class RepeatedWarnings:
    """Logs the first of a run of one warning, then counts the rest.

    A run lasts ``window`` seconds from its first line; then the count of what
    it held is logged (at the next warning of any kind, or at `flush`, on
    shutdown), and the warning may be logged again.  Four thousand failed
    rings are two lines, not four thousand.
    """

    def __init__(
        self,
        logger: Any,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.window = window
        self._clock = clock
        self._runs: dict[tuple[str, ...], _Run] = {}

    def warning(self, key: tuple[str, ...], event: str, **fields: Any) -> None:
        """``event`` once per run of ``key`` (its first item names the warning)."""
        now = self._clock()
        self._close_runs(now)
        run = self._runs.get(key)
        if run is not None:
            run.repeats += 1
            return
        self._runs[key] = _Run(now)
        self.log.warning(event, **fields)

    def flush(self) -> None:
        """Log the counts of every run now (shutdown)."""
        self._close_runs(None)

    def _close_runs(self, now: float | None) -> None:
        for key, run in list(self._runs.items()):
            if now is not None and now - run.first < self.window:
                continue
            del self._runs[key]
            if run.repeats:
                seconds = (now if now is not None else self._clock()) - run.first
                self.log.warning(
                    "warning repeated", warning=key[0], key=list(key[1:]),
                    repeats=run.repeats, seconds=round(seconds, 1),
                )  # fmt: skip
