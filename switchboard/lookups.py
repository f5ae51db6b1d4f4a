"""ICM's questions to the outside world: who last talked to this caller, who is
responsible for them (the contacts table), what the CRM says.

Both runtimes ask them the same way.  A failing source answers None (and the
scenario moves on to the next source); the engine's own timer decides how
long the caller waits, the HTTP timeout here only keeps a hung CRM from
holding a socket for ever.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog

from switchboard.calls import CallSink
from switchboard.clock import Clock
from switchboard.engine.actions import Lookup

log = structlog.get_logger("switchboard.lookups")


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
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("lookup failed", source=lookup.source, error=str(exc))
        return None


async def _ask_crm(lookup: Lookup, http: aiohttp.ClientSession, clock: Clock) -> str | None:
    timeout = aiohttp.ClientTimeout(total=clock.real(lookup.timeout) + 1.0)
    async with http.get(lookup.url, timeout=timeout) as response:
        if response.status != 200:
            return None
        data: Any = await response.json(content_type=None)
    for part in lookup.path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return None if data is None else str(data)
