"""`switchboard run` and `switchboard agi` as processes serve their admin servers.

`run` is pointed at the Asterisk simulator in this process; the test asks
the admin server's ``/readyz`` until the app has connected, never waiting a
fixed time.  An admin address that is taken or not HOST:PORT stops either
command with one line and exit 1 -- `run` before it asks Asterisk anything, so
a second instance started by mistake takes no Stasis app from the first.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from asterisk_sim import AsteriskSimulator
from switchboard.admin.server import Listen, admin_address
from switchboard.config.model import AdminSection
from tests.admin_client import AdminClient
from tests.helpers import company_from, example
from tests.test_agi_cli import ROOT, free_port, server_env

USER, PASSWORD = "switchboard", "admin-test"
CONFIG = ROOT / "examples" / "office.yaml"
STOP_TIMEOUT = 15.0  # s, a guard for the exit after SIGTERM


def run_env(sim_url: str, **extra: str) -> dict[str, str]:
    return server_env(
        SWITCHBOARD_ARI_URL=sim_url,
        SWITCHBOARD_ARI_USER=USER,
        SWITCHBOARD_ARI_PASSWORD=PASSWORD,
        **extra,
    )


@asynccontextmanager
async def switchboard(command: str, env: dict[str, str]) -> AsyncIterator[Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard", command, "--json-logs", str(CONFIG),
        cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def readyz(admin: AdminClient) -> tuple[int, Any]:
    """``/readyz``, or 0 while nothing listens yet (the process is starting)."""
    try:
        return await admin.json("/readyz")
    except aiohttp.ClientConnectionError:
        return 0, None


@pytest.mark.asyncio
async def test_switchboard_run_serves_its_admin_server_and_is_ready_once_connected() -> None:
    port = free_port()
    async with AsteriskSimulator(user=USER, password=PASSWORD) as sim:
        env = run_env(sim.url, SWITCHBOARD_ADMIN_LISTEN=f"127.0.0.1:{port}")
        async with (
            switchboard("run", env) as process,
            AdminClient(f"http://127.0.0.1:{port}") as admin,
        ):
            _, body = await admin.until(readyz, lambda a: a[0] == 200, "`run` ready")
            assert body == {"ready": True, "checks": {"ari": "ok"}}
            scrape = await admin.scrape()
            assert scrape["switchboard_ari_connected"] == 1
            assert scrape.get("switchboard_agents", state="available") == 4  # office.yaml's
            assert scrape["process_resident_memory_bytes"] > 0
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(STOP_TIMEOUT):
                assert await process.wait() == 0
            assert process.stderr is not None
            log = (await process.stderr.read()).decode()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    listening = [e for e in events if e["event"] == "admin listening"]
    assert [(e["host"], e["port"], e["url"]) for e in listening] == [
        ("127.0.0.1", port, f"http://127.0.0.1:{port}")
    ]
    assert "Traceback" not in log


@pytest.mark.asyncio
async def test_switchboard_agi_serves_its_admin_server_on_its_own_address() -> None:
    port = free_port()
    env = server_env(
        SWITCHBOARD_AGI_LISTEN=f"127.0.0.1:{free_port()}",
        SWITCHBOARD_ADMIN_AGI_LISTEN=f"127.0.0.1:{port}",
    )
    async with (
        switchboard("agi", env) as process,
        AdminClient(f"http://127.0.0.1:{port}") as admin,
    ):
        _, body = await admin.until(readyz, lambda a: a[0] == 200, "`agi` ready")
        assert body == {"ready": True, "checks": {"agi": "ok"}}
        scrape = await admin.scrape()
        assert scrape["switchboard_agi_sessions_total"] == 0
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT):
            assert await process.wait() == 0


def refused(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", command, str(CONFIG)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("command", "variable"),
    [("run", "SWITCHBOARD_ADMIN_LISTEN"), ("agi", "SWITCHBOARD_ADMIN_AGI_LISTEN")],
)
async def test_an_admin_port_in_use_stops_the_command_with_one_line_before_asterisk_hears_of_it(
    command: str, variable: str
) -> None:
    taken = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        async with AsteriskSimulator(user=USER, password=PASSWORD) as sim:
            env = run_env(sim.url, **{variable: f"127.0.0.1:{port}"})
            env["SWITCHBOARD_AGI_LISTEN"] = f"127.0.0.1:{free_port()}"
            result = await asyncio.to_thread(refused, command, env)
            assert sim.requests == []  # the Stasis app was not taken from anyone
    finally:
        taken.close()
        await taken.wait_closed()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"switchboard {command}: cannot listen on 127.0.0.1:{port} ({variable}): "
        "Address already in use"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "variable"),
    [("run", "SWITCHBOARD_ADMIN_LISTEN"), ("agi", "SWITCHBOARD_ADMIN_AGI_LISTEN")],
)
def test_an_admin_address_in_the_environment_that_is_not_host_port_is_named(
    command: str, variable: str
) -> None:
    env = run_env("http://127.0.0.1:1", **{variable: "everywhere"})
    result = refused(command, env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"switchboard {command}: {variable} 'everywhere': use HOST:PORT, e.g. "
        + ("127.0.0.1:8089" if command == "run" else "127.0.0.1:8090")
    )
    assert "Traceback" not in result.stderr


def test_the_admin_servers_listen_on_loopback_by_default_each_command_on_its_own_port() -> None:
    company = example("office.yaml")  # says nothing of `admin:`
    assert AdminSection() == company.config.admin
    assert admin_address(company, "run", env={}) == Listen("127.0.0.1", 8089, "admin.listen")
    assert admin_address(company, "agi", env={}) == Listen("127.0.0.1", 8090, "admin.agi_listen")
    env = {"SWITCHBOARD_ADMIN_LISTEN": "10.0.0.5:9100"}
    assert admin_address(company, "run", env) == Listen(
        "10.0.0.5", 9100, "SWITCHBOARD_ADMIN_LISTEN"
    )
    assert admin_address(company, "agi", env) == Listen("127.0.0.1", 8090, "admin.agi_listen")


def test_admin_enabled_false_turns_the_admin_server_off_unless_the_environment_asks() -> None:
    text = CONFIG.read_text() + "\nadmin:\n  enabled: false\n  listen: 127.0.0.1:9200\n"
    company = company_from(text)
    assert admin_address(company, "run", env={}) is None
    assert admin_address(company, "agi", env={}) is None
    env = {"SWITCHBOARD_ADMIN_AGI_LISTEN": "127.0.0.1:9201"}
    assert admin_address(company, "agi", env) == Listen(
        "127.0.0.1", 9201, "SWITCHBOARD_ADMIN_AGI_LISTEN"
    )
