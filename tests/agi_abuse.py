"""Fake Asterisk peers for FastAGI tests, well-behaved and abusive, over real TCP.

Reusable against any handler: start it with `running_server`, then point the
peers below at its address. Every peer closes its own socket, reads with a
safety timeout and reports whether the server closed the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from agi_server.protocol import AgiLimits
from agi_server.server import AgiServer, AgiServerStats, Handler, StatsPredicate

Address = tuple[str, int]

# What Asterisk 22 sends for a PJSIP call, in its order (res_agi.c setup_env).
ASTERISK_ENV: dict[str, str] = {
    "channel": "PJSIP/101-00000001",
    "language": "en",
    "type": "PJSIP",
    "uniqueid": "1700000000.1",
    "version": "22.0.0",
    "callerid": "101",
    "calleridname": "Alice",
    "callingpres": "0",
    "callingani2": "0",
    "callington": "0",
    "callingtns": "0",
    "dnid": "200",
    "rdnis": "unknown",
    "context": "from-internal",
    "extension": "200",
    "priority": "1",
    "enhanced": "0.0",
    "accountcode": "",
    "threadid": "140000000000000",
}

DEFAULT_REQUEST = "agi://127.0.0.1:4573/scenario?x=1"


def env_block(
    request: str = DEFAULT_REQUEST,
    *,
    args: Sequence[str] = (),
    network: bool = True,
    newline: bytes = b"\n",
    **fields: str,
) -> bytes:
    """An environment block shaped like Asterisk's, `fields` overriding the defaults."""
    lines: list[str] = []
    if network:
        lines.append("agi_network: yes")
        script = request.split("://", 1)[-1].partition("/")[2]
        if script:
            lines.append(f"agi_network_script: {script}")
    lines.append(f"agi_request: {request}")
    for key, value in {**ASTERISK_ENV, **fields}.items():
        lines.append(f"agi_{key}: {value}")
    for number, arg in enumerate(args, start=1):
        lines.append(f"agi_arg_{number}: {arg}")
    return b"".join(line.encode() + newline for line in lines) + newline


@dataclass
class PeerEnd:
    """What an abusive peer saw: the bytes the server sent, and whether it closed."""

    received: bytes = b""
    closed: bool = False  # EOF or reset seen before the safety timeout
    elapsed: float = 0.0


@dataclass
class CallRecord:
    """What a scripted Asterisk peer saw: the command lines it got, and the close."""

    commands: list[bytes] = field(default_factory=list)
    closed: bool = False


@contextlib.asynccontextmanager
async def running_server(
    handler: Handler, limits: AgiLimits | None = None
) -> AsyncIterator[tuple[AgiServer, Address]]:
    """An AgiServer on 127.0.0.1 and a free port, closed on exit."""
    server = AgiServer(handler, limits)
    address = await server.start("127.0.0.1", 0)
    try:
        yield server, address
    finally:
        await server.close()


async def wait_stats(
    server: AgiServer, predicate: StatsPredicate, safety: float = 5.0
) -> AgiServerStats:
    """The server's counters once `predicate` holds; TimeoutError after `safety` seconds."""
    async with asyncio.timeout(safety):
        return await server.wait_stats(predicate)


async def connect(address: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address)


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def read_until_eof(
    reader: asyncio.StreamReader, safety: float = 5.0, keep: int = 1 << 16
) -> PeerEnd:
    """Read until the server closes (EOF or reset), keeping the first `keep` bytes."""
    start = time.perf_counter()
    received = bytearray()
    closed = False
    try:
        async with asyncio.timeout(safety):
            while True:
                chunk = await reader.read(1 << 16)
                if not chunk:
                    closed = True
                    break
                received += chunk[: max(0, keep - len(received))]
    except OSError:
        closed = True
    except TimeoutError:
        closed = False
    return PeerEnd(bytes(received), closed, time.perf_counter() - start)


async def send_then_read(
    address: Address, data: bytes, *, half_close: bool = True, safety: float = 5.0
) -> PeerEnd:
    """Send `data`, end our side (unless `half_close` is False), read until the server closes."""
    reader, writer = await connect(address)
    try:
        with contextlib.suppress(OSError):
            writer.write(data)
            await writer.drain()
            if half_close:
                writer.write_eof()
        return await read_until_eof(reader, safety)
    finally:
        await close_quietly(writer)


async def silent_peer(address: Address, *, safety: float = 5.0) -> PeerEnd:
    """Connect and never speak."""
    return await send_then_read(address, b"", half_close=False, safety=safety)


async def flood_peer(
    address: Address,
    *,
    prefix: bytes = b"",
    total: int = 10 * 1024 * 1024,
    fill: bytes = b"A",
    safety: float = 5.0,
) -> PeerEnd:
    """Send `prefix` then `total` bytes of `fill` with no newline, reading meanwhile.

    The flood is written from one reused 64 KiB chunk, so the peer itself
    holds little memory.
    """
    reader, writer = await connect(address)
    chunk = (fill * (1 << 16))[: 1 << 16]

    async def pump() -> None:
        with contextlib.suppress(OSError):
            writer.write(prefix)
            sent = 0
            while sent < total:
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()

    pumping = asyncio.create_task(pump())
    try:
        return await read_until_eof(reader, safety)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        writer.transport.abort()
        await close_quietly(writer)


async def scripted_call(
    address: Address,
    env: bytes,
    answers: Sequence[bytes | None],
    *,
    safety: float = 5.0,
) -> CallRecord:
    """Send `env`; for each command line received send the next answer (None: stay silent).

    When the script is over the peer ends its side and records any further
    command lines until the server closes.
    """
    reader, writer = await connect(address)
    record = CallRecord()
    try:
        writer.write(env)
        await writer.drain()
        for answer in answers:
            line = await asyncio.wait_for(reader.readline(), safety)
            if not line:
                record.closed = True
                return record
            record.commands.append(line)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        writer.write_eof()
        rest = await read_until_eof(reader, safety)
        record.commands.extend(rest.received.splitlines(keepends=True))
        record.closed = rest.closed
    except OSError:
        record.closed = True
    finally:
        await close_quietly(writer)
    return record


async def good_call(
    address: Address,
    *,
    env: bytes | None = None,
    answer: bytes = b"200 result=0\n",
    safety: float = 5.0,
) -> CallRecord:
    """A well-behaved Asterisk: answers every command with `answer` until the server closes."""
    reader, writer = await connect(address)
    record = CallRecord()
    try:
        writer.write(env if env is not None else env_block())
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), safety)
            if not line:
                record.closed = True
                return record
            record.commands.append(line)
            writer.write(answer)
            await writer.drain()
    except OSError:  # a reset is the server closing too
        record.closed = True
        return record
    finally:
        await close_quietly(writer)


def run_isolated(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one (hypothesis) example on a fresh loop; fail on anything the loop reports
    as unhandled (an exception in a task nobody awaited)."""
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        await make()

    asyncio.run(main())
    assert reported == []
