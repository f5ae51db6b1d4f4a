"""Problems found in a configuration file, and how they are printed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from switchboard.config.yaml_source import Path

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    message: str
    severity: Severity = "error"
    line: int = 0  # filled in by the loader from the YAML source

    def format(self, filename: str) -> str:
        """``FILE:LINE: message``; warnings say so."""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{filename}:{self.line}: {prefix}{describe_path(self.path)}{self.message}"


def describe_path(path: Path) -> str:
    """Where in the file, in the words of the file: ``node main.sales_menu: ``."""
    if not path:
        return ""
    if len(path) >= 4 and path[0] == "scenarios" and path[2] == "nodes":
        rest = _dotted(path[4:])
        return f"node {path[1]}.{path[3]}{'.' + rest if rest else ''}: "
    if len(path) >= 2 and path[0] == "scenarios":
        rest = _dotted(path[2:])
        return f"scenario {path[1]}{'.' + rest if rest else ''}: "
    return f"{_dotted(path)}: "


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class ConfigError(Exception):
    """The configuration has errors; `problems` has every one of them."""

    error_id = "config.invalid"

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        lines = [p.format(filename) for p in problems if p.severity == "error"]
        super().__init__("\n".join(lines) or "invalid configuration")
