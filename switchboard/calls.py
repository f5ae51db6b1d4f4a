"""What every call leaves behind, whichever runtime carried it (ARI or FastAGI).

`CallRecord` is the record of a finished call; a `CallSink` is where records,
voicemail messages and call-back requests go (PostgreSQL in production,
`MemorySink` in the demo and tests) and where ICM's table lookups are asked.
`AgentPool` is who is on a call through this process, so queues learn when
an employee frees up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.engine import actions as act
from switchboard.engine import events as ev
from switchboard.engine.trace import Outcome, Step


@dataclass
class CallRecord:
    """What a finished call leaves behind (written to PostgreSQL by the storage issue)."""

    call_id: str
    channel: str  # the channel's name: PJSIP/trunk-00000001
    channel_id: str  # Asterisk's unique id of the channel
    called_raw: str
    called: str
    caller: str
    line: int | None
    scenario: str
    started_at: dt.datetime
    steps: list[Step]
    outcome: Outcome
    caller_name: str = ""
    config_version: int | None = None  # the configuration version the call ran on


class CallSink(Protocol):
    """Where calls leave their records, messages and call-back requests."""

    async def call_finished(self, record: CallRecord) -> None: ...

    async def save_message(self, call_id: str, message: act.SaveMessage) -> None: ...

    async def request_callback(self, call_id: str, request: act.RequestCallback) -> bool: ...

    async def last_agent(self, caller: str, days: float) -> str | None: ...

    async def contact(self, caller: str) -> str | None: ...


@dataclass
class MemorySink:
    """Keeps everything in memory: for the demo and tests, until storage lands."""

    records: list[CallRecord] = field(default_factory=list)
    messages: list[act.SaveMessage] = field(default_factory=list)
    callbacks: list[act.RequestCallback] = field(default_factory=list)
    history: dict[str, str] = field(default_factory=dict)  # caller -> last employee
    contacts: dict[str, str] = field(default_factory=dict)  # caller -> responsible employee
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def call_finished(self, record: CallRecord) -> None:
        self.records.append(record)
        self.finished.set()

    async def save_message(self, call_id: str, message: act.SaveMessage) -> None:
        self.messages.append(message)

    async def request_callback(self, call_id: str, request: act.RequestCallback) -> bool:
        self.callbacks.append(request)
        return True

    async def last_agent(self, caller: str, days: float) -> str | None:
        return self.history.get(caller)

    async def contact(self, caller: str) -> str | None:
        return self.contacts.get(caller)


class AgentPool:
    """Which employees are on a call through this runtime; queues learn when one frees up."""

    def __init__(self) -> None:
        self.states: dict[str, ev.AgentState] = {}
        self._listeners: set[Callable[[ev.AgentStatus], None]] = set()

    def set(self, employee_id: str, state: ev.AgentState) -> None:
        if self.states.get(employee_id, "available") == state:
            return
        self.states[employee_id] = state
        status = ev.AgentStatus(employee_id, state)
        for listener in list(self._listeners):
            listener(status)

    def subscribe(self, listener: Callable[[ev.AgentStatus], None]) -> None:
        self._listeners.add(listener)

    def unsubscribe(self, listener: Callable[[ev.AgentStatus], None]) -> None:
        self._listeners.discard(listener)
