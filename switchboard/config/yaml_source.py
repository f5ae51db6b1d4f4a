"""YAML reading for configuration files: plain data plus the line of every value.

The loader follows YAML 1.2's core schema where YAML 1.1 surprises telephony
people: ``on``/``off``/``yes``/``no`` stay strings (a menu key ``no`` is a key,
not ``False``), ``09:00`` stays a time and not the sexagesimal number 540,
``2027-01-01`` stays a string (dates are parsed by the schedule model), and
``0495`` stays a string instead of becoming an octal number.  Duplicate keys
are reported instead of silently keeping the last one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

Path = tuple[str | int, ...]


class _CoreResolver(BaseResolver):
    """Implicit tags of YAML 1.2's core schema (booleans are only true/false)."""


_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*))$"),
    list("-+0123456789"),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null",
    re.compile(r"^(?:~|null|Null|NULL|)$"),
    ["~", "n", "N", ""],
)
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


class _Loader(Reader, Scanner, Parser, Composer, SafeConstructor, _CoreResolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _CoreResolver.__init__(self)


class YamlSyntaxError(Exception):
    """The file is not readable YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class YamlDocument:
    """Plain data (dicts, lists, scalars) and the 1-based line of each path."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[Path, int]] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that exists."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raise `YamlSyntaxError` when it is not YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDocument(data=None)
        if node is None:
            doc.data = {}
            return doc
        doc.data = _Walker(loader, doc).value(node, ())
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML syntax: {exc}") from None
    finally:
        loader.dispose()


class _Walker:
    def __init__(self, loader: _Loader, doc: YamlDocument) -> None:
        self._loader = loader
        self._doc = doc
        # mappings already walked once: an alias to one must not report its duplicates again
        self._walked: set[int] = set()

    def value(self, node: Node, path: Path) -> Any:
        self._doc.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        raise YamlSyntaxError(node.start_mark.line + 1, "unsupported YAML node")

    def _scalar(self, node: ScalarNode) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError:
            raise
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            # e.g. `!!int abc`: an explicit tag the text cannot be read as
            raise YamlSyntaxError(
                node.start_mark.line + 1,
                f"YAML syntax: {node.value!r} cannot be read as "
                f"{node.tag.replace('tag:yaml.org,2002:', '!!')} ({exc})",
            ) from None

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise YamlSyntaxError(node.start_mark.line + 1, "mapping keys must be plain values")
        key = self._scalar(node)
        if isinstance(key, str):
            return key
        if key is None:
            return "null"
        if isinstance(key, bool):
            return str(key).lower()
        return str(key)

    def _mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        first_walk = id(node) not in self._walked
        self._walked.add(id(node))
        explicit: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node)
            child: Path = (*path, key)
            line = key_node.start_mark.line + 1
            if key in explicit:
                if first_walk:
                    self._doc.duplicate_keys.append((child, line))
                self._forget(child)
            self._doc.lines[child] = line
            explicit[key] = self.value(value_node, child)
            # the key's line identifies the entry even when its value starts below
            self._doc.lines[child] = line
        # `<<: *base` (or a list of them, the first winning) adds the keys this
        # mapping does not write itself, wherever they are written (YAML's merge key);
        # the result keeps the order of the text
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                key = self._key(key_node)
                result.setdefault(key, explicit[key])
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                self._merge(source, path, explicit, result)
        return result

    def _merge(
        self, source: Node, path: Path, explicit: dict[Any, Any], result: dict[Any, Any]
    ) -> None:
        if not isinstance(source, MappingNode):
            raise YamlSyntaxError(
                source.start_mark.line + 1,
                "YAML syntax: a merge key (<<) needs a mapping or a list of mappings",
            )
        merged = _Walker(self._loader, YamlDocument(data=None))
        merged._walked = self._walked
        values = merged.value(source, path)
        self._doc.duplicate_keys.extend(merged._doc.duplicate_keys)
        for key, value in values.items():
            if key in explicit or key in result:
                continue
            result[key] = value
            child: Path = (*path, key)
            for sub, sub_line in merged._doc.lines.items():
                if sub[: len(child)] == child:
                    self._doc.lines[sub] = sub_line

    def _forget(self, path: Path) -> None:
        """Drop the lines under ``path`` (a duplicate key replaces the earlier value)."""
        for sub in [p for p in self._doc.lines if p[: len(path)] == path]:
            del self._doc.lines[sub]
