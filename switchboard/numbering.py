"""Phone number normalisation: whatever a provider sends, one canonical form.

Providers send calledID and callerID in many shapes: ``+7 (495) 123-45-67``,
``8 495 123 45 67``, a bare local ``1234567``, SIP URIs with display names and
tags, ``tel:`` URIs.  The ``numbering:`` section of the configuration says how
to complete them; the result is the full international number in digits only
(``74951234567``), which is what the configuration, the call records and the
scenario templates use.

Short numbers (an employee's extension, ``112``) are kept as they are.  Caller
IDs that carry no number stay recognisable: `ANONYMOUS` for a withheld number
and `UNKNOWN` for an empty or unavailable one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANONYMOUS = "anonymous"
UNKNOWN = "unknown"

_ANONYMOUS_WORDS = frozenset(
    {"anonymous", "restricted", "private", "withheld", "hidden", "blocked", "presentation"}
)
_UNKNOWN_WORDS = frozenset({"", "unknown", "unavailable", "none", "null", "n/a", "asterisk"})
_URI_USER = re.compile(r"^(?:sips?|tel):([^@;>]*)", re.IGNORECASE)
_ANGLE = re.compile(r"<([^>]*)>")
_VISUAL = re.compile(r"[\s().\-/]")
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class NumberingPlan:
    """How to complete numbers: ``7`` + ``495`` + a 7-digit local number."""

    country_code: str = ""
    city_code: str = ""
    national_prefix: str = ""
    international_prefix: str = "810"
    national_length: int = 10  # digits after the country code (Russia: 10)

    @property
    def local_length(self) -> int:
        return self.national_length - len(self.city_code) if self.city_code else 0


def extract_user(raw: str) -> str:
    """The user part of a SIP/tel URI or a ``"Name" <sip:...>`` header, else ``raw``."""
    text = raw.strip()
    angle = _ANGLE.search(text)
    if angle:
        text = angle.group(1).strip()
    uri = _URI_USER.match(text)
    if uri:
        text = uri.group(1)
    return text.split(";", 1)[0].strip()


def normalize(raw: str | None, plan: NumberingPlan) -> str:
    """The canonical form of ``raw`` under ``plan`` (see the module docstring)."""
    if raw is None:
        return UNKNOWN
    user = extract_user(raw).strip("\"' ")
    lowered = user.lower()
    if lowered in _UNKNOWN_WORDS:
        return UNKNOWN
    # whole words only: "Presentation Restricted" is withheld, a user "privatebank" is not
    if not _ANONYMOUS_WORDS.isdisjoint(_WORD.findall(lowered)):
        return ANONYMOUS
    compact = _VISUAL.sub("", user)
    plus = compact.startswith("+")
    if plus:
        compact = compact[1:]
    if not compact.isdigit():
        # Not a number at all (a SIP user name like "reception"): keep it readable.
        return compact.lower() if compact else UNKNOWN
    if plus:
        return compact
    return _complete(compact, plan)


def _complete(digits: str, plan: NumberingPlan) -> str:
    cc = plan.country_code
    if plan.international_prefix and digits.startswith(plan.international_prefix):
        rest = digits[len(plan.international_prefix) :]
        if len(rest) > plan.national_length // 2:
            return rest
    if cc:
        full = len(cc) + plan.national_length
        if len(digits) == full and digits.startswith(cc):
            return digits
        if (
            plan.national_prefix
            and len(digits) == len(plan.national_prefix) + plan.national_length
            and digits.startswith(plan.national_prefix)
        ):
            return cc + digits[len(plan.national_prefix) :]
        if len(digits) == plan.national_length:
            return cc + digits
        if plan.city_code and len(digits) == plan.local_length:
            return cc + plan.city_code + digits
    return digits


def is_phone_number(text: str) -> bool:
    """True for text that reads as a number (digits and the usual separators)."""
    compact = _VISUAL.sub("", extract_user(text))
    compact = compact.removeprefix("+")
    return compact.isdigit()


def dahdi_line(channel_name: str) -> int | None:
    """``DAHDI/3-1`` -> 3: the analog line a call came in on (None for other techs and
    for E1 channels such as ``DAHDI/i1/...``, which are matched by called number)."""
    if not channel_name.upper().startswith("DAHDI/"):
        return None
    head = channel_name[6:].split("-", 1)[0]
    return int(head) if head.isdigit() else None
