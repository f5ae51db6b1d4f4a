"""Tell systemd how the service is doing: sd_notify(3) in the standard library alone.

A unit with ``Type=notify`` (contrib/systemd/) starts Switchboard with ``NOTIFY_SOCKET``
set to a datagram socket; each state change is one datagram of ``KEY=VALUE`` lines:

- `ready` (``READY=1``) once it serves: until then ``systemctl start`` waits, and units
  ordered after it do not start;
- `reloading` (``RELOADING=1`` and ``MONOTONIC_USEC``) when a SIGHUP reload begins, then
  `ready` again when it is done;
- `stopping` (``STOPPING=1``) when shutdown begins;
- `status` (``STATUS=...``): one line that ``systemctl status`` shows.

Without ``NOTIFY_SOCKET`` (not under systemd, or another ``Type=``) every call does
nothing.  A socket that cannot take the datagram never stops the caller: it is logged
once, and each call returns whether its message was sent.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger("switchboard.systemd")


class Notifier:
    """Sends to the socket ``NOTIFY_SOCKET`` names (read at each call): a path, or
    ``@name`` for Linux's abstract namespace."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._failed_once = False

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (each ``KEY=VALUE``) as one message; True when it was sent."""
        environ = os.environ if self._env is None else self._env
        where = environ.get("NOTIFY_SOCKET", "")
        if not where:
            return False
        if where.startswith("@"):
            address = "\0" + where[1:]
        elif where.startswith("/"):
            address = where
        else:
            self._failed("NOTIFY_SOCKET is neither a path nor @name", where)
            return False
        try:
            message = "\n".join(lines).encode("utf-8")
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, address)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, a lone surrogate
            self._failed(f"{type(exc).__name__}: {exc}", where)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Serving: ``READY=1`` (after a reload too), with a status line if given."""
        return self.notify("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """A reload begins: ``RELOADING=1`` with the monotonic clock, as systemd wants."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown begins: ``STOPPING=1``."""
        return self.notify("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        """``STATUS=text``: what ``systemctl status`` shows (one line)."""
        return self.notify(*_status(text))

    def _failed(self, reason: str, where: str) -> None:
        if self._failed_once:
            return
        self._failed_once = True
        log.warning(
            "cannot notify systemd; going on without it (said once)",
            notify_socket=where,
            reason=reason,
        )


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return ("STATUS=" + " ".join(text.split()),)  # one line: a newline would end the field


_default = Notifier()


def notify(*lines: str) -> bool:
    """Send ``lines`` (``"READY=1"``, ``"STATUS=..."``, ...) to ``$NOTIFY_SOCKET`` as one
    message: True when sent; nothing when the variable is unset; never raises."""
    return _default.notify(*lines)


def ready(status: str | None = None) -> bool:
    return _default.ready(status)


def reloading(status: str | None = None) -> bool:
    return _default.reloading(status)


def stopping(status: str | None = None) -> bool:
    return _default.stopping(status)


def status(text: str) -> bool:
    return _default.status(text)
