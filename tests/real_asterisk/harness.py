"""The far ends of a real Asterisk, for the real-Asterisk suite: callers and phones.

`RealAsterisk` is the test's own ARI application (``switchboard-test-caller``,
raw aiohttp, independent of Switchboard's client).  It places calls as Local
channels into ``switchboard-test-in`` (see ``extensions-switchboard-test.conf``),
whose other half enters Switchboard's app as a trunk's call would; it presses
keys and hangs up on the caller's side; it sets what each employee's phone does
(global variables the test dialplan reads); and it reads Asterisk's own lists
of channels and bridges, which must be empty after every test.  It subscribes
to everything, so it sees Switchboard's playbacks start (``PlaybackStarted``)
and can press a key when a prompt begins, the way a person does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

APP = "switchboard-test"  # Switchboard's Stasis app in the suite (the dialplan names it)
CALLER_APP = "switchboard-test-caller"
CALLERS = "switchboard-test-in"
CALLERS_2 = "switchboard-test-in-2"  # into APP_2, a second instance's app
APP_2 = "switchboard-test-2"
PHONES = "switchboard-test-phones"
Json = dict[str, Any]


class AsteriskError(Exception):
    pass


@dataclass
class TestCall:
    """One caller: ``outer`` is ours (in the caller app), ``inner`` is the channel
    Switchboard gets (its record's ``channel_id``)."""

    pbx: RealAsterisk
    outer: str
    inner: str

    async def answered(self, within: float = 10.0) -> None:
        """Until Switchboard answered (our half enters the caller app)."""
        await self.pbx.wait_event(
            lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == self.outer, within
        )

    async def prompt(self, name: str, within: float = 15.0) -> None:
        """Until a playback of ``name`` starts on Switchboard's side of the call."""
        target = f"channel:{self.inner}"

        def started(event: Json) -> bool:
            playback = event.get("playback", {})
            return (
                event["type"] == "PlaybackStarted"
                and playback.get("target_uri") == target
                and name in playback.get("media_uri", "")
            )

        await self.pbx.wait_event(started, within)

    async def press(self, digits: str) -> None:
        await self.pbx.request(
            "POST", f"/channels/{self.outer}/dtmf", {"dtmf": digits, "between": 150}
        )

    async def hang_up(self) -> None:
        with contextlib.suppress(AsteriskError):
            await self.pbx.request("DELETE", f"/channels/{self.outer}")


@dataclass
class RealAsterisk:
    url: str
    user: str
    password: str
    events: list[Json] = field(default_factory=list)
    phones: set[str] = field(default_factory=set)
    # the callers' app, one name per test: Asterisk 22 may take a closing websocket's
    # app away after the next test's websocket registered the same name ("Stasis app
    # ... doesn't exist" for that test's first call)
    caller_app: str = field(default_factory=lambda: f"{CALLER_APP}-{uuid.uuid4().hex[:8]}")

    async def __aenter__(self) -> RealAsterisk:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        self._http = aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"})
        ws_url = self.url.replace("http", "ws", 1).rstrip("/")
        self._ws = await self._http.ws_connect(
            f"{ws_url}/ari/events?app={self.caller_app}&subscribeAll=true"
        )
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for number in self.phones:
            await self.set_global(f"SBTEST_{number}", "")
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._ws.close()
        await self._http.close()

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(message.data))
                self._changed.set()

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        query = {k: str(v) for k, v in (params or {}).items()}
        async with self._http.request(
            method, f"{self.url.rstrip('/')}/ari{path}", params=query
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise AsteriskError(f"{method} {path}: {response.status} {text}")
            return json.loads(text) if text else None

    async def wait_event(self, match: Callable[[Json], bool], within: float) -> Json:
        """The first event (seen so far or to come) that ``match`` es."""
        async with asyncio.timeout(within):
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if match(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

    # --- the people ---------------------------------------------------------------

    async def set_global(self, name: str, value: str) -> None:
        await self.request("POST", "/asterisk/variable", {"variable": name, "value": value})

    async def phone(self, number: str, behaviour: str) -> None:
        """What the phone ``number`` does when rung (see the test dialplan)."""
        self.phones.add(number)
        await self.set_global(f"SBTEST_{number}", behaviour)

    async def call(
        self, called: str, caller: str, name: str = "", context: str = CALLERS
    ) -> TestCall:
        outer, inner = f"sbt-{uuid.uuid4().hex[:10]}", f"sbt-{uuid.uuid4().hex[:10]}-in"
        caller_id = f'"{name}" <{caller}>' if name else caller
        await self.request(
            "POST",
            "/channels",
            {
                "endpoint": f"Local/{called}@{context}/n",
                "app": self.caller_app,
                "callerId": caller_id,
                "channelId": outer,
                "otherChannelId": inner,
                "timeout": 120,
            },
        )
        return TestCall(self, outer, inner)

    # --- what is left -------------------------------------------------------------

    async def leftovers(self) -> tuple[list[str], list[str]]:
        channels = await self.request("GET", "/channels")
        bridges = await self.request("GET", "/bridges")
        return [c["name"] for c in channels], [b["id"] for b in bridges]

    async def settled(self, within: float = 15.0) -> tuple[list[str], list[str]]:
        """Poll (with a deadline) until Asterisk has no channel and no bridge; what is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            channels, bridges = await self.leftovers()
            if (not channels and not bridges) or loop.time() > deadline:
                return channels, bridges
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._changed.wait()  # woken by the next event, or re-read

    def created(self, context: str = PHONES) -> list[Json]:
        """The ``;1`` halves of the Local channels Switchboard created into ``context``."""
        return [
            e["channel"]
            for e in self.events
            if e["type"] == "ChannelCreated"
            and f"@{context}-" in e["channel"]["name"]
            and e["channel"]["name"].endswith(";1")
        ]
