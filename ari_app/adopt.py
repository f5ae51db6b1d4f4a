"""Conversations that outlive the Switchboard process that connected them.

A conversation belongs to Asterisk: its two channels and their mixing bridge
stay up whatever happens to Switchboard — a SIGTERM during a deploy, a crash,
a SIGKILL.  Channels in a Stasis application whose websocket went away stay
in the application (``res/stasis/app.c``: ``app_deactivate`` only drops the
handler; events meanwhile are "missed").  So that the next instance can finish
such a call — hang up one side when the other leaves, destroy the bridge,
write the call's one record — a call leaves what it knows on the caller's
channel when the two are bridged: the channel variable `STATE_VARIABLE` holds
the call id, the bridge, the employee's leg and the record so far
(`ConversationState`, JSON of at most `STATE_MAX` bytes).

After a (re)connect the runtime asks every caller channel it does not own for
that variable; a caller that has one is adopted (`AdoptedCall`), anything
else is sent on as before.  A side that hung up while no instance was
connected is noticed at adoption: the other side is hung up then.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from ari_app.client import CallGone
from ari_app.models import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)
from switchboard.calls import CallRecord
from switchboard.engine import events as ev
from switchboard.engine.trace import Step

if TYPE_CHECKING:
    from ari_app.runtime import AriRuntime

log = structlog.get_logger("switchboard.ari")

STATE_VARIABLE = "SWITCHBOARD_CALL"
STATE_VERSION = 1
# Asterisk's HTTP server takes JSON bodies up to 40,960 bytes (main/http.c,
# MAX_CONTENT_LENGTH): the state stays well below, trimming what a report can lose
STATE_MAX = 32_000
TEARDOWN_WAIT = 5.0  # seconds to wait for the other side to go before destroying the bridge


class Drain:
    """Put into a call's queue when Switchboard stops: conversations are left to Asterisk."""


DRAIN = Drain()


