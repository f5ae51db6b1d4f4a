"""Agents' feature codes: an employee changes their own state from their desk phone.

The dialplan's ``*71`` (log in), ``*72`` (log out) and ``*73`` (pause, or resume
when paused) send the phone's call to the Stasis app (``Stasis(switchboard,
agent,login)``) or to ``agi://host/agent?action=login``; both runtimes ask
this module who is calling (`calling_employee`) and apply the change to their
`Acd` (`apply_phone_code`), which tells it (``by="phone"``) to whoever keeps
the agents' changes.  What the phone hears is the `PhoneChange`'s prompt.

It is pure, like the rest of the ACD: the runtime passes the time, the
channel's caller ID and name, and its map of desk devices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from switchboard.acd.service import Acd
from switchboard.config.company import Company

AgentAction = Literal["login", "logout", "pause", "resume", "toggle"]
AGENT_ACTIONS: tuple[str, ...] = get_args(AgentAction)
_ACTIONS: dict[str, AgentAction] = {
    "login": "login", "logout": "logout", "pause": "pause", "resume": "resume",
    "toggle": "toggle",
}  # fmt: skip
KeptAgentState = Literal["available", "logged_out", "paused"]
BY_PHONE = "phone"  # `AgentChange.by` of a change made with a feature code
UNKNOWN_PROMPT = "agent-unknown"  # the phone is no employee's: nothing changed
REASON_LIMIT = 100  # characters of a pause reason kept from a dialplan argument


@dataclass(frozen=True, slots=True)
class PhoneChange:
    """What a feature code did: the agent's own state after it and what they hear."""

    agent: str
    action: AgentAction  # as asked (``toggle`` included)
    state: KeptAgentState
    prompt: str


def parse_action(text: str) -> AgentAction | None:
    """``login`` / ``logout`` / ``pause`` / ``resume`` / ``toggle`` (any case), else None."""
    return _ACTIONS.get(text.strip().lower())


def channel_device(channel_name: str) -> str:
    """The device a channel belongs to: its name up to the last ``-``
    (``PJSIP/201-0000001a`` -> ``PJSIP/201``; ``Local/201@phones-0000002b;1`` ->
    ``Local/201@phones``)."""
    device, dash, _ = channel_name.rpartition("-")
    return device if dash else channel_name


def calling_employee(
    company: Company,
    caller_number: str,
    channel_name: str = "",
    devices: Mapping[str, str] | None = None,
) -> str | None:
    """The employee whose phone is calling: the one whose desk device (``devices``:
    device -> employee, as the runtime follows them) the channel belongs to, else
    the one whose extension is the caller ID number; None for anyone else."""
    if devices and channel_name:
        employee = devices.get(channel_device(channel_name))
        if employee is not None:
            return employee
    number = caller_number.strip()
    if not number:
        return None
    for employee_ in company.config.employees:
        if employee_.extension is not None and employee_.extension == number:
            return employee_.id
    return None


def apply_phone_code(
    acd: Acd, agent: str, action: AgentAction, now: float, reason: str = ""
) -> PhoneChange:
    """Apply ``action`` for ``agent`` (``by="phone"``); KeyError for an employee the
    ACD does not know.  ``toggle`` resumes a paused agent and pauses any other;
    pausing (or resuming) a logged-out agent changes nothing and says they are
    logged out."""
    known = acd.agents.get(agent)
    if known is None:
        raise KeyError(f"no agent {agent!r}")
    reason = " ".join(reason.split())[:REASON_LIMIT]
    step: AgentAction = action
    if action == "toggle":
        step = "resume" if known.state == "paused" else "pause"
    match step:
        case "login":
            acd.login(agent, now, by=BY_PHONE)
        case "logout":
            acd.logout(agent, now, by=BY_PHONE)
        case "pause":
            if known.state != "logged_out":
                acd.pause(agent, now, reason, by=BY_PHONE)
        case _:
            acd.resume(agent, now, by=BY_PHONE)
    state: KeptAgentState
    if known.state == "logged_out":
        state, prompt = "logged_out", "agent-logged-out"
    elif known.state == "paused":
        state, prompt = "paused", "agent-paused"
    else:
        state = "available"
        prompt = "agent-logged-in" if step == "login" else "agent-resumed"
    return PhoneChange(agent, action, state, prompt)


__all__ = [
    "AGENT_ACTIONS",
    "BY_PHONE",
    "UNKNOWN_PROMPT",
    "AgentAction",
    "PhoneChange",
    "apply_phone_code",
    "calling_employee",
    "channel_device",
    "parse_action",
]
