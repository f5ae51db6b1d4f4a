"""Template values in the configuration: ``{called}``, ``{var.NAME}`` and friends.

A template is parsed once, at load, into literal text and placeholders; it is
rendered by looking names up in a mapping.  Nothing in a template is ever
evaluated as code.  ``{{`` and ``}}`` stand for literal braces.

A CRM request's templates (an ICM `http` source's url, headers and body) may also
name ``{env.NAME}``: an environment variable of the runtime, for a token.  The
engine never reads one: it renders the call's values into a *deferred* template
(`defer`), every brace of the call's values escaped, so that only the configuration
can name a variable, and the runtime fills them in at request time (`fill_env`).
A secret never reaches the trace, a record or a log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import quote

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
_ENV = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")


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
def parse_template(source: str, env: bool = False, only_env: bool = False) -> Template:
    """Parse ``source``; raise `TemplateError` for unknown placeholders or stray braces.
    ``env``: ``{env.NAME}`` may be used too (a CRM request's templates); ``only_env``:
    nothing else may (a deferred template, see `fill_env`)."""
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
            is_env = bool(_ENV.match(name))
            if only_env and not is_env:
                raise TemplateError(f"only {{env.NAME}} is left in a deferred template: {name}")
            if is_env and not (env or only_env):
                raise TemplateError(
                    f"{{{name}}} in {source!r}: an environment variable is read only in an "
                    "http source's url, headers and body"
                )
            if not is_env:
                _known(name, source, env)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((name,))
    literal.append(source[pos:])
    text = "".join(literal)
    if text:
        parts.append(text)
    return Template(parts=tuple(parts), source=source)


def _known(name: str, source: str, env: bool) -> None:
    """`TemplateError` unless ``name`` is a call's field or ``var.NAME``."""
    if name not in CALL_FIELDS and not _VAR.match(name):
        known = ", ".join("{" + f + "}" for f in sorted(CALL_FIELDS))
        more = ", {env.NAME}" if env else ""
        raise TemplateError(
            f"unknown placeholder {{{name}}} in {source!r}; known: {known}, {{var.NAME}}{more}"
        )


_JSON_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}")


@lru_cache(maxsize=1024)
def parse_json_template(source: str) -> Template:
    """A JSON body's template (a CRM request's ``body``): only ``{name}`` of a
    placeholder's shape is one; every other brace is JSON's own, so that
    ``{"phone": "{caller}"}`` needs no doubled braces.  `TemplateError` for an unknown
    placeholder."""
    parts: list[str | tuple[str]] = []
    pos = 0
    for match in _JSON_PLACEHOLDER.finditer(source):
        name = match.group(1)
        if not _ENV.match(name):
            _known(name, source, env=True)
        if match.start() > pos:
            parts.append(source[pos : match.start()])
        parts.append((name,))
        pos = match.end()
    if pos < len(source):
        parts.append(source[pos:])
    return Template(parts=tuple(parts), source=source)


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def defer(template: Template, values: Mapping[str, str], escape: Callable[[str], str]) -> str:
    """``template`` rendered with the call's ``values`` (each through ``escape``: URL
    or JSON encoding), its ``{env.NAME}`` left for `fill_env`: a template again, in
    which every other brace, the call's values' too, is escaped."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(_braces(part))
        elif _ENV.match(part[0]):
            out.append("{" + part[0] + "}")
        else:
            out.append(_braces(escape(values.get(part[0], ""))))
    return "".join(out)


class MissingEnv(KeyError):
    """A ``{env.NAME}`` whose variable the runtime's environment does not have."""


def fill_env(deferred: str, environ: Mapping[str, str], escape: Callable[[str], str] = str) -> str:
    """A deferred template (`defer`), or a text naming only ``{env.NAME}`` (a webhook's
    URL, a secret), with its environment variables filled in, each through ``escape``
    (none: as they are); `MissingEnv` names one that is not set."""
    template = parse_template(deferred, only_env=True)
    values = {}
    for name in template.placeholders:
        variable = name.removeprefix("env.")
        if variable not in environ:
            raise MissingEnv(variable)
        values[name] = escape(environ[variable])
    return template.render(values)


# how a value (the call's, or an environment variable's) goes into a CRM request
def url_value(value: str) -> str:
    """Percent-encoded whole: a caller name full of ``&`` or ``/`` cannot change the URL."""
    return quote(value, safe="")


def header_value(value: str) -> str:
    """Line breaks (and NUL) become spaces: a value cannot add a header of its own."""
    return value.replace("\r", " ").replace("\n", " ").replace("\x00", " ")


def json_value(value: str) -> str:
    """Escaped for the inside of a JSON string: a value cannot close the string."""
    return json.dumps(value, ensure_ascii=False)[1:-1]
