"""`switchboard config export`: a stored configuration version, back as a YAML file.

The export is the text that was imported, byte for byte, under a short header
comment naming the version, when and from where it was imported.  That is the
faithful choice, and the simple one:

- ``check`` accepts it, because ``config import`` accepted the very same text
  with the very same loader;
- it round-trips: the header is a comment, so the export reads as exactly the
  data of the original, and the version's fingerprint (`canonical_form`:
  the data, never the comments or the layout) is the same — importing the
  export again is a no-op;
- nothing is re-typed: ``on``/``off``/``yes``/``no`` keys and values, ``09:00``
  times and ``0495`` codes are written the way the person wrote them and read
  back by the same YAML 1.2 rules, comments explaining the scenario survive, and
  secrets (``asterisk.ari_password``, ``database.dsn``) are the text they were.

Dumping the pydantic model instead would lose the comments, write out every
default (so the file a person edits grows sections they never wrote), need
``SecretStr`` revealed by hand and every YAML 1.1 look-alike quoted, and its
fingerprint would move whenever a release adds a field with a default.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol

from switchboard.config.yaml_source import load_yaml

HEADER_FIRST = "# Switchboard configuration version "
HEADER_MORE = "#   "


class StoredVersion(Protocol):
    """What a stored configuration version offers (`storage.config_store.StoredConfig`)."""

    @property
    def id(self) -> int: ...

    @property
    def created_at(self) -> dt.datetime: ...

    @property
    def source(self) -> str: ...

    @property
    def comment(self) -> str | None: ...

    @property
    def yaml(self) -> str: ...


def export_yaml(config: str | StoredVersion) -> str:
    """The YAML file of a stored version (with its header) or of a bare config text.

    A header an earlier export left at the top of the text (someone edited an
    export and imported it) is replaced, never stacked.
    """
    if isinstance(config, str):
        return _ensure_newline(_without_header(config))
    header = [f"{HEADER_FIRST}{config.id} (written by `switchboard config export`)"]
    header.append(
        f"{HEADER_MORE}imported {config.created_at.isoformat(sep=' ', timespec='seconds')}"
        f" from {_one_line(config.source)}"
    )
    if config.comment:
        header.append(f"{HEADER_MORE}comment: {_one_line(config.comment)}")
    header.append(f"{HEADER_MORE}`switchboard config import` of this file changes nothing.")
    body = _without_header(config.yaml)
    return "\n".join(header) + "\n\n" + _ensure_newline(body)


def canonical_form(text: str) -> str:
    """What identifies a configuration: its data as JSON, in the file's order.

    Comments, quoting, flow or block style, anchors and merge keys do not
    count; values do, and so does the order of keys (the order of menu options
    or nodes is the author's and is kept).  Raises `YamlSyntaxError` for text
    that is not YAML (validate first).
    """
    data = load_yaml(text).data
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_scalar)


def _scalar(value: Any) -> str:
    """An explicitly tagged scalar JSON has no type for (``!!timestamp``, ``!!binary``)."""
    return f"!{type(value).__name__}:{value!r}"


def _without_header(text: str) -> str:
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].startswith(HEADER_FIRST):
        return text
    end = 1
    while end < len(lines) and lines[end].startswith(HEADER_MORE):
        end += 1
    if end < len(lines) and not lines[end].strip():
        end += 1  # the blank line that ends the header
    return "".join(lines[end:])


def _one_line(value: str) -> str:
    """Printable text on one line: YAML ends a comment at any line break (also U+2028)."""
    printable = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(printable.split())


def _ensure_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"
