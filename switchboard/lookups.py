"""ICM's questions to the outside world: who last talked to this caller, who is
responsible for them (the contacts table), what the CRM says.

Both runtimes ask them the same way.  A failing source answers None (and the
scenario moves on to the next source) after one warning line that says why;
no failure of a source ever reaches the call.  The engine's own timer decides
how long the caller waits, the deadline here only keeps a hung CRM from
holding a socket for ever.

The CRM is outside our control, so its answer is bounded (the `http` source's
keys): at most ``max_body`` bytes are read, JSON nested deeper than
``max_depth`` is refused, a redirect is followed only to the same host and port
(or from http to https of the same host) or to a host of ``allowed_hosts``, at
most ``max_redirects`` times, and no host outside a non-empty ``allowed_hosts``
is asked at all.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import structlog
from yarl import URL

from switchboard.calls import CallSink
from switchboard.clock import Clock
from switchboard.engine.actions import Lookup
from switchboard.redaction import describe
from switchboard.templates import MissingEnv, fill_env, header_value, json_value, url_value

log = structlog.get_logger("switchboard.lookups")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_INDEX = re.compile(r"^-?[0-9]{1,9}$")


class CrmRefused(Exception):
    """The CRM's answer is not taken; the message says why, for the log line."""


async def look_up(
    lookup: Lookup, sink: CallSink, http: aiohttp.ClientSession, clock: Clock
) -> str | None:
    """The employee (id, extension or number) ``lookup`` finds, or None."""
    try:
        if lookup.source == "last_agent":
            return await sink.last_agent(lookup.caller, lookup.days)
        if lookup.source == "contacts":
            return await sink.contact(lookup.caller)
        return await _ask_crm(lookup, http, clock)
    except Exception as exc:  # noqa: BLE001 - whatever one source does, the next one is asked
        where = {"host": _host_of(lookup.url)} if lookup.source == "http" else {}
        log.warning("lookup failed", source=lookup.source, **where, error=describe(exc))
        return None


async def _ask_crm(lookup: Lookup, http: aiohttp.ClientSession, clock: Clock) -> str | None:
    allowed = frozenset(host.lower().strip("[]") for host in lookup.allowed_hosts)
    try:  # the tokens, from this process's environment: never in a record or a log line
        url = URL(fill_env(lookup.url, os.environ, url_value))
        headers = {
            name: fill_env(value, os.environ, header_value) for name, value in lookup.headers
        }
        body = None if lookup.body is None else fill_env(lookup.body, os.environ, json_value)
    except MissingEnv as exc:
        raise CrmRefused(f"environment variable {exc.args[0]} is not set") from None
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    method = lookup.method
    async with asyncio.timeout(clock.real(lookup.timeout) + 1.0):
        for _ in range(lookup.max_redirects + 1):
            _check_host(url, allowed)
            # redirects by hand: aiohttp would follow one to any host (127.0.0.1 too)
            async with http.request(
                method,
                url,
                headers=headers,
                data=None if body is None else body.encode(),
                allow_redirects=False,
            ) as response:
                if response.status in _REDIRECTS:
                    url = _redirect_target(url, response, allowed)
                    if response.status == 303 or (
                        response.status in (301, 302) and method == "POST"
                    ):
                        method, body = "GET", None  # as browsers do (RFC 9110 15.4)
                    continue
                if response.status in (204, 404):  # the CRM does not know this caller
                    return None
                if response.status != 200:
                    raise CrmRefused(f"HTTP {response.status}")
                answer = await _read_at_most(response, lookup.max_body)
                charset = response.charset or "utf-8"
            return _at_path(_parse(answer.decode(charset), lookup.max_depth), lookup.path)
    raise CrmRefused(f"more than {lookup.max_redirects} redirects (max_redirects)")


def _check_host(url: URL, allowed: frozenset[str]) -> None:
    if url.scheme not in ("http", "https"):
        raise CrmRefused(f"not an http(s) URL: {url.scheme}://")
    if allowed and (url.host or "").lower() not in allowed:
        raise CrmRefused(f"host {url.host} is not in allowed_hosts")


def _redirect_target(url: URL, response: aiohttp.ClientResponse, allowed: frozenset[str]) -> URL:
    """Where a redirect leads, if it may be followed: the same host and port, http to
    https of the same host, or a host of ``allowed``; CrmRefused otherwise."""
    location = response.headers.get("Location")
    if not location:
        raise CrmRefused(f"HTTP {response.status} without a Location")
    target = url.join(URL(location))
    same_host = target.host == url.host
    same_port = target.port == url.port and target.scheme == url.scheme
    upgrade = (url.scheme, target.scheme) == ("http", "https")
    if not (same_host and (same_port or upgrade)) and (target.host or "").lower() not in allowed:
        raise CrmRefused(f"redirect to another host not followed: {target.host}:{target.port}")
    return target


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or CrmRefused as soon as it is longer than ``limit`` bytes: the rest is
    never read (the connection is closed, not kept for another request)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise CrmRefused(f"answer of {declared} bytes, more than max_body ({limit})")
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise CrmRefused(f"answer longer than max_body ({limit} bytes)")
    return bytes(body)


def _parse(text: str, max_depth: int) -> Any:
    """The JSON document, or CrmRefused: not JSON, or nested deeper than ``max_depth``
    (orjson itself stops at 1,024 levels, with no recursion)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CrmRefused(f"unreadable JSON: {exc}") from None
    if _deeper_than(data, max_depth):
        raise CrmRefused(f"JSON nested deeper than max_depth ({max_depth})")
    return data


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (a walk, no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _at_path(data: Any, path: str) -> str | None:
    """The value at the dotted ``path`` (a number indexes an array, -1 its last item);
    only a plain value names somebody."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and _INDEX.match(part) and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            data = None
    if isinstance(data, bool) or not isinstance(data, str | int | float):
        return None
    return str(data)


def _host_of(url: str) -> str:
    """The host of ``url`` for a log line (never its user, password or query)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # a broken [IPv6] part
        return ""
