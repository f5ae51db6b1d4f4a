"""The admin API's bearer tokens in PostgreSQL (``api_tokens``).

A token is ``secrets.token_urlsafe(32)``, shown once by `switchboard tokens create`;
only its SHA-256 is stored, so the table gives away nothing a client could use.
A revoked token keeps its row (its name and when it was last used stay on
record) and is never accepted again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy

TOKEN_BYTES = 32  # of randomness: 43 URL-safe characters
NAME_LIMIT = 100  # characters of a token's name


class TokenNameTaken(Exception):
    """A token of that name exists already (revoked ones too: names are a record)."""

    error_id = "tokens.name_taken"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a token named {name!r} exists already: choose another name")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One row of ``api_tokens``, without its hash."""

    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def token_sha256(token: str) -> str:
    """What the table keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str | None:
    """What is wrong with ``name`` as a token's name, in a few words; None when fine."""
    if not name.strip():
        return "a token's name must not be empty"
    if len(name) > NAME_LIMIT:
        return f"a token's name is at most {NAME_LIMIT} characters"
    if any(not char.isprintable() for char in name):
        return "a token's name must be printable text"
    return None


async def create_token(conn: Conn, name: str) -> str:
    """A new token named ``name``: the token itself, which is stored nowhere.
    `TokenNameTaken` when the name is in use (or was: revoked tokens keep theirs)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        await conn.execute(
            "INSERT INTO api_tokens (name, sha256) VALUES ($1, $2)", name, token_sha256(token)
        )
    except asyncpg.UniqueViolationError:
        raise TokenNameTaken(name) from None
    return token


async def list_tokens(conn: Conn) -> list[ApiToken]:
    """Every token, the oldest first."""
    rows = await conn.fetch(
        """SELECT name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id"""
    )
    return [ApiToken(r["name"], r["created_at"], r["last_used_at"], r["revoked_at"]) for r in rows]


async def revoke_token(conn: Conn, name: str) -> ApiToken | None:
    """Revoke the token named ``name`` (a revoked one stays revoked since it first was);
    the token as it is now, or None when there is none of that name."""
    row = await conn.fetchrow(
        """UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1
           RETURNING name, created_at, last_used_at, revoked_at""",
        name,
    )
    if row is None:
        return None
    return ApiToken(row["name"], row["created_at"], row["last_used_at"], row["revoked_at"])


async def active_hashes(conn: Conn) -> list[tuple[str, str]]:
    """(name, SHA-256) of every token not revoked."""
    rows = await conn.fetch("SELECT name, sha256 FROM api_tokens WHERE revoked_at IS NULL")
    return [(r["name"], r["sha256"]) for r in rows]


async def mark_used(conn: Conn, name: str) -> None:
    await conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE name = $1", name)
