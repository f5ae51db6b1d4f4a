"""`switchboard init`: a starter deployment an engineer adapts, from the real CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def switchboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def env_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


def test_init_writes_a_configuration_that_checks_its_secrets_apart_and_asterisk_snippets(
    tmp_path: Path,
) -> None:
    done = switchboard("init", "office", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "office"
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written == [
        "asterisk/README.md",
        "asterisk/ari.conf",
        "asterisk/extensions-switchboard-agi.conf",
        "asterisk/extensions-switchboard.conf",
        "asterisk/http.conf",
        "asterisk/pjsip-trunk-example.conf",
        "switchboard.env",
        "switchboard.yaml",
    ]
    assert "wrote office/switchboard.yaml" in done.stdout.splitlines()
    assert "switchboard check office/switchboard.yaml" in done.stdout

    config = (target / "switchboard.yaml").read_text()
    for section in ("asterisk", "database", "admin"):
        assert f"\n{section}:\n" in config
    checked = switchboard("check", "office/switchboard.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # one fresh password, the same on both sides, in neither the YAML nor a world-readable file
    password = env_values(target / "switchboard.env")["SWITCHBOARD_ARI_PASSWORD"]
    assert len(password) == 48
    ari = (target / "asterisk" / "ari.conf").read_text()
    assert f"\npassword = {password}\n" in ari
    assert "change-me" not in ari.replace("CHANGE THIS: `change-me`", "")
    assert password not in config
    for secret in ("switchboard.env", "asterisk/ari.conf"):
        assert stat.S_IMODE((target / secret).stat().st_mode) == 0o600, secret
    other = switchboard("init", "second", cwd=tmp_path)
    assert other.returncode == 0
    assert env_values(tmp_path / "second" / "switchboard.env")["SWITCHBOARD_ARI_PASSWORD"] != (
        password
    )


def test_init_again_keeps_what_is_there_and_refuses_to_overwrite_an_edit(tmp_path: Path) -> None:
    assert switchboard("init", cwd=tmp_path).returncode == 0
    env_before = (tmp_path / "switchboard.env").read_text()
    again = switchboard("init", cwd=tmp_path)
    assert again.returncode == 0
    assert "kept  switchboard.env" in again.stdout.splitlines()
    assert (tmp_path / "switchboard.env").read_text() == env_before  # the same password

    edited = (tmp_path / "switchboard.yaml").read_text().replace("Ivan Ivanov", "Ivan Petrovich")
    (tmp_path / "switchboard.yaml").write_text(edited)
    (tmp_path / "asterisk" / "http.conf").unlink()
    refused = switchboard("init", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr == (
        "switchboard init: switchboard.yaml: already there with other content; "
        "nothing written (--force)\n"
    )
    assert (tmp_path / "switchboard.yaml").read_text() == edited
    assert not (tmp_path / "asterisk" / "http.conf").exists()  # nothing at all was written

    forced = switchboard("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert "Ivan Ivanov" in (tmp_path / "switchboard.yaml").read_text()
    assert (tmp_path / "asterisk" / "http.conf").exists()
