"""Who waits in which department's queue, in the order they came: their positions.

A runtime tells `WaitingCalls` when a call starts waiting in a queue node and
when it stops (served, gone to a call-back or the overflow, hung up).  A
call's position (1: the next to be served) is asked when it matters — just
before the call's timers fire, so an announcement says where the caller
stands — rather than pushed to every caller each time someone ahead leaves
(with a thousand callers waiting, that was a thousand wake-ups per leave).
Callers are also offered freed employees in this order (`ahead`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from switchboard.config.model import QueueNode
from switchboard.engine.events import QueuePosition

if TYPE_CHECKING:
    from switchboard.engine.call import CallRun


class WaitingCalls:
    def __init__(self) -> None:
        self._lines: dict[str, dict[object, None]] = {}  # department -> calls, in order
        self._where: dict[object, str] = {}

    def track(self, call: object, run: CallRun) -> None:
        """After each step of ``run``: waiting in a queue node (not yet talking) keeps
        ``call`` in that department's line; anything else takes it out."""
        if not run.finished and not run.connected:
            node = run.company.node(run.scenario, run.node_name)
            if isinstance(node, QueueNode):
                self.join(call, node.department)
                return
        self.leave(call)

    def news(self, call: object, run: CallRun) -> QueuePosition | None:
        """The place ``run`` has not heard of yet: feed it before the call's timers fire."""
        position = self.position(call)
        if position is None or position == run.position:
            return None
        return QueuePosition(position)

    def join(self, call: object, department: str) -> None:
        """``call`` waits in ``department``'s queue (staying in its place if it already did)."""
        if self._where.get(call) == department:
            return
        self.leave(call)
        self._where[call] = department
        self._lines.setdefault(department, {})[call] = None

    def leave(self, call: object) -> None:
        department = self._where.pop(call, None)
        if department is None:
            return
        line = self._lines[department]
        del line[call]
        if not line:
            del self._lines[department]

    def waits(self, call: object) -> bool:
        return call in self._where

    def position(self, call: object) -> int | None:
        """1 for the next to be served; None when ``call`` is not waiting."""
        department = self._where.get(call)
        if department is None:
            return None
        for number, waiting in enumerate(self._lines[department], start=1):
            if waiting == call:
                return number
        return None  # unreachable: `_where` and `_lines` change together

    def line(self, department: str) -> Iterator[object]:
        """The calls waiting in ``department``'s queue, the first first."""
        yield from self._lines.get(department, ())

    def ahead(self, call: object) -> Iterator[object]:
        """The calls waiting in ``call``'s queue that came before it, the first first."""
        department = self._where.get(call)
        if department is None:
            return
        for waiting in self._lines[department]:
            if waiting == call:
                return
            yield waiting
