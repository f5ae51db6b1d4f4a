"""Switchboard as a user installs it: the wheels built from this checkout, in a fresh venv
outside the repository, with the pinned dependencies when the lock file is there.

`installed_switchboard()` builds it once per test session (a minute or so: pip resolves and
unpacks every dependency); tests of the wheel and of the container share it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.helpers import ROOT

DISTRIBUTIONS = (ROOT, ROOT / "sim")  # the production wheel, and the simulator's (the demo)
LOCK = ROOT / "requirements.lock"
GIT = shutil.which("git") or "git"


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheels: tuple[Path, ...]

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self) -> dict[str, str]:
        """The environment to run it in: nothing of the checkout or of the test's own venv."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "PYTHON"))}
        keep.pop("VIRTUAL_ENV", None)
        keep["PATH"] = f"{self.venv / 'bin'}:{keep.get('PATH', '/usr/bin:/bin')}"
        return keep


def _pip(python: Path | str, *args: str, cwd: Path) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def _clean_copy(to: Path) -> Path:
    """The checkout as a clone of it with these changes would be: what git tracks or would
    track, nothing it ignores (no stale ``build/`` a wheel would pick up)."""
    listed = subprocess.run(
        [GIT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is listed too
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


@cache
def installed_switchboard() -> Installed:
    """Build the wheels and install them into a new venv under the system's temp folder."""
    base = Path(tempfile.mkdtemp(prefix="switchboard-installed-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)  # at the session's end
    wheels_dir = base / "wheels"
    tree = _clean_copy(base / "src")
    sources = [tree / d.relative_to(ROOT) for d in DISTRIBUTIONS if (d / "pyproject.toml").exists()]
    wheel = ["wheel", "--no-deps", "-q", "-w", str(wheels_dir)]
    _pip(sys.executable, *wheel, *map(str, sources), cwd=base)
    wheels = tuple(sorted(wheels_dir.glob("*.whl")))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    if LOCK.exists():
        _pip(python, "install", "-q", "--require-hashes", "-r", str(LOCK), cwd=base)
    # as a user asks for it: `switchboard[demo]`, the simulator's wheel beside it
    _pip(
        python,
        "install",
        "-q",
        *(f"{w}[demo]" if w.name.startswith("switchboard-") else str(w) for w in wheels),
        cwd=base,
    )
    return Installed(venv, wheels)
