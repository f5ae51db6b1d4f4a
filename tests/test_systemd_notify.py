"""switchboard.systemd: what reaches a real AF_UNIX datagram socket, as systemd's would."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from switchboard import systemd
from switchboard.systemd import Notifier


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a socket path must fit in 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="sdn-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket in the filesystem, and the NOTIFY_SOCKET naming it."""
    path = short_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)  # the deadline for a message that should be there
        yield sock, str(path)


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode("utf-8").split("\n")


def nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_ready_reloading_stopping_reach_the_socket(
    listener: tuple[socket.socket, str],
) -> None:
    sock, where = listener
    notifier = Notifier({"NOTIFY_SOCKET": where})

    assert notifier.ready("serving 3 lines")
    assert received(sock) == ["READY=1", "STATUS=serving 3 lines"]

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = received(sock)
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after  # systemd compares it with its own CLOCK_MONOTONIC

    assert notifier.ready()
    assert received(sock) == ["READY=1"]
    assert notifier.stopping()
    assert received(sock) == ["STOPPING=1"]


def test_a_status_is_one_line(listener: tuple[socket.socket, str]) -> None:
    sock, where = listener
    assert Notifier({"NOTIFY_SOCKET": where}).status("database away\nspilling records")
    assert received(sock) == ["STATUS=database away spilling records"]


def test_module_functions_read_notify_socket_from_the_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, where = listener
    monkeypatch.setenv("NOTIFY_SOCKET", where)
    assert systemd.notify("READY=1", "STATUS=up")
    assert received(sock) == ["READY=1", "STATUS=up"]
    assert systemd.stopping()
    assert received(sock) == ["STOPPING=1"]


def test_abstract_namespace_socket() -> None:
    name = f"switchboard-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1"]


def test_no_notify_socket_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with capture_logs() as logs:
        assert not systemd.ready()
        assert not Notifier({}).stopping()
        assert not Notifier({"NOTIFY_SOCKET": ""}).notify("READY=1")
    assert logs == []


def test_a_send_error_is_logged_once_and_never_raised(short_dir: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(short_dir / "nobody-listens")})
    with capture_logs() as logs:
        assert not notifier.ready()
        assert not notifier.status("still here")
        assert not notifier.stopping()
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert "nobody-listens" in logs[0]["notify_socket"]
    assert "FileNotFoundError" in logs[0]["reason"]


def test_a_bad_address_is_logged_once_and_never_raised() -> None:
    for where in ("relative/path", "/run/with\0nul"):
        notifier = Notifier({"NOTIFY_SOCKET": where})
        with capture_logs() as logs:
            assert not notifier.ready()
            assert not notifier.ready()
        assert len(logs) == 1, where


def test_sending_again_after_the_listener_comes_back(short_dir: Path) -> None:
    path = short_dir / "late"
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    with capture_logs():
        assert not notifier.ready()  # nobody there yet: logged, not raised
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        assert notifier.ready()
        assert received(sock) == ["READY=1"]
        assert nothing_waiting(sock)
