"""`switchboard agi` as a process: it listens where it is told, decides a call, stops on SIGTERM.

Each server is ``python -m switchboard agi ...`` (what the `switchboard`
console script runs), its log read from stderr as it comes: the test waits
for the ``listening`` line, never for a fixed time.  Asterisk's side is
`asterisk_sim.agi.AgiPeer` on the real clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agi_server.app import listen_address
from asterisk_sim.agi import AgiPeer
from switchboard.clock import Clock
from switchboard.config.load import load_company
from switchboard.config.model import DEFAULT_AGI_LISTEN, AsteriskSection, parse_listen

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "call-centre.yaml"
CALLED = "74951112233"
KNOWN = "79161112233"  # ivanov's contact: the decision is his desk
START_TIMEOUT = 30.0  # s, a guard: the server says it listens within a second or two
STOP_TIMEOUT = 10.0  # s, a guard for the exit after SIGTERM
_CONSOLE_LISTENING = re.compile(r"\] listening\s.*\bhost=(\S+).*\bport=(\d+)")


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port() -> int:
    return free_ports(1)[0]


def server_env(**extra: str) -> dict[str, str]:
    """This environment without a database or an address of its own, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SWITCHBOARD_DSN", "SWITCHBOARD_AGI_LISTEN", "SWITCHBOARD_INSTANCE")
    }
    return env | extra


def listening_address(line: str) -> tuple[str, int] | None:
    """The address of a ``listening`` log line, JSON (``--json-logs``) or for a terminal."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "listening":
                return str(record["host"]), int(record["port"])
        return None
    match = _CONSOLE_LISTENING.search(line)
    return (match.group(1), int(match.group(2))) if match else None


class AgiProcess:
    """A running `switchboard agi`, its stderr read line by line as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.address: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            address = listening_address(line)
            if address is not None and not self.address.done():
                self.address.set_result(address)
        if not self.address.done():
            self.address.set_exception(AssertionError("exited without listening:\n" + self.log))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def listening(self) -> tuple[str, int]:
        async with asyncio.timeout(START_TIMEOUT):
            return await asyncio.shield(self.address)

    async def terminate(self) -> int:
        """SIGTERM, and the exit code (within STOP_TIMEOUT)."""
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT):
            code = await self.proc.wait()
            await self._reader
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def switchboard_agi(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[AgiProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard",
        "agi",
        *args,
        cwd=ROOT,
        env=server_env() if env is None else env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    server = AgiProcess(proc)
    try:
        yield server
    finally:
        await server.kill()  # only if a test failed before its SIGTERM


def run_agi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`switchboard agi` that is expected to refuse to start (a guard stops a stray server)."""
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "agi", *args],
        cwd=ROOT,
        env=env or server_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


async def route(host: str, port: int) -> dict[str, str]:
    """One ``AGI(agi://host/route,74951112233)`` from ivanov's contact; its variables."""
    call = await AgiPeer(host, port, clock=Clock()).call(
        "route", caller=KNOWN, extension=CALLED, dnid=CALLED, args=(CALLED,)
    )
    assert call.closed_by == "server"
    return call.variables


def assert_dial_ivanov(variables: dict[str, str]) -> None:
    assert variables["SWITCHBOARD_ACTION"] == "dial"
    assert variables["SWITCHBOARD_TARGETS"] == "PJSIP/101"
    assert variables["SWITCHBOARD_CALL_ID"].startswith("agi-")


@pytest.mark.asyncio
async def test_the_server_decides_a_call_where_it_is_told_to_listen_and_exits_0_on_sigterm() -> (
    None
):
    port = free_port()
    async with switchboard_agi(str(CONFIG), "--listen", f"127.0.0.1:{port}") as server:
        assert await server.listening() == ("127.0.0.1", port)
        assert_dial_ivanov(await route("127.0.0.1", port))
        assert await server.terminate() == 0
    assert "Traceback" not in server.log
    assert "call records are kept in memory only" in server.log  # no SWITCHBOARD_DSN
    # call-centre.yaml takes call-back requests, which AGI cannot make: `run` must
    assert "made by `switchboard run` (ARI)" in server.log


@pytest.mark.asyncio
async def test_switchboard_agi_listen_overrides_the_address_in_the_config(tmp_path: Path) -> None:
    configured, overriding = free_ports(2)
    config = tmp_path / "company.yaml"
    config.write_text(CONFIG.read_text() + f'\nasterisk:\n  agi_listen: "127.0.0.1:{configured}"\n')
    env = server_env(SWITCHBOARD_AGI_LISTEN=f"127.0.0.1:{overriding}")
    async with switchboard_agi(str(config), "--json-logs", env=env) as server:
        assert await server.listening() == ("127.0.0.1", overriding)
        assert_dial_ivanov(await route("127.0.0.1", overriding))
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", configured)
        assert await server.terminate() == 0
    assert "Traceback" not in server.log


def test_the_default_address_is_loopback_port_4573() -> None:
    company = load_company(CONFIG)  # says nothing about the address
    assert AsteriskSection().agi_listen == DEFAULT_AGI_LISTEN == "127.0.0.1:4573"
    assert listen_address(company, env={}) == ("127.0.0.1", 4573)
    assert parse_listen(":4573") == ("127.0.0.1", 4573)  # a port alone: loopback too


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:agi", "4573"])
def test_a_listen_address_that_is_not_host_port_exits_2_with_a_message(listen: str) -> None:
    result = run_agi(str(CONFIG), "--listen", listen)
    assert result.returncode == 2
    assert f"switchboard agi: --listen {listen!r}: use HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("notfound: queue", "notfound: nowhere"),
        ("max_wait: 300", "max_wait: soon"),
        ("        moh: default", "       moh: default"),
    ],
    ids=["unknown node", "not a number", "yaml indentation"],
)
def test_a_broken_config_exits_2_with_file_and_line(tmp_path: Path, old: str, new: str) -> None:
    text = CONFIG.read_text()
    assert text.count(old) == 1
    text = text.replace(old, new)
    config = tmp_path / "broken.yaml"
    config.write_text(text)
    line = next(n for n, s in enumerate(text.splitlines(), 1) if new in s)
    result = run_agi(str(config), "--listen", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert re.search(rf"^{re.escape(str(config))}:{line}(:\d+)?: ", result.stderr, re.M), (
        result.stderr
    )
    assert "listening" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_address_in_the_environment_exits_2_naming_the_variable() -> None:
    result = run_agi(str(CONFIG), env=server_env(SWITCHBOARD_AGI_LISTEN="garbage"))
    assert result.returncode == 2
    assert "switchboard agi: SWITCHBOARD_AGI_LISTEN 'garbage': use HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_agi_listen_in_the_config_is_a_check_error_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "company.yaml"
    config.write_text(CONFIG.read_text() + '\nasterisk:\n  agi_listen: "everywhere"\n')
    line = config.read_text().splitlines().index('  agi_listen: "everywhere"') + 1
    result = run_agi(str(config))
    assert result.returncode == 2
    assert f"{config}:{line}:" in result.stderr
    assert "agi_listen 'everywhere': use HOST:PORT" in result.stderr


@pytest.mark.asyncio
async def test_an_address_already_in_use_exits_1_with_a_message() -> None:
    taken = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    try:
        port = taken.sockets[0].getsockname()[1]
        result = await asyncio.to_thread(run_agi, str(CONFIG), "--listen", f"127.0.0.1:{port}")
    finally:
        taken.close()
        await taken.wait_closed()
    assert result.returncode == 1
    assert f"switchboard agi: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
