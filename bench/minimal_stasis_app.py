"""The baseline of bench/real_asterisk_load.py: a minimal hand-written Stasis app.

It does what the bench's Switchboard scenario does (answer, beep, ring the
employee at PJSIP/op for up to 20 s, bridge, hang the other side up when one
ends) with nothing else: aiohttp only, one ClientSession (50 connections),
events handled inline, no engine, no logging, no records.  What Switchboard costs
over this is what its engine, logs and bookkeeping cost.

    .venv/bin/python bench/minimal_stasis_app.py --url http://127.0.0.1:8088 \\
        --user switchboard --password SECRET --stats /tmp/minimal.json

Prints "ready" once the websocket is up and its event filter set; on SIGTERM
(or SIGINT) writes {"answer_delays": [s, ...], "calls": N, "errors": {...}} to
--stats and exits 0.  An answer delay is StasisStart parsed -> answer about to
be sent (time.perf_counter).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import time
from base64 import b64encode
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

APP = "bench-minimal"
LEG = "leg"  # the appArgs of the channels we create
EVENTS = ("StasisStart", "StasisEnd", "ChannelDestroyed", "Dial", "PlaybackFinished")
DIAL_FAILED = ("BUSY", "CONGESTION", "CHANUNAVAIL", "NOANSWER")
Step = tuple[str, str, str, dict[str, str]]  # method, path, what (for errors), query


def hangup(channel: str) -> Step:
    return ("DELETE", f"/channels/{channel}", "hangup", {})


@dataclasses.dataclass
class Call:
    caller: str
    caller_up: bool = True
    leg_up: bool = False  # created (its create sent) and not gone
    answered: bool = False  # the leg answered
    bridged: bool = False
    failed: bool = False  # the leg failed (counted once)

    @property
    def leg(self) -> str:
        return f"{self.caller}-leg"

    @property
    def bridge(self) -> str:
        return f"{self.caller}-bridge"


class MinimalApp:
    def __init__(self, url: str, user: str, password: str) -> None:
        self.base = url.rstrip("/")
        self.http = aiohttp.ClientSession(
            headers={"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()},
            connector=aiohttp.TCPConnector(limit=50),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self.calls: dict[str, Call] = {}  # by caller and by leg channel id
        self.answer_delays: list[float] = []
        self.inbound = 0
        self.errors: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    async def request(self, method: str, path: str, what: str, params: dict[str, str]) -> bool:
        """An ARI request; a failure is counted under ``what`` (404 hanging up is not one)."""
        try:
            async with self.http.request(method, f"{self.base}/ari{path}", params=params) as r:
                await r.read()
                if r.status < 300 or (r.status == 404 and what == "hangup"):
                    return r.status < 300
                self.errors[f"{r.status} {what}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"{type(exc).__name__} {what}"] += 1
        return False

    def spawn(self, *steps: Step, call: Call | None = None, arrived: float = 0.0) -> None:
        """Send requests one after the other in a task (events keep being read meanwhile);
        the first that fails ends the run, and ``call``'s caller if it is given.  An
        answer notes the time since ``arrived`` just before it is sent."""

        async def run() -> None:
            for method, path, what, params in steps:
                if what == "answer":
                    self.answer_delays.append(time.perf_counter() - arrived)
                if not await self.request(method, path, what, params) and what != "hangup":
                    if call is not None:  # no leg (or no bridge): the caller's end ends it
                        call.leg_up = call.leg_up and what != "create"
                        await self.request(*hangup(call.caller))
                    return

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_event(self, event: dict[str, Any], arrived: float) -> None:
        kind = event["type"]
        if kind == "PlaybackFinished":
            call = self.calls.get(event["playback"]["id"].removesuffix("-beep"))
            if call is not None and call.caller_up and not call.leg_up:
                call.leg_up = True
                self.calls[call.leg] = call  # before the create: its StasisStart may come first
                params = {"endpoint": "PJSIP/op", "app": APP, "appArgs": LEG, "channelId": call.leg}
                self.spawn(("POST", "/channels/create", "create", params), call=call)
            return
        if kind == "Dial":
            self.on_dial(event["peer"]["id"], event["dialstatus"])
            return
        channel = event["channel"]["id"]
        if kind == "StasisStart" and not event.get("args"):
            call = self.calls[channel] = Call(channel)
            self.inbound += 1
            play = {"media": "sound:beep", "playbackId": f"{channel}-beep"}
            self.spawn(
                ("POST", f"/channels/{channel}/answer", "answer", {}),
                ("POST", f"/channels/{channel}/play", "play", play),
                call=call,
                arrived=arrived,
            )
        elif kind == "StasisStart":  # a leg: only now does Asterisk accept its dial
            call = self.calls.get(channel)
            if call is None or not call.caller_up:
                self.spawn(hangup(channel))
            else:
                dial = {"caller": call.caller, "timeout": "20"}
                self.spawn(("POST", f"/channels/{channel}/dial", "dial", dial), call=call)
        elif kind in ("StasisEnd", "ChannelDestroyed"):
            self.on_gone(channel)

    def on_dial(self, leg: str, status: str) -> None:
        call = self.calls.get(leg)
        if call is None or call.leg != leg or not call.leg_up:
            return
        if status == "ANSWER" and call.caller_up:
            call.answered = call.bridged = True
            bridge = {"type": "mixing", "bridgeId": call.bridge}
            members = {"channel": f"{call.caller},{call.leg}"}
            self.spawn(
                ("POST", "/bridges", "bridge", bridge),
                ("POST", f"/bridges/{call.bridge}/addChannel", "addChannel", members),
                call=call,
            )
        elif status in DIAL_FAILED:  # a created channel stays until hung up
            call.failed = True
            self.errors[f"dial {status}"] += 1
            self.spawn(hangup(call.leg), hangup(call.caller))

    def on_gone(self, channel: str) -> None:
        call = self.calls.get(channel)
        if call is None:
            return
        if channel == call.caller and call.caller_up:
            call.caller_up = False
            if call.leg_up:
                self.spawn(hangup(call.leg))
        elif channel == call.leg and call.leg_up:
            call.leg_up = False
            if not call.answered and not call.failed:
                call.failed = True
                self.errors["leg ended before answer"] += 1
            if call.caller_up:
                self.spawn(hangup(call.caller))
        if not call.caller_up and not call.leg_up:
            self.calls.pop(call.caller, None)
            self.calls.pop(call.leg, None)
            if call.bridged:
                self.spawn(("DELETE", f"/bridges/{call.bridge}", "destroy bridge", {}))

    async def serve(self, stop: asyncio.Event) -> None:
        ws_url = self.base.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        async with self.http.ws_connect(f"{ws_url}/ari/events?app={APP}", heartbeat=10) as ws:
            allowed = {"allowed": [{"type": t} for t in EVENTS], "disallowed": []}
            url = f"{self.base}/ari/applications/{APP}/eventFilter"
            async with self.http.put(url, json=allowed) as response:
                response.raise_for_status()
            print("ready", flush=True)
            reader = asyncio.create_task(self.read(ws))
            done = asyncio.create_task(stop.wait())
            await asyncio.wait((reader, done), return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                self.errors["websocket closed"] += 1
            for task in (reader, done):
                task.cancel()
            await asyncio.gather(reader, done, return_exceptions=True)

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(message.data)
                self.on_event(event, time.perf_counter())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="http://127.0.0.1:8088")
    parser.add_argument("--user", default="switchboard")
    parser.add_argument("--password", default="")
    parser.add_argument("--stats", type=Path, required=True, help="JSON written at SIGTERM")
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = MinimalApp(args.url, args.user, args.password)
    try:
        await app.serve(stop)
    except (aiohttp.ClientError, OSError) as exc:
        print(f"minimal_stasis_app: {exc}", file=sys.stderr)
        app.errors[f"{type(exc).__name__} connect"] += 1
        await stop.wait()
    finally:
        for task in list(app.tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*app.tasks, return_exceptions=True)
        await app.http.close()
    stats = {"answer_delays": app.answer_delays, "calls": app.inbound, "errors": app.errors}
    args.stats.write_text(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main())
