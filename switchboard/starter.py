"""`switchboard init [DIR]`: a starter deployment to adapt, from what the package ships.

It writes:

- ``switchboard.yaml``: the example office with the sections a deployment needs
  (``asterisk:``, ``database:``, ``admin:``), secrets left out of it;
- ``switchboard.env``: the secrets as environment variables (mode 0600): a fresh
  random ARI password and a DSN to fill in, for ``EnvironmentFile=`` of the
  systemd unit or ``env_file:`` of the compose file;
- ``asterisk/``: the dialplan snippets and the ``ari.conf`` / ``http.conf``
  fragments, with the same ARI password in ``ari.conf``, to copy into
  ``/etc/asterisk/``.

Nothing is overwritten unless ``force``: a file that exists with other content
stops the whole command before anything is written.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from switchboard.resources import data_path

CONFIG_NAME = "switchboard.yaml"
ENV_NAME = "switchboard.env"
ASTERISK_DIR = "asterisk"
PLACEHOLDER_PASSWORD = "password = change-me"  # noqa: S105 - dialplan/ari.conf's placeholder, replaced

DEPLOYMENT_SECTIONS = """
# --- the deployment (switchboard init) --------------------------------------------
# Secrets stay out of this file: SWITCHBOARD_ARI_PASSWORD and SWITCHBOARD_DSN come
# from the environment (switchboard.env beside it).
asterisk:
  ari_url: http://127.0.0.1:8088     # http.conf: bindaddr / bindport
  ari_user: switchboard              # ari.conf: the [switchboard] user
  app: switchboard                   # the dialplan's Stasis(switchboard)
  agi_listen: 127.0.0.1:4573         # `switchboard agi`: the FastAGI port
database:
  spill_dir: spill                   # call records wait here while the database is away
admin:
  listen: 127.0.0.1:8089             # /healthz /readyz /metrics /api /wallboard of `run`
  agi_listen: 127.0.0.1:8090         # the same for `switchboard agi`
"""


class InitRefused(Exception):
    """Files exist with other content; nothing was written."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        names = ", ".join(str(p) for p in paths)
        super().__init__(f"{names}: already there with other content; nothing written (--force)")


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    changed: bool  # False: it was there with the same content


def starter_files(password: str) -> dict[str, str]:
    """Each file's path (relative to DIR) and content."""
    office = data_path("examples/office.yaml").read_text(encoding="utf-8")
    files = {CONFIG_NAME: office.rstrip("\n") + "\n" + DEPLOYMENT_SECTIONS}
    files[ENV_NAME] = (
        "# Secrets of switchboard.yaml's deployment, as environment variables.\n"
        "# Keep this file readable by the switchboard user only (chmod 600).\n"
        "# The ARI password: the same as `password =` of [switchboard] in ari.conf.\n"
        f"SWITCHBOARD_ARI_PASSWORD={password}\n"
        "# The database: postgresql://USER:PASSWORD@HOST:5432/DBNAME\n"
        "SWITCHBOARD_DSN=postgresql://switchboard@127.0.0.1:5432/switchboard\n"
    )
    dialplan = data_path("dialplan")
    for source in sorted(dialplan.iterdir()):
        if source.is_file():
            text = source.read_text(encoding="utf-8")
            if source.name == "ari.conf":
                assert PLACEHOLDER_PASSWORD in text, "dialplan/ari.conf lost its placeholder"
                text = text.replace(PLACEHOLDER_PASSWORD, f"password = {password}")
            files[f"{ASTERISK_DIR}/{source.name}"] = text
    return files


def write_starter(
    target: Path, *, force: bool = False, password: str | None = None
) -> list[Written]:
    """Write the starter files under ``target``; `InitRefused` before writing anything when
    a file is there with other content (unless ``force``)."""
    existing_env = target / ENV_NAME
    if password is None:
        password = _kept_password(existing_env) or secrets.token_hex(24)
    files = starter_files(password)
    clashes = [
        target / name
        for name, text in files.items()
        if (target / name).exists() and _read(target / name) != text
    ]
    if clashes and not force:
        raise InitRefused(clashes)
    written: list[Written] = []
    for name, text in files.items():
        path = target / name
        same = path.exists() and _read(path) == text
        if not same:
            path.parent.mkdir(parents=True, exist_ok=True)
            secret = name in (ENV_NAME, f"{ASTERISK_DIR}/ari.conf")
            _write(path, text, 0o600 if secret else 0o644)
        written.append(Written(path, changed=not same))
    return written


def _kept_password(env_file: Path) -> str | None:
    """A second `init` keeps the password the first one made (so nothing clashes)."""
    try:
        lines = env_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == "SWITCHBOARD_ARI_PASSWORD" and value.strip():
            return value.strip()
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write(path: Path, text: str, mode: int) -> None:
    """Write with ``mode`` from the start: a secret is never readable by others, even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, mode)  # an existing file (--force) keeps its old mode otherwise
