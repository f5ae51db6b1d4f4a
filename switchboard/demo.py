"""`switchboard demo`: the Stasis app against the Asterisk simulator, end to end.

`AriStack` starts the simulator (real HTTP and websocket on loopback) and the
ARI runtime on one clock, scripts the employees' phones from `simulate`'s
agent behaviours, places calls and hands back each call's record.  The demo
command, the runtime tests and the ARI benchmark all use it, so what they
exercise is exactly what `switchboard run` does against a real Asterisk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ari_app.app import AriApp, AriSettings
from ari_app.runtime import CallRecord, MemorySink
from asterisk_sim import AsteriskSimulator, CallerScript, EndpointScript, Press
from switchboard.clock import Clock, ScaledClock
from switchboard.config.company import Company
from switchboard.prompts import BUILTIN_PROMPTS
from switchboard.simulate import DEFAULT_TALK, AgentBehaviour

USER = "switchboard"
PASSWORD = "demo-only"  # noqa: S105 - the in-process simulator's own credentials


def endpoint_scripts(
    company: Company, agents: dict[str, AgentBehaviour], talk: float = DEFAULT_TALK
) -> dict[str, EndpointScript]:
    """Each employee's phones behave as `simulate --agent` says: mobiles press 1 to
    take a call, and everybody hangs up ``talk`` seconds into a conversation."""
    endpoints = company.config.asterisk.endpoints
    scripts: dict[str, EndpointScript] = {}
    for employee in company.employees.values():
        behaviour = agents.get(employee.id, AgentBehaviour())
        match behaviour.kind:
            case "answer":
                script = EndpointScript("answer", after=behaviour.seconds, hangup_after=talk)
            case "busy":
                script = EndpointScript("busy")
            case "noanswer":
                script = EndpointScript("noanswer")
            case _:
                script = EndpointScript("offline")
        if employee.extension is not None:
            scripts[endpoints.employee.format(extension=employee.extension)] = script
        if employee.mobile is not None:
            number = company.normalize(employee.mobile)
            mobile = EndpointScript(
                script.kind,
                after=script.after,
                hangup_after=script.hangup_after,
                confirm_key="1",
                confirm_after=0.5,
            )
            scripts[endpoints.mobile.format(number=number)] = mobile
    return scripts


def prompt_durations(company: Company, prefix: str = "switchboard/") -> dict[str, float]:
    """How long each prompt's media plays: the same lengths `simulate` uses."""
    durations = {f"sound:{prefix}{name}": company.prompt_duration(name) for name in BUILTIN_PROMPTS}
    for name, prompt in company.config.prompts.items():
        durations[f"sound:{prompt.file or name}"] = prompt.duration
    return durations


@dataclass
class AriStack:
    """The simulator and the Stasis app on one clock: ``async with AriStack(company)``."""

    company: Company
    clock: Clock = field(default_factory=lambda: ScaledClock(0.02))
    when: dt.datetime | None = None
    sink: MemorySink = field(default_factory=MemorySink)

    async def __aenter__(self) -> AriStack:
        self.sim = AsteriskSimulator(
            clock=self.clock,
            user=USER,
            password=PASSWORD,
            app_durations=prompt_durations(self.company),
        )
        await self.sim.start()
        settings = AriSettings(self.sim.url, USER, PASSWORD, self.company.config.asterisk.app)
        self.app = AriApp(
            lambda: self.company,
            settings,
            sink=self.sink,
            clock=self.clock,
            backoff_first=0.05,
            wall_clock=self._wall_clock,
        )
        await self.app.__aenter__()
        await self.app.wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.__aexit__(*exc)
        await self.sim.stop()

    def _wall_clock(self) -> dt.datetime:
        return self.when or dt.datetime.now(dt.UTC)

    def script(self, agents: dict[str, AgentBehaviour]) -> None:
        for endpoint, script in endpoint_scripts(self.company, agents).items():
            self.sim.script_endpoint(endpoint, script)

    async def place(
        self,
        *,
        caller: str,
        called: str = "",
        line: int | None = None,
        presses: Sequence[Press] = (),
        hangup_after: float | None = None,
        caller_name: str = "",
    ) -> str:
        tech = "DAHDI" if line is not None else "PJSIP/trunk"
        return await self.sim.place_call(
            caller,
            called,
            caller_name=caller_name,
            tech=tech,
            line=line,
            script=CallerScript(presses=tuple(presses), hangup_after=hangup_after),
            app=self.company.config.asterisk.app,
        )

    async def call(self, within: float = 30.0, **kwargs: Any) -> CallRecord:
        """Place one call and wait (real seconds) for its record."""
        channel = await self.place(**kwargs)
        return await self.record_of(channel, within)

    async def record_of(self, channel_id: str, within: float = 30.0) -> CallRecord:
        """The record of the call on ``channel_id``, once it has ended."""
        async with asyncio.timeout(within):
            while True:
                for record in self.sink.records:
                    if record.channel_id == channel_id:
                        return record
                self.sink.finished.clear()
                await self.sink.finished.wait()

    async def settled(self, within: float = 5.0) -> None:
        """Until the simulator has no channel and no bridge left (nothing leaked)."""
        await self.sim.wait_for(
            lambda sim: not sim.live_channels() and not sim.live_bridges(),
            timeout=within,
            what="every channel and bridge gone",
        )
