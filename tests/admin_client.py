"""Asking an admin server over HTTP, as Prometheus and a load balancer do.

`AdminClient` scrapes ``/metrics`` (parsed with prometheus-client's own parser,
so a test reads what Prometheus would) and asks ``/readyz`` and ``/healthz``;
`until` asks again and again, a short pause between, until the answer says
what the test waits for or the deadline passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
POLL = 0.02  # seconds between two asks while waiting for a change
DEADLINE = 15.0  # real seconds a wait gives up after


@dataclass(frozen=True)
class Scrape:
    """One scrape of ``/metrics``: sample name and labels -> value."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    text: str

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def __getitem__(self, name: str) -> float:
        found = self.value(name)
        assert found is not None, f"no sample {name} in:\n{self.text}"
        return found

    def get(self, name: str, **labels: str) -> float:
        found = self.value(name, **labels)
        assert found is not None, f"no sample {name}{labels} in:\n{self.text}"
        return found

    def requests(self) -> float:
        """ARI requests counted by the latency histogram, every method."""
        return sum(
            value
            for (name, _), value in self.samples.items()
            if name == "switchboard_ari_request_duration_seconds_count"
        )


class AdminClient:
    """``async with AdminClient(url) as admin``: an HTTP client of one admin server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdminClient:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    async def get(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) of ``GET path``."""
        assert self._http is not None
        async with self._http.get(self.url + path) as response:
            return response.status, response.headers["Content-Type"], await response.text()

    async def json(self, path: str) -> tuple[int, Any]:
        assert self._http is not None
        async with self._http.get(self.url + path) as response:
            return response.status, await response.json()

    async def scrape(self) -> Scrape:
        status, content_type, text = await self.get("/metrics")
        assert status == 200, text
        assert content_type.startswith("text/plain; version=0.0.4"), content_type
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return Scrape(samples, text)

    async def until(
        self, ask: Callable[[AdminClient], Awaitable[T]], holds: Callable[[T], bool], what: str
    ) -> T:
        """``ask`` again until ``holds(answer)``; the answer.  AssertionError naming
        ``what`` with the last answer after `DEADLINE` real seconds."""
        answer = await ask(self)
        try:
            async with asyncio.timeout(DEADLINE):
                while not holds(answer):
                    await asyncio.sleep(POLL)  # pacing the asks, not waiting for a time
                    answer = await ask(self)
        except TimeoutError:
            raise AssertionError(f"waited {DEADLINE} s for {what}; last: {answer!r}") from None
        return answer

    async def scrape_until(self, holds: Callable[[Scrape], bool], what: str) -> Scrape:
        return await self.until(AdminClient.scrape, holds, what)

    async def ready_until(self, status: int, what: str) -> Any:
        """``/readyz`` until it answers ``status``; its body."""
        _, body = await self.until(
            lambda admin: admin.json("/readyz"), lambda answer: answer[0] == status, what
        )
        return body
