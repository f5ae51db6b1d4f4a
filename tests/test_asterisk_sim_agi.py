"""The FastAGI peer answers as Asterisk 22 does, checked from a bare server over real TCP.

The server side here is raw asyncio -- it writes command lines and reads answer
lines -- so each test reads like the wire.  Both sides share one VirtualClock:
prompts, timeouts, ringing and talk take no real time and every time is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from asterisk_sim.agi import (
    AgiCall,
    AgiPeer,
    DialRecord,
    RecordingRecord,
    environment_block,
    parse_args,
    parse_options,
    separate_args,
)
from asterisk_sim.script import CallerScript, EndpointScript, Press
from switchboard.clock import VirtualClock

T = TypeVar("T")
WAIT = 5.0  # real seconds before a test gives up on a line
START = 1000.0
USAGE_WAIT_FOR_DIGIT = (
    "520-Invalid command syntax.  Proper usage follows:\n"
    "Usage: WAIT FOR DIGIT <timeout>\n"
    "520 End of proper usage."
)
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


class Server:
    """The project's side, bare: send a command line, read the answer lines."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, clock: VirtualClock
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.clock = clock

    def t(self) -> float:
        """The call's time (the peer connected at START)."""
        return self.clock.now() - START

    async def line(self) -> str:
        data = await asyncio.wait_for(self.reader.readline(), WAIT)
        assert data.endswith(b"\n"), f"the peer closed: {data!r}"
        return data.decode()[:-1]

    async def environment(self) -> list[str]:
        lines: list[str] = []
        while (line := await self.line()) != "":
            lines.append(line)
        return lines

    async def send(self, command: str) -> str:
        """One command and its answer (the three lines of a 520 joined by newlines)."""
        self.writer.write(command.encode() + b"\n")
        await self.writer.drain()
        reply = await self.line()
        if reply.startswith("520-"):
            lines = [reply]
            while not lines[-1].startswith("520 "):
                lines.append(await self.line())
            reply = "\n".join(lines)
        return reply


