"""The FastAGI protocol layer, against a fake Asterisk over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agi_server.protocol import (
    AgiClosed,
    AgiCommandError,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiLimits,
    AgiProtocolError,
    AgiResponse,
    AgiSession,
    AgiTimeout,
    parse_environment,
    parse_response,
    quote_arg,
)
from agi_server.server import AgiServer, AgiServerStats
from asterisk_sim.agi import parse_args
from tests import agi_abuse as abuse

LIMITS = AgiLimits(header_timeout=0.3, idle_timeout=2.0, max_sessions=64)

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- Asterisk's parse_args (res_agi.c), as the Asterisk test double ports it -----------


def test_the_parse_args_port_splits_like_asterisk() -> None:
    """The port reproduces Asterisk on the command shapes we send."""
    assert parse_args('STREAM FILE welcome "0123456789*#"') == [
        "STREAM",
        "FILE",
        "welcome",
        "0123456789*#",
    ]
    assert parse_args('SET VARIABLE x "a \\"b\\" \\\\c"') == [
        "SET",
        "VARIABLE",
        "x",
        'a "b" \\c',
    ]
    assert parse_args('EXEC  Dial\t"" ab"c d"e') == ["EXEC", "Dial", "", "abc de"]


# --- quote_arg --------------------------------------------------------------------------------

arg_text = st.one_of(
    st.text(alphabet=st.sampled_from(' \t"\\ab\u00e9'), max_size=12),
    st.text(alphabet=st.characters(blacklist_characters="\n\r\x00"), max_size=30),
)


@HYPOTHESIS
@given(value=arg_text)
def test_a_quoted_argument_comes_back_whole_from_asterisk(value: str) -> None:
    assert parse_args(quote_arg(value)) == [value]


@HYPOTHESIS
@given(words=st.lists(arg_text, min_size=1, max_size=8))
def test_quoted_words_on_one_line_come_back_as_the_same_words(words: list[str]) -> None:
    assert parse_args(" ".join(quote_arg(word) for word in words)) == words


def test_quote_arg_leaves_plain_words_alone_and_quotes_the_rest() -> None:
    assert quote_arg("ANSWER") == "ANSWER"
    assert quote_arg("PJSIP/101&PJSIP/102,20,m(default)") == "PJSIP/101&PJSIP/102,20,m(default)"
    assert quote_arg("") == '""'
    assert quote_arg("a b") == '"a b"'
    assert quote_arg('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'


@pytest.mark.parametrize("bad", ["Alice\nHANGUP", "Alice\r", "nul\x00byte", "\n"])
def test_quote_arg_refuses_what_would_end_the_command_line(bad: str) -> None:
    """A caller-ID name can never smuggle a second command onto the line."""
    with pytest.raises(ValueError, match="cannot hold"):
        quote_arg(bad)


# --- parse_environment ------------------------------------------------------------------------

REAL_BLOCK = [
    "agi_network: yes",
    "agi_network_script: Scenario?office=main&x=1&x=2",
    "agi_request: agi://10.0.0.1:4573/Scenario?office=main&x=1&x=2",
    "agi_channel: PJSIP/trunk-0000002a",
    "agi_language: fr",
    "agi_type: PJSIP",
    "agi_uniqueid: 1712000000.42",
    "agi_version: 22.1.0",
    "agi_callerid: unknown",
    "agi_calleridname: Dupont: Jean (mobile)",
    "agi_callingpres: 0",
    "agi_callingani2: 0",
    "agi_callington: 0",
    "agi_callingtns: 0",
    "agi_dnid: unknown",
    "agi_rdnis: unknown",
    "agi_context: from-trunk",
    "agi_extension: 0123456789",
    "agi_priority: 3",
    "agi_enhanced: 0.0",
    "agi_accountcode: ",
    "agi_threadid: 139689736754944",
    "agi_arg_1: first",
    "agi_arg_2: a: b",
    "agi_arg_10: tenth",
    "agi_arg_3: ",
]


def test_an_asterisk_environment_block_parses_into_its_fields() -> None:
    env = parse_environment(REAL_BLOCK)
    assert env.request == "agi://10.0.0.1:4573/Scenario?office=main&x=1&x=2"
    assert env.script == "scenario"
    assert dict(env.query) == {"office": "main", "x": "1"}
    assert env.channel == "PJSIP/trunk-0000002a"
    assert env.uniqueid == "1712000000.42"
    assert env.callerid == "unknown"
    assert env.calleridname == "Dupont: Jean (mobile)"
    assert env.dnid == "unknown"
    assert env.extension == "0123456789"
    assert env.context == "from-trunk"
    assert env.priority == 3
    assert env.language == "fr"
    assert env.values["network"] == "yes"
    assert env.values["accountcode"] == ""
    assert env.args == ("first", "a: b", "", "tenth")


def test_an_environment_without_agi_network_lines_is_accepted() -> None:
    env = parse_environment(["agi_request: agi://h/ivr", "agi_priority: x"])
    assert env.script == "ivr"
    assert env.priority == 0
    assert env.callerid == "unknown"
    assert dict(env.query) == {}


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([], "no agi_request"),
        (["agi_channel: PJSIP/1"], "no agi_request"),
        (["agi_request: agi://h/x", "HANGUP"], "line 2"),
        (["agi_request: agi://h/x", "agi_Bad: 1"], "line 2"),
        (["agi_request: agi://h/x", "channel: PJSIP/1"], "line 2"),
        (["agi_request: agi://h/x", "agi_request: agi://h/y"], "repeats"),
        (["agi_request: agi://[::1/x"], "not a URL"),
    ],
)
def test_a_malformed_environment_is_refused_with_a_reason(lines: list[str], reason: str) -> None:
    with pytest.raises(AgiProtocolError, match=reason):
        parse_environment(lines)


@HYPOTHESIS
@given(lines=st.lists(st.text(max_size=40), max_size=8))
def test_parse_environment_raises_nothing_but_protocol_errors(lines: list[str]) -> None:
    try:
        env = parse_environment(lines)
    except AgiProtocolError:
        return
    assert isinstance(env.script, str)
    assert isinstance(env.priority, int)
    assert isinstance(dict(env.query), dict)


# --- parse_response ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "result", "data", "endpos", "extra"),
    [
        ("200 result=0", 0, "", None, {}),
        ("200 result=1 (the value)", 1, "the value", None, {}),
        ("200 result=0 endpos=12345", 0, "", 12345, {"endpos": "12345"}),
        ("200 result=49 endpos=8000", 49, "", 8000, {"endpos": "8000"}),
        ("200 result=-1 endpos=0", -1, "", 0, {"endpos": "0"}),
        ("200 result=0 (timeout) endpos=800", 0, "timeout", 800, {"endpos": "800"}),
        (
            "200 result=1 (digit) digit=5 endpos=10",
            1,
            "digit",
            10,
            {"digit": "5", "endpos": "10"},
        ),
        ('200 result=1 ("Jean (Work)" <101>)', 1, '"Jean (Work)" <101>', None, {}),
        ("200 result=1 (a) endpos=3)", 1, "a) endpos=3", None, {}),
        ("200 result=1 ()", 1, "", None, {}),
        ("200 result=1 (x)\r\n", 1, "x", None, {}),
    ],
)
def test_each_answer_shape_parses(
    line: str, result: int, data: str, endpos: int | None, extra: dict[str, str]
) -> None:
    answer = parse_response(line)
    assert (answer.code, answer.result, answer.data, answer.endpos) == (200, result, data, endpos)
    assert dict(answer.extra) == extra
    assert answer.line == line.rstrip("\r\n")


def test_get_data_digits_keep_their_text() -> None:
    """GET DATA answers digits, or nothing on timeout: `result_text` keeps them exactly."""
    assert parse_response("200 result=0123").result_text == "0123"
    timed_out = parse_response("200 result= (timeout)")
    assert (timed_out.result, timed_out.result_text, timed_out.data) == (0, "", "timeout")
    assert parse_response("200 result=*9").result_text == "*9"


def test_free_words_after_the_result_are_kept_as_a_note() -> None:
    assert parse_response("200 result=-1 Gosub label not found").note == "Gosub label not found"
    speech = parse_response("200 result=1 (speech) endpos=5 results=1 text0=hello world")
    assert (speech.data, speech.endpos, speech.note) == ("speech", 5, "world")
    assert speech.extra["text0"] == "hello"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "200",
        "200 result",
        "200 result=xyz",
        "200 result=1x",
        "200 result=1 (unterminated",
        "200 result=1 (x)y",
        "200 result=1 endpos=x",
        "2000 result=1",
        "510 Invalid or unknown command",
        "HANGUP",
        "\x00\xff garbage",
    ],
)
def test_a_line_that_is_not_an_answer_is_refused(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_response(line)


@HYPOTHESIS
@given(line=st.one_of(st.text(max_size=60), st.text(max_size=40).map("200 result=".__add__)))
def test_parse_response_raises_nothing_but_protocol_errors(line: str) -> None:
    try:
        answer = parse_response(line)
    except AgiProtocolError:
        return
    assert answer.code == int(line[:3])


# --- sessions against a scripted Asterisk -----------------------------------------------------

DEMO_COMMANDS: list[tuple[str, ...]] = [
    ("ANSWER",),
    ("STREAM", "FILE", "welcome", "0123456789*#"),
    ("GET", "VARIABLE", "X"),
    ("SET", "VARIABLE", "x", "a b"),
]
DEMO_LINES = [
    b"ANSWER\n",
    b"STREAM FILE welcome 0123456789*#\n",
    b"GET VARIABLE X\n",
    b'SET VARIABLE x "a b"\n',
]
DEMO_ANSWERS = [
    b"200 result=0\n",
    b"200 result=0 endpos=12345\n",
    b"200 result=1 (the value)\n",
    b"200 result=1\n",
]


@dataclass
class SessionLog:
    """What one handler run saw."""

    env: AgiEnvironment | None = None
    answers: list[AgiResponse] = field(default_factory=list)
    command_errors: list[AgiCommandError] = field(default_factory=list)
    ended_by: AgiError | None = None
    unexpected: list[BaseException] = field(default_factory=list)
    hung_up: bool = False


class DemoHandler:
    """Issues the demo commands, keeping going past refused ones; records everything."""

    def __init__(self, commands: list[tuple[str, ...]] | None = None) -> None:
        self.commands = DEMO_COMMANDS if commands is None else commands
        self.sessions: list[SessionLog] = []

    async def __call__(self, session: AgiSession) -> None:
        log = SessionLog(env=session.env)
        self.sessions.append(log)
        try:
            for words in self.commands:
                try:
                    log.answers.append(await session.command(*words))
                except AgiCommandError as exc:
                    log.command_errors.append(exc)
        except AgiError as exc:
            log.ended_by = exc
            raise
        except Exception as exc:
            log.unexpected.append(exc)
            raise
        finally:
            log.hung_up = session.hung_up


SessionBody = Callable[[AgiSession], Awaitable[None]]


async def run_call(
    body: SessionBody,
    answers: list[bytes | None],
    *,
    env: bytes | None = None,
    limits: AgiLimits = LIMITS,
) -> tuple[abuse.CallRecord, AgiServerStats]:
    """Serve one scripted call with `body` as the handler; the call record and final counters."""
    async with abuse.running_server(body, limits) as (server, address):
        call = await abuse.scripted_call(address, env or abuse.env_block(), answers)
        stats = await abuse.wait_stats(server, lambda s: s.ended == 1)
    return call, stats


@pytest.mark.asyncio
async def test_a_call_sends_each_command_as_one_line_and_parses_the_answers() -> None:
    handler = DemoHandler()
    env = abuse.env_block(args=["sales", "x y"], calleridname="Dupont: Jean")
    call, stats = await run_call(handler, [*DEMO_ANSWERS], env=env)
    assert call.commands == DEMO_LINES
    assert call.closed
    assert stats.completed == 1
    (log,) = handler.sessions
    assert log.env is not None
    assert (log.env.script, log.env.calleridname, log.env.args) == (
        "scenario",
        "Dupont: Jean",
        ("sales", "x y"),
    )
    assert [(a.result, a.data, a.endpos) for a in log.answers] == [
        (0, "", None),
        (0, "", 12345),
        (1, "the value", None),
        (1, "", None),
    ]
    assert not log.hung_up


@pytest.mark.asyncio
async def test_crlf_lines_are_accepted_in_the_environment_and_answers() -> None:
    handler = DemoHandler()
    answers: list[bytes | None] = [a.replace(b"\n", b"\r\n") for a in DEMO_ANSWERS]
    call, stats = await run_call(handler, answers, env=abuse.env_block(newline=b"\r\n"))
    assert stats.completed == 1
    assert handler.sessions[0].answers[2].data == "the value"
    assert call.commands == DEMO_LINES


@pytest.mark.asyncio
async def test_a_hangup_notice_before_an_answer_is_skipped_and_marks_the_channel_dead() -> None:
    seen: list[object] = []

    async def body(session: AgiSession) -> None:
        seen.append(await session.command("STREAM", "FILE", "welcome", ""))
        seen.append(session.hung_up)
        with pytest.raises(AgiHangup):
            await session.command("WAIT", "FOR", "DIGIT", "1000")
        seen.append((await session.command("GET", "VARIABLE", "DIALSTATUS")).data)

    call, stats = await run_call(
        body,
        [
            b"HANGUP\n200 result=-1 endpos=0\n",
            b"511 Command Not Permitted on a dead channel or intercept routine\n",
            b"200 result=1 (NOANSWER)\n",
        ],
    )
    assert stats.completed == 1
    assert call.commands == [
        b'STREAM FILE welcome ""\n',
        b"WAIT FOR DIGIT 1000\n",
        b"GET VARIABLE DIALSTATUS\n",
    ]
    first = seen[0]
    assert isinstance(first, AgiResponse)
    assert (first.result, first.endpos) == (-1, 0)
    assert seen[1:] == [True, "NOANSWER"]


@pytest.mark.asyncio
async def test_a_511_raises_agi_hangup_and_sets_hung_up() -> None:
    seen: list[bool] = []

    async def body(session: AgiSession) -> None:
        try:
            await session.command("ANSWER")
        finally:
            seen.append(session.hung_up)

    _, stats = await run_call(body, [b"511 Command Not Permitted on a dead channel\n"])
    assert seen == [True]
    assert stats.completed == 1  # a hang-up is how calls end


@pytest.mark.asyncio
async def test_a_multiline_usage_error_is_consumed_and_the_session_goes_on() -> None:
    seen: list[object] = []

    async def body(session: AgiSession) -> None:
        with pytest.raises(AgiCommandError) as refused:
            await session.command("GET", "DATA")
        seen.append((refused.value.code, refused.value.usage))
        seen.append((await session.command("ANSWER")).result)

    usage = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
        b"\n"
        b"520 End of proper usage.\n"
    )
    call, stats = await run_call(body, [usage, b"200 result=0\n"])
    assert stats.completed == 1
    assert call.commands == [b"GET DATA\n", b"ANSWER\n"]
    assert seen == [
        (520, " Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"),
        0,
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (b"510 Invalid or unknown command\n", 510),
        (b"520 Invalid command syntax.  Proper usage not available.\n", 520),
        (b"503 result=-2 Memory allocation failure\n", 503),
    ],
)
async def test_a_refused_command_raises_and_the_next_one_works(answer: bytes, code: int) -> None:
    handler = DemoHandler([("FROB",), ("ANSWER",)])
    _, stats = await run_call(handler, [answer, b"200 result=0\n"])
    assert stats.completed == 1
    (log,) = handler.sessions
    assert [e.code for e in log.command_errors] == [code]
    assert [a.result for a in log.answers] == [0]


@pytest.mark.asyncio
async def test_a_trying_line_before_the_answer_is_skipped() -> None:
    handler = DemoHandler([("GOSUB", "sub", "s", "1")])
    _, stats = await run_call(handler, [b"100 result=0 Trying...\n200 result=0 Gosub complete\n"])
    assert stats.completed == 1
    assert handler.sessions[0].answers[0].note == "Gosub complete"


@pytest.mark.asyncio
async def test_no_answer_in_time_raises_agi_timeout_and_the_session_is_unusable() -> None:
    seen: list[str] = []

    async def body(session: AgiSession) -> None:
        with pytest.raises(AgiTimeout):
            await session.command("WAIT", "FOR", "DIGIT", "-1", timeout=0.1)
        with pytest.raises(AgiClosed):
            await session.command("ANSWER")
        seen.append("checked")

    call, stats = await run_call(body, [None, None])
    assert seen == ["checked"]
    assert call.commands == [b"WAIT FOR DIGIT -1\n"]  # nothing sent after the timeout
    assert call.closed
    assert stats.completed == 1


@pytest.mark.asyncio
async def test_an_argument_with_a_newline_is_refused_before_anything_is_sent() -> None:
    async def body(session: AgiSession) -> None:
        with pytest.raises(ValueError, match="cannot hold"):
            await session.command("SET", "VARIABLE", "CALLERID(name)", "Eve\nHANGUP")
        with pytest.raises(ValueError, match="limited to"):
            await session.command("VERBOSE", "x" * 9000)
        assert session.commands_sent == 0
        await session.command("ANSWER")

    call, stats = await run_call(body, [b"200 result=0\n"])
    assert stats.completed == 1
    assert call.commands == [b"ANSWER\n"]


@pytest.mark.asyncio
async def test_commands_from_two_tasks_are_sent_one_at_a_time() -> None:
    results: list[str] = []

    async def body(session: AgiSession) -> None:
        first, second = await asyncio.gather(
            session.command("GET", "VARIABLE", "A"), session.command("GET", "VARIABLE", "B")
        )
        results.extend([first.data, second.data])

    call, stats = await run_call(body, [b"200 result=1 (a)\n", b"200 result=1 (b)\n"])
    assert stats.completed == 1
    assert call.commands == [b"GET VARIABLE A\n", b"GET VARIABLE B\n"]
    assert results == ["a", "b"]


@pytest.mark.asyncio
async def test_an_answer_longer_than_max_line_ends_the_session_as_a_protocol_error() -> None:
    handler = DemoHandler()
    limits = AgiLimits(max_line=64, header_timeout=0.3, idle_timeout=2.0)
    env = abuse.env_block("agi://h/x", network=False)
    _, stats = await run_call(
        handler, [b"200 result=1 (" + b"v" * 100 + b")\n"], env=env, limits=limits
    )
    assert stats.protocol_errors == 1
    assert isinstance(handler.sessions[0].ended_by, AgiProtocolError)


@pytest.mark.asyncio
async def test_an_end_of_stream_mid_answer_ends_the_session_cleanly() -> None:
    handler = DemoHandler()
    _, stats = await run_call(handler, [b"200 res"])
    assert stats.closed_early == 1
    assert isinstance(handler.sessions[0].ended_by, AgiClosed)


# --- abuse: a hostile peer costs its own connection and nothing else -------------------------


async def assert_still_serves(
    server: AgiServer, address: abuse.Address, handler: DemoHandler
) -> None:
    """A well-behaved call on the same server completes normally."""
    before = server.stats
    call = await abuse.good_call(address)
    assert call.commands == DEMO_LINES
    assert call.closed
    after = await abuse.wait_stats(server, lambda s: s.completed > before.completed)
    assert after.handler_errors == 0
    assert len(handler.sessions[-1].answers) == 4


ANSWER_SOUP = [
    b"HANGUP",
    b"200 result=0",
    b"200 result=1 (v) endpos=3",
    b"200 result=",
    b"200 result=1 (",
    b"100 result=0 Trying...",
    b"510 Invalid or unknown command",
    b"511 Command Not Permitted on a dead channel",
    b"520-Invalid command syntax.  Proper usage follows:",
    b"520 End of proper usage.",
    b"520 Invalid command syntax.  Proper usage not available.",
    b"agi_request: agi://h/x",
    b"",
    b"\xff\xfe\x00",
]

garbage_streams = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=200).map(abuse.env_block().__add__),
    st.lists(st.one_of(st.sampled_from(ANSWER_SOUP), st.binary(max_size=20)), max_size=12).map(
        lambda lines: abuse.env_block() + b"\n".join(lines)
    ),
)


@HYPOTHESIS
@given(stream=garbage_streams)
def test_random_bytes_only_ever_end_a_session_with_an_agi_error(stream: bytes) -> None:
    """Garbage as environment or answers: only AgiErrors, the socket closed, others served."""

    async def case() -> None:
        handler = DemoHandler()
        async with abuse.running_server(handler, LIMITS) as (server, address):
            end = await abuse.send_then_read(address, stream)
            assert end.closed
            stats = await abuse.wait_stats(server, lambda s: s.ended == 1)
            assert stats.handler_errors == 0
            assert all(not log.unexpected for log in handler.sessions)
            await assert_still_serves(server, address, handler)

    abuse.run_isolated(case)


def valid_stream() -> bytes:
    return abuse.env_block() + b"".join(DEMO_ANSWERS)


@pytest.mark.asyncio
async def test_a_valid_exchange_cut_at_any_byte_ends_cleanly() -> None:
    stream = valid_stream()
    handler = DemoHandler()
    async with abuse.running_server(handler, LIMITS) as (server, address):
        for start in range(0, len(stream) + 1, 16):
            cuts = range(start, min(start + 16, len(stream) + 1))
            ends = await asyncio.gather(
                *(abuse.send_then_read(address, stream[:cut]) for cut in cuts)
            )
            assert all(end.closed for end in ends)
            for end in ends:
                assert DEMO_LINES[: end.received.count(b"\n")] == end.received.splitlines(True)
        stats = await abuse.wait_stats(server, lambda s: s.ended == len(stream) + 1)
        assert (stats.completed, stats.closed_early) == (1, len(stream))
        assert (stats.protocol_errors, stats.handler_errors) == (0, 0)
        await assert_still_serves(server, address, handler)


def ended_exactly(count: int, stats: AgiServerStats) -> bool:
    return stats.ended == count


def hangup_insertions() -> list[tuple[int, bytes]]:
    """(answer lines before the notice, stream) for a HANGUP at every line boundary."""
    lines = valid_stream().splitlines(keepends=True)
    env_lines = abuse.env_block().count(b"\n")
    return [
        (at - env_lines, b"".join([*lines[:at], b"HANGUP\n", *lines[at:]]))
        for at in range(len(lines) + 1)
    ]


@pytest.mark.asyncio
async def test_a_hangup_notice_at_any_line_boundary_ends_cleanly() -> None:
    """Inside the environment it is garbage; between answers it marks the call dead."""
    insertions = hangup_insertions()
    handler = DemoHandler()
    async with abuse.running_server(handler, LIMITS) as (server, address):
        for number, (answers_before, stream) in enumerate(insertions, start=1):
            sessions_before = len(handler.sessions)
            end = await abuse.send_then_read(address, stream)
            assert end.closed
            stats = await abuse.wait_stats(server, functools.partial(ended_exactly, number))
            if answers_before < 0:
                assert len(handler.sessions) == sessions_before  # refused at the environment
                continue
            log = handler.sessions[-1]
            assert [a.line for a in log.answers] == [a.decode().strip() for a in DEMO_ANSWERS]
            assert log.hung_up == (answers_before < len(DEMO_ANSWERS))
        stats = await abuse.wait_stats(server, lambda s: s.ended == len(insertions))
        env_boundaries = sum(1 for before, _ in insertions if before < 0)
        assert stats.protocol_errors == env_boundaries
        assert stats.completed == len(insertions) - env_boundaries
        assert stats.handler_errors == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "prefix",
    [b"", b"agi_network: yes\nagi_request: agi://h/", abuse.env_block() + b"200 result=1 ("],
    ids=["garbage", "environment", "answer"],
)
async def test_a_10_mb_line_is_refused_without_being_buffered(prefix: bytes) -> None:
    handler = DemoHandler()
    async with abuse.running_server(handler, AgiLimits(header_timeout=5.0)) as (server, address):
        tracemalloc.start()
        try:
            end = await abuse.flood_peer(address, prefix=prefix)
            stats = await abuse.wait_stats(server, lambda s: s.ended == 1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert end.closed
        assert stats.protocol_errors == 1
        assert peak < 3 * 1024 * 1024
        await assert_still_serves(server, address, handler)


@pytest.mark.asyncio
async def test_a_silent_peer_is_closed_after_header_timeout_without_spinning() -> None:
    handler = DemoHandler()
    limits = AgiLimits(header_timeout=0.5)
    async with abuse.running_server(handler, limits) as (server, address):
        wall, cpu = time.perf_counter(), time.process_time()
        ends = await asyncio.gather(*(abuse.silent_peer(address) for _ in range(10)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert all(end.closed for end in ends)
        assert all(0.45 <= end.elapsed < 3.0 for end in ends)
        assert cpu < 0.3 * wall, f"{cpu:.3f} s of CPU in {wall:.3f} s"
        stats = await abuse.wait_stats(server, lambda s: s.ended == 10)
        assert stats.protocol_errors == 10
        await assert_still_serves(server, address, handler)


@pytest.mark.asyncio
async def test_good_calls_are_all_served_while_abusive_peers_hammer_the_server() -> None:
    handler = DemoHandler()
    stream = valid_stream()
    async with abuse.running_server(handler, LIMITS) as (server, address):
        abusers = [
            *(abuse.silent_peer(address) for _ in range(4)),
            *(abuse.send_then_read(address, b"\xff" * 500 + b"\n\n") for _ in range(4)),
            *(abuse.send_then_read(address, stream[: len(stream) // 2]) for _ in range(4)),
            *(abuse.flood_peer(address, total=2 * 1024 * 1024) for _ in range(2)),
        ]
        good = [abuse.good_call(address) for _ in range(10)]
        results = await asyncio.gather(*abusers, *good)
        calls = results[len(abusers) :]
        assert all(isinstance(c, abuse.CallRecord) and c.commands == DEMO_LINES for c in calls)
        stats = await abuse.wait_stats(server, lambda s: s.ended == len(results))
        assert stats.completed == 10
        assert stats.handler_errors == 0


# --- the server -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_server_listens_on_loopback_by_default() -> None:
    server = AgiServer(DemoHandler())
    host, port = await server.start(port=0)
    try:
        assert host == "127.0.0.1"
        assert port > 0
    finally:
        await server.close()


class BlockingHandler:
    """Answers, then waits until released (or cancelled)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0
        self.changed = asyncio.Condition()

    async def __call__(self, session: AgiSession) -> None:
        await session.command("ANSWER")
        async with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        await self.release.wait()

    async def wait_for_waiting(self, count: int) -> None:
        async with asyncio.timeout(5.0), self.changed:
            await self.changed.wait_for(lambda: self.waiting >= count)


