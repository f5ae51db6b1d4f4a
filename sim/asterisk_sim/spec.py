"""The ARI specification as data: the models and operations of Asterisk's Swagger 1.1 files.

Asterisk publishes its REST interface as ``rest-api/api-docs/*.json`` (Swagger
1.1).  `load_spec` reads those files and `AriSpec.validate` checks a JSON
object against one of their models: every required field present, every
field's type right (``string``, ``int``, ``Date``, ``List[Channel]``, a nested
model ...), enumerated values among the allowed ones, and no field the model
does not declare.  Events are checked against their own model plus the
``Message`` and ``Event`` models they extend.  The tests run every response
and event of the simulator through it, which is what keeps the simulator and
the ARI client on one contract.

The files are read from ``$SWITCHBOARD_ARI_SPEC`` when it is set (another
Asterisk version), else from the copy of Asterisk 22.10.1's that ships in
``asterisk_sim/ari_spec/``, so a clone checks itself wherever it lies.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_ENV = "SWITCHBOARD_ARI_SPEC"
_LIST = re.compile(r"^List\[(.+)\]$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)$")
_PRIMITIVES = {"string", "int", "long", "double", "float", "boolean", "Date", "object"}


class SpecError(ValueError):
    """A JSON value does not match the ARI model it should follow."""

    def __init__(self, model: str, problems: list[str]) -> None:
        super().__init__(f"not a valid {model}: " + "; ".join(problems))
        self.model = model
        self.problems = problems


@dataclass(frozen=True)
class Property:
    """One field of a model: its declared type, whether required, allowed values."""

    name: str
    type: str
    required: bool
    allowed: tuple[str, ...] | None


@dataclass(frozen=True)
class Model:
    """A Swagger model (``Channel``, ``StasisStart`` ...) and the models it extends."""

    id: str
    properties: dict[str, Property]
    parents: tuple[str, ...]


@dataclass(frozen=True)
class ErrorResponse:
    code: int
    reason: str


@dataclass(frozen=True)
class Operation:
    """One REST operation: ``GET /channels/{channelId}`` answering a ``Channel``."""

    method: str
    path: str
    nickname: str
    response_class: str
    errors: tuple[ErrorResponse, ...]

    def matches(self, method: str, path: str) -> bool:
        """Whether ``method path`` (a concrete path, no ``/ari`` prefix) is this operation."""
        if method.upper() != self.method:
            return False
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(self.path))
        return re.fullmatch(pattern, path) is not None

    def error_codes(self) -> set[int]:
        return {e.code for e in self.errors}


def default_spec_dir() -> Path:
    """``$SWITCHBOARD_ARI_SPEC``, else the Asterisk 22 spec shipped with the package."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent / "ari_spec"


