"""Screen-pop webhooks: an HTTP POST to configured URLs when an employee's phone starts
ringing with a call, when they answer and when the call ends (`webhooks:` in the
configuration).

A call never waits for one.  The driver hands each event to `Webhooks.tell`, which
only queues it; one task a target delivers that target's events in order, each POST
bounded by the target's ``timeout`` and retried ``retries`` times after 1, 2, 4 ...
seconds (at the runtime clock's pace; a virtual clock is never moved by them).  A
receiver that hangs or fails costs its own queue time, never a call's; a queue that
grows past `QUEUE_LIMIT` drops new events with a warning (counted in ``dropped``).

Each POST carries the event as JSON and, with a ``secret``, a signature a receiver
checks: ``X-Switchboard-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the secret>`` (the time lets it refuse old replays).
``X-Switchboard-Delivery`` is the same on every retry of one event.  A secret and a
URL may read the environment (``{env.NAME}``); neither is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import structlog

from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.config.model import Webhook
from switchboard.driver import Pop
from switchboard.mail import MessageMail
from switchboard.redaction import describe
from switchboard.templates import MissingEnv, fill_env

log = structlog.get_logger("switchboard.webhooks")

QUEUE_LIMIT = 10_000  # events waiting for one target at most
SIGNATURE = "X-Switchboard-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Switchboard-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does: the signature is ours and not older than ``tolerance`` s."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected, header) and abs(now - timestamp) <= tolerance


@dataclass
class _Target:
    """One configured URL: its queue and the task delivering it."""

    hook: Webhook
    queue: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class Webhooks:
    """The runtime's webhook sender.  ``company()`` is read at each event, so a new
    configuration version's targets take the next events."""

    def __init__(
        self,
        company: Callable[[], Company],
        http: Callable[[], Any],
        clock: Clock,
    ) -> None:
        self.company = company
        self.http = http  # () -> awaitable aiohttp.ClientSession
        self.clock = clock
        self.sent = 0
        self.failed = 0  # events given up after their retries
        self.dropped = 0  # events a full queue refused
        self._targets: dict[str, _Target] = {}
        self._closed = False

    def tell(self, event: str, pop: Pop) -> None:
        """Queue ``event`` for every target that wants it (its payload made only then);
        never waits."""
        hooks = [h for h in self.company().config.webhooks if event in h.events]
        if self._closed or not hooks:
            return
        body = orjson.dumps({"event": event, **pop()})
        for hook in hooks:
            key = repr((hook.url, hook.secret, hook.timeout, hook.retries))
            target = self._targets.get(key)
            if target is None:
                target = self._targets[key] = _Target(hook)
                target.task = asyncio.get_running_loop().create_task(
                    self._deliver(target), name="webhook"
                )
            if target.queue.qsize() >= QUEUE_LIMIT:
                self.dropped += 1
                log.warning("webhook queue full: event dropped", webhook=event, host=hook.host)
                continue
            target.queue.put_nowait((event, body))

    async def _deliver(self, target: _Target) -> None:
        while True:
            event, body = await target.queue.get()
            try:
                await self._post(target.hook, event, body)
            except Exception:  # a bug of ours: said, and the next event still goes out
                log.exception("webhook failed", webhook=event, host=target.hook.host)
            finally:
                target.queue.task_done()

    async def _post(self, hook: Webhook, event: str, body: bytes) -> None:
        delivery = uuid.uuid4().hex
        for attempt in range(hook.retries + 1):
            if attempt:  # real time at the clock's pace: a virtual clock is the calls'
                await asyncio.sleep(self.clock.real(float(2 ** (attempt - 1))))
            try:
                url = fill_env(hook.url, os.environ)
                headers = {
                    "Content-Type": "application/json",
                    "X-Switchboard-Event": event,
                    "X-Switchboard-Delivery": delivery,
                }
                if hook.secret is not None:
                    secret = fill_env(hook.secret, os.environ)
                    headers[SIGNATURE] = sign(secret, int(time.time()), body)
                session = await self.http()
                async with (
                    asyncio.timeout(hook.timeout),  # real seconds: the network's time
                    session.post(url, data=body, headers=headers, allow_redirects=False) as answer,
                ):
                    if 200 <= answer.status < 300:
                        self.sent += 1
                        return
                    error = f"HTTP {answer.status}"
            except MissingEnv as exc:
                error = f"environment variable {exc.args[0]} is not set"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = describe(exc) or type(exc).__name__
            log.warning(
                "webhook not delivered",
                webhook=event, host=hook.host, attempt=attempt + 1, error=error,
                retrying=attempt < hook.retries,
            )  # fmt: skip
        self.failed += 1

    async def close(self, within: float = 2.0) -> None:
        """Stop: events still queued get ``within`` real seconds to go out."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await asyncio.gather(*(t.queue.join() for t in self._targets.values()))
        for target in self._targets.values():
            if target.task is not None:
                target.task.cancel()
        await asyncio.gather(
            *(t.task for t in self._targets.values() if t.task is not None),
            return_exceptions=True,
        )


class CallNews:
    """What a runtime tells of its calls (the driver's ``tell``): webhooks of every
    event, an e-mail of each voicemail message (`switchboard.mail`), and each message
    to ``on_message`` (the ARI runtime's message-waiting lamps)."""

    def __init__(
        self,
        company: Callable[[], Company],
        http: Callable[[], Any],
        clock: Clock,
        on_message: Callable[[Pop], None] | None = None,
    ) -> None:
        self.webhooks = Webhooks(company, http, clock)
        self.mail = MessageMail(company, clock)
        self.on_message = on_message

    def tell(self, event: str, pop: Pop) -> None:
        once = functools.cache(pop)  # made at most once, by the first that wants it
        self.webhooks.tell(event, once)
        if event == "message":
            if self.mail.wanted():
                self.mail.tell(once())
            if self.on_message is not None:
                self.on_message(once)

    async def close(self) -> None:
        await self.webhooks.close()
        await self.mail.close()
