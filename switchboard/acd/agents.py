"""Agents as the ACD sees them: a state, the phone's state, and the statistics
the distribution strategies read.

An agent is an employee who is a member of at least one department.  Their
*state* is theirs and the ACD's:

- ``logged_out``: not taking calls (``*72``, ``switchboard agents logout``);
- ``available``: may be offered a call;
- ``ringing``: held by one call's offer (one offer at a time);
- ``talking``: in a conversation;
- ``wrapup``: a conversation ended less than the department's ``wrapup`` ago;
- ``paused``: logged in but not taking calls, with a reason (lunch, training).

An employee nobody logged in or out starts ``available`` (app_queue's static
members): a configuration written before agent states keeps working.

The *device* state is Asterisk's (``DEVICE_STATE()``, ARI's ``deviceStates``):
a phone busy with any call -- an internal one, an outbound one -- or
unreachable is never offered a call, whatever the agent's state says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

AgentState = Literal["logged_out", "available", "ringing", "talking", "wrapup", "paused"]
AGENT_STATES: tuple[str, ...] = get_args(AgentState)

# Asterisk's device states (include/asterisk/devicestate.h, ast_devstate_str) by what
# they mean for an offer: only a phone known to be in use or unreachable is skipped;
# UNKNOWN is offered, as app_queue does (it is what a phone nobody watches reports).
DeviceState = Literal["idle", "in_use", "unavailable", "unknown"]
DEVICE_STATES: dict[str, DeviceState] = {
    "NOT_INUSE": "idle",
    "INUSE": "in_use",
    "BUSY": "in_use",
    "RINGING": "in_use",
    "RINGINUSE": "in_use",
    "ONHOLD": "in_use",
    "UNAVAILABLE": "unavailable",
    "INVALID": "unavailable",
    "UNKNOWN": "unknown",
}


def device_state(asterisk_state: str) -> DeviceState:
    """Asterisk's device state name (``NOT_INUSE``, ``INUSE``, ...) as the ACD reads it."""
    return DEVICE_STATES.get(asterisk_state.strip().upper(), "unknown")


@dataclass(slots=True)
class AgentStats:
    """What the strategies and the wait estimate read; counted from the ACD's start
    (or as the store kept them)."""

    calls: int = 0  # conversations ended
    last_end: float | None = None  # when the last one ended (clock s); None: never
    talk: float = 0.0  # seconds talked, in all


@dataclass(slots=True)
class Agent:
    id: str
    state: AgentState = "available"
    since: float = 0.0
    reason: str = ""  # why paused
    device: DeviceState = "unknown"
    holder: str | None = None  # the call ringing or talking to them
    wrapup_until: float = 0.0
    stats: AgentStats = field(default_factory=AgentStats)

    def free(self, now: float) -> bool:
        """May be offered a call now: available (or out of wrap-up) and the phone not
        busy or unreachable."""
        if self.device in ("in_use", "unavailable"):
            return False
        if self.state == "wrapup":
            return self.wrapup_until <= now
        return self.state == "available"

    def shown_state(self, now: float) -> AgentState:
        """The state as a supervisor sees it: wrap-up that has run out is available."""
        if self.state == "wrapup" and self.wrapup_until <= now:
            return "available"
        return self.state


@dataclass(frozen=True, slots=True)
class AgentChange:
    """One change of an agent's state, for reports: who, when, to what, why, by whom."""

    agent: str
    at: float
    state: AgentState
    reason: str = ""
    by: str = ""  # "phone", "cli", "api", "acd" (the ACD's own: ringing, talking, ...)
