"""Issue 13: when Asterisk refuses the ARI credentials or cannot be reached, `switchboard
run` says so once, in a line an engineer can act on, keeps trying quietly, and says
when it connects at last.

The simulator answers wrong credentials as Asterisk does (res/res_ari.c,
``ast_ari_invoke``: 401 with a Basic challenge, the events websocket's upgrade
included; res/ari/config.c refuses an empty password); `switchboard run` runs as a
real process against it, or against a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from ari_app.client import AriClient
from ari_app.models import AriEvent, Channel
from ari_app.supervisor import STILL_EVERY, AriSupervisor
from asterisk_sim import AsteriskSimulator
from tests.test_agi_cli import free_port, server_env

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "office.yaml"
USER, PASSWORD = "acd", "Right-Pw-1"
WRONG = "Wr0ng-S3cret"
TIMEOUT = 60.0  # s, a guard: every wait below ends on a line or a request


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- the simulator, as Asterisk ------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_simulator_refuses_wrong_and_empty_credentials_as_asterisk_does() -> None:
    info = "/ari/asterisk/info"
    async with (
        AsteriskSimulator(user=USER, password=PASSWORD) as sim,
        aiohttp.ClientSession(base_url=sim.url) as http,
    ):
        async with http.get(info, headers=basic(USER, WRONG)) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == 'Basic realm="Asterisk REST Interface"'
            assert (await r.json()) == {"message": "Authentication required"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect("/ari/events?app=x", headers=basic(USER, WRONG))
        assert refused.value.status == 401
        # the right ones, as a header or an api_key
        async with http.get(info, headers=basic(USER, PASSWORD)) as r:
            assert r.status == 200
        async with http.get(info, params={"api_key": f"{USER}:{PASSWORD}"}) as r:
            assert r.status == 200
        # ari.conf with an empty password, reloaded: still nobody gets in
        # (res/ari/config.c, ari_conf_validate_user)
        sim.reload_ari_user("")
        async with http.get(info, headers=basic(USER, "")) as r:
            assert r.status == 401
        async with http.get(info, params={"api_key": f"{USER}:"}) as r:
            assert r.status == 401


@pytest.mark.asyncio
async def test_a_read_only_user_may_read_but_not_change() -> None:
    async with (
        AsteriskSimulator(user=USER, password=PASSWORD) as sim,
        aiohttp.ClientSession() as http,
    ):
        sim.reload_ari_user(PASSWORD, read_only=True)
        async with http.get(f"{sim.url}/ari/channels", headers=basic(USER, PASSWORD)) as r:
            assert r.status == 200
        async with http.post(f"{sim.url}/ari/bridges", headers=basic(USER, PASSWORD)) as r:
            assert r.status == 403
            assert (await r.json()) == {"message": "Write access denied"}


# --- the supervisor's reminders ------------------------------------------------------------


class Sink:
    async def on_connected(self, channels: list[Channel]) -> None:
        pass

    def on_event(self, event: AriEvent) -> None:
        pass

    def on_disconnected(self) -> None:
        raise AssertionError("never connected, so never disconnected")


@pytest.mark.asyncio
async def test_an_unreachable_asterisk_is_said_once_then_reminded_every_minute() -> None:
    """Real connection attempts to a port nothing listens on; the backoff's waits pass
    on a clock of the test's, so that 40 attempts (about a quarter of an hour) take
    no time."""
    now = [0.0]
    attempts = asyncio.Event()

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        if supervisor.attempts >= 40:
            attempts.set()
            await asyncio.Event().wait()  # until cancelled

    url = f"http://127.0.0.1:{free_port()}"
    async with AriClient(url, USER, PASSWORD, "switchboard") as client:
        supervisor = AriSupervisor(client, Sink(), sleep=sleep, clock=lambda: now[0])
        with capture_logs() as logs:
            task = asyncio.create_task(supervisor.run())
            try:
                async with asyncio.timeout(TIMEOUT):
                    await attempts.wait()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    said = [e for e in logs if e["log_level"] in ("error", "warning")]
    assert said[0]["log_level"] == "error"
    assert said[0]["event"] == (
        f"cannot reach Asterisk at {url}: connection refused (is its HTTP server on, at "
        "that address? http.conf); retrying quietly"
    )
    reminders = said[1:]
    assert reminders, "no reminder in a quarter of an hour"
    assert all(e["event"] == f"still cannot reach Asterisk at {url} (attempt {e['attempt']})"
               for e in reminders)  # fmt: skip
    assert len(reminders) < 40 // 2  # far fewer lines than attempts
    # one every STILL_EVERY seconds at least, the backoff's longest wait (30 s) at most after
    assert now[0] / (STILL_EVERY + 30) - 1 <= len(reminders) <= now[0] / STILL_EVERY
    quiet = [e for e in logs if e["log_level"] == "debug"]
    assert len(quiet) == 40 - 1 - len(reminders)


# --- `switchboard run`, a real process -----------------------------------------------------


class Lines:
    """A process's stderr, read line by line as it comes."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.lines: list[str] = []

    async def until(self, pattern: str) -> re.Match[str]:
        """The first line (read so far or to come) that ``pattern`` matches."""
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if (found := re.search(pattern, line)) is not None:
                    return found
            seen = len(self.lines)
            raw = await self.stream.readline()
            assert raw, "the process ended first:\n" + "\n".join(self.lines)
            self.lines.append(raw.decode().rstrip("\n"))

    async def rest(self) -> str:
        self.lines.extend((await self.stream.read()).decode().splitlines())
        return "\n".join(self.lines)


