"""Reading a configuration file: YAML -> typed `Config` -> checked `Company`.

Every problem in the file is reported, not only the first.  When an object
fails its schema it is set aside and the rest of the file is still checked
(references to the set-aside object are not reported again).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from switchboard.config.company import Company
from switchboard.config.model import NODE_TYPES, Config, NodeBase
from switchboard.config.problems import ConfigError, Problem
from switchboard.config.validate import check_config
from switchboard.config.yaml_source import (
    MAX_BYTES,
    Path,
    YamlDocument,
    YamlSyntaxError,
    load_yaml,
    size_error,
)
from switchboard.textfile import TextFileError, TooBig, read_text_file

# list/dict containers whose entries can be set aside when one is malformed
_PRUNABLE: tuple[tuple[str, ...], ...] = (
    ("scenarios", "*", "nodes", "*"),
    ("employees", "*"),
    ("departments", "*"),
    ("numbers", "*"),
    ("schedules", "*"),
    ("prompts", "*"),
    ("scenarios", "*"),
)
# top-level settings nothing else refers to: when one is malformed, the rest of
# the file is checked with its default
_DROPPABLE = frozenset(
    {
        "timezone",
        "language",
        "numbering",
        "asterisk",
        "database",
        "admin",
        "greeting",
        "limits",
        "contacts",
        "default_scenario",
    }
)
_EXIT_FIELDS = {name for cls in NodeBase.__subclasses__() for name in getattr(cls, "EXITS", ())}


@dataclass(frozen=True)
class LoadResult:
    filename: str
    company: Company | None  # None when there are errors
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def raise_for_errors(self) -> Company:
        if self.company is None:
            raise ConfigError(self.filename, self.problems)
        return self.company


def load_file(filename: str | FsPath) -> LoadResult:
    name = str(filename)
    try:
        text = read_config(filename)
    except TextFileError as exc:
        return LoadResult(name, None, [Problem((), exc.message, line=exc.line)])
    return load_text(text, name)


def read_config(filename: str | FsPath) -> str:
    """A configuration file's text; `TextFileError` (with its line) if it cannot be one.

    A file over `MAX_BYTES` is refused after reading one byte past the bound.
    """
    try:
        return read_text_file(filename, MAX_BYTES)
    except TooBig as exc:
        raise TextFileError(1, size_error(exc.size).message) from None


def load_company(filename: str | FsPath) -> Company:
    """The checked company of a file; raise `ConfigError` listing every problem."""
    return load_file(filename).raise_for_errors()


def load_text(text: str, filename: str = "<config>") -> LoadResult:
    try:
        doc = load_yaml(text)
    except YamlSyntaxError as exc:
        return LoadResult(filename, None, [Problem((), exc.message, line=exc.line)])
    problems: list[Problem] = [
        Problem(path, f"duplicate key {path[-1]!r} (the later one would silently win)")
        for path, _ in doc.duplicate_keys
    ]
    if not isinstance(doc.data, dict):
        problems.append(Problem((), "the file must be a mapping of sections (timezone:, ...)"))
        return _finish(filename, doc, None, problems)

    data = copy.deepcopy(doc.data)
    invalid: set[Path] = set()
    config: Config | None = None
    kept: dict[str, list[int]] = {}  # list section -> original index of each kept entry
    for _ in range(20):
        clean, kept = _without_pruned(data)
        try:
            config = Config.model_validate(clean)
            break
        except ValidationError as exc:
            pruned_any = False
            for error in exc.errors():
                loc = _original_loc(error["loc"], kept)
                path, message = _describe({**error, "loc": loc}, doc.data)
                problems.append(Problem(path, message))
                if error["type"] == "extra_forbidden" and _prune(data, path):
                    # an unknown key alone: drop just the key, the object is still checked
                    pruned_any = True
                    continue
                container = _prunable_prefix(path)
                if container is not None and _prune(data, container):
                    invalid.add(_invalid_name(doc.data, container))
                    pruned_any = True
                elif (
                    container is None and path and path[0] in _DROPPABLE and _prune(data, path[:1])
                ):
                    # a broken settings section: check the rest of the file with its defaults
                    pruned_any = True
            if not pruned_any:
                break
    problems = _dedupe(problems)
    if config is None:
        return _finish(filename, doc, None, problems)
    company, semantic = check_config(config, invalid)
    problems.extend(
        dataclasses.replace(p, path=tuple(_original_loc(p.path, kept))) for p in semantic
    )
    has_errors = any(p.severity == "error" for p in problems)
    company = dataclasses.replace(company, source=filename)
    return _finish(filename, doc, None if has_errors else company, problems)


def _finish(
    filename: str, doc: YamlDocument, company: Company | None, problems: list[Problem]
) -> LoadResult:
    located = [p if p.line else dataclasses.replace(p, line=doc.line_of(p.path)) for p in problems]
    located.sort(key=lambda p: (p.line, p.severity != "error"))
    return LoadResult(filename, company, located)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    merged: dict[Path, list[str]] = {}
    order: list[Path] = []
    out: list[Problem] = []
    for p in problems:
        if p.path not in merged:
            merged[p.path] = []
            order.append(p.path)
        if p.message not in merged[p.path]:
            merged[p.path].append(p.message)
    for path in order:
        out.append(Problem(path, " or ".join(merged[path])))
    return out


def _describe(error: ErrorDetails, data: Any) -> tuple[Path, str]:
    """The error's path in the file's own terms, and a message a person can act on."""
    path: list[str | int] = []
    node: Any = data
    loc = error["loc"]
    tag_skipped: set[int] = set()  # id() of objects whose discriminator step was passed
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and id(node) not in tag_skipped and node.get("type") == part:
            # pydantic names the member of a tagged union (a node's or source's
            # `type`) before the field: ("schedule", "open") of a schedule node
            # means its `open`, not its `schedule` key
            tag_skipped.add(id(node))
        elif isinstance(node, dict) and part in node:  # noqa: SIM114 - separate branches let mypy narrow the index type
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif last and error["type"] in {"missing", "extra_forbidden"}:
            path.append(part)
        # anything else is pydantic's own step (a union member, a tag): not in the file
    kind = error["type"]
    name = str(path[-1]) if path else ""
    if kind == "missing":
        what = "exit" if name in _EXIT_FIELDS and _in_node(path) else "key"
        return tuple(path), f"missing required {what} {name!r}"
    if kind == "extra_forbidden":
        return tuple(path), f"unknown key {name!r}"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "?")
        if isinstance(node, dict) and "type" in node:
            path.append("type")  # point at the `type:` line itself
        options = (
            ", ".join(NODE_TYPES)
            if _in_node(path)
            else error.get("ctx", {}).get("expected_tags", "")
        )
        return tuple(path), f"unknown type {tag!r} (known: {options})"
    if kind == "union_tag_not_found":
        return tuple(path), "missing required key 'type'"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    secret = bool(path) and path[-1] in _SECRET_KEYS
    if isinstance(value, str | int | float) and not isinstance(value, bool) and not secret:
        message = f"{message}, got {value!r}"
    return tuple(path), message[0].lower() + message[1:] if message else message


# keys whose values may hold a password: an error about them never repeats the value
_SECRET_KEYS = frozenset({"ari_url", "ari_password", "dsn"})


def _in_node(path: list[str | int]) -> bool:
    return len(path) >= 4 and path[0] == "scenarios" and path[2] == "nodes"


def _prunable_prefix(path: Path) -> Path | None:
    for pattern in _PRUNABLE:
        if len(path) >= len(pattern) and all(
            want in ("*", got) for want, got in zip(pattern, path, strict=False)
        ):
            return path[: len(pattern)]
    return None


_PRUNED = object()  # marks a list entry set aside, so indexes stay those of the file
_LIST_SECTIONS = ("employees", "departments", "numbers")


def _prune(data: Any, path: Path) -> bool:
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    if isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        if node[last] is _PRUNED:
            return False
        node[last] = _PRUNED
        return True
    return False


def _without_pruned(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    clean = dict(data)
    kept: dict[str, list[int]] = {}
    for section in _LIST_SECTIONS:
        entries = data.get(section)
        if isinstance(entries, list):
            kept[section] = [i for i, entry in enumerate(entries) if entry is not _PRUNED]
            clean[section] = [entries[i] for i in kept[section]]
    return clean, kept


def _original_loc(loc: tuple[Any, ...], kept: dict[str, list[int]]) -> tuple[Any, ...]:
    if len(loc) >= 2 and loc[0] in kept and isinstance(loc[1], int):
        indexes = kept[loc[0]]
        if 0 <= loc[1] < len(indexes):
            return (loc[0], indexes[loc[1]], *loc[2:])
    return loc


def _invalid_name(original: Any, container: Path) -> Path:
    """How others refer to a set-aside object: its key, or the `id` of a list entry."""
    if isinstance(container[-1], int):
        try:
            entry = original[container[0]][container[-1]]
        except (KeyError, IndexError, TypeError):
            return container
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            return (*container[:-1], entry["id"])
    return container