async def converse(
    script: Callable[[Server], Awaitable[T]],
    *,
    clock: VirtualClock | None = None,
    caller: CallerScript | None = None,
    peer: dict[str, Any] | None = None,
    **call: Any,
) -> tuple[AgiCall, T]:
    """Run ``script`` as the FastAGI server for one call the peer places; close after it."""
    clock = clock or VirtualClock(start=START)
    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    connections = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connections.put((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    agi = AgiPeer("127.0.0.1", port, clock=clock, **(peer or {}))
    try:
        async with asyncio.timeout(WAIT), asyncio.TaskGroup() as tasks:
            placed = tasks.create_task(agi.call(script=caller, **call))
            reader, writer = await connections.get()
            side = Server(reader, writer, clock)
            try:
                await side.environment()
                result = await script(side)
            finally:
                writer.close()
                await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    return placed.result(), result


# -- the wire ---------------------------------------------------------------------------


def test_words_are_split_as_asterisks_parse_args_splits_them() -> None:
    assert parse_args('STREAM FILE welcome ""') == ["STREAM", "FILE", "welcome", ""]
    assert parse_args('SET VARIABLE G "hello \\"world\\" x"') == [
        "SET",
        "VARIABLE",
        "G",
        'hello "world" x',
    ]
    assert parse_args('VERBOSE a\\ b\t"c d"e  \\\\') == ["VERBOSE", "a b", "c de", "\\"]
    assert parse_args('EXEC  Dial   "PJSIP/101&PJSIP/102,30,m(x)g"') == [
        "EXEC",
        "Dial",
        "PJSIP/101&PJSIP/102,30,m(x)g",
    ]
    assert parse_args("") == []


def test_application_arguments_and_options_split_as_app_args_do() -> None:
    assert separate_args("PJSIP/1,30,U(sub^a,b)g") == ["PJSIP/1", "30", "U(sub^a,b)g"]
    assert separate_args('"a,b",c,') == ["a,b", "c", ""]
    assert parse_options("m(sales)gU(sub^x(1))") == {"m": "sales", "g": "", "U": "sub^x(1)"}
    assert parse_options("m(sales") is None


def test_environment_block_says_unknown_for_what_the_channel_lacks() -> None:
    block = environment_block("", caller=None, dnid=None, port=4573)
    lines = block.decode().split("\n")
    assert block.endswith(b"\n\n")
    assert "agi_network_script" not in block.decode()
    assert lines[1] == "agi_request: agi://127.0.0.1:4573"
    assert "agi_callerid: unknown" in lines
    assert "agi_calleridname: unknown" in lines
    assert "agi_dnid: unknown" in lines


@pytest.mark.asyncio
async def test_the_environment_comes_first_in_asterisks_order() -> None:
    clock = VirtualClock(start=START)
    connections: list[list[str]] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await Server(reader, writer, clock).environment())
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        call = await AgiPeer("127.0.0.1", port, clock=clock).call(
            "route?node=x", caller_name="Ivan", args=["a b", "c"]
        )
    finally:
        server.close()
        await server.wait_closed()
    assert connections == [
        [
            "agi_network: yes",
            "agi_network_script: route?node=x",
            f"agi_request: agi://127.0.0.1:{port}/route?node=x",
            "agi_channel: PJSIP/trunk-00000001",
            "agi_language: en",
            "agi_type: PJSIP",
            "agi_uniqueid: 1733050000.1",
            "agi_version: 22.0.0",
            "agi_callerid: 79161234567",
            "agi_calleridname: Ivan",
            "agi_callingpres: 0",
            "agi_callingani2: 0",
            "agi_callington: 0",
            "agi_callingtns: 0",
            "agi_dnid: 74951234567",
            "agi_rdnis: unknown",
            "agi_context: from-trunk",
            "agi_extension: 74951234567",
            "agi_priority: 1",
            "agi_enhanced: 0.0",
            "agi_accountcode: ",
            "agi_threadid: 140000000",
            "agi_arg_1: a b",
            "agi_arg_2: c",
        ]
    ]
    assert call.request == f"agi://127.0.0.1:{port}/route?node=x"
    assert call.closed_by == "server"
    assert call.commands == []


@pytest.mark.asyncio
async def test_answer_brings_the_channel_from_ring_to_up() -> None:
    async def script(server: Server) -> list[str]:
        return [
            await server.send("CHANNEL STATUS"),
            await server.send("answer"),
            await server.send("channel Status"),
            await server.send("ANSWER"),
        ]

    call, replies = await converse(script)
    assert replies == ["200 result=4", "200 result=0", "200 result=6", "200 result=0"]
    assert call.answered
    assert call.commands == [
        (0.0, "CHANNEL STATUS"),
        (0.0, "answer"),
        (0.0, "channel Status"),
        (0.0, "ANSWER"),
    ]


@pytest.mark.asyncio
async def test_unknown_commands_get_510_and_wrong_arguments_the_usage() -> None:
    async def script(server: Server) -> list[str]:
        return [
            await server.send("FOO BAR"),
            await server.send("STREAM"),
            await server.send(""),
            await server.send("WAIT FOR DIGIT"),
            await server.send("WAIT FOR DIGIT soon"),
            await server.send("SET VARIABLE ONLYNAME"),
            await server.send("NOOP"),
        ]

    _, replies = await converse(script)
    assert replies[:3] == ["510 Invalid or unknown command"] * 3
    assert replies[3] == USAGE_WAIT_FOR_DIGIT
    assert replies[4] == USAGE_WAIT_FOR_DIGIT
    assert replies[5] == (
        "520-Invalid command syntax.  Proper usage follows:\n"
        "Usage: SET VARIABLE <variablename> <value>\n"
        "520 End of proper usage."
    )
    assert replies[6] == "200 result=0"


@pytest.mark.asyncio
async def test_quoted_values_keep_their_spaces_and_quotes() -> None:
    async def script(server: Server) -> list[str]:
        return [
            await server.send('SET VARIABLE GREETING "hello \\"world\\" x"'),
            await server.send("GET VARIABLE GREETING"),
            await server.send("GET VARIABLE NOTSET"),
            await server.send('GET FULL VARIABLE "${GREETING}/${CALLERID(num)}/${NOTSET}"'),
        ]

    call, replies = await converse(script)
    assert replies == [
        "200 result=1",
        '200 result=1 (hello "world" x)',
        "200 result=0",
        '200 result=1 (hello "world" x/79161234567/)',
    ]
    assert call.variables == {"GREETING": 'hello "world" x'}


# -- prompts and keys -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_file_plays_for_the_files_length() -> None:
    async def script(server: Server) -> tuple[str, float, str]:
        reply = await server.send('STREAM FILE /var/lib/asterisk/sounds/switchboard/welcome ""')
        return reply, server.t(), await server.send("GET VARIABLE PLAYBACKSTATUS")

    call, (reply, t, status) = await converse(script, peer={"durations": {"welcome": 3.0}})
    assert reply == "200 result=0 endpos=24000"
    assert t == 3.0
    assert status == "200 result=1 (SUCCESS)"
    assert call.played == [(0.0, "/var/lib/asterisk/sounds/switchboard/welcome")]


@pytest.mark.asyncio
async def test_an_escape_digit_interrupts_stream_file() -> None:
    async def script(server: Server) -> list[tuple[str, float]]:
        return [
            (await server.send("STREAM FILE switchboard/welcome 12"), server.t()),
            (await server.send("STREAM FILE switchboard/main-menu 123"), server.t()),
        ]

    caller = CallerScript([Press("2", on_playback="menu", delay=1.5)])
    call, replies = await converse(script, caller=caller, peer={"durations": {"main-menu": 6.0}})
    assert replies == [
        ("200 result=0 endpos=16000", 2.0),  # the welcome is no menu: no key
        ("200 result=50 endpos=12000", 3.5),  # "2" 1.5 s into the menu
    ]
    assert call.played == [(0.0, "switchboard/welcome"), (2.0, "switchboard/main-menu")]


@pytest.mark.asyncio
async def test_a_key_nobody_listens_for_waits_for_the_next_listener() -> None:
    async def script(server: Server) -> list[tuple[str, float]]:
        return [
            (await server.send("STREAM FILE welcome 12"), server.t()),
            (await server.send("WAIT FOR DIGIT 1000"), server.t()),
        ]

    _, replies = await converse(script, caller=CallerScript([Press("9", at=1.0)]))
    assert replies == [("200 result=0 endpos=16000", 2.0), ("200 result=57", 2.0)]


@pytest.mark.asyncio
async def test_a_missing_file_answers_minus_one_and_the_channel_stays_up() -> None:
    async def script(server: Server) -> list[str]:
        return [await server.send('STREAM FILE nothere ""'), await server.send("CHANNEL STATUS")]

    call, replies = await converse(script, peer={"default_prompt": None})
    assert replies == ["200 result=-1 endpos=0", "200 result=4"]
    assert call.played == []
    assert call.hung_up_by is None


@pytest.mark.asyncio
async def test_wait_for_digit_times_out_or_takes_the_key() -> None:
    async def script(server: Server) -> list[tuple[str, float]]:
        return [
            (await server.send("WAIT FOR DIGIT 5000"), server.t()),
            (await server.send("WAIT FOR DIGIT -1"), server.t()),
        ]

    _, replies = await converse(script, caller=CallerScript([Press("5", at=7.0)]))
    assert replies == [("200 result=0", 5.0), ("200 result=53", 7.0)]


@pytest.mark.asyncio
async def test_get_data_collects_digits_until_hash_or_the_timeout() -> None:
    async def script(server: Server) -> list[tuple[str, float]]:
        return [
            (await server.send("GET DATA switchboard/enter-number 3000 10"), server.t()),
            (await server.send("GET DATA switchboard/enter-number 3000 4"), server.t()),
        ]

    caller = CallerScript([Press("123#", on_playback="enter", delay=1.0, gap=0.5)])
    _, replies = await converse(script, caller=caller, peer={"durations": {"enter-number": 4.0}})
    assert replies == [
        ("200 result=123", 2.5),  # "1" at 1.0 interrupts the prompt, "#" at 2.5 ends it
        ("200 result= (timeout)", 2.5 + 4.0 + 3.0),  # the prompt, then the 3 s timeout
    ]


@pytest.mark.asyncio
async def test_record_file_ends_on_its_escape_digit_or_its_timeout() -> None:
    async def script(server: Server) -> list[tuple[str, float]]:
        return [
            (await server.send("RECORD FILE recordings/msg wav # 10000 BEEP"), server.t()),
            (await server.send('RECORD FILE recordings/two wav "#" 3000'), server.t()),
        ]

    call, replies = await converse(script, caller=CallerScript([Press("#", at=5.0)]))
    assert replies == [
        ("200 result=35 (dtmf) endpos=34400", 5.0),  # 4.5 s after the beep, less 200 ms
        ("200 result=0 (timeout) endpos=24000", 8.0),
    ]
    assert call.recordings == [
        RecordingRecord(0.5, "recordings/msg", "wav", 5.0, "dtmf", 34400, True),
        RecordingRecord(5.0, "recordings/two", "wav", 8.0, "timeout", 24000, False),
    ]


@pytest.mark.asyncio
async def test_record_file_with_silence_detection_ends_when_the_caller_goes_quiet() -> None:
    async def script(server: Server) -> tuple[str, float]:
        return await server.send("RECORD FILE recordings/msg wav # 20000 s=2"), server.t()

    call, reply = await converse(script, caller=CallerScript(silent_after=3.0))
    # quiet from 3 s, 2 s of silence ends it at 5 s; Asterisk cuts 1 s of that silence
    # and answers with what its last ast_waitfor left: 15000 ms of the 20000
    assert reply == ("200 result=15000 (timeout) endpos=32000", 5.0)
    assert call.recordings[0].reason == "silence"


@pytest.mark.asyncio
async def test_set_music_on_starts_the_music_a_press_can_wait_for() -> None:
    async def script(server: Server) -> list[str]:
        return [
            await server.send("SET MUSIC ON sales"),
            await server.send("WAIT FOR DIGIT 30000"),
            await server.send("SET MUSIC OFF"),
        ]

    caller = CallerScript([Press("0", on_moh=True, delay=4.0)])
    call, replies = await converse(script, caller=caller)
    assert replies == ["200 result=0", "200 result=48", "200 result=0"]
    assert call.moh == [(0.0, "sales"), (4.0, None)]


# -- hang-ups ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_caller_hanging_up_mid_prompt_ends_it_and_kills_the_channel() -> None:
    async def script(server: Server) -> list[str]:
        return [
            await server.send("SET VARIABLE FOO bar"),
            await server.send('STREAM FILE long ""'),
            await server.line(),
            await server.send('STREAM FILE long ""'),
            await server.send("GET VARIABLE FOO"),
            await server.send("EXEC NoOp"),
        ]

    call, replies = await converse(
        script, caller=CallerScript(hangup_after=2.0), peer={"durations": {"long": 5.0}}
    )
    assert replies == [
        "200 result=1",
        "200 result=-1 endpos=16000",
        "HANGUP",
        DEAD,
        "200 result=1 (bar)",
        "200 result=0",
    ]
    assert (call.hung_up_by, call.hung_up_at) == ("caller", 2.0)


@pytest.mark.asyncio
async def test_a_hangup_due_between_commands_is_announced_before_the_next_answer() -> None:
    async def script(server: Server) -> list[str]:
        first = await server.send("ANSWER")
        server.clock.advance(5.0)  # the server spends call time on something of its own
        return [first, await server.send("WAIT FOR DIGIT 1000"), await server.line()]

    call, replies = await converse(script, caller=CallerScript(hangup_after=3.0))
    assert replies == ["200 result=0", "HANGUP", DEAD]
    assert (call.hung_up_by, call.hung_up_at) == ("caller", 3.0)


@pytest.mark.asyncio
async def test_hangup_from_the_app_is_confirmed_then_announced() -> None:
    async def script(server: Server) -> list[str]:
        return [await server.send("HANGUP"), await server.line(), await server.send("ANSWER")]

    call, replies = await converse(script)
    assert replies == ["200 result=1", "HANGUP", DEAD]
    assert call.hung_up_by == "app"


@pytest.mark.asyncio
async def test_the_server_closing_ends_a_command_that_would_never_end() -> None:
    async def script(server: Server) -> None:
        server.writer.write(b"WAIT FOR DIGIT -1\n")
        await server.writer.drain()

    call, _ = await converse(script)
    assert call.commands == [(0.0, "WAIT FOR DIGIT -1")]
    assert call.replies == []
    assert call.closed_by == "server"


# -- dialplan applications -------------------------------------------------------------


@pytest.mark.asyncio
async def test_exec_runs_known_applications_and_refuses_others() -> None:
    async def script(server: Server) -> list[tuple[str, float]]:
        return [
            (await server.send("EXEC Frobnicate x"), server.t()),
            (await server.send("EXEC Playback welcome&nothere"), server.t()),
            (await server.send("GET VARIABLE PLAYBACKSTATUS"), server.t()),
            (await server.send("EXEC MusicOnHold default,10"), server.t()),
            (await server.send("EXEC Wait 1.5"), server.t()),
            (await server.send("EXEC Goto other,s,1"), server.t()),
        ]

    call, replies = await converse(
        script, peer={"durations": {"welcome": 3.0}, "default_prompt": None}
    )
    assert replies == [
        ("200 result=-2", 0.0),
        ("200 result=0", 3.0),
        ("200 result=1 (FAILED)", 3.0),
        ("200 result=0", 13.0),
        ("200 result=0", 14.5),
        ("200 result=0", 14.5),
    ]
    assert call.answered  # Playback answers the channel
    assert call.moh == [(3.0, "default"), (13.0, None)]
    assert (call.context, call.extension, call.priority) == ("other", "s", 1)


@pytest.mark.asyncio
async def test_dial_calls_all_targets_at_once_and_the_first_to_answer_takes_it() -> None:
    async def script(server: Server) -> list[str]:
        replies = [await server.send("EXEC Dial PJSIP/101&PJSIP/102,30,g")]
        assert server.t() == 23.0
        for name in (
            "DIALSTATUS",
            "DIALEDPEERNUMBER",
            "DIALEDPEERNAME",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
        ):
            replies.append(await server.send(f"GET VARIABLE {name}"))
        replies.append(await server.send("CHANNEL STATUS"))
        return replies

    endpoints = {
        "PJSIP/101": EndpointScript("busy"),
        "PJSIP/102": EndpointScript("answer", after=3.0, hangup_after=20.0),
    }
    call, replies = await converse(script, peer={"endpoints": endpoints})
    assert replies == [
        "200 result=0",
        "200 result=1 (ANSWER)",
        "200 result=1 (102)",
        "200 result=1 (PJSIP/102-00000003)",
        "200 result=1 (23)",
        "200 result=1 (23000)",
        "200 result=1 (20)",  # the caller was answered by the dial, at 3 s
        "200 result=1 (20000)",
        "200 result=6",
    ]
    assert call.dials == [
        DialRecord(
            t_start=0.0,
            targets=("PJSIP/101", "PJSIP/102"),
            timeout=30.0,
            options="g",
            status="ANSWER",
            answered_by="PJSIP/102",
            t_end=23.0,
            t_answer=3.0,
        )
    ]


@pytest.mark.asyncio
async def test_dial_gives_noanswer_after_exactly_its_timeout() -> None:
    async def script(server: Server) -> list[str]:
        replies = [await server.send("EXEC Dial PJSIP/101&PJSIP/102,20,m")]
        assert server.t() == 20.0
        for name in ("DIALSTATUS", "DIALEDTIME", "DIALEDPEERNAME", "RINGTIME"):
            replies.append(await server.send(f"GET VARIABLE {name}"))
        return replies

    endpoints = {
        "PJSIP/101": EndpointScript("answer", after=25.0),
        "PJSIP/102": EndpointScript("noanswer"),
    }
    call, replies = await converse(script, peer={"endpoints": endpoints})
    assert replies == [
        "200 result=0",
        "200 result=1 (NOANSWER)",
        "200 result=1 ()",  # only an answered call's end sets it; Dial resets it first
        "200 result=1 ()",
        "200 result=1 (0)",
    ]
    assert call.moh == [(0.0, "default"), (20.0, None)]
    assert call.dials[0].status == "NOANSWER"
    assert call.dials[0].t_end == 20.0


@pytest.mark.asyncio
async def test_dial_to_phones_that_all_fail_ends_at_once() -> None:
    async def script(server: Server) -> list[str]:
        replies: list[str] = []
        for targets in ("PJSIP/101&PJSIP/102", "PJSIP/102&PJSIP/103", "PJSIP/102"):
            replies.append(await server.send(f"EXEC Dial {targets},30"))
            replies.append(await server.send("GET VARIABLE DIALSTATUS"))
        assert server.t() == 0.0
        return replies

    endpoints = {
        "PJSIP/101": EndpointScript("busy"),
        "PJSIP/102": EndpointScript("offline"),
        "PJSIP/103": EndpointScript("congestion"),
    }
    call, replies = await converse(script, peer={"endpoints": endpoints})
    assert replies == [
        "200 result=0",
        "200 result=1 (BUSY)",
        "200 result=0",
        "200 result=1 (CONGESTION)",
        "200 result=0",
        "200 result=1 (CHANUNAVAIL)",
    ]
    assert [d.status for d in call.dials] == ["BUSY", "CONGESTION", "CHANUNAVAIL"]


@pytest.mark.asyncio
async def test_the_caller_hanging_up_while_it_rings_cancels_the_dial() -> None:
    async def script(server: Server) -> list[str]:
        replies = [await server.send("EXEC Dial PJSIP/101,,m(sales)"), await server.line()]
        assert server.t() == 5.0
        replies.append(await server.send("GET VARIABLE DIALSTATUS"))
        return replies

    endpoints = {"PJSIP/101": EndpointScript("noanswer")}
    call, replies = await converse(
        script, caller=CallerScript(hangup_after=5.0), peer={"endpoints": endpoints}
    )
    assert replies == ["200 result=-1", "HANGUP", "200 result=1 (CANCEL)"]
    assert call.moh == [(0.0, "sales"), (5.0, None)]
    assert call.dials[0].timeout is None
    assert call.dials[0].moh == "sales"
    assert call.hung_up_by == "caller"


@pytest.mark.asyncio
async def test_the_caller_hanging_up_during_the_conversation_ends_dial_with_minus_one() -> None:
    async def script(server: Server) -> list[str]:
        replies = [await server.send("ANSWER")]
        replies += [await server.send("EXEC Dial PJSIP/101,30,g"), await server.line()]
        assert server.t() == 10.0
        for name in ("DIALSTATUS", "DIALEDTIME", "ANSWEREDTIME"):
            replies.append(await server.send(f"GET VARIABLE {name}"))
        return replies

    call, replies = await converse(script, caller=CallerScript(hangup_after=10.0))
    assert replies == [
        "200 result=0",
        "200 result=-1",
        "HANGUP",
        "200 result=1 (ANSWER)",
        "200 result=1 (10)",
        "200 result=1 (10)",  # measured on the caller's channel, up since its ANSWER
    ]
    assert call.dials[0].answered_by == "PJSIP/101"  # the default: answers after 2 s
    assert call.dials[0].t_answer == 2.0


@pytest.mark.asyncio
async def test_the_virtual_clock_ends_where_the_commands_took_it() -> None:
    async def script(server: Server) -> None:
        for command in (
            "ANSWER",
            'STREAM FILE welcome ""',
            "WAIT FOR DIGIT 2000",
            "EXEC Dial PJSIP/101,30,g",
        ):
            await server.send(command)

    clock = VirtualClock(start=START)
    call, _ = await converse(script, clock=clock, peer={"durations": {"welcome": 3.0}})
    assert [t for t, _ in call.commands] == [0.0, 0.0, 3.0, 5.0]
    assert call.dials[0].t_end == 67.0  # rings 2 s, talks the default 60 s
    assert call.duration == 67.0
    assert clock.now() == START + 67.0