@asynccontextmanager
async def switchboard_run(ari_url: str, password: str) -> AsyncIterator[Lines]:
    env = server_env(
        SWITCHBOARD_ARI_URL=ari_url,
        SWITCHBOARD_ARI_USER=USER,
        SWITCHBOARD_ARI_PASSWORD=password,
    )
    env.pop("SWITCHBOARD_LOG_LEVEL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard", "run", str(CONFIG),
        cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines = Lines(process.stderr)
    try:
        async with asyncio.timeout(TIMEOUT):
            yield lines
            process.send_signal(signal.SIGTERM)
            await lines.rest()
            assert await process.wait() == 0, "\n".join(lines.lines)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def websocket_attempts(sim: AsteriskSimulator, status: int) -> int:
    return sum(r.path == "/ari/events" and r.status == status for r in sim.requests)


@pytest.mark.asyncio
async def test_run_says_once_that_asterisk_refused_the_user_and_connects_once_it_is_fixed() -> None:
    async with AsteriskSimulator(user=USER, password=PASSWORD) as sim:
        async with switchboard_run(sim.url, WRONG) as lines:
            # several attempts, each refused on the websocket's upgrade
            await sim.wait_for(lambda s: websocket_attempts(s, 401) >= 4, timeout=TIMEOUT)
            # the engineer fixes ari.conf and reloads res_ari
            sim.reload_ari_user(WRONG)
            connected = await lines.until(r"ari connected.* attempt=(\d+)")
        log = "\n".join(lines.lines)
    refused = [line for line in lines.lines if "refused" in line]
    assert len(refused) == 1, log
    assert (
        f"[error    ] Asterisk at {sim.url} refused ARI user 'acd' (401): check the user and "
        "its password in Asterisk's ari.conf ([acd], then `module reload res_ari.so`) and in "
        "the configuration's asterisk: section (ari_user, ari_password) or "
        "SWITCHBOARD_ARI_USER / SWITCHBOARD_ARI_PASSWORD; retrying quietly"
    ) in refused[0]
    assert int(connected.group(1)) >= 5  # four refused, at least
    assert WRONG not in log
    assert "Traceback" not in log
    assert "ari connection failed" not in log  # the attempts between are quiet


@pytest.mark.asyncio
async def test_run_names_a_read_only_user_as_the_reason_for_403() -> None:
    async with AsteriskSimulator(user=USER, password=PASSWORD) as sim:
        sim.reload_ari_user(PASSWORD, read_only=True)  # GET /ari/events is let in
        async with switchboard_run(sim.url, PASSWORD) as lines:
            said = await lines.until(r"refused ARI user .*")
            sim.reload_ari_user(PASSWORD)
            await lines.until(r"ari connected")
    assert said.group(0) == (
        "refused ARI user 'acd' (403): Write access denied: in Asterisk's ari.conf, [acd] "
        "needs read_only = no and an acl that lets this host in (then "
        "`module reload res_ari.so`); retrying quietly attempt=1"
    )
    assert sum("refused" in line for line in lines.lines) == 1


@pytest.mark.asyncio
async def test_run_says_once_that_asterisk_is_unreachable_and_when_it_connects_at_last() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sim = AsteriskSimulator(user=USER, password=PASSWORD)
    try:
        async with switchboard_run(url, PASSWORD) as lines:
            await lines.until(re.escape(f"cannot reach Asterisk at {url}: connection refused"))
            await sim.start("127.0.0.1", port)  # Asterisk is up at last
            connected = await lines.until(r"ari connected.* attempt=(\d+)")
    finally:
        await sim.stop()
    assert int(connected.group(1)) >= 2
    log = "\n".join(lines.lines)
    assert sum("cannot reach" in line for line in lines.lines) == 1, log
    # nor a "disconnected" line at each attempt, for a connection it never had
    before = lines.lines[: lines.lines.index(connected.string)]
    assert not any("ari disconnected" in line for line in before), log
