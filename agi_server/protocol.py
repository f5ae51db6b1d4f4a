"""The FastAGI wire protocol: the environment block, command lines and their answers.

Shaped by Asterisk's res/res_agi.c (Asterisk 22). Asterisk connects, sends its
`agi_*: value` environment ended by an empty line, then answers each command
line we send with one line (`200 result=...`), or a multi-line usage error.
A `HANGUP` line may arrive on its own between answers once the channel is gone.

Everything here reads with a bound: a line longer than `AgiLimits.max_line` is
refused after reading at most about that much, and an end of stream ends the
session at once (no read loop retries on EOF).
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Asterisk's command buffer (AGI_BUF_LEN). Its fgets loop stops at len-1 of
# sizeof(buf)-1 bytes, so a command line, newline included, must fit in 8190.
AGI_BUF_LEN = 8192
MAX_COMMAND_BYTES = AGI_BUF_LEN - 2
# parse_args keeps at most MAX_ARGS - 1 words and silently drops the rest.
MAX_ARGS = 128

HANGUP_NOTICE = "HANGUP"


class AgiError(Exception):
    """Base of every error of an AGI session."""

    error_id = "agi.error"


class AgiProtocolError(AgiError):
    """The peer sent something that is not AGI: garbage, a line too long, a bad answer."""

    error_id = "agi.protocol"


class AgiClosed(AgiError):
    """The stream ended (or the session was closed or broken before)."""

    error_id = "agi.closed"


class AgiTimeout(AgiError):
    """No environment or no answer in time."""

    error_id = "agi.timeout"


class AgiHangup(AgiError):
    """Asterisk answered 511: the command is not permitted on a dead channel."""

    error_id = "agi.hangup"


class AgiCommandError(AgiError):
    """Asterisk refused the command: 510 (unknown), 520 (bad syntax) or another 5xx."""

    error_id = "agi.command"

    def __init__(self, code: int, text: str, usage: str = "") -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.usage = usage


@dataclass(frozen=True)
class AgiLimits:
    """What one peer may cost us.

    `header_timeout` never cuts a real Asterisk: res_agi.c waits for nothing
    between its connect and the environment.  `launch_netscript` writes
    `agi_network: yes` as soon as the connect completes (`handle_connection`
    spends up to MAX_AGI_CONNECT, 2000 ms, on the connect itself, before we
    ever see the connection), then `agi_exec_full` goes straight to `run_agi`,
    whose `setup_env` writes the rest a line at a time through `ast_agi_send`,
    that is `ast_carefulwrite(fd, ..., 100)`: 100 ms at most a line, and only
    if our receive buffer were full, which it is not while we read.  The block
    arrives within milliseconds and a round trip; 5 s is a long WAN's margin.

    A connection holds a session slot (`max_sessions`) only once its
    environment is in; until then it is one of at most `max_pending`, and of
    at most `max_pending_per_peer` from its IP address (the server closes the
    oldest beyond them), so peers that connect and never finish cannot take
    the slots of real calls.
    """

    max_line: int = 8192  # bytes of one line we accept (environment and answers)
    max_header_lines: int = 256  # environment lines; also extra lines around one answer
    header_timeout: float = 5.0  # seconds for the whole environment block from connect
    idle_timeout: float = 30.0  # default wait for one command's answer
    max_sessions: int = 2000  # sessions running at once (environment in, handler running)
    # connections still sending their environment: cheap (a socket, a line's buffer, at
    # most header_timeout), so room for any burst of calls; one address (a real
    # Asterisk is one) may hold half, and evictions take from the address holding most
    max_pending: int = 2000
    max_pending_per_peer: int = 1000


UNKNOWN = "unknown"  # what Asterisk sends for an absent caller ID, name or DNID


@dataclass(frozen=True)
class AgiEnvironment:
    """The `agi_*` block Asterisk sends on connect, keys without the `agi_` prefix.

    Values are kept raw: Asterisk's "unknown" stays "unknown", numbers are not
    normalised here.
    """

    values: Mapping[str, str]
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "args", tuple(self.args))

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    @property
    def request(self) -> str:
        return self.get("request")

    @property
    def script(self) -> str:
        """The request's path without slashes around it nor the query, lowercased."""
        try:
            path = urllib.parse.urlsplit(self.request).path
        except ValueError:
            return ""
        return urllib.parse.unquote(path, errors="replace").strip("/").lower()

    @property
    def query(self) -> Mapping[str, str]:
        """The request URL's query; the first value of a repeated key wins."""
        try:
            query = urllib.parse.urlsplit(self.request).query
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="replace")
        except ValueError:
            return MappingProxyType({})
        parsed: dict[str, str] = {}
        for key, value in pairs:
            parsed.setdefault(key, value)
        return MappingProxyType(parsed)

    @property
    def channel(self) -> str:
        return self.get("channel")

    @property
    def uniqueid(self) -> str:
        return self.get("uniqueid")

    @property
    def callerid(self) -> str:
        return self.get("callerid", UNKNOWN)

    @property
    def calleridname(self) -> str:
        return self.get("calleridname", UNKNOWN)

    @property
    def dnid(self) -> str:
        return self.get("dnid", UNKNOWN)

    @property
    def extension(self) -> str:
        return self.get("extension")

    @property
    def context(self) -> str:
        return self.get("context")

    @property
    def priority(self) -> int:
        raw = self.get("priority")
        return int(raw) if _PRIORITY_RE.fullmatch(raw) else 0

    @property
    def language(self) -> str:
        return self.get("language")

    @classmethod
    def parse(cls, lines: Iterable[str]) -> AgiEnvironment:
        return parse_environment(lines)


