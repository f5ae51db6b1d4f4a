"""YAML reading for configuration files: plain data plus the line of every value.

The loader follows YAML 1.2's core schema where YAML 1.1 surprises telephony
people: ``on``/``off``/``yes``/``no`` stay strings (a menu key ``no`` is a key,
not ``False``), ``09:00`` stays a time and not the sexagesimal number 540,
``2027-01-01`` stays a string (dates are parsed by the schedule model), and
``0495`` stays a string instead of becoming an octal number.  Duplicate keys
are reported instead of silently keeping the last one.

A configuration comes from people and from the database, so reading one is
bounded: a file may not make the loader use unbounded time, memory or stack.
Each bound passed is a `YamlLimitError` at the line where it was passed:

- `MAX_BYTES`: the text, in UTF-8 (checked before anything is parsed);
- `MAX_DEPTH`: mappings and lists inside one another, aliases expanded (the
  walk over the values is recursive);
- `MAX_ALIASES`: ``*name`` uses in one document;
- `MAX_VALUES`: keys and values once every alias is expanded, counted as the text
  is parsed, so a "billion laughs" file (aliases of aliases, a few hundred
  bytes that expand to 10^9 values) stops at its alias that passes the bound,
  before a single value is copied;
- an alias used inside the value it names (``a: &x [*x]``) is an error too:
  it would expand forever.

The bounds are far beyond any real company: the example office is 3 kB and
222 keys and values, a company of 2,000 employees about 250 kB and 26,000; at
`MAX_VALUES` a company has about 7,500 employees (a longer list of callers
belongs in the contacts table, `switchboard contacts import`).  Measured on
one core with PyYAML's pure-Python parser, the worst file the bounds allow
takes ``check`` about 6 s and 170 MB; 4 MiB of comments or long text, 3 s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

Path = tuple[str | int, ...]

MAX_BYTES = 4 * 1024 * 1024  # 4 MiB of text
MAX_DEPTH = 64  # mappings and lists nested in one another
MAX_ALIASES = 10_000  # `*name` uses in one document
MAX_VALUES = 100_000  # keys, scalars, mappings and lists, aliases expanded


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


class YamlSyntaxError(Exception):
    """The file is not readable YAML; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class YamlLimitError(YamlSyntaxError):
    """The file passes one of the bounds above (size, depth, aliases, values)."""


def size_error(size: int) -> YamlLimitError:
    """A text of ``size`` bytes is over `MAX_BYTES`."""
    return YamlLimitError(
        1,
        f"the file is {size:,} bytes; a configuration may be at most "
        f"{MAX_BYTES // (1024 * 1024)} MiB ({MAX_BYTES:,} bytes)",
    )


class _Loader(Reader, Scanner, Parser, Composer, SafeConstructor, _CoreResolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _CoreResolver.__init__(self)
        self._depth = 0  # collections open around the node being composed
        self._deepest = 0  # the deepest level reached, aliases expanded
        self._values = 0  # keys and values so far, aliases expanded
        self._aliases = 0
        self._open: set[str] = set()  # anchors whose value is still being composed
        # per anchored node: (values, levels) it expands to, for each alias to it
        self._expands: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """PyYAML's composer, counting what the document will expand to as it goes.

        PyYAML shares an aliased node instead of copying it, so composing is
        cheap whatever the aliases; copying happens when the values are walked.
        Counting here stops a file before that, at the line that passes a bound.
        """
        event: Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        line = event.start_mark.line + 1 if event.start_mark is not None else 1
        if isinstance(event, AliasEvent):
            return self._alias(event, line, parent, index)
        collection = isinstance(event, SequenceStartEvent | MappingStartEvent)
        anchor: str | None = getattr(event, "anchor", None)
        start_values, outer_deepest = self._values, self._deepest
        self._count(1, line, "")
        if collection:
            self._depth += 1
            self._reach(self._depth, line)
        self._deepest = self._depth
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            if anchor is not None:
                self._open.discard(anchor)
            if collection:
                self._depth -= 1
        if anchor is not None:
            # what each alias to it adds: its values, and the levels below where it is used
            self._expands[id(node)] = (self._values - start_values, self._deepest - self._depth)
        self._deepest = max(outer_deepest, self._deepest)
        return node

    def _alias(self, event: AliasEvent, line: int, parent: Node | None, index: int) -> Node | None:
        if event.anchor in self._open:
            raise YamlLimitError(
                line, f"alias *{event.anchor} is inside the value it names: it never ends"
            )
        node = super().compose_node(parent, index)  # an undefined alias raises
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise YamlLimitError(line, f"more than {MAX_ALIASES:,} aliases (*name)")
        values, levels = self._expands[id(node)]
        self._count(values, line, f" (alias *{event.anchor} expands to {values:,})")
        self._reach(self._depth + levels, line)
        return node

    def _count(self, values: int, line: int, why: str) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise YamlLimitError(
                line, f"more than {MAX_VALUES:,} keys and values, aliases expanded{why}"
            )

    def _reach(self, depth: int, line: int) -> None:
        self._deepest = max(self._deepest, depth)
        if depth > MAX_DEPTH:
            raise YamlLimitError(
                line, f"mappings and lists nested more than {MAX_DEPTH} deep (aliases expanded)"
            )


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
    """Parse one YAML document; raise `YamlSyntaxError` when it is not YAML,
    `YamlLimitError` when it passes a bound (see the module's docstring)."""
    # characters never outnumber UTF-8 bytes: only a text near the bound is encoded
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise size_error(len(text.encode("utf-8", "surrogatepass")))
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # checks every character first: ReaderError
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
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL ...)
        line = text.count("\n", 0, exc.position) + 1
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise YamlSyntaxError(line, f"YAML syntax: {exc.reason}: U+{character:04X}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML syntax: {exc}") from None
    finally:
        if loader is not None:
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
                self._forget(child, explicit[key])
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
        taken: set[Any] = set()
        for key, value in values.items():
            if key in explicit or key in result:
                continue
            result[key] = value
            taken.add(key)
        # one pass over the merged lines, not one per key: a merge of a large
        # mapping stays linear
        depth = len(path)
        for sub, sub_line in merged._doc.lines.items():
            if len(sub) > depth and sub[depth] in taken:
                self._doc.lines[sub] = sub_line

    def _forget(self, path: Path, earlier: Any) -> None:
        """Drop the lines of ``earlier``, the value at ``path`` a duplicate key replaces.

        Its own paths are walked, not every line of the file: a file of many
        duplicate keys stays linear.
        """
        self._doc.lines.pop(path, None)
        if isinstance(earlier, dict):
            for key, value in earlier.items():
                self._forget((*path, key), value)
        elif isinstance(earlier, list):
            for index, value in enumerate(earlier):
                self._forget((*path, index), value)
