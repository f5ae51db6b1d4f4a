"""Stasis applications and the websockets that carry their events.

An application exists from its first ``/ari/events?app=NAME`` connection
until Asterisk restarts; it keeps its event filter and explicit
subscriptions while its websocket is away (Asterisk only drops the events it
cannot deliver).  A second connection for the same application replaces the
first: the old one receives ``ApplicationReplaced`` and is closed.

Each connection writes its events in order from one queue, so events leave
in exactly the order the simulator produced them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from asterisk_sim.devices import DEVICE_STATE_ALL
from asterisk_sim.model import Json


@dataclass(eq=False)
class Application:
    """A registered Stasis application (``GET /applications/{name}``)."""

    name: str
    connection: Connection | None = None
    allowed: list[str] = field(default_factory=list)
    disallowed: list[str] = field(default_factory=list)
    channel_ids: set[str] = field(default_factory=set)
    bridge_ids: set[str] = field(default_factory=set)
    endpoint_ids: set[str] = field(default_factory=set)
    device_names: set[str] = field(default_factory=set)
    connected_order: int = 0

    @property
    def active(self) -> bool:
        return self.connection is not None and not self.connection.closing

    @property
    def subscribe_all(self) -> bool:
        return self.connection is not None and self.connection.subscribe_all

    def allows(self, event_type: str) -> bool:
        """The eventFilter rule: disallowed wins; an empty allowed list allows all."""
        if event_type in self.disallowed:
            return False
        return not self.allowed or event_type in self.allowed

    def subscribed_to_device(self, name: str) -> bool:
        """res_stasis_device_state.c, is_subscribed_device_state: subscribed to every
        device, or by exactly this name (the subscriptions compare with strcmp)."""
        return DEVICE_STATE_ALL in self.device_names or name in self.device_names

    def device_subscriptions(self, device: str) -> int:
        """How many of the application's device subscriptions hear ``device``: each is a
        stasis subscription of its own (subscribe_device_state) and sends its own
        ``DeviceStateChanged``; one by name hears the device's topic, which the topic
        pool looks up case-insensitively (main/stasis.c, topic_pool_entry_cmp), and the
        one to every device hears them all."""
        wanted = device.lower()
        return sum(
            1 for name in self.device_names if name == DEVICE_STATE_ALL or name.lower() == wanted
        )

    def set_filter(self, allowed: list[str] | None, disallowed: list[str] | None) -> None:
        """Apply ``PUT eventFilter``: a list not given is left as it was."""
        if allowed is not None:
            self.allowed = allowed
        if disallowed is not None:
            self.disallowed = disallowed


class Connection:
    """One ``/ari/events`` websocket, the applications it serves, its ordered outbox."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        apps: list[str],
        subscribe_all: bool,
    ) -> None:
        self.ws = ws
        self.request = request
        self.apps = list(apps)
        self.subscribe_all = subscribe_all
        self.closing = False
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()

    def send(self, message: Json) -> None:
        if not self.closing:
            self._outbox.put_nowait(json.dumps(message))

    def close_after_sending(self) -> None:
        """Send what is queued, then close the websocket cleanly."""
        if not self.closing:
            self.closing = True
            self._outbox.put_nowait(None)

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame (a crash, a cut cable)."""
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self._outbox.put_nowait(None)

    async def write_loop(self) -> None:
        """Deliver queued events in order until told to close or the peer goes away."""
        while True:
            text = await self._outbox.get()
            if text is None:
                break
            try:
                await self.ws.send_str(text)
            except ConnectionError:
                break
        if not self.ws.closed:
            await self.ws.close()


class ApplicationRegistry:
    """Every registered application and every open events websocket."""

    def __init__(self) -> None:
        self.apps: dict[str, Application] = {}
        self.connections: list[Connection] = []
        self._order = itertools.count(1)

    def get(self, name: str) -> Application | None:
        return self.apps.get(name)

    def register(self, connection: Connection, replaced: Callable[[str], Json]) -> None:
        """Bind ``connection``'s applications to it, replacing older connections.

        ``replaced(name)`` is the ``ApplicationReplaced`` message for one
        application; the old connection gets it and is closed once it serves
        no application any more.
        """
        self.connections.append(connection)
        for name in connection.apps:
            app = self.apps.get(name)
            if app is None:
                app = self.apps[name] = Application(name)
                if connection.subscribe_all:
                    # res_stasis.c, __stasis_app_register: an application created with
                    # subscribeAll is subscribed to every event source, device states
                    # included (res_stasis_device_state.c, subscribe_device_state(app, NULL))
                    app.device_names.add(DEVICE_STATE_ALL)
            old = app.connection
            app.connection = connection
            app.connected_order = next(self._order)
            if old is not None and old is not connection:
                old.send(replaced(name))
                if name in old.apps:
                    old.apps.remove(name)
                if not old.apps:
                    old.close_after_sending()

    def unregister(self, connection: Connection) -> None:
        """The websocket went away; its applications stay registered but inactive."""
        connection.closing = True
        if connection in self.connections:
            self.connections.remove(connection)
        for app in self.apps.values():
            if app.connection is connection:
                app.connection = None

    def active(self) -> list[Application]:
        """Applications with a websocket, the most recently connected last."""
        apps = [app for app in self.apps.values() if app.active]
        return sorted(apps, key=lambda app: app.connected_order)

    def subscribed_to_all(self) -> set[str]:
        return {app.name for app in self.apps.values() if app.active and app.subscribe_all}

    def clear(self) -> None:
        self.apps.clear()
        self.connections.clear()