_PRIORITY_RE = re.compile(r"[0-9]{1,9}")
_ENV_LINE_RE = re.compile(r"agi_([a-z0-9_]+): ?(.*)", re.DOTALL)
_ARG_KEY_RE = re.compile(r"arg_([1-9][0-9]{0,3})")


def parse_environment(lines: Iterable[str]) -> AgiEnvironment:
    """Validate the environment lines (without the empty line that ends them)."""
    values: dict[str, str] = {}
    numbered: dict[int, str] = {}
    for index, line in enumerate(lines, start=1):
        match = _ENV_LINE_RE.fullmatch(line)
        if match is None:
            raise AgiProtocolError(f"environment line {index} is not 'agi_<key>: <value>'")
        key, value = match.group(1), match.group(2)
        if key in values:
            raise AgiProtocolError(f"environment line {index} repeats agi_{key}")
        values[key] = value
        arg = _ARG_KEY_RE.fullmatch(key)
        if arg is not None:
            numbered[int(arg.group(1))] = value
    if "request" not in values:
        raise AgiProtocolError("environment has no agi_request")
    try:
        urllib.parse.urlsplit(values["request"])
    except ValueError:
        raise AgiProtocolError("agi_request is not a URL") from None
    args = tuple(numbered[n] for n in sorted(numbered))
    return AgiEnvironment(values=values, args=args)


@dataclass(frozen=True)
class AgiResponse:
    """One `200 result=...` answer.

    `result_text` is the raw text after `result=`: GET DATA answers digits
    there (`result=0123`, `result=*9`, or nothing with `(timeout)`), which
    `result` (0 when not an integer) cannot keep. `note` holds free words
    after the result (`Gosub failed`).
    """

    code: int
    result: int
    data: str = ""
    endpos: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    line: str = ""
    result_text: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))


_RESPONSE_RE = re.compile(r"([0-9]{3}) result=(\S*)(.*)", re.DOTALL)
_INT_RE = re.compile(r"-?[0-9]{1,18}")
_DIGITS_RE = re.compile(r"[0-9*#A-Da-d]*")
_KV_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)")


def parse_response(line: str) -> AgiResponse:
    """Parse a `NNN result=<r>[ (<data>)][ key=value ...]` line; AgiProtocolError otherwise."""
    text = line.rstrip("\r\n").rstrip(" \t")
    match = _RESPONSE_RE.fullmatch(text)
    if match is None:
        raise AgiProtocolError("answer is not 'NNN result=...'")
    code, result_text, rest = int(match.group(1)), match.group(2), match.group(3)
    if _INT_RE.fullmatch(result_text):
        result = int(result_text)
    elif _DIGITS_RE.fullmatch(result_text):
        result = 0
    else:
        raise AgiProtocolError("answer has a result that is neither a number nor digits")
    data, tail = _split_data(rest)
    extra: dict[str, str] = {}
    note: list[str] = []
    for word in tail.split(" "):
        if not word:
            continue
        pair = _KV_RE.fullmatch(word)
        if pair is None:
            note.append(word)
        else:
            extra.setdefault(pair.group(1), pair.group(2))
    endpos: int | None = None
    if "endpos" in extra:
        if not _INT_RE.fullmatch(extra["endpos"]):
            raise AgiProtocolError("answer has an endpos that is not a number")
        endpos = int(extra["endpos"])
    return AgiResponse(
        code=code,
        result=result,
        data=data,
        endpos=endpos,
        extra=extra,
        line=text,
        result_text=result_text,
        note=" ".join(note),
    )


