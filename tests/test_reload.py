"""`systemctl reload` and `Type=notify`: a real `switchboard agi` process, SIGHUP to read
its configuration file again, and the datagrams systemd would read on ``NOTIFY_SOCKET``."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import pytest

from tests.test_agi_cli import CONFIG, free_port, route, server_env, switchboard_agi

WAIT = 30.0  # s, a guard: each message comes within a second or two


class NotifySocket:
    """What systemd listens on for a Type=notify service: a datagram socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    async def next(self) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(WAIT):
            data = await loop.sock_recv(self.sock, 4096)
        return dict(line.split("=", 1) for line in data.decode().splitlines())

    def close(self) -> None:
        self.sock.close()


@pytest.mark.asyncio
async def test_sighup_reads_the_file_again_for_new_calls_and_tells_systemd(
    tmp_path: Path,
) -> None:
    config = tmp_path / "company.yaml"
    original = CONFIG.read_text()
    config.write_text(original)
    notify = NotifySocket(tmp_path / "notify")
    port = free_port()
    env = server_env(NOTIFY_SOCKET=str(notify.path))
    try:
        async with switchboard_agi(str(config), "--listen", f"127.0.0.1:{port}", env=env) as agi:
            assert await agi.listening() == ("127.0.0.1", port)
            assert (await notify.next())["READY"] == "1"
            assert (await route("127.0.0.1", port))["SWITCHBOARD_TARGETS"] == "PJSIP/101"

            # ivanov has a new desk phone: the file changes, and SIGHUP
            config.write_text(original.replace('extension: "101"', 'extension: "111"', 1))
            agi.proc.send_signal(signal.SIGHUP)
            reloading = await notify.next()
            assert reloading["RELOADING"] == "1"
            assert int(reloading["MONOTONIC_USEC"]) > 0
            assert (await notify.next())["READY"] == "1"
            assert (await route("127.0.0.1", port))["SWITCHBOARD_TARGETS"] == "PJSIP/111"

            # a mistake in the file: refused, and the running version stays
            broken = original.replace('extension: "101"', 'extension: "111"', 1)
            config.write_text(broken.replace("noanswer: queue", "noanswer: nowhere", 1))
            agi.proc.send_signal(signal.SIGHUP)
            assert (await notify.next())["RELOADING"] == "1"
            assert (await notify.next())["READY"] == "1"
            assert (await route("127.0.0.1", port))["SWITCHBOARD_TARGETS"] == "PJSIP/111"

            code = await agi.terminate()
            assert (await notify.next())["STOPPING"] == "1"
    finally:
        notify.close()
    assert code == 0
    assert "config reloaded: new calls take it" in agi.log
    refused = [line for line in agi.log.splitlines() if "config reload refused" in line]
    assert len(refused) == 1
    assert "nowhere" in refused[0]
    assert f"{config}:" in refused[0]  # the problem at its FILE:LINE
    assert "Traceback" not in agi.log
