"""The layering check (issue 11): `lint-imports` fails on a forbidden import.

Each case copies the four packages and pyproject.toml to a temporary directory,
adds one forbidden import to a module of the copy and runs `lint-imports` there,
with the copy first on the path, so it is the copy that is analysed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# each package, and where it lives in the checkout (the simulator is a distribution of its own)
PACKAGES = {
    "switchboard": ROOT / "switchboard",
    "ari_app": ROOT / "ari_app",
    "agi_server": ROOT / "agi_server",
    "asterisk_sim": ROOT / "sim" / "asterisk_sim",
}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CORE = "The core imports no runtime, storage or network library"
RUNTIMES = "The ARI and FastAGI runtimes never import each other"
STORAGE = "Storage never imports a runtime"
ADMIN = "The admin server imports no runtime"
SIMULATOR = "Production code never imports the Asterisk simulator (a test double)"


def copy_project(to: Path) -> Path:
    for package, source in PACKAGES.items():
        shutil.copytree(source, to / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    return to


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: pip install -e '.[dev]'"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_unchanged_project_keeps_every_contract(tmp_path: Path) -> None:
    done = lint_imports(copy_project(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    for contract in (CORE, RUNTIMES, STORAGE, ADMIN, SIMULATOR):
        assert f"{contract} KEPT" in done.stdout
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("switchboard/engine/call.py", "import ari_app", CORE),
        ("switchboard/schedule.py", "import aiohttp", CORE),
        ("switchboard/driver.py", "import asyncpg", CORE),
        ("switchboard/config/load.py", "from switchboard.storage import migrate", CORE),
        ("ari_app/runtime.py", "import agi_server.protocol", RUNTIMES),
        ("agi_server/route.py", "from ari_app import models", RUNTIMES),
        ("switchboard/storage/records.py", "import agi_server", STORAGE),
        ("switchboard/admin/status.py", "from ari_app.app import AriApp", ADMIN),
        ("agi_server/app.py", "import asterisk_sim", SIMULATOR),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, statement: str, contract: str
) -> None:
    project = copy_project(tmp_path)
    with open(project / module, "a", encoding="utf-8") as file:
        file.write(f"\n{statement}  # added by test_layering\n")

    done = lint_imports(project)

    assert done.returncode != 0, done.stdout + done.stderr
    assert f"{contract} BROKEN" in done.stdout, done.stdout + done.stderr
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in done.stdout  # the report names the offending module
