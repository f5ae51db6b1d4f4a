"""The admin API's bearer tokens as the admin server checks them: the API's routes and
the wallboard ask the same `TokenCheck`.

Only each token's SHA-256 is kept (`switchboard.storage.api_tokens`); the tokens not
revoked are read again once `TOKEN_TTL` old, so a revoked token stops working within
seconds, and a presented token is compared with every one of them
(`hmac.compare_digest`, no early exit).
"""

from __future__ import annotations

import asyncio
import hmac
import time

import asyncpg

from switchboard.storage.api_tokens import active_hashes, list_tokens, mark_used, token_sha256

TOKEN_TTL = 5.0  # seconds the tokens not revoked are kept before the table is read again
TOUCH_EVERY = 60.0  # seconds between two writes of one token's last_used_at


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
