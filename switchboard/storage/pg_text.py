"""Caller-supplied text as PostgreSQL stores it: hostile caller IDs are kept as sent.

A caller name or number comes from the network (SIP headers, a provider's
CallerID, digits pressed), and a few things in it PostgreSQL refuses outright:

- NUL (U+0000): no ``text`` value and no ``jsonb`` string may hold it;
- a lone surrogate (U+D800..U+DFFF, from a name that was not valid UTF-8 on
  the way in): it has no UTF-8 form, so the driver cannot send it.

Refusing the row would set a whole call record aside for one character of
its caller name, so each of those characters becomes U+FFFD, the replacement
character, where it stood; a pair of surrogates that makes one character is
joined into it.  Everything else -- quotes, SQL, control characters, other
scripts, emoji, any length -- is stored exactly as sent.  The same text gives
the same stored value wherever it goes (``calls``, ``messages``,
``callbacks``) and whenever it is asked about (``last_agent``), so a
look-up finds what was stored.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def pg_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: NUL and lone surrogates become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii() and _SURROGATE.search(text):
        # UTF-16 joins a high and a low surrogate that belong together and
        # replaces a lone one with U+FFFD
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def pg_value(value: Any) -> Any:
    """``value`` with `pg_text` applied to every string in it (JSON data: keys too)."""
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, dict):
        return {pg_value(key): pg_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [pg_value(item) for item in value]
    return value
