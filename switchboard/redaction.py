"""Secrets out of anything that is logged or printed: DSNs, URLs, exception messages.

Three forms carry a secret into text, and `redact` hides the value of each:

- a URL's user info, ``scheme://user:SECRET@host`` (PostgreSQL DSNs, CRM and
  ARI URLs): the password goes, the user and the host stay;
- a query parameter whose name says secret, ``?password=SECRET`` and
  ``&sslpassword=SECRET`` (also ``token``, ``secret``, ``api_key``, ``pwd`` ...);
- a libpq keyword/value pair with such a name, ``host=db password=SECRET``, the
  value bare or quoted (``password='two words'``, backslash escapes inside).

A URL's password must be percent-encoded to be read back by libpq or asyncpg
(a bare ``/``, ``?`` or ``#`` ends the host part); one that is not is still
hidden when it reads ``user:pass/word@host`` (a ``host:port`` has a number after
the colon), at the price of hiding a little more than the password.
"""

from __future__ import annotations

import re

MASK = "***"

# names of parameters whose value is a secret: password, sslpassword, PGPASSWORD,
# access_token, client_secret, api_key (ARI's api_key=user:password), pwd (ODBC) ...
_SECRET_WORDS = ("passw", "pwd", "secret", "token", "api_key", "apikey")
_SENSITIVE_KEY = r"[\w.\-]*(?:passw|pwd|secret|token|api_?key)[\w.\-]*"

# scheme:// and the rest of the URL up to a blank or a quote that cannot be in it
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s\"<>`]*)")
# ?password=SECRET, &token=SECRET: the value runs to the next parameter
_QUERY = re.compile(rf"(?i)([?&]{_SENSITIVE_KEY}=)[^&#\s\"]*")
# libpq's keyword = value (blanks around '=' allowed), the value bare or quoted ('...'
# in libpq, "..." in logfmt), a backslash escaping the next character
_KEYWORD = re.compile(
    rf"(?i)((?<![^\s,;:=(\[{{'\"]){_SENSITIVE_KEY}\s*=\s*)"
    r"""(?:'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|(?:\\.|[^\s\\])+)"""
)


def redact(text: str) -> str:
    """``text`` with every password, token or secret it carries replaced by ``***``."""
    # each pattern only where its marks are: most texts have none, and substring tests
    # cost a fraction of a regular expression's scan
    if "@" in text and "://" in text:
        text = _URL.sub(_without_password, text)
    if "=" in text and _names_a_secret(text.lower()):
        text = _QUERY.sub(rf"\1{MASK}", text)
        text = _KEYWORD.sub(rf"\1{MASK}", text)
    return text


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, for one log line, secrets redacted (asyncpg
    and aiohttp quote the DSN or URL they were given in some of their errors)."""
    return redact(f"{type(exc).__name__}: {exc}")


def _names_a_secret(lowered: str) -> bool:
    return any(word in lowered for word in _SECRET_WORDS)


def _without_password(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    at = _end_of_user_info(rest)
    if at < 0:
        return match.group(0)
    user, colon, _ = rest[:at].partition(":")
    if not colon:  # a user name alone is no secret
        return match.group(0)
    return f"{scheme}{user}:{MASK}{rest[at:]}"


def _end_of_user_info(rest: str) -> int:
    """Where the ``@`` that ends the user info is in ``rest`` (after ``scheme://``), or -1."""
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    authority = rest[:end]
    if "@" in authority:
        return authority.rindex("@")  # a bare '@' in the password: the last one ends it
    # "user:pass/word@host": no host:port reads like this, nor an [IPv6] address
    _, colon, tail = authority.rpartition(":")
    if colon and not authority.startswith("[") and not tail.isdigit() and "@" in rest[end:]:
        return rest.rindex("@")
    return -1
