"""The admin API's bearer tokens as the admin server checks them: the API's routes and
the wallboard ask the same `TokenCheck`.

Only each token's SHA-256 is kept (`switchboard.storage.api_tokens`); the tokens not
revoked are read again once `TOKEN_TTL` old, so a revoked token stops working within
seconds, and a presented token is compared with every one of them
(`hmac.compare_digest`, no early exit).

`FailedChecks` counts the tokens refused per client address: past `FAILURE_LIMIT` in
`FAILURE_WINDOW` seconds an address is refused every check (the API answers 429 with
``Retry-After``) until the oldest of them is that old, so guessing tokens is slow.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

import asyncpg

from switchboard.storage.api_tokens import active_hashes, list_tokens, mark_used, token_sha256

TOKEN_TTL = 5.0  # seconds the tokens not revoked are kept before the table is read again
TOUCH_EVERY = 60.0  # seconds between two writes of one token's last_used_at
FAILURE_LIMIT = 20  # tokens refused to one client address ...
FAILURE_WINDOW = 60.0  # ... within this many seconds: then its checks are refused
FAILURE_ADDRESSES = 10_000  # addresses remembered at most (the least recent forgotten)


class TokenCheck:
    """The tokens not revoked, as (name, SHA-256), and whether any token was ever made."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = TOKEN_TTL) -> None:
        self.pool = pool
        self.ttl = ttl
        self._lock = asyncio.Lock()
        self._hashes: list[tuple[str, str]] = []
        self._ever = False  # a token was made (maybe revoked since)
        self._at: float | None = None  # monotonic; None: never read
        self._touched: dict[str, float] = {}  # name -> monotonic time last_used_at was set

    def _fresh(self) -> bool:
        return self._at is not None and time.monotonic() - self._at < self.ttl

    async def _read(self) -> None:
        if self._fresh():
            return
        async with self._lock:
            if not self._fresh():
                async with self.pool.acquire() as conn:
                    self._hashes = await active_hashes(conn)
                    self._ever = bool(self._hashes) or bool(await list_tokens(conn))
                self._at = time.monotonic()

    async def ever_made(self) -> bool:
        """Was any token ever made (revoked ones count)?"""
        await self._read()
        return self._ever

    async def name_of(self, token: str) -> str | None:
        """The name of the valid token ``token``; None when it is none."""
        await self._read()
        presented = token_sha256(token)
        found = None
        for name, digest in self._hashes:  # every one compared: no early exit to time
            if hmac.compare_digest(presented, digest):
                found = name
        if found is not None:
            await self._touch(found)
        return found

    async def _touch(self, name: str) -> None:
        now = time.monotonic()
        last = self._touched.get(name)
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[name] = now
        async with self.pool.acquire() as conn:
            await mark_used(conn, name)


class FailedChecks:
    """The tokens refused to each client address in the last ``window`` seconds (at most
    ``limit`` kept per address, ``max_addresses`` addresses); ``clock`` is monotonic."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = FAILURE_ADDRESSES,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """None while ``address`` may present a token; else the whole seconds until it
        may again (at least 1)."""
        times = self._failures.get(address)
        if times is None:
            return None
        now = self.clock()
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(self.window - (now - times[0])))

    def failed(self, address: str) -> bool:
        """Count a token refused to ``address``; True when that was its last try."""
        times = self._failures.pop(address, None) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._failures[address] = times  # the most recent address last
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        return len(times) >= self.limit