@dataclass(frozen=True)
class ConversationState:
    """What a bridged call leaves on its caller's channel for the next instance."""

    call_id: str
    bridge_id: str
    leg_channel: str  # the employee's channel
    employee: str | None  # their id, kept busy while the conversation lasts
    answered_at: float  # call time (seconds since the call began) the employee answered
    record: CallRecord  # the record so far: "connected", its duration that of the wait

    def to_json(self) -> str:
        data = self._data(self.record.steps)
        text = orjson.dumps(data).decode()
        if len(text) > STATE_MAX:
            # a long IVR: the steps keep their path, their events go
            steps = [replace(step, events=[]) for step in self.record.steps]
            text = orjson.dumps(self._data(steps)).decode()
        if len(text) > STATE_MAX:
            text = orjson.dumps(self._data(self.record.steps[-10:])).decode()
        return text

    def _data(self, steps: list[Step]) -> dict[str, Any]:
        record = replace(self.record, steps=steps).as_json()
        return {
            "v": STATE_VERSION,
            "call_id": self.call_id,
            "bridge": self.bridge_id,
            "leg": self.leg_channel,
            "employee": self.employee,
            "answered_at": self.answered_at,
            "record": record,
        }

    @classmethod
    def from_json(cls, text: str) -> ConversationState:
        """The state a call left; ValueError when it is not one (of this version)."""
        try:
            data = orjson.loads(text)
            if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
                raise ValueError("not a Switchboard conversation state")
            employee = data.get("employee")
            return cls(
                call_id=str(data["call_id"]),
                bridge_id=str(data["bridge"]),
                leg_channel=str(data["leg"]),
                employee=None if employee is None else str(employee),
                answered_at=float(data["answered_at"]),
                record=CallRecord.from_json(data["record"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a Switchboard conversation state: {exc}") from exc


class AdoptedCall:
    """A conversation another process connected, found bridged after a (re)connect:
    when one side leaves, the other is hung up, the bridge destroyed and the call's
    record written — the record it began, its talk counted to the end."""

    def __init__(self, runtime: AriRuntime, caller: Channel, state: ConversationState) -> None:
        self.runtime = runtime
        self.channel = caller
        self.state = state
        self.call_id = state.call_id
        self.queue: asyncio.Queue[AriEvent | ev.Event | Drain] = asyncio.Queue()
        self.gone: dict[str, bool] = {caller.id: False, state.leg_channel: False}
        self.transfers = 0  # the employee handed the caller on (the record says)
        self.log = log.bind(call_id=state.call_id, channel=caller.name)

    def channel_ids(self) -> tuple[str, ...]:
        return (self.channel.id, self.state.leg_channel)

    def deliver(self, event: AriEvent | ev.Event | Drain) -> None:
        self.queue.put_nowait(event)

    def drain(self) -> None:
        self.deliver(DRAIN)

    def unlisted(self, live: set[str]) -> list[str]:
        return [c for c, gone in self.gone.items() if not gone and c not in live]

    async def run(self) -> None:
        runtime = self.runtime
        employee = self.state.employee
        since = runtime.clock.now()
        if employee is not None:
            runtime.acd.talking(employee, self.call_id, since)
            runtime.desk.adopted(employee, self.call_id)
        try:
            await self._run()
        except asyncio.CancelledError:
            raise  # Switchboard stops: the conversation stays, the next instance finishes it
        except Exception:  # a bug ends our part, never the conversation nor the runtime
            runtime.failures += 1
            self.log.exception("adopted call failed")
        finally:
            runtime.forget(self)
            if employee is not None:
                now = runtime.clock.now()
                runtime.acd.finished(employee, self.call_id, now, now - since, None)

    async def _run(self) -> None:
        self.log.info("conversation adopted", bridge=self.state.bridge_id)
        # what happened while no instance was connected was not told to anyone: look
        for channel_id in self.channel_ids():
            with contextlib.suppress(CallGone):
                await self.runtime.client.get_channel(channel_id)
                continue
            self.gone[channel_id] = True
        first: str | None = next((c for c, gone in self.gone.items() if gone), None)
        while first is None:
            item = await self.queue.get()
            if isinstance(item, Drain):
                return  # Switchboard stops again: still Asterisk's conversation
            if isinstance(item, StasisStart):
                await self._transferred(item)
                continue
            first = self._ended(item)
        other = "transfer target" if self.transfers else "agent"
        reason = "caller hung up" if first == self.channel.id else f"{other} hung up"
        for channel_id, gone in self.gone.items():
            if not gone:
                await self.runtime.clean_up(self.runtime.client.hangup, channel_id, self.call_id)
        await self._wait_gone()
        await self.runtime.clean_up(
            self.runtime.client.destroy_bridge, self.state.bridge_id, self.call_id
        )
        record = finished(
            self.state, reason, self.runtime.wall_clock(), self.runtime.instance, self.transfers
        )
        self.log.info("call finished", result=record.outcome.result, reason=reason)
        await self.runtime.sink.call_finished(record)
        self.runtime.remember(self.channel.id, "hung up")

    async def _transferred(self, start: StasisStart) -> None:
        """The employee transferred the caller (as `CallSession._transferred`): the
        channel Asterisk swapped into the bridge is the other side from now on; the
        employee's, out of the bridge, is hung up."""
        replaced = start.replace_channel
        old = self.state.leg_channel
        if replaced is None or replaced.id != old or self.gone.get(old, True):
            return
        self.transfers += 1
        del self.gone[old]
        self.runtime.owners.pop(old, None)
        self.gone[start.channel.id] = False
        self.state = replace(self.state, leg_channel=start.channel.id)
        self.log.info("transferred", transferer=old, target=start.channel.name)
        await self.runtime.clean_up(self.runtime.client.hangup, old, self.call_id)

    def _ended(self, item: AriEvent | ev.Event) -> str | None:
        """The channel ``item`` says has left, if it is one of ours."""
        if isinstance(item, ChannelDestroyed | StasisEnd | ChannelHangupRequest):
            channel_id = item.channel.id
            if channel_id in self.gone and not self.gone[channel_id]:
                self.gone[channel_id] = True
                return channel_id
        return None

    async def _wait_gone(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.runtime.clock.real(TEARDOWN_WAIT)):
                while not all(self.gone.values()):
                    item = await self.queue.get()
                    if not isinstance(item, Drain):
                        self._ended(item)


def finished(
    state: ConversationState, reason: str, now: dt.datetime, instance: str, transfers: int = 0
) -> CallRecord:
    """The record of an adopted conversation that has just ended for ``reason`` (``... hung
    up``), after ``transfers`` transfers followed since it was adopted."""
    record = state.record
    elapsed = max((now - record.started_at).total_seconds(), state.answered_at)
    steps = list(record.steps)
    if steps:
        last = steps[-1]
        event = {"t": elapsed, "event": reason, "resumed_by": instance}
        steps[-1] = replace(last, t_end=elapsed, events=[*last.events, event])
    outcome = replace(
        record.outcome,
        reason=reason,
        duration=elapsed,
        talk=elapsed - state.answered_at,
        extra={
            **record.outcome.extra,
            **(
                {"transfers": int(record.outcome.extra.get("transfers", 0)) + transfers}
                if transfers
                else {}
            ),
            "ended_by": reason.removesuffix(" hung up"),
            "resumed_by": instance,
        },
    )
    return replace(record, steps=steps, outcome=outcome)
