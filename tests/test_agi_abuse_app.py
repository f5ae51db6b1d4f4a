"""Switchboard's own FastAGI services under a misbehaving Asterisk.

`test_agi_protocol.py` abuses the protocol layer with a small handler; here the
peer abuses real calls (examples/office.yaml and call-centre.yaml through
``scenario`` and ``route``): a HANGUP after any command of the call, answers
drawn from a soup of valid, refused and garbage lines, the stream ending
anywhere.  Whatever happens, no session raises out of the server, no core
spins, every call that started leaves its record, and the server goes on
serving well-behaved calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agi_server.app import AgiApp
from agi_server.protocol import AgiLimits
from agi_server.server import AgiServer
from switchboard.calls import MemorySink
from switchboard.config.company import Company
from tests import agi_abuse as abuse
from tests.helpers import example

LIMITS = AgiLimits(header_timeout=0.5, idle_timeout=0.5)
OFFICE_CALL = abuse.env_block(
    "agi://127.0.0.1:4573/scenario",
    args=("74951234567",),
    callerid="79035550000",
    extension="74951234567",
)
# commands that still work on a dead channel (res_agi.c: the `dead` column)
DEAD_OK = ("EXEC", "GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "NOOP")


def well(command: str) -> bytes:
    """What a live Asterisk answers when nothing happens: prompts end, nobody presses,
    nobody answers the phone."""
    if command.startswith("GET VARIABLE DIALSTATUS"):
        return b"200 result=1 (NOANSWER)\n"
    if command.startswith("GET VARIABLE"):
        return b"200 result=0\n"
    if command.startswith(("STREAM FILE", "RECORD FILE")):
        return b"200 result=0 endpos=16000\n"
    if command.startswith("CHANNEL STATUS"):
        return b"200 result=6\n"
    return b"200 result=0\n"


def dead(command: str) -> bytes:
    if command.startswith(DEAD_OK):
        return b"200 result=0\n" if command.startswith("GET") else b"200 result=1\n"
    return b"511 Command Not Permitted on a dead channel or intercept routine\n"


@dataclass
class Exchange:
    commands: list[str] = field(default_factory=list)
    closed: bool = False


async def converse(
    address: abuse.Address,
    env: bytes,
    answer: Callable[[int, str], bytes | None],
    safety: float = 5.0,
) -> Exchange:
    """Play Asterisk: ``answer(n, command)`` gives the bytes for the n-th command
    (None: end the stream there)."""
    reader, writer = await abuse.connect(address)
    seen = Exchange()
    try:
        writer.write(env)
        await writer.drain()
        async with asyncio.timeout(safety):
            while True:
                line = await reader.readline()
                if not line:
                    seen.closed = True
                    break
                command = line.decode(errors="replace").strip()
                seen.commands.append(command)
                reply = answer(len(seen.commands), command)
                if reply is None:
                    writer.write_eof()
                    seen.closed = (await abuse.read_until_eof(reader, safety)).closed
                    break
                writer.write(reply)
                await writer.drain()
    except (OSError, TimeoutError):
        seen.closed = True
    finally:
        await abuse.close_quietly(writer)
    return seen


@contextlib.asynccontextmanager
async def serving(
    company: Company,
) -> AsyncIterator[tuple[AgiServer, abuse.Address, AgiApp, MemorySink]]:
    """Switchboard's AgiApp behind a server on a free port; both closed on exit."""
    sink = MemorySink()
    at = dt.datetime(2026, 12, 1, 10, 15, tzinfo=company.tz)  # Tuesday, open
    app = AgiApp(lambda: company, sink, wall_clock=lambda: at)
    try:
        async with abuse.running_server(app.handle, LIMITS) as (server, address):
            yield server, address, app, sink
    finally:
        await app.close()


async def assert_still_serves(address: abuse.Address, sink: MemorySink) -> None:
    before = len(sink.records)
    seen = await converse(address, OFFICE_CALL, lambda _n, c: well(c))
    assert seen.closed
    assert len(sink.records) == before + 1
    assert (
        sink.records[-1].outcome.result != "hangup" or "agi" not in sink.records[-1].outcome.reason
    )


def hangup_after(k: int, n: int, command: str, state: dict[str, bool]) -> bytes:
    """Live until the k-th command, whose answer is followed by Asterisk's HANGUP notice."""
    if state.get("dead"):
        return dead(command)
    if n == k:
        state["dead"] = True
        return well(command) + b"HANGUP\n"
    return well(command)


