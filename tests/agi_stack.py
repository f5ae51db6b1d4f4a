"""The FastAGI server and an Asterisk that calls it, on one virtual clock.

`AgiStack` runs Switchboard's `AgiApp` behind a real `AgiServer` on a loopback
port, and `asterisk_sim.agi.AgiPeer` plays Asterisk's side over the socket:
prompts last what `simulate` says they last, phones behave as `simulate`'s
``--agent`` flags say, so both can be compared call for call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agi_server.app import AgiApp
from agi_server.call import AgiCallSettings
from agi_server.server import AgiServer
from asterisk_sim.agi import AgiCall, AgiPeer, Subroutine
from asterisk_sim.script import EndpointScript
from switchboard.calls import CallSink, MemorySink
from switchboard.clock import Clock, VirtualClock
from switchboard.config.company import Company
from switchboard.prompts import BUILTIN_PROMPTS
from switchboard.simulate import DEFAULT_TALK, REFUSE_AFTER, AgentBehaviour


def durations(company: Company) -> dict[str, float]:
    """How long each sound file plays: the lengths `simulate` gives its prompts."""
    settings = AgiCallSettings.from_company(company)
    out: dict[str, float] = {}
    for name in list(BUILTIN_PROMPTS) + list(company.config.prompts):
        _, file = settings.media(name, company)
        out[file] = company.prompt_duration(name)
    return out


def endpoints(
    company: Company, agents: Mapping[str, AgentBehaviour], talk: float = DEFAULT_TALK
) -> dict[str, EndpointScript]:
    """Each employee's desk and mobile behave as `simulate`'s ``--agent ID=...``."""
    settings = AgiCallSettings.from_company(company)
    out: dict[str, EndpointScript] = {}
    for emp_id, behaviour in agents.items():
        employee = company.employees[emp_id]
        script = _script(behaviour, talk)
        out[settings.endpoints.employee.format(extension=employee.extension)] = script
        if employee.mobile:
            for template in (settings.endpoints.mobile, settings.endpoints.mobile_confirm):
                out[template.format(number=company.normalize(employee.mobile))] = script
    return out


DIALPLAN = Path(__file__).resolve().parent.parent / "dialplan" / "extensions-switchboard-agi.conf"


def shipped_subroutines() -> dict[str, Subroutine]:
    """The shipped dialplan's contexts that a Dial's ``U()`` runs and that call the
    FastAGI server back (``[switchboard-whisper]``), as the simulated Asterisk runs
    them: ``s,1,AGI(agi://…/<path>)``, then ``Return(${<variable>})``."""
    found: dict[str, Subroutine] = {}
    context = ""
    agi: str | None = None
    for raw in DIALPLAN.read_text("utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            context, agi = line[1:-1], None
        elif match := re.fullmatch(r"exten => s,1,AGI\(agi://[^/]+/(\w+)\)", line):
            agi = match[1]
        elif (match := re.fullmatch(r"same => n,Return\(\$\{(\w+)\}\)", line)) and agi:
            found[context] = Subroutine(agi, returns=match[1])
    return found


def _script(behaviour: AgentBehaviour, talk: float) -> EndpointScript:
    match behaviour.kind:
        case "answer":
            return EndpointScript("answer", after=behaviour.seconds, hangup_after=talk)
        case "refuse":
            # simulate's: answers, then presses the (default) refuse key a second into
            # the whisper
            return EndpointScript(
                "answer", after=behaviour.seconds, hangup_after=talk, confirm_key="*",
                confirm_on="", confirm_after=REFUSE_AFTER,
            )  # fmt: skip
        case "busy":
            return EndpointScript("busy")
        case "offline":
            return EndpointScript("offline")
    return EndpointScript("noanswer")


class AgiStack:
    """``async with AgiStack(company, when=...) as stack: call = await stack.call(...)``"""

    def __init__(
        self,
        company: Company,
        when: dt.datetime,
        agents: Mapping[str, AgentBehaviour] | None = None,
        sink: CallSink | None = None,
        talk: float = DEFAULT_TALK,
        clock: Clock | None = None,
    ) -> None:
        self.company = company
        # virtual: one call at a time, exact times; a ScaledClock for calls side by side
        self.clock = clock or VirtualClock()
        self.memory = MemorySink()
        self.sink: CallSink = sink or self.memory
        start = self.clock.now()

        def wall_clock() -> dt.datetime:
            # the calls' local time moves with the virtual clock, from `when`
            return when + dt.timedelta(seconds=self.clock.now() - start)

        self.app = AgiApp(lambda: company, self.sink, clock=self.clock, wall_clock=wall_clock)
        self.server = AgiServer(self.app.handle)
        self.agents = dict(agents or {})
        self.talk = talk
        self.peer: AgiPeer | None = None

    async def __aenter__(self) -> AgiStack:
        host, port = await self.server.start("127.0.0.1", 0)
        self.peer = AgiPeer(
            host,
            port,
            clock=self.clock,
            durations=durations(self.company),
            endpoints=endpoints(self.company, self.agents, self.talk),
            talk=self.talk,
            subroutines=shipped_subroutines(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()
        await self.app.close()

    async def call(self, path: str = "scenario", **kwargs: Any) -> AgiCall:
        assert self.peer is not None
        return await self.peer.call(path, **kwargs)
