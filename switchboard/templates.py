"""Template values in the configuration: ``{called}``, ``{var.NAME}`` and friends.

A template is parsed once, at load, into literal text and placeholders; it is
rendered by looking names up in a mapping.  Nothing in a template is ever
evaluated as code.  ``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

#: Placeholders every call has; ``var.NAME`` reads a variable set by `assign`.
CALL_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "called",  # normalised calledID
        "called_raw",  # calledID exactly as the provider sent it
        "caller",  # normalised callerID
        "caller_raw",
        "caller_name",
        "line",  # analog line number, empty when the call has none
        "digits",  # the last keys the caller entered
        "time",  # local time HH:MM
        "date",  # local date YYYY-MM-DD
        "weekday",  # mon .. sun
        "scenario",
        "node",
        "language",
    }
)

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_VAR = re.compile(r"^var\.[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(ValueError):
    """A template that cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | tuple[str], ...]  # literal text, or (placeholder,)
    source: str

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.parts if isinstance(p, tuple))

    def render(self, values: Mapping[str, str]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, tuple):
                out.append(values.get(part[0], ""))
            else:
                out.append(part)
        return "".join(out)


@lru_cache(maxsize=4096)
def parse_template(source: str) -> Template:
    """Parse ``source``; raise `TemplateError` for unknown placeholders or stray braces."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(source):
        literal.append(source[pos : match.start()])
        pos = match.end()
        piece = match.group(0)
        if piece == "{{":
            literal.append("{")
        elif piece == "}}":
            literal.append("}")
        elif match.group(1) is None:
            raise TemplateError(f"stray {piece!r} in template {source!r} (write {piece * 2})")
        else:
            name = match.group(1).strip()
            if name not in CALL_FIELDS and not _VAR.match(name):
                known = ", ".join("{" + f + "}" for f in sorted(CALL_FIELDS))
                raise TemplateError(
                    f"unknown placeholder {{{name}}} in {source!r}; known: {known}, {{var.NAME}}"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((name,))
    literal.append(source[pos:])
    text = "".join(literal)
    if text:
        parts.append(text)
    return Template(parts=tuple(parts), source=source)
