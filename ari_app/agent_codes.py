"""Agents' feature codes over ARI: ``Stasis(switchboard,agent,ACTION[,REASON])``.

A desk phone dialling ``*71`` / ``*72`` / ``*73`` (dialplan/extensions-switchboard.conf)
enters the app with the arguments ``agent,login`` / ``agent,logout`` /
``agent,toggle`` (also ``agent,pause[,REASON]`` and ``agent,resume``).  That is
no scenario call: the runtime hands it to an `AgentCodeCall`, which finds the
employee the phone belongs to, applies the change to the runtime's ACD
(``by="phone"``; whoever keeps the agents' changes records it), answers, plays
the confirmation and hangs up.  A phone that is no employee's hears
``agent-unknown`` and nothing changes.

It leaves no call record: call records are the company's callers' calls
(reports, abandoned calls, ICM's last agent); the change itself is kept, with
who, when, why and ``by = phone``, in the agents' changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import structlog

from ari_app.adopt import DRAIN, Drain
from ari_app.client import AriError
from ari_app.models import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    ChannelHangupRequest,
    PlaybackFinished,
    StasisEnd,
)
from switchboard.acd.phone import UNKNOWN_PROMPT, apply_phone_code, calling_employee, parse_action
from switchboard.engine import events as ev

if TYPE_CHECKING:
    from ari_app.runtime import AriRuntime

log = structlog.get_logger("switchboard.ari")

AGENT_ARG: Final = "agent"  # the first Stasis argument of a feature code
INVALID_PROMPT: Final = "invalid-option"  # ``agent,<something else>``
PROMPT_WAIT: Final = 15.0  # clock seconds a confirmation may take before we hang up anyway


class _Timeout:
    pass


_TIMEOUT: Final = _Timeout()


def is_agent_code(args: tuple[str, ...]) -> bool:
    """Whether a call's Stasis arguments make it a feature code (``agent,...``)."""
    return bool(args) and args[0].strip().lower() == AGENT_ARG


class AgentCodeCall:
    """One feature code call: the change, the confirmation, the hang-up.  It is a
    `runtime.Call` (the runtime routes its channel's events here, and a reconnect
    does not take it for a stray)."""

    def __init__(
        self,
        runtime: AriRuntime,
        call_id: str,
        channel: Channel,
        args: tuple[str, ...],
        devices: Mapping[str, str],
    ) -> None:
        self.runtime = runtime
        self.call_id = call_id
        self.channel = channel
        self.args = args
        self.devices = devices  # desk devices -> employee, now
        self.queue: asyncio.Queue[AriEvent | ev.Event | Drain | _Timeout] = asyncio.Queue()
        self.gone = False
        self.log = log.bind(call_id=call_id, channel=channel.name)

    def channel_ids(self) -> tuple[str, ...]:
        return (self.channel.id,)

    def deliver(self, event: AriEvent | ev.Event | Drain) -> None:
        self.queue.put_nowait(event)

    def drain(self) -> None:
        self.deliver(DRAIN)

    def unlisted(self, live: set[str]) -> list[str]:
        return [] if self.gone or self.channel.id in live else [self.channel.id]

    async def run(self) -> None:
        runtime = self.runtime
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug ends this call, never the runtime
            runtime.failures += 1
            self.log.exception("agent code failed")
        finally:
            if not self.gone:
                await runtime.clean_up(runtime.client.hangup, self.channel.id, self.call_id)
            # a reconnect that still lists the channel hangs it up, never records it
            runtime.remember(self.channel.id, "hung up")
            runtime.forget(self)

    def change(self) -> str:
        """Apply the feature code; the prompt the phone hears."""
        runtime = self.runtime
        company = runtime.company()
        action = parse_action(self.args[1] if len(self.args) > 1 else "")
        if action is None:
            self.log.warning("agent code: unknown action", args=",".join(self.args[1:])[:100])
            return INVALID_PROMPT
        employee = calling_employee(
            company, self.channel.caller_number, self.channel.name, self.devices
        )
        acd = runtime.current_acd()
        if employee is None or employee not in acd.agents:
            self.log.warning(
                "agent code refused: the phone is no employee's",
                caller=self.channel.caller_number, action=action,
            )  # fmt: skip
            return UNKNOWN_PROMPT
        reason = self.args[2] if len(self.args) > 2 else ""
        done = apply_phone_code(acd, employee, action, runtime.clock.now(), reason)
        self.log.info("agent code", agent=employee, action=action, state=done.state)
        return done.prompt

    async def _run(self) -> None:
        runtime, client = self.runtime, self.runtime.client
        prompt = self.change()
        company = runtime.company()
        with contextlib.suppress(AriError):
            await client.answer(self.channel.id)
        playback_id = f"{self.call_id}-agent"
        try:
            await client.play(
                self.channel.id,
                [runtime.media(prompt, company)],
                playback_id,
                lang=company.config.language,
            )
        except AriError:
            return  # nothing to wait for (or the phone is gone): hang up
        timer = runtime.clock.call_at(
            runtime.clock.now() + PROMPT_WAIT, lambda: self.queue.put_nowait(_TIMEOUT)
        )
        try:
            while True:
                item = await self.queue.get()
                match item:
                    case PlaybackFinished() if item.playback.id == playback_id:
                        return
                    case ChannelHangupRequest() | ChannelDestroyed() | StasisEnd():
                        self.gone = True  # hung up (or left the app): nothing to hang up
                        return
                    case Drain() | _Timeout():
                        return
        finally:
            timer.cancel()
