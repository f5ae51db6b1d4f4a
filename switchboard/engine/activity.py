"""The base of every node's live state during a call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.engine.events import Event

if TYPE_CHECKING:
    from switchboard.engine.call import CallRun


class Activity:
    """The live state of the node a call is in.  Subclasses are in `engine.nodes`."""

    listening: bool = False  # the node takes keys now (simulate sends the next one)

    def __init__(self, run: CallRun) -> None:
        self.run = run

    def enter(self) -> str | None:
        """Start the node: an exit label to leave at once, or None to wait for events."""
        raise NotImplementedError

    def handle(self, event: Event) -> str | None:
        """An event for this node: an exit label to leave, or None to keep waiting."""
        return None

    def takes(self, employee_id: str) -> bool:
        """Would this call ring ``employee_id`` now, told they are free?  (A queue
        waiting for a member who is not resting: `QueueActivity`.)"""
        return False

    def leave(self) -> None:
        """The caller hung up or the call is ending: release what the node holds."""
