"""The audit in the simulator's docstring names tests; each of them exists.

``asterisk_sim``'s docstring lists every ARI request Switchboard makes, what
Asterisk 22 does with it and which tests hold the runtime and the simulator
to that.  A renamed or deleted test would leave the audit pointing at
nothing: this keeps the two together.
"""

from __future__ import annotations

import re
from pathlib import Path

import asterisk_sim

TESTS = Path(__file__).resolve().parent


def test_every_test_the_audit_names_exists() -> None:
    audit = (asterisk_sim.__doc__ or "").split("Audit: every ARI request", 1)[1]
    named = set(re.findall(r"``(test_\w+)``", audit))
    assert len(named) >= 20
    defined = {
        match
        for path in TESTS.rglob("test_*.py")
        for match in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M)
    }
    assert sorted(named - defined) == []
