"""`switchboard simulate` as DESIGN.md specifies it: flags, output, errors."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from typing import Any

from switchboard.engine.trace import RESULTS
from tests.helpers import ROOT

DESIGN = str(ROOT / "tests" / "fixtures" / "design.yaml")


def switchboard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def simulate_json(*args: str) -> dict[str, Any]:
    done = switchboard("simulate", *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_design_example_command_prints_the_contract_json() -> None:
    out = simulate_json(
        DESIGN,
        "--called", "74951234567",
        "--caller", "79161112233",
        "--at", "2026-12-01T10:15:00",
        "--dtmf", "1",
        "--agent", "ivanov=answer:3",
        "--agent", "petrov=busy",
        "--hangup-after", "600",
    )  # fmt: skip
    assert out["scenario"] == "main"
    assert out["steps"][0] == {
        **out["steps"][0],
        "node": "by_number",
        "type": "switch",
        "exit": "sales_hours",
        "t": 0.0,
    }
    assert [s["node"] for s in out["steps"]] == [
        "by_number",
        "sales_hours",
        "sales_menu",
        "ring_sales",
    ]
    assert all({"node", "type", "exit", "t"} <= set(s) for s in out["steps"])
    assert out["outcome"]["result"] == "connected"
    assert out["outcome"]["agent"] == "ivanov"
    assert out["outcome"]["wait"] == 3.0


def test_line_stands_for_an_analog_call_without_called_id() -> None:
    out = simulate_json(DESIGN, "--line", "3", "--at", "2026-12-01T10:15:00")
    assert out["called"] == "74957654321"
    assert out["line"] == 3
    assert out["steps"][0]["exit"] == "support_queue"


def test_at_is_read_in_the_config_timezone() -> None:
    out = simulate_json(DESIGN, "--called", "74951234567", "--at", "2026-12-01T20:00:00")
    assert out["at"] == "2026-12-01T20:00:00+03:00"
    assert out["steps"][1]["via"] == "closed"
    assert out["outcome"]["result"] in RESULTS


def test_hangup_after_makes_an_abandoned_call() -> None:
    out = simulate_json(
        DESIGN, "--called", "74951234567", "--at", "2026-12-01T10:15:00", "--hangup-after", "2"
    )
    assert out["outcome"]["result"] == "abandoned"
    assert out["outcome"]["duration"] == 2.0


def test_text_output_is_one_line_per_step_with_its_time() -> None:
    done = switchboard(
        "simulate", DESIGN, "--called", "74951234567", "--at", "2026-12-01T10:15:00", "--dtmf", "2"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    steps = [line for line in lines if re.match(r"^\s+\d+\.\ds  \w+ \(\w+\)", line)]
    assert [line.split()[1] for line in steps] == [
        "by_number",
        "sales_hours",
        "sales_menu",
        "support_queue",
    ]
    assert lines[-1].split("=>")[1].split()[0] == "connected"


def test_notify_lines_go_to_the_log_on_stderr() -> None:
    done = switchboard("simulate", str(ROOT / "examples" / "multi-number.yaml"), "--line", "3")
    assert done.returncode == 0
    assert "calledID as sent" in done.stdout  # the trace
    assert "notify" in done.stderr  # the structured log


def test_bad_agent_behaviour_is_a_clear_error() -> None:
    done = switchboard("simulate", DESIGN, "--called", "74951234567", "--agent", "ivanov=sleepy")
    assert done.returncode == 2
    assert "answer[:SECONDS]" in done.stderr


def test_unknown_agent_is_a_clear_error() -> None:
    done = switchboard("simulate", DESIGN, "--called", "74951234567", "--agent", "nobody=busy")
    assert done.returncode == 2
    assert "nobody" in done.stderr


def test_a_number_with_no_scenario_is_a_clear_error() -> None:
    done = switchboard("simulate", DESIGN, "--called", "74990000000")
    assert done.returncode == 2
    assert "no scenario" in done.stderr


def test_simulating_a_broken_config_prints_its_problems(tmp_path: Any) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenarios:\n  main:\n    start: nowhere\n    nodes: {}\n")
    done = switchboard("simulate", str(broken), "--called", "1")
    assert done.returncode == 2
    assert f"{broken}:3:" in done.stderr


def test_the_readme_simulate_output_is_what_simulate_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(
        r"```sh\n(\.venv/bin/switchboard simulate .*?)\n```\n\n```\n(.*?)```", readme, re.S
    )
    assert found is not None
    args = shlex.split(found.group(1).split("switchboard simulate", 1)[1])
    done = switchboard("simulate", *args)
    assert done.stdout == found.group(2)


def test_the_readme_quick_start_demo_runs_and_releases_everything() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"```sh\n(python3 -m venv .*?)\n```", readme)
    assert command is not None
    assert command.group(1).endswith("switchboard demo")
    done = switchboard("demo")
    assert done.returncode == 0, done.stderr
    flows = [line for line in done.stdout.splitlines() if line.startswith("call ")]
    assert len(flows) == 2
    assert "=> connected agent=sidorova department=support" in done.stdout  # pressed 2
    assert "2 call records in PostgreSQL" in done.stdout
    assert done.stdout.rstrip().endswith("every channel and bridge released.")


def test_a_reader_that_went_away_gets_no_traceback() -> None:
    """`switchboard simulate ... | head -1` when head is gone before the rest is written:
    it stops as a tool stopped by SIGPIPE does, without a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "simulate", str(ROOT / "examples" / "office.yaml"),
         "--called", "+7 (495) 123-45-67", "--at", "2026-12-01T10:15:00"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before anything was written
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err.decode(), err.decode()
    assert "BrokenPipeError" not in err.decode()
    assert proc.returncode == 141
