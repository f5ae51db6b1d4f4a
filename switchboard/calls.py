"""What every call leaves behind, whichever runtime carried it (ARI or FastAGI).

`CallRecord` is the record of a finished call; a `CallSink` is where records,
voicemail messages and call-back requests go (PostgreSQL in production,
`MemorySink` in the demo and tests) and where ICM's table lookups are asked.
Who is free and who waits where is the ACD's (`switchboard.acd`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.config.company import Company
from switchboard.config.model import QueueNode
from switchboard.engine import actions as act
from switchboard.engine.call import CallInfo, CallRun
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
    # Asterisk's linkedid of the caller's channel: with ``channel_id`` (its uniqueid) the
    # record joins Asterisk's CDR and CEL; "" when it could not be read
    linkedid: str = ""
    # the department of the last queue the caller waited in (None: no queue); an
    # abandoned call's outcome names no department, this still says whose queue it was
    queue_department: str | None = None

    @classmethod
    def of(
        cls, call_id: str, channel: str, channel_id: str, run: CallRun, linkedid: str = ""
    ) -> CallRecord:
        """The record of a run that has ended (``run.outcome`` is set)."""
        assert run.outcome is not None
        record = cls.for_call(
            call_id,
            channel,
            channel_id,
            run.call,
            run.company,
            started_at=run.started_at,
            scenario=run.trace[0].scenario if run.trace else run.scenario,
            steps=run.trace,
            outcome=run.outcome,
        )
        record.linkedid = linkedid
        return record

    @classmethod
    def for_call(
        cls,
        call_id: str,
        channel: str,
        channel_id: str,
        info: CallInfo,
        company: Company,
        *,
        started_at: dt.datetime,
        scenario: str,
        steps: list[Step],
        outcome: Outcome,
    ) -> CallRecord:
        return cls(
            call_id=call_id,
            channel=channel,
            channel_id=channel_id,
            called_raw=info.called_raw,
            called=info.called,
            caller=info.caller,
            line=info.line,
            scenario=scenario,
            started_at=started_at,
            caller_name=info.caller_name,
            config_version=company.config_version,
            steps=steps,
            outcome=outcome,
            queue_department=queued_in(company, steps),
        )

    def as_json(self) -> dict[str, Any]:
        """The record as JSON (a conversation left for the next instance carries it)."""
        return {
            "call_id": self.call_id,
            "channel": self.channel,
            "channel_id": self.channel_id,
            "called_raw": self.called_raw,
            "called": self.called,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "line": self.line,
            "scenario": self.scenario,
            "started_at": self.started_at.isoformat(),
            "config_version": self.config_version,
            "linkedid": self.linkedid,
            "queue_department": self.queue_department,
            "steps": [step.as_json() for step in self.steps],
            "outcome": self.outcome.as_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        """A record back from `as_json`; ValueError (or KeyError, TypeError) if it is not one."""
        line = data["line"]
        version = data.get("config_version")
        return cls(
            call_id=str(data["call_id"]),
            channel=str(data["channel"]),
            channel_id=str(data["channel_id"]),
            called_raw=str(data["called_raw"]),
            called=str(data["called"]),
            caller=str(data["caller"]),
            caller_name=str(data.get("caller_name", "")),
            line=None if line is None else int(line),
            scenario=str(data["scenario"]),
            started_at=dt.datetime.fromisoformat(str(data["started_at"])),
            config_version=None if version is None else int(version),
            linkedid=str(data.get("linkedid", "")),
            queue_department=_text_or_none(data.get("queue_department")),
            steps=[Step.from_json(step) for step in data["steps"]],
            outcome=Outcome.from_json(data["outcome"]),
        )


def queued_in(company: Company, steps: list[Step]) -> str | None:
    """The department of the last queue node ``steps`` passed; None when they passed
    none (or none ``company`` has)."""
    for step in reversed(steps):
        if step.type != "queue":
            continue
        try:
            node = company.node(step.scenario, step.node)
        except KeyError:
            continue
        if isinstance(node, QueueNode):
            return node.department
    return None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class CallSink(Protocol):
    """Where calls leave their records, messages and call-back requests."""

    async def call_finished(self, record: CallRecord) -> None: ...

    async def save_message(self, call_id: str, message: act.SaveMessage) -> None: ...

    async def request_callback(
        self, call_id: str, request: act.RequestCallback, hold: float | None = None
    ) -> bool:
        """Commit the promise; True once stored.  ``hold``: seconds before the call-back
        workers may make it on their own (it keeps its caller's place in a queue and
        is made when that place comes up: `ari_app.runtime`)."""
        ...

    async def last_agent(self, caller: str, days: float) -> str | None: ...

    async def contact(self, caller: str) -> str | None: ...

    async def message_counts(
        self, mailbox: str, including: str | None = None
    ) -> tuple[int, int] | None:
        """(old, new) messages of ``mailbox`` (an employee or department id); old are
        heard or handled.  ``including``: a recording just saved, counted new whether
        or not it is written yet.  None: the store cannot say now."""
        ...


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

    async def request_callback(
        self, call_id: str, request: act.RequestCallback, hold: float | None = None
    ) -> bool:
        self.callbacks.append(request)
        return True

    async def last_agent(self, caller: str, days: float) -> str | None:
        return self.history.get(caller)

    async def contact(self, caller: str) -> str | None:
        return self.contacts.get(caller)

    async def message_counts(
        self, mailbox: str, including: str | None = None
    ) -> tuple[int, int] | None:
        return 0, sum(1 for m in self.messages if m.mailbox == mailbox)  # no statuses here


class CountingSink:
    """A runtime's sink, counting the calls that finish through it by result (the admin
    server's ``switchboard_calls_total``): one addition a call, whatever the sink."""

    def __init__(self, inner: CallSink) -> None:
        self.inner = inner
        self.results: Counter[str] = Counter()

    async def call_finished(self, record: CallRecord) -> None:
        self.results[record.outcome.result] += 1
        await self.inner.call_finished(record)

    async def save_message(self, call_id: str, message: act.SaveMessage) -> None:
        await self.inner.save_message(call_id, message)

    async def request_callback(
        self, call_id: str, request: act.RequestCallback, hold: float | None = None
    ) -> bool:
        return await self.inner.request_callback(call_id, request, hold)

    async def last_agent(self, caller: str, days: float) -> str | None:
        return await self.inner.last_agent(caller, days)

    async def contact(self, caller: str) -> str | None:
        return await self.inner.contact(caller)

    async def message_counts(
        self, mailbox: str, including: str | None = None
    ) -> tuple[int, int] | None:
        return await self.inner.message_counts(mailbox, including)
