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
(switchboard.logs) keeps a storm of one failure to a line and a count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

# moved to switchboard.logs (the FastAGI server uses it too); still importable from here
from switchboard.logs import RepeatedWarnings


async def finish_even_if_cancelled(clean_up: Awaitable[None]) -> None:
    """Run a clean-up to its end even when the task running it is cancelled again
    meanwhile -- a stop that cancels a call while a timeout of its own fires asks
    twice, and the second request ends the clean-up at its next await (a bridge
    left in Asterisk).  The clean-up's own waits are bounded; the cancellation is
    raised once it is done."""
    task = asyncio.ensure_future(clean_up)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


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


__all__ = [
    "CAUSES_NO_ANSWER",
    "CAUSE_BUSY",
    "LEG_MARKER",
    "RINGS_PER_SECOND",
    "RING_BURST",
    "STASIS_WAIT",
    "LegEnd",
    "RepeatedWarnings",
    "RingBudget",
    "leg_end",
]