@pytest.mark.asyncio
async def test_a_hangup_after_any_command_of_a_real_call_ends_it_as_abandoned() -> None:
    company = example("office.yaml")
    async with serving(company) as (server, address, _app, sink):
        full = await converse(address, OFFICE_CALL, lambda _n, c: well(c))
        assert full.closed
        normal = sink.records[-1].outcome.result
        commands = len(full.commands)
        assert commands > 5  # the call went through the menu, the ringing, the voicemail
        for k in range(1, commands + 1):
            state: dict[str, bool] = {}
            seen = await converse(
                address, OFFICE_CALL, functools.partial(hangup_after, k, state=state)
            )
            assert seen.closed
            # every session leaves its record; once dead, the call is abandoned (or had ended)
            assert len(sink.records) == k + 1
            assert sink.records[-1].outcome.result in ("abandoned", normal)
            # nothing but dead-channel commands after the notice, and only a handful
            after = seen.commands[k:]
            assert len(after) <= 4, after
        stats = await abuse.wait_stats(server, lambda s: s.ended == commands + 1)
        assert (stats.handler_errors, stats.protocol_errors) == (0, 0)
        await assert_still_serves(address, sink)


@pytest.mark.asyncio
async def test_the_stream_ending_after_any_command_still_leaves_a_record() -> None:
    company = example("call-centre.yaml")
    env = abuse.env_block(
        "agi://127.0.0.1:4573/scenario", args=("74951112233",), callerid="79161112233"
    )
    async with serving(company) as (server, address, _app, sink):
        full = await converse(address, env, lambda _n, c: well(c))
        for k in range(1, len(full.commands) + 1):
            seen = await converse(
                address,
                env,
                lambda n, c, k=k: None if n == k else well(c),  # type: ignore[misc]
            )
            assert seen.closed
            assert len(sink.records) == k + 1
        stats = await abuse.wait_stats(server, lambda s: s.ended == len(full.commands) + 1)
        assert stats.handler_errors == 0
        await assert_still_serves(address, sink)


ANSWER_SOUP = [
    b"200 result=0\n",
    b"200 result=-1\n",
    b"200 result=49 endpos=100\n",
    b"200 result=35\n",
    b"200 result=1 (ANSWER)\n",
    b"200 result=1 (BUSY)\n",
    b"200 result=1 (PJSIP/101-00000002)\n",
    b"200 result=1 (12.5)\n",
    b"200 result=0 (timeout) endpos=99999999999\n",
    b"HANGUP\n",
    b"510 Invalid or unknown command\n",
    b"511 Command Not Permitted on a dead channel or intercept routine\n",
    b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n520 End of proper usage.\n",
    b"100 result=0 Trying...\n",
    b"200 result=\n",
    b"200 result=99999999999999999999\n",
    b"\xff\xfe garbage\n",
]

answers = st.lists(
    st.one_of(st.sampled_from(ANSWER_SOUP), st.binary(max_size=30).map(lambda b: b + b"\n")),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(replies=answers, service=st.sampled_from(["scenario", "route"]))
def test_any_answers_to_a_real_call_end_it_cleanly_and_lose_nothing(
    replies: list[bytes], service: str
) -> None:
    """Whatever Asterisk answers, the call ends, its record is kept, the server serves on."""

    async def case() -> None:
        company = example("call-centre.yaml")
        env = abuse.env_block(
            f"agi://127.0.0.1:4573/{service}", args=("74951112233",), callerid="79035550000"
        )
        async with serving(company) as (server, address, app, sink):
            started = time.process_time()
            seen = await converse(
                address, env, lambda n, _c: replies[n - 1] if n <= len(replies) else None
            )
            assert seen.closed
            stats = await abuse.wait_stats(server, lambda s: s.ended == 1)
            assert stats.handler_errors == 0
            assert len(sink.records) == app.calls  # every call that started left its record
            assert time.process_time() - started < 5.0  # no spinning on nonsense
            await assert_still_serves(address, sink)

    abuse.run_isolated(case)


@pytest.mark.asyncio
async def test_a_caller_id_name_full_of_markup_and_quotes_cannot_inject_commands() -> None:
    company = example("office.yaml")
    nasty = '<script>alert("x")</script> \\" ; HANGUP'
    env = abuse.env_block(
        "agi://127.0.0.1:4573/route",
        args=("74951234567",),
        callerid="79035550000",
        calleridname=nasty,
    )
    async with serving(company) as (_server, address, _app, sink):
        seen = await converse(address, env, lambda _n, c: well(c))
    assert seen.closed
    assert not any(c == "HANGUP" for c in seen.commands)
    assert sink.records[-1].caller_name == nasty


@pytest.mark.asyncio
async def test_a_call_up_when_the_server_stops_still_leaves_its_record() -> None:
    company = example("office.yaml")
    async with serving(company) as (server, address, _app, sink):
        reader, writer = await abuse.connect(address)
        writer.write(OFFICE_CALL)
        await writer.drain()
        # the server has sent its first command; Asterisk (stuck) never answers it
        assert (await reader.readline()).startswith(b"ANSWER")
        await server.close()
        assert (await abuse.read_until_eof(reader)).closed
        await abuse.close_quietly(writer)
    [record] = sink.records
    assert (record.outcome.result, record.outcome.reason) == ("hangup", "switchboard stopped")
