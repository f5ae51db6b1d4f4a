"""The record of a call's run: one step per node passed, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Result = Literal["connected", "voicemail", "callback", "dialplan", "hangup", "abandoned"]
RESULTS: tuple[Result, ...] = (
    "connected",
    "voicemail",
    "callback",
    "dialplan",
    "hangup",
    "abandoned",
)


@dataclass(slots=True)
class Step:
    scenario: str
    node: str
    type: str
    t: float
    exit: str | None = None  # the node the call went to next
    via: str | None = None  # which exit: "default", "option 1", "open", "noanswer", ...
    t_end: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "node": self.node,
            "type": self.type,
            "exit": self.exit,
            "t": round(self.t, 3),
            "scenario": self.scenario,
        }
        if self.via is not None:
            out["via"] = self.via
        if self.t_end is not None:
            out["t_end"] = round(self.t_end, 3)
        if self.details:
            out["details"] = self.details
        if self.events:
            out["events"] = [{**e, "t": round(e["t"], 3)} for e in self.events]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        """A step back from `as_json` (a call adopted after a restart carries its steps)."""
        return cls(
            scenario=str(data["scenario"]),
            node=str(data["node"]),
            type=str(data["type"]),
            t=float(data["t"]),
            exit=data.get("exit"),
            via=data.get("via"),
            t_end=data.get("t_end"),
            details=dict(data.get("details", {})),
            events=list(data.get("events", [])),
        )


@dataclass(slots=True)
class Outcome:
    result: Result
    reason: str
    duration: float
    wait: float
    agent: str | None = None
    department: str | None = None
    talk: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result}
        if self.agent is not None:
            out["agent"] = self.agent
        if self.department is not None:
            out["department"] = self.department
        out["wait"] = round(self.wait, 3)
        if self.talk is not None:
            out["talk"] = round(self.talk, 3)
        out["duration"] = round(self.duration, 3)
        out["reason"] = self.reason
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        """An outcome back from `as_json`: what is not a field of its own is ``extra``."""
        fields = {"result", "agent", "department", "wait", "talk", "duration", "reason"}
        result = data["result"]
        if result not in RESULTS:
            raise ValueError(f"unknown result {result!r}")
        talk = data.get("talk")
        return cls(
            result=result,
            reason=str(data["reason"]),
            duration=float(data["duration"]),
            wait=float(data["wait"]),
            agent=data.get("agent"),
            department=data.get("department"),
            talk=None if talk is None else float(talk),
            extra={k: v for k, v in data.items() if k not in fields},
        )
