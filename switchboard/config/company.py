"""The loaded company: the validated config plus the indexes the engine reads.

A `Company` is the in-memory snapshot a call runs against.  It is built once
per configuration version, never changes, and answers every question the
engine asks without I/O: who has extension 101, which scenario a number starts,
is the office open at this local time.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from switchboard.config.model import (
    Config,
    Department,
    DialNode,
    Employee,
    Node,
    QueueNode,
    Scenario,
)
from switchboard.numbering import NumberingPlan, normalize
from switchboard.prompts import BUILTIN_PROMPTS, SPOKEN_DIGIT_SECONDS
from switchboard.schedule import CompiledSchedule

TargetKind = Literal["employee", "department"]


@dataclass(frozen=True, slots=True)
class CaseMatcher:
    """One `switch` case: exact values, a prefix or a regular expression."""

    next: str
    label: str  # the exit label in the trace: "case 7495..." or "case #2"
    values: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    def matches(self, value: str) -> bool:
        if value in self.values:
            return True
        if self.prefixes and value.startswith(self.prefixes):
            return True
        return self.pattern is not None and self.pattern.search(value) is not None


@dataclass(frozen=True)
class Company:
    config: Config
    source: str
    plan: NumberingPlan
    tz: ZoneInfo
    employees: dict[str, Employee]
    departments: dict[str, Department]
    extensions: dict[str, tuple[TargetKind, str]]
    schedules: dict[str, CompiledSchedule]
    numbers: dict[str, str]  # normalised calledID -> scenario
    lines: dict[int, str]  # analog line -> scenario
    line_numbers: dict[int, str]  # analog line -> the number it stands for
    contacts: dict[str, str]  # normalised caller -> employee id
    switch_cases: dict[tuple[str, str], tuple[CaseMatcher, ...]]
    greeting_bounds: tuple[int, int]  # minutes: morning until, day until
    vip: dict[str, int] = field(default_factory=dict)  # normalised caller -> priority
    # normalised caller -> (scenario, start node or None): `callers:`, before `numbers:`
    caller_routes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    prompt_seconds: dict[str, float] = field(default_factory=dict)
    config_version: int | None = None  # the stored version it was loaded from, if any
    _exits: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict, repr=False)
    # what the runtimes derive from this snapshot and keep while it is current (the
    # FastAGI route's ring plans): bounded by the configuration's size
    derived: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    def scenario(self, name: str) -> Scenario:
        return self.config.scenarios[name]

    def node(self, scenario: str, name: str) -> Node:
        return self.config.scenarios[scenario].nodes[name]

    def node_exits(self, scenario: str, node: str) -> dict[str, str]:
        """Exit label -> target node of a node (cached: the company never changes)."""
        key = (scenario, node)
        found = self._exits.get(key)
        if found is None:
            found = self._exits[key] = self.node(scenario, node).exits()
        return found

    def normalize(self, raw: str | None) -> str:
        return normalize(raw, self.plan)

    def select_scenario(self, called: str | None, line: int | None) -> str | None:
        """The scenario a call starts in: by analog line, by calledID, else the default."""
        if line is not None and line in self.lines:
            return self.lines[line]
        if called is not None:
            found = self.numbers.get(self.normalize(called))
            if found is not None:
                return found
        return self.config.default_scenario

    def number_language(self, called: str, line: int | None) -> str | None:
        """The `language` of the `numbers:` entry a call came in on, if it sets one."""
        for entry in self.config.numbers:
            if entry.language is None:
                continue
            if line is not None and entry.line == line:
                return entry.language
            if (
                entry.line is None
                and entry.number is not None
                and self.normalize(entry.number) == called
            ):
                return entry.language
        return None

    def resolve_target(self, text: str) -> tuple[TargetKind, str] | None:
        """An employee or department by id or by extension."""
        if text in self.employees:
            return ("employee", text)
        if text in self.departments:
            return ("department", text)
        return self.extensions.get(text)

    def node_department(self, node: Node) -> str | None:
        """The department a `dial` node rings, or a `queue` node queues for."""
        if isinstance(node, QueueNode):
            return node.department
        if isinstance(node, DialNode):
            target = self.resolve_target(node.target)
            if target is not None and target[0] == "department":
                return target[1]
        return None

    def local_time(self, when: dt.datetime) -> dt.datetime:
        return when.astimezone(self.tz)

    def sound_file(self, prompt: str, builtin_prefix: str) -> str:
        """The Asterisk sound a prompt name plays: a declared prompt's `file`, a built-in
        one from the project's folder (``builtin_prefix``), else the name itself."""
        declared = self.config.prompts.get(prompt)
        if declared is not None:
            return declared.file or prompt
        if prompt in BUILTIN_PROMPTS:
            return f"{builtin_prefix}{prompt}"
        return prompt

    def greeting_for(self, local: dt.datetime) -> str:
        minute = local.hour * 60 + local.minute
        morning, day = self.greeting_bounds
        if minute < morning:
            return "greeting-morning"
        if minute < day:
            return "greeting-day"
        return "greeting-evening"

    def prompt_duration(self, name: str) -> float:
        """How long a prompt plays, for the virtual clock of `simulate`."""
        if name in self.prompt_seconds:
            return self.prompt_seconds[name]
        if name.startswith(("number:", "digits:")):
            return max(1.0, SPOKEN_DIGIT_SECONDS * len(name.split(":", 1)[1]))
        builtin = BUILTIN_PROMPTS.get(name)
        return builtin[0] if builtin else 3.0