class AriSpec:
    """All models and operations of one ARI version, with validation."""

    def __init__(self, models: dict[str, Model], operations: list[Operation]) -> None:
        self.models = models
        self.operations = operations

    # -- lookup ---------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation serving ``method path``; ``path`` may start with ``/ari``.

        Literal paths win over templated ones (``/channels/create`` is not
        ``/channels/{channelId}``).
        """
        if path.startswith("/ari/"):
            path = path[len("/ari") :]
        found = [op for op in self.operations if op.matches(method, path)]
        found.sort(key=lambda op: op.path.count("{"))
        return found[0] if found else None

    def fields(self, model: str) -> dict[str, Property]:
        """Every field of ``model`` including those of the models it extends."""
        merged: dict[str, Property] = {}
        for name in self._lineage(model):
            merged.update(self.models[name].properties)
        return merged

    def _lineage(self, model: str) -> list[str]:
        chain: list[str] = []
        todo = [model]
        while todo:
            name = todo.pop()
            if name in chain:
                continue
            chain.append(name)
            todo.extend(self.models[name].parents)
        return list(reversed(chain))

    # -- validation -----------------------------------------------------------

    def validate(self, value: Any, model: str) -> list[str]:
        """Every way ``value`` differs from ``model`` (``[]``: it conforms)."""
        problems: list[str] = []
        self._check(value, model, "$", problems)
        return problems

    def validate_event(self, event: Any) -> list[str]:
        """Check a websocket message against the model its ``type`` names."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return ["$: an event is an object with a string 'type'"]
        if event["type"] not in self.models:
            return [f"$.type: unknown event type {event['type']!r}"]
        return self.validate(event, event["type"])

    def assert_valid(self, value: Any, model: str) -> None:
        """Raise `SpecError` unless ``value`` conforms to ``model``."""
        problems = self.validate(value, model)
        if problems:
            raise SpecError(model, problems)

    def _check(self, value: Any, type_name: str, where: str, problems: list[str]) -> None:
        listed = _LIST.match(type_name)
        if listed:
            if not isinstance(value, list):
                problems.append(f"{where}: expected {type_name}, got {_kind(value)}")
                return
            for i, item in enumerate(value):
                self._check(item, listed.group(1), f"{where}[{i}]", problems)
            return
        if type_name in _PRIMITIVES:
            problem = _primitive_problem(value, type_name)
            if problem:
                problems.append(f"{where}: {problem}")
            return
        if type_name not in self.models:
            problems.append(f"{where}: the spec has no model {type_name!r}")
            return
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a {type_name} object, got {_kind(value)}")
            return
        fields = self.fields(type_name)
        for name, prop in fields.items():
            if name not in value:
                if prop.required:
                    problems.append(f"{where}.{name}: required by {type_name}, missing")
                continue
            self._check(value[name], prop.type, f"{where}.{name}", problems)
            if prop.allowed is not None and value[name] not in prop.allowed:
                problems.append(f"{where}.{name}: {value[name]!r} is not one of {prop.allowed}")
        for name in value:
            if name not in fields:
                problems.append(f"{where}.{name}: {type_name} has no such field")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _primitive_problem(value: Any, type_name: str) -> str | None:
    ok: bool
    match type_name:
        case "string":
            ok = isinstance(value, str)
        case "int" | "long":
            ok = isinstance(value, int) and not isinstance(value, bool)
        case "double" | "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            ok = isinstance(value, bool)
        case "object":
            ok = isinstance(value, dict)
        case "Date":
            if isinstance(value, str) and _DATE.match(value):
                return None
            return f"expected a Date (ISO 8601 string), got {value!r}"
        case _:
            ok = False
    return None if ok else f"expected {type_name}, got {_kind(value)}"


def _allowed(raw: dict[str, Any]) -> tuple[str, ...] | None:
    values = raw.get("allowableValues")
    if isinstance(values, dict) and values.get("valueType") == "LIST":
        return tuple(str(v) for v in values.get("values", []))
    return None


@functools.cache
def load_spec(directory: Path | None = None) -> AriSpec:
    """Read every ``*.json`` API declaration of ``directory`` (default: `default_spec_dir`)."""
    folder = directory if directory is not None else default_spec_dir()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"ARI spec folder {folder} not found; "
            f"set {SPEC_ENV} to the folder holding channels.json"
        )
    raw_models: dict[str, dict[str, Any]] = {}
    operations: list[Operation] = []
    for file in sorted(folder.glob("*.json")):
        document = json.loads(file.read_text(encoding="utf-8"))
        raw_models.update(document.get("models", {}))
        for api in document.get("apis", []):
            for op in api.get("operations", []):
                operations.append(
                    Operation(
                        method=str(op["httpMethod"]).upper(),
                        path=str(api["path"]),
                        nickname=str(op.get("nickname", "")),
                        response_class=str(op.get("responseClass", "void")),
                        errors=tuple(
                            ErrorResponse(int(e["code"]), str(e.get("reason", "")))
                            for e in op.get("errorResponses", [])
                        ),
                    )
                )
    parents: dict[str, list[str]] = {}
    for name, raw in raw_models.items():
        for sub in raw.get("subTypes", []):
            parents.setdefault(sub, []).append(name)
    models = {
        name: Model(
            id=name,
            properties={
                pname: Property(
                    name=pname,
                    type=str(p.get("type", "object")),
                    required=bool(p.get("required", False)),
                    allowed=_allowed(p),
                )
                for pname, p in raw.get("properties", {}).items()
            },
            parents=tuple(parents.get(name, [])),
        )
        for name, raw in raw_models.items()
    }
    return AriSpec(models, operations)