@pytest.mark.asyncio
async def test_connections_over_max_sessions_are_closed_at_once_and_counted() -> None:
    handler = BlockingHandler()
    limits = AgiLimits(header_timeout=0.3, max_sessions=2)
    async with abuse.running_server(handler, limits) as (server, address):
        first = asyncio.create_task(abuse.good_call(address))
        second = asyncio.create_task(abuse.good_call(address))
        await handler.wait_for_waiting(2)
        extra = await abuse.send_then_read(address, abuse.env_block(), half_close=False)
        assert extra.closed
        assert extra.received == b""
        assert extra.elapsed < 0.3 * 0.5  # well before any timeout could have closed it
        handler.release.set()
        calls = await asyncio.gather(first, second)
        assert [c.commands for c in calls] == [[b"ANSWER\n"], [b"ANSWER\n"]]
        stats = await abuse.wait_stats(server, lambda s: s.completed == 2)
        assert (stats.accepted, stats.rejected) == (2, 1)


@pytest.mark.asyncio
async def test_close_ends_running_sessions_and_returns() -> None:
    handler = BlockingHandler()
    server = AgiServer(handler, LIMITS)
    address = await server.start(port=0)
    calls = [asyncio.create_task(abuse.good_call(address)) for _ in range(3)]
    await handler.wait_for_waiting(3)
    async with asyncio.timeout(5.0):
        await server.close()
    stats = server.stats
    assert (stats.active, stats.cancelled) == (0, 3)
    done = await asyncio.gather(*calls)
    assert all(c.closed for c in done)


@pytest.mark.asyncio
async def test_a_handler_bug_is_counted_and_the_server_keeps_serving() -> None:
    broken = True

    async def handler(session: AgiSession) -> None:
        await session.command("ANSWER")
        if broken:
            raise RuntimeError("bug in a scenario")

    async with abuse.running_server(handler, LIMITS) as (server, address):
        call = await abuse.good_call(address)
        assert call.closed
        stats = await abuse.wait_stats(server, lambda s: s.ended == 1)
        assert stats.handler_errors == 1
        broken = False
        await abuse.good_call(address)
        stats = await abuse.wait_stats(server, lambda s: s.ended == 2)
        assert stats.completed == 1


@pytest.mark.asyncio
async def test_a_stopped_serve_forever_closes_the_server() -> None:
    server = AgiServer(DemoHandler(), LIMITS)
    address = await server.start(port=0)
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve_forever(stop))
    call = await abuse.good_call(address)
    assert call.commands == DEMO_LINES
    stop.set()
    async with asyncio.timeout(5.0):
        await serving
    with pytest.raises(OSError):  # noqa: PT011 - any refusal to connect will do
        await abuse.connect(address)
