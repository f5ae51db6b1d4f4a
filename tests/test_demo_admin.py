"""`switchboard demo` serves the admin server too: the wallboard, ``/metrics``,
``/healthz``, ``/readyz`` and (its database there) the admin API.

The demo runs as a real process, as a user starts it, its call records going to
the test's PostgreSQL (``SWITCHBOARD_DSN``: the embedded one is the README's
quick start test's); the address it prints in its first lines is asked over
HTTP, during the calls and, with ``--stay``, after them until SIGTERM.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from switchboard.storage.api_tokens import create_token
from tests.admin_client import AdminClient
from tests.test_agi_cli import ROOT, free_port, server_env

CONFIG = ROOT / "examples" / "office.yaml"
WITHIN = 60.0  # real seconds, a guard: the demo's calls take two or three
WALLBOARD_LINE = re.compile(r"^Wallboard at (http://127\.0\.0\.1:(\d+))/wallboard \(")


@asynccontextmanager
async def demo(db: str, folder: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`switchboard demo CONFIG ARGS` as a process of its own, in ``folder``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard", "demo", str(CONFIG), *args,
        cwd=folder, env=server_env(SWITCHBOARD_DSN=db), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def lines_until(process: asyncio.subprocess.Process, text: str) -> list[str]:
    """The demo's output lines up to the first one with ``text``."""
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(WITHIN):
        while not lines or text not in lines[-1]:
            line = await process.stdout.readline()
            assert line, f"the demo ended before saying {text!r}:\n" + "".join(lines)
            lines.append(line.decode())
    return lines


async def first_event(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """The wallboard's first snapshot, read from its event stream as a browser would."""
    async with http.get(url + "/wallboard/events") as response:
        assert response.status == 200
        async with asyncio.timeout(10):
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    snapshot: dict[str, Any] = orjson.loads(line[len("data: ") :])
                    return snapshot
    raise AssertionError("the stream ended without a snapshot")


@pytest.mark.asyncio
async def test_the_demo_prints_its_wallboard_first_and_with_stay_serves_it_until_sigterm(
    db: str, tmp_path: Path
) -> None:
    async with demo(db, tmp_path, "--stay") as process:
        head = await lines_until(process, "Wallboard at")
        assert len(head) == 2  # the first lines: the simulator's address, then the wallboard's
        assert head[0].startswith("Asterisk simulator at http://127.0.0.1:")
        found = WALLBOARD_LINE.match(head[1])
        assert found is not None, head[1]
        url = found.group(1)
        async with (
            AdminClient(url) as admin,
            aiohttp.ClientSession(
                cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies of 127.0.0.1 too
                timeout=aiohttp.ClientTimeout(total=20),
            ) as http,
        ):
            assert await admin.json("/healthz") == (200, {"status": "ok"})
            status, content_type, page = await admin.get("/wallboard")
            assert (status, content_type) == (200, "text/html; charset=utf-8")
            assert "wallboard.js" in page
            assert await admin.ready_until(200, "the demo ready") == {
                "ready": True,
                "checks": {"ari": "ok", "database": "ok"},
            }
            scrape = await admin.scrape()
            assert scrape["switchboard_ari_connected"] == 1
            # the admin API is there, its tokens in the demo's database
            assert (await admin.json("/api/v1/agents"))[0] == 401
            conn = await asyncpg.connect(db)
            try:
                token = await create_token(conn, "demo-test")
            finally:
                await conn.close()
            async with http.get(
                url + "/api/v1/agents", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200
                agents = (await response.json())["agents"]
            assert {a["id"] for a in agents} == {"ivanov", "petrov", "sidorova", "kuznetsova"}

            rest = await lines_until(process, "Still serving the wallboard")
            assert "2 call records in PostgreSQL" in "".join(rest)
            assert f"{url}/wallboard" in rest[-1]
            # the calls over, everything stays up: today's figures are the demo's day's
            assert await admin.json("/healthz") == (200, {"status": "ok"})
            async with http.get(url + f"/wallboard?token={token}", allow_redirects=False) as r:
                assert r.status == 303  # a token made: the browser keeps it in a cookie
            snapshot = await first_event(http, url)
            assert snapshot["today"] == {"source": "database", "service_level_s": 20.0}
            assert snapshot["calls"] == []
            [office] = snapshot["funnel"]
            assert office["scenario"] == "office"
            assert office["nodes"][0] == {
                "node": "hours", "type": "schedule", "calls": 2, "abandoned": 0,
            }  # fmt: skip
            after = await admin.scrape()
            assert after.get("switchboard_calls_total", result="connected") == 2

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WITHIN):
            assert await process.wait() == 0
        assert process.stderr is not None
        assert "Traceback" not in (await process.stderr.read()).decode()


@pytest.mark.asyncio
async def test_the_demos_admin_address_is_its_option_and_a_taken_one_stops_it_in_one_line(
    db: str, tmp_path: Path
) -> None:
    taken = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        async with demo(db, tmp_path, "--admin-listen", f"127.0.0.1:{port}") as process:
            async with asyncio.timeout(WITHIN):
                out, err = await process.communicate()
    finally:
        taken.close()
        await taken.wait_closed()
    assert process.returncode == 1, err.decode()
    assert out == b""
    assert err.decode().strip().splitlines() == [
        f"switchboard demo: cannot listen on 127.0.0.1:{port} (--admin-listen): "
        "Address already in use"
    ]

    chosen = free_port()
    async with demo(db, tmp_path, "--admin-listen", f"127.0.0.1:{chosen}") as process:
        head = await lines_until(process, "Wallboard at")
        assert head[1].startswith(f"Wallboard at http://127.0.0.1:{chosen}/wallboard ")
        async with asyncio.timeout(WITHIN):
            out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().rstrip().endswith("every channel and bridge released.")

    async with demo(db, tmp_path, "--admin-listen", "everywhere") as process:
        async with asyncio.timeout(WITHIN):
            out, err = await process.communicate()
    assert process.returncode == 2
    assert err.decode().strip() == (
        "switchboard demo: --admin-listen 'everywhere': use HOST:PORT, e.g. 127.0.0.1:0"
    )
