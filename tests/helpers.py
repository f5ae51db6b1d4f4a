"""Reading a simulated call's trace the way a person reads `simulate` output."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asterisk_sim.script import Press
from switchboard.config.company import Company
from switchboard.config.load import load_company, load_text
from switchboard.simulate import AgentBehaviour, Simulation, simulate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def example(name: str) -> Company:
    return load_company(EXAMPLES / name)


def company_from(text: str) -> Company:
    return load_text(text, "test.yaml").raise_for_errors()


def at(text: str, company: Company) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=company.tz)


def run(company: Company, when: str = "2026-12-01T10:15:00", **kwargs: Any) -> Simulation:
    """Simulate one call; ``agents`` may be given as {"id": "busy"} strings."""
    agents = kwargs.pop("agents", {})
    parsed = {
        k: v if isinstance(v, AgentBehaviour) else AgentBehaviour.parse(v)
        for k, v in agents.items()
    }
    kwargs.setdefault("keep_actions", True)
    return simulate(company, at=at(when, company), agents=parsed, **kwargs)


def path(sim: Simulation) -> list[str]:
    """The nodes the call passed, in order."""
    return [step.node for step in sim.steps]


def step(sim: Simulation, node: str) -> Any:
    found = [s for s in sim.steps if s.node == node]
    assert found, f"the call never reached {node!r}: {path(sim)}"
    return found[0]


def rings(sim: Simulation, event: str = "ring") -> list[tuple[float, str, str]]:
    """(time, agent, device) of every ring (or stop/answer/...) event of the call."""
    return [
        (e["t"], e["agent"], e["device"])
        for s in sim.steps
        for e in s.events
        if e["event"] == event
    ]


def events(sim: Simulation, event: str) -> list[dict[str, Any]]:
    return [e for s in sim.steps for e in s.events if e["event"] == event]


@dataclass(frozen=True)
class CallScript:
    """One call, said both ways: `simulate`'s flags, and what a caller does on a
    simulated Asterisk (ARI simulator or FastAGI peer), to compare the two."""

    name: str
    config: str
    at: str = "2026-12-01T10:15"
    caller: str = "79035550000"
    called: str = ""
    line: int | None = None
    dtmf: str = ""  # for `simulate`
    presses: tuple[Press, ...] = ()  # the same keys, for the simulated Asterisk
    agents: dict[str, str] = field(default_factory=dict)
    hangup_after: float | None = None

    def behaviours(self) -> dict[str, AgentBehaviour]:
        return {k: AgentBehaviour.parse(v) for k, v in self.agents.items()}

    def simulated(self, company: Company) -> Simulation:
        return simulate(
            company,
            called=self.called or None,
            caller=self.caller,
            line=self.line,
            at=at(self.at, company),
            dtmf=self.dtmf,
            agents=self.behaviours(),
            hangup_after=self.hangup_after,
        )


def exits(steps: list[Any]) -> list[tuple[str, str | None, str | None]]:
    """(node, exit label, next node) of every step: the path a call took."""
    return [(s.node, s.via, s.exit) for s in steps]
