"""Automatic call distribution: agent states and who is offered which call next.

See `service` for the policy (strategies, tiers, skills, priority, the wait
estimate) and `agents` for the states an agent goes through."""

from switchboard.acd.agents import (
    AGENT_STATES,
    Agent,
    AgentChange,
    AgentState,
    AgentStats,
    DeviceState,
    device_state,
)
from switchboard.acd.service import ELSEWHERE, Acd, KeptState, Waiting

__all__ = [
    "AGENT_STATES",
    "ELSEWHERE",
    "Acd",
    "Agent",
    "AgentChange",
    "AgentState",
    "AgentStats",
    "DeviceState",
    "KeptState",
    "Waiting",
    "device_state",
]