def _split_data(rest: str) -> tuple[str, str]:
    """Split what follows `result=N` into the parenthesised data and the tail.

    The data is free text (a variable's value may hold `) ` itself), so it ends
    at the last `)` after which only `key=value` words follow. When free words
    follow too (speech results, `Gosub failed`), it ends at the first `)` that
    ends a word.
    """
    if not rest.startswith(" ("):
        if rest and not rest.startswith(" "):
            raise AgiProtocolError("answer has text glued to its result")
        return "", rest
    body = rest[2:]
    for start in _kv_tail_starts(body):
        if start > 0 and body[start - 1] == ")":
            return body[: start - 1], body[start:]
    end = body.find(") ")
    if end < 0:
        raise AgiProtocolError("answer has an unterminated '(' data")
    return body[:end], body[end + 1 :]


def _kv_tail_starts(text: str) -> Iterable[int]:
    """Offsets from which `text` is only ` key=value` words, from the end backwards."""
    end = len(text)
    yield end
    while True:
        space = text.rfind(" ", 0, end)
        if space < 0 or _KV_RE.fullmatch(text, space + 1, end) is None:
            return
        end = space
        yield end


_QUOTE_TRIGGERS = frozenset(' \t"\\')
_FORBIDDEN = ("\n", "\r", "\0")


def quote_arg(value: str) -> str:
    """Put `value` on a command line so that Asterisk's parse_args gives it back whole.

    Raises ValueError for a newline, carriage return or NUL: those would end the
    command line early (a caller-ID name must never inject a second command).
    """
    for bad in _FORBIDDEN:
        if bad in value:
            raise ValueError(f"an AGI argument cannot hold {bad!r}")
    if value and _QUOTE_TRIGGERS.isdisjoint(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_line(words: Iterable[str]) -> bytes:
    """The bytes of one command line, newline included; ValueError when Asterisk can't take it."""
    quoted = [quote_arg(word) for word in words]
    if not quoted:
        raise ValueError("an AGI command needs at least one word")
    if len(quoted) >= MAX_ARGS:
        raise ValueError(f"Asterisk keeps only {MAX_ARGS - 1} words of a command")
    data = (" ".join(quoted) + "\n").encode("utf-8")
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError(f"an AGI command line is limited to {MAX_COMMAND_BYTES} bytes")
    return data


async def read_line(reader: asyncio.StreamReader, max_line: int) -> str:
    """One line without its `\\n` or `\\r\\n`; AgiClosed at end of stream.

    The reader's own limit bounds what it buffers (the server builds it with
    `limit=max_line + 1`); a longer line raises AgiProtocolError without being
    read whole.
    """
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        where = "mid-line" if exc.partial else "between lines"
        raise AgiClosed(f"end of stream {where}") from None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError("line too long") from None
    except OSError as exc:
        raise AgiClosed(f"connection lost: {exc.__class__.__name__}") from None
    content = raw[:-1]
    if content.endswith(b"\r"):
        content = content[:-1]
    if len(content) > max_line:
        raise AgiProtocolError("line too long")
    return content.decode("utf-8", errors="replace")


async def read_environment(
    reader: asyncio.StreamReader, limits: AgiLimits | None = None
) -> AgiEnvironment:
    """Read and validate the environment block, all of it within `header_timeout`."""
    limits = limits or AgiLimits()
    lines: list[str] = []
    try:
        async with asyncio.timeout(limits.header_timeout):
            while True:
                line = await read_line(reader, limits.max_line)
                if line == "":
                    break
                lines.append(line)
                if len(lines) > limits.max_header_lines:
                    raise AgiProtocolError("environment has too many lines")
    except TimeoutError:
        raise AgiTimeout(f"no environment within {limits.header_timeout} s") from None
    return parse_environment(lines)


async def close_writer(writer: asyncio.StreamWriter, grace: float = 1.0) -> None:
    """Close a connection; never raises, aborts it when it does not close within `grace`."""
    transport = writer.transport
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), grace)
    except (OSError, TimeoutError):
        transport.abort()
    except asyncio.CancelledError:
        transport.abort()
        raise


def peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "?"


_ANSWER_HEAD_RE = re.compile(r"([0-9]{3})([ -])(.*)", re.DOTALL)
_USAGE_END = "520 End of proper usage."


class AgiSession:
    """One FastAGI connection: its environment, then commands one at a time.

    Build it with `await AgiSession.open(reader, writer, limits)`. Commands
    from several tasks are serialised. After AgiClosed, AgiTimeout or
    AgiProtocolError the stream is out of step and the session is unusable:
    further commands raise AgiClosed. AgiHangup and AgiCommandError leave it
    usable.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: AgiEnvironment,
        limits: AgiLimits | None = None,
    ) -> None:
        self.env = env
        self.limits = limits or AgiLimits()
        self.peer = peer_name(writer)
        self.hung_up = False
        self.commands_sent = 0
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._broken: str | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: AgiLimits | None = None,
    ) -> AgiSession:
        """Read the environment (within `header_timeout`) and return the session.

        On failure the connection is left to the caller to close.
        """
        limits = limits or AgiLimits()
        env = await read_environment(reader, limits)
        return cls(reader, writer, env, limits)

    @property
    def usable(self) -> bool:
        return self._broken is None and not self._closed

    async def command(
        self,
        *words: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a timed-out command also breaks the session
    ) -> AgiResponse:
        """Send one command and return its `200` answer.

        Every word is quoted only when needed, so `command("ANSWER")` sends
        `ANSWER`. `timeout` (default `limits.idle_timeout`) bounds the write
        and the wait for the answer.
        """
        data = command_line(words)
        wait = self.limits.idle_timeout if timeout is None else timeout
        async with self._lock:
            if self._closed:
                raise AgiClosed("session closed")
            if self._broken is not None:
                raise AgiClosed(f"session unusable after: {self._broken}")
            try:
                async with asyncio.timeout(wait):
                    self._writer.write(data)
                    self.commands_sent += 1
                    await self._writer.drain()
                    return await self._read_answer()
            except TimeoutError:
                self._broken = "timeout"
                raise AgiTimeout(f"no answer within {wait} s") from None
            except OSError as exc:
                self._broken = "connection lost"
                raise AgiClosed(f"connection lost: {exc.__class__.__name__}") from None
            except (AgiClosed, AgiProtocolError) as exc:
                self._broken = str(exc)
                raise
            except asyncio.CancelledError:
                self._broken = "cancelled mid-command"
                raise

    async def _read_answer(self) -> AgiResponse:
        budget = self.limits.max_header_lines
        while True:
            budget -= 1
            if budget < 0:
                raise AgiProtocolError("too many lines without an answer")
            line = await read_line(self._reader, self.limits.max_line)
            if line == HANGUP_NOTICE:
                self.hung_up = True
                continue
            head = _ANSWER_HEAD_RE.fullmatch(line)
            if head is None:
                raise AgiProtocolError("answer does not start with a code")
            code, dash, text = int(head.group(1)), head.group(2) == "-", head.group(3)
            if code == 200 and not dash:
                return parse_response(line)
            if code == 100 and not dash:
                continue  # "100 result=0 Trying..." before a Gosub's answer
            if code == 511:
                self.hung_up = True
                raise AgiHangup(text)
            if code == 520 and dash:
                usage = await self._read_usage(budget)
                raise AgiCommandError(code, text, usage)
            if 500 <= code <= 599 and not dash:
                raise AgiCommandError(code, text)
            raise AgiProtocolError(f"answer has an unexpected code {code}")

    async def _read_usage(self, budget: int) -> str:
        usage: list[str] = []
        while True:
            budget -= 1
            if budget < 0:
                raise AgiProtocolError("usage text without its end line")
            line = await read_line(self._reader, self.limits.max_line)
            if line.startswith("520 "):
                return "\n".join(usage)
            if line.endswith(_USAGE_END):
                usage.append(line[: -len(_USAGE_END)])
                return "\n".join(usage)
            usage.append(line)

    async def close(self) -> None:
        """Close the connection; idempotent, never raises, aborts after about 1 s."""
        if self._closed:
            return
        self._closed = True
        await close_writer(self._writer)
