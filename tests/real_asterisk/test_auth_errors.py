"""Issue 13 on a real Asterisk: wrong ARI credentials are a 401 that `switchboard run`
names once, with the URL and the user and never the password.

What the simulator's tests/test_ari_auth.py takes from res/res_ari.c is checked
here against the real thing: 401 with a Basic challenge for a wrong or empty
password, on a request and on the events websocket's upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.real_asterisk.conftest import URL, USER
from tests.test_agi_cli import server_env
from tests.test_ari_auth import Lines

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "office.yaml"
WRONG = "not-the-Password-9"


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("password", [WRONG, ""], ids=["wrong", "empty"])
async def test_asterisk_answers_401_to_a_wrong_or_empty_password(password: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{URL}/ari/asterisk/info", headers=basic(password)) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith('Basic realm="')
            assert (await response.json()) == {"message": "Authentication required"}
        events = URL.replace("http", "ws", 1) + "/ari/events?app=switchboard-auth-test"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(events, headers=basic(password))
        assert refused.value.status == 401


async def test_run_with_a_wrong_password_says_so_once_naming_the_url_and_the_user() -> None:
    env = server_env(
        SWITCHBOARD_ARI_URL=URL, SWITCHBOARD_ARI_USER=USER, SWITCHBOARD_ARI_PASSWORD=WRONG
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
        async with asyncio.timeout(60):
            said = await lines.until(r"\[error +\] Asterisk at .*")
            process.send_signal(signal.SIGTERM)
            log = await lines.rest()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert said.group(0).startswith(
        f"[error    ] Asterisk at {URL.rstrip('/')} refused ARI user {USER!r} (401): check the "
        f"user and its password in Asterisk's ari.conf ([{USER}], then "
    )
    assert sum("refused ARI user" in line for line in lines.lines) == 1
    assert WRONG not in log
    assert "Traceback" not in log
