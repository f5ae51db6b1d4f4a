"""A throwaway PostgreSQL cluster for the test session (a real server, never a mock).

`SWITCHBOARD_TEST_DSN` points the tests at an existing server instead.
PostgreSQL refuses to run as root, so as root (CI) the cluster is created
and started as the ``postgres`` user with ``runuser``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin")]


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in PG_BIN_CANDIDATES:
        if (folder / name).exists():
            return str(folder / name)
    raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster on a free loopback port; yield its DSN; stop and delete it."""
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    data = folder / "data"
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(folder, "postgres")
    port = _free_port()
    user = "postgres" if as_root else os.environ.get("USER", "postgres")
    subprocess.run(
        [*prefix, _bin("initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix, _bin("pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
            "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(
            [
                *prefix,
                _bin("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                user,
                "switchboard",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://{user}@127.0.0.1:{port}/switchboard"
    finally:
        subprocess.run(
            [*prefix, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def given_or_throwaway(dsn: str | None) -> Iterator[str]:
    """``dsn`` when given (a bench's ``--dsn``), else a throwaway cluster's."""
    if dsn:
        yield dsn
        return
    with throwaway_cluster() as throwaway:
        yield throwaway


@dataclass
class Server:
    """A PostgreSQL cluster this test may stop and start (to simulate an outage)."""

    dsn: str
    data: str
    port: str
    sockets: str

    def _pg_ctl(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*prefix, _bin("pg_ctl"), "-D", self.data, *args]

    async def _run(self, command: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()

    async def stop(self) -> None:
        await self._run(self._pg_ctl("-m", "fast", "-w", "stop"))

    async def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockets} -c fsync=off"
        log = str(Path(self.data).parent / "log")
        await self._run(self._pg_ctl("-l", log, "-w", "-o", options, "start"))
