"""However a call's legs fail, it rings at a bounded pace and a storm is one log line."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from ari_app.legs import RepeatedWarnings, RingBudget


def test_a_call_starts_a_burst_of_legs_at_once_then_ten_a_second() -> None:
    budget = RingBudget(now=0.0, rate=10, burst=3)
    assert [budget.wait(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [round(budget.wait(0.0), 2) for _ in range(2)] == [0.1, 0.2]
    assert budget.wait(10.0) == 0.0  # refilled


def test_a_storm_of_one_warning_is_one_line_and_a_count() -> None:
    now = [0.0]
    warnings = RepeatedWarnings(structlog.get_logger("t"), window=10, clock=lambda: now[0])
    with capture_logs() as logs:
        for i in range(4358):
            now[0] = i * 0.002
            warnings.warning(("could not ring", "PJSIP/201"), "could not ring", leg=i)
        warnings.warning(("other", "x"), "other")
        now[0] = 30.0
        warnings.warning(("could not ring", "PJSIP/201"), "could not ring", leg=-1)
        warnings.flush()
    assert [(e["event"], e.get("repeats"), e.get("leg")) for e in logs] == [
        ("could not ring", None, 0),
        ("other", None, None),
        ("warning repeated", 4357, None),
        ("could not ring", None, -1),
    ]
