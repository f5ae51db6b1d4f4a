"""The Asterisk side of FastAGI, for tests: a peer that calls a FastAGI server over real TCP.

`AgiPeer.call` does what Asterisk 22 does when the dialplan runs
``AGI(agi://host:port/path?query)``: it connects, sends the environment
block, answers each command line as ``res/res_agi.c`` does, and plays the
caller (`CallerScript`) and the dialled phones (`EndpointScript`) in the
call's time.  The server closing the socket ends the call; the `AgiCall` it
returns records what was asked and what happened.

Sources: ``res/res_agi.c`` (``handle_*``, ``parse_args``, ``find_command``,
``agi_handle_command``, ``run_agi``, ``setup_env``, ``launch_netscript``),
``apps/app_dial.c`` (``dial_exec_full``, ``wait_for_answer``), ``main/app.c``
(``ast_app_getdata_full``, ``__ast_app_separate_args``, ``parse_options``),
``main/channel.c`` (``ast_readstring_full``, ``ast_recvchar``),
``main/pbx_builtins.c``, ``apps/app_playback.c``, ``res/res_musiconhold.c``,
``funcs/func_devstate.c`` (``DEVICE_STATE()``).

Time
====
The call's time is ``clock.now() - t0``, ``t0`` taken at connect.  Each
command takes what it would take on a real channel -- a prompt its length
(``durations``), ``WAIT FOR DIGIT`` its timeout, a ``Dial`` its ringing and
the conversation -- and the peer passes that time with ``await
clock.sleep(...)``: on a shared `VirtualClock` no real time passes and the
times are exact; on a real `Clock` it really waits.  What ends a command
first wins: the caller hanging up, an accepted key, or the command's own end.
At the same instant a hang-up beats a key, and both beat the natural end.

Keys: ``Press(at=T)`` keys are due at call time T (not before the previous
press has finished); ``on_playback``/``on_moh`` presses are due ``delay``
after a matching prompt (any file a command plays) or hold music (``SET MUSIC
ON``, ``MusicOnHold``, ``Dial`` with ``m``) starts, counting only media that
starts after the previous press.  Digits of one press are ``gap`` apart.  A
key is taken by the first command that listens for it at or after its time:
``STREAM FILE``/``GET OPTION``/``SAY *`` with it among the escape digits,
``WAIT FOR DIGIT``, ``GET DATA`` (any key), ``RECORD FILE`` escape digits.
Simplification: a key due while nothing listens for it waits for the next
command that does (Asterisk would have dropped it).

Hang-ups: the caller hanging up (``hangup_after``) or ``SET AUTOHANGUP``
firing during a command gives that command's hang-up answer and then the
``HANGUP`` line (Asterisk's AGISIGHUP notice); from then on the channel is
dead and commands that Asterisk does not allow on a dead channel get 511.
On a real clock a hang-up between commands sends ``HANGUP`` at once; on a
`VirtualClock` time passes only inside commands, so a hang-up that came due
while the server was busy (it advanced the clock itself) is noticed when the
next command arrives: ``HANGUP`` first, then that command runs dead.

Dial: targets split on ``&``; each behaves as its `EndpointScript` (looked up
by the exact target string, default: answers after 2 s).  ``offline`` fails
at request, ``busy``/``congestion`` at once; the first ``answer`` endpoint
whose ``after`` is below the timeout answers then; otherwise NOANSWER at the
timeout, or it rings until the caller hangs up (CANCEL) when there is none.
Answered: the conversation lasts the endpoint's ``hangup_after`` (else
``talk``; option ``S(n)`` caps it), then the agent hangs up: result 0 with
option ``g``, -1 without (the channel stays up either way).  Variables as
app_dial sets them: all reset to "" first; DIALSTATUS always; DIALEDPEERNAME
and DIALEDPEERNUMBER only on answer; RINGTIME(_MS) when something rang;
DIALEDTIME(_MS) and ANSWEREDTIME(_MS) only when an answered call's bridge
ends, and -- as in Asterisk, which reads them off the caller's channel -- they
are the caller channel's age and the time since the caller was answered.

Not modelled: a command sent while another runs waits for it to finish
(Asterisk would end a STREAM FILE without an answer); usage texts are one
``Usage:`` line, not the XML description; speech commands behave as with no
speech engine; ``Local/`` targets run no dialplan (confirmation keys of an
`EndpointScript` are not pressed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import posixpath
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from asterisk_sim import devices
from asterisk_sim.script import DEFAULT_ENDPOINT, CallerScript, EndpointScript, Press
from switchboard.clock import Clock, VirtualClock

SAMPLE_RATE = 8000  # samples a second in endpos
DIGIT_ANY = "0123456789#*ABCD"  # AST_DIGIT_ANY
BEEP_SECONDS = 0.5  # the "beep" of RECORD FILE unless `durations` says otherwise
VOICEMAIL_MAX_SECONDS = 300.0
AGI_BUF_LEN = 8192  # res_agi.c: a command line longer than 8191 bytes is cut there
MAX_ARGS = 128  # parse_args keeps MAX_ARGS - 1 words
STATE_RING = 4  # AST_STATE_RING: an inbound call before ANSWER
STATE_UP = 6  # AST_STATE_UP
NORMAL_CLEARING = 16

UNKNOWN_REPLY = "510 Invalid or unknown command"
DEAD_REPLY = "511 Command Not Permitted on a dead channel or intercept routine"
HANGUP_NOTICE = "HANGUP"

_DIAL_VARIABLES = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)

Durations: TypeAlias = Mapping[str, float] | Callable[[str], float | None]
HungUpBy: TypeAlias = Literal["caller", "app"]


# -- records -----------------------------------------------------------------------


@dataclass
class DialRecord:
    """One ``EXEC Dial``: call times of its start, answer and end, and how it ended."""

    t_start: float
    targets: tuple[str, ...]
    timeout: float | None  # seconds; None: rings until answered or cancelled
    options: str
    status: str = ""
    answered_by: str | None = None  # the target string that answered
    t_end: float = 0.0
    t_answer: float | None = None
    moh: str | None = None  # the class the caller heard while it rang (option m)
    gosub: str | None = None  # option U(...) as given, run on the answered channel
    result: int = 0  # what EXEC answered
    # the FastAGI session a `Subroutine` opened on the answered channel (option U)
    subroutine: AgiCall | None = None


@dataclass(frozen=True)
class Subroutine:
    """What a dialplan context Dial's ``U(context)`` names does on the answered channel,
    for the test to declare (the simulator runs no dialplan): ``s,1`` is
    ``AGI(agi://<this server>/<path>)``, then ``Return(${<returns>})``."""

    path: str
    returns: str = ""


@dataclass
class RecordingRecord:
    """One recording (``RECORD FILE`` or ``VoiceMail``)."""

    t_start: float
    file: str
    format: str
    t_end: float
    reason: Literal["timeout", "silence", "dtmf", "hangup"]
    endpos: int
    beep: bool


@dataclass
class MixMonitorRecord:
    """One ``MixMonitor`` (apps/app_mixmonitor.c): its file and options as given, from
    when it ran until ``StopMixMonitor`` (None: until the channel ended)."""

    t_start: float
    file: str
    options: str
    t_stop: float | None = None

    def recorded(self, dials: Sequence[DialRecord], end: float) -> float:
        """Seconds it wrote: with option ``b``, only while a Dial had the caller bridged
        (mixmonitor_thread skips frames while ``ast_channel_is_bridged`` is false)."""
        stop = end if self.t_stop is None else self.t_stop
        if "b" not in (parse_options(self.options) or {}):
            return max(0.0, stop - self.t_start)
        return sum(
            max(0.0, min(stop, d.t_end) - max(self.t_start, d.t_answer))
            for d in dials
            if d.t_answer is not None
        )


@dataclass
class AgiCall:
    """What one FastAGI session asked and what happened, in call times (seconds)."""

    request: str
    channel: str
    uniqueid: str
    context: str
    extension: str
    priority: int = 1
    variables: dict[str, str] = field(default_factory=dict)
    inherited: set[str] = field(default_factory=set)  # set as _NAME or __NAME
    commands: list[tuple[float, str]] = field(default_factory=list)
    replies: list[tuple[float, str]] = field(default_factory=list)
    hung_up_by: HungUpBy | None = None
    hung_up_at: float | None = None
    dials: list[DialRecord] = field(default_factory=list)
    played: list[tuple[float, str]] = field(default_factory=list)
    moh: list[tuple[float, str | None]] = field(default_factory=list)
    recordings: list[RecordingRecord] = field(default_factory=list)
    mixmonitors: list[MixMonitorRecord] = field(default_factory=list)
    answered: bool = False
    duration: float = 0.0
    closed_by: Literal["server", "peer"] = "server"
    language: str = ""  # the channel's language at the end (CHANNEL(language))


# -- the wire ----------------------------------------------------------------------


def environment_block(
    path: str = "scenario",
    *,
    host: str = "127.0.0.1",
    port: int = 4573,
    channel: str = "PJSIP/trunk-00000001",
    language: str = "en",
    uniqueid: str = "1733050000.1",
    caller: str | None = "79161234567",
    caller_name: str | None = None,
    dnid: str | None = "74951234567",
    context: str = "from-trunk",
    extension: str = "74951234567",
    priority: int = 1,
    args: Sequence[str] = (),
    threadid: int = 140000000,
    version: str = "22.0.0",
) -> bytes:
    """The environment Asterisk sends first (launch_netscript, then setup_env)."""
    script = path.lstrip("/")
    lines = ["agi_network: yes"]
    if script:
        lines.append(f"agi_network_script: {script}")
    lines += [
        f"agi_request: {request_url(host, port, script)}",
        f"agi_channel: {channel}",
        f"agi_language: {language}",
        f"agi_type: {channel.split('/', 1)[0]}",
        f"agi_uniqueid: {uniqueid}",
        f"agi_version: {version}",
        f"agi_callerid: {caller or 'unknown'}",
        f"agi_calleridname: {caller_name or 'unknown'}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {dnid or 'unknown'}",
        "agi_rdnis: unknown",
        f"agi_context: {context}",
        f"agi_extension: {extension}",
        f"agi_priority: {priority}",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {threadid}",
    ]
    lines += [f"agi_arg_{n}: {arg}" for n, arg in enumerate(args, start=1)]
    return ("\n".join(lines) + "\n\n").encode()


def request_url(host: str, port: int, path: str) -> str:
    script = path.lstrip("/")
    return f"agi://{host}:{port}/{script}" if script else f"agi://{host}:{port}"


def parse_args(line: str) -> list[str]:
    """Split a command line into words exactly as res_agi.c's parse_args does.

    Spaces and tabs separate words; double quotes group (and start a word even
    when empty); a backslash makes the next character literal.  Words past
    MAX_ARGS - 1 are dropped.
    """
    words: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                words.append([])
                whitespace = False
        elif ch in " \t" and not quoted and not escaped:
            whitespace = True
        elif ch == "\\" and not escaped:
            escaped = True
        elif whitespace and len(words) >= MAX_ARGS - 1:
            pass  # "Too many arguments, truncating"
        else:
            if whitespace:
                words.append([])
                whitespace = False
            words[-1].append(ch)
            escaped = False
    return ["".join(word) for word in words]


def separate_args(data: str, delim: str = ",") -> list[str]:
    """An application's arguments, as AST_STANDARD_APP_ARGS splits them.

    Delimiters inside parentheses, brackets or double quotes do not split;
    quotes are removed and a backslash makes the next character literal.
    """
    if not data:
        return []
    args: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    chars = iter(data)
    for ch in chars:
        if ch == "(":
            paren += 1
        elif ch == ")":
            paren = max(0, paren - 1)
        elif ch == "[":
            bracket += 1
        elif ch == "]":
            bracket = max(0, bracket - 1)
        elif ch == '"' and delim != '"':
            quote = not quote
            continue
        elif ch == "\\":
            current.append(next(chars, ""))
            continue
        elif ch == delim and not (paren or quote or bracket):
            args.append("".join(current))
            current = []
            continue
        current.append(ch)
    args.append("".join(current))
    return args


def parse_options(options: str) -> dict[str, str] | None:
    """Application option letters (``m(class)g``) to their arguments ("" for none).

    None when a parenthesis is not closed (the application then fails).
    """
    found: dict[str, str] = {}
    i = 0
    while i < len(options):
        letter = options[i]
        i += 1
        if i < len(options) and options[i] == "(":
            depth, j = 1, i + 1
            while j < len(options):
                if options[j] == "(":
                    depth += 1
                elif options[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(options):
                return None
            found[letter] = options[i + 1 : j]
            i = j + 1
        else:
            found[letter] = ""
    return found


_INT = re.compile(r"\s*([+-]?\d+)")
_FLOAT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def _scan_int(text: str) -> int | None:
    """C ``sscanf("%d")``: the leading integer, or None."""
    match = _INT.match(text)
    return int(match.group(1)) if match else None


def _atoi(text: str) -> int:
    """C ``atoi``: the leading integer, 0 if there is none."""
    value = _scan_int(text)
    return 0 if value is None else value


def _scan_float(text: str) -> float | None:
    match = _FLOAT.match(text)
    return float(match.group(1)) if match else None


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"yes", "true", "y", "t", "1", "on"}


def _ms(seconds: float) -> int:
    return int(seconds * 1000 + 1e-6)


# -- the caller's keys -------------------------------------------------------------


class _Keypad:
    """When the caller's keys are due, from their `Press` es and the media they hear."""

    def __init__(self, presses: Sequence[Press]) -> None:
        self._presses = tuple(presses)
        self._next = 0
        self._free_at = 0.0  # when the last scheduled press has been pressed
        self._due: list[tuple[float, str]] = []
        self._schedule_timed()

    def _schedule(self, press: Press, start: float) -> None:
        for i, digit in enumerate(press.digits):
            self._due.append((start + i * press.gap, digit))
        self._due.sort(key=lambda item: item[0])
        self._free_at = start + (len(press.digits) - 1) * press.gap
        self._next += 1

    def _schedule_timed(self) -> None:
        while self._next < len(self._presses):
            press = self._presses[self._next]
            if press.at is None:
                return
            self._schedule(press, max(press.at, self._free_at))

    def media(self, kind: Literal["playback", "moh"], name: str, at: float) -> None:
        """Media started at call time ``at``: it may trigger the next press."""
        if self._next >= len(self._presses) or at < self._free_at:
            return
        press = self._presses[self._next]
        if kind == "moh":
            wanted = press.on_moh
        else:
            wanted = press.on_playback is not None and press.on_playback in name
        if wanted:
            self._schedule(press, at + press.delay)
            self._schedule_timed()

    def first(self, accept: str, since: float) -> tuple[int, float, str] | None:
        """The first due key among ``accept``: (index, when it is heard, digit)."""
        for index, (due, digit) in enumerate(self._due):
            if digit in accept:
                return index, max(due, since), digit
        return None

    def take(self, index: int) -> None:
        del self._due[index]


# -- one session -------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """How a timed part of a command ended, at call time ``at``."""

    kind: Literal["done", "key", "hangup"]
    at: float
    key: str = ""

    @property
    def result(self) -> int:
        """Asterisk's usual result: 0 finished, the key's code, -1 hung up."""
        if self.kind == "key":
            return ord(self.key)
        return -1 if self.kind == "hangup" else 0


class _ShowUsage(Exception):
    """A handler's RESULT_SHOWUSAGE: wrong arguments."""


class _ServerClosed(Exception):
    """The server closed the socket while a command could never end by itself."""


class _Session:
    """One call: the channel's state, the caller's script and the socket."""

    def __init__(
        self,
        peer: AgiPeer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: AgiCall,
        script: CallerScript,
        *,
        t0: float,
        caller: str | None,
        caller_name: str | None,
        language: str,
    ) -> None:
        self.peer = peer
        self.clock = peer.clock
        self.reader = reader
        self.writer = writer
        self.call = record
        self.script = script
        self.t0 = t0
        self.caller = caller or ""
        self.caller_name = caller_name or ""
        self.language = language
        self.keypad = _Keypad(script.presses)
        self.alive = True
        self.state = STATE_RING
        self.answered_at: float | None = None
        self.caller_hangup_at = script.hangup_after
        self.autohangup_at: float | None = None
        self.hangup_cause = 0
        self.notice_pending = False
        self.moh_on = False
        self.next_channel = itertools.count(2)
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.eof = asyncio.Event()

    def now(self) -> float:
        return self.clock.now() - self.t0

    # -- the socket ------------------------------------------------------------------

    async def read_lines(self) -> None:
        """Feed command lines to the queue, cut at AGI_BUF_LEN as Asterisk's fgets does."""
        try:
            while True:
                data = await self.reader.readline()
                if not data:
                    break
                for i in range(0, len(data), AGI_BUF_LEN - 1):
                    chunk = data[i : i + AGI_BUF_LEN - 1].decode("utf-8", "replace")
                    self.lines.put_nowait(chunk.removesuffix("\n"))
        except (ConnectionError, ValueError):
            pass
        finally:
            self.eof.set()
            self.lines.put_nowait(None)

    async def send(self, text: str) -> None:
        self.call.replies.append((self.now(), text))
        self.writer.write((text + "\n").encode())
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def next_line(self) -> str | None:
        """The next command; on a real clock a hang-up falling due meanwhile is announced."""
        while True:
            wait = self.idle_wait()
            if wait is None:
                return await self.lines.get()
            try:
                return await asyncio.wait_for(self.lines.get(), wait)
            except TimeoutError:
                await self.catch_up_hangup()

    def idle_wait(self) -> float | None:
        """Real seconds until a hang-up while idle, or None to wait without limit."""
        due = self.next_hangup()
        if due is None or isinstance(self.clock, VirtualClock):
            return None
        return self.clock.real(max(0.0, due[0] - self.now()))

    async def run(self, env: bytes) -> None:
        self.writer.write(env)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        while True:
            line = await self.next_line()
            if line is None:
                self.call.closed_by = "server"
                return
            self.call.commands.append((self.now(), line))
            if line[:7].lower() == "failure":
                self.call.closed_by = "peer"  # res_agi.c: the script could not start
                return
            await self.catch_up_hangup()
            try:
                reply = await self.handle(line)
            except _ServerClosed:
                self.call.closed_by = "server"
                return
            await self.send(reply)
            if self.notice_pending:
                self.notice_pending = False
                await self.send(HANGUP_NOTICE)

    async def handle(self, line: str) -> str:
        argv = parse_args(line)
        command = _find_command(argv)
        if command is None:
            return UNKNOWN_REPLY
        if not self.alive and not command.dead_ok:
            return DEAD_REPLY
        try:
            return await command.run(self, argv)
        except _ShowUsage:
            return (
                "520-Invalid command syntax.  Proper usage follows:\n"
                f"{command.usage}\n520 End of proper usage."
            )

    # -- time, keys and hang-ups -------------------------------------------------------

    def next_hangup(self) -> tuple[float, HungUpBy] | None:
        if not self.alive:
            return None
        due: list[tuple[float, HungUpBy]] = []
        if self.caller_hangup_at is not None:
            due.append((self.caller_hangup_at, "caller"))
        if self.autohangup_at is not None:
            due.append((self.autohangup_at, "app"))
        return min(due, key=lambda d: d[0]) if due else None

    def hang_up(self, at: float, by: HungUpBy, cause: int = NORMAL_CLEARING) -> None:
        self.alive = False
        self.hangup_cause = cause
        if self.call.hung_up_by is None:
            self.call.hung_up_by = by
            self.call.hung_up_at = at
        self.moh_stop(at)
        self.notice_pending = True

    async def catch_up_hangup(self) -> None:
        """A hang-up that fell due between commands: announce it now."""
        due = self.next_hangup()
        if due is not None and due[0] <= self.now():
            self.hang_up(due[0], due[1])
            self.notice_pending = False
            await self.send(HANGUP_NOTICE)

    async def wait(self, seconds: float | None, accept: str = "") -> _Outcome:
        """Let ``seconds`` pass (None: forever) unless the caller hangs up or presses
        a key of ``accept`` first."""
        start = self.now()
        end = None if seconds is None else start + max(0.0, seconds)
        hangup = self.next_hangup()
        key = self.keypad.first(accept, start) if accept else None
        hang_at = None if hangup is None else max(hangup[0], start)
        if hang_at is not None and end is not None and hang_at > end:
            hang_at = None
        if key is not None and end is not None and key[1] > end:
            key = None
        if hang_at is not None and (key is None or hang_at <= key[1]):
            assert hangup is not None
            await self.clock.sleep(hang_at - self.now())
            self.hang_up(hang_at, hangup[1])
            return _Outcome("hangup", hang_at)
        if key is not None:
            index, at, digit = key
            await self.clock.sleep(at - self.now())
            self.keypad.take(index)
            return _Outcome("key", at, digit)
        if end is None:
            await self.eof.wait()  # nothing will ever end it: wait for the server to go
            raise _ServerClosed
        await self.clock.sleep(end - self.now())
        return _Outcome("done", end)

    async def wait_digit(self, ms: int) -> _Outcome:
        """ast_waitfordigit_full: 0 ms returns at once, a negative timeout never ends."""
        if ms == 0:
            return _Outcome("done", self.now())
        return await self.wait(None if ms < 0 else ms / 1000, DIGIT_ANY)

    # -- media -------------------------------------------------------------------------

    def media_started(self, name: str, at: float) -> None:
        self.call.played.append((at, name))
        self.keypad.media("playback", name, at)

    def moh_start(self, music_class: str | None) -> None:
        at = self.now()
        name = music_class or "default"
        self.call.moh.append((at, name))
        self.moh_on = True
        self.keypad.media("moh", name, at)

    def moh_stop(self, at: float) -> None:
        if self.moh_on:
            self.moh_on = False
            self.call.moh.append((at, None))

    async def play(
        self, name: str, accept: str, *, offset: int = 0, length: float | None = None
    ) -> tuple[_Outcome, int] | None:
        """Play a file: how it ended and the sample position; None if there is no such file."""
        if length is None:
            length = self.peer.prompt_length(name)
        if length is None:
            return None
        start = self.now()
        self.media_started(name, start)
        total = round(length * SAMPLE_RATE)
        outcome = await self.wait(max(0.0, length - max(0, offset) / SAMPLE_RATE), accept)
        if outcome.kind == "done":
            return outcome, total
        return outcome, min(total, max(0, offset) + round((outcome.at - start) * SAMPLE_RATE))

    def answer(self) -> None:
        if self.state != STATE_UP:
            self.state = STATE_UP
            self.answered_at = self.now()
            self.call.answered = True

    # -- variables ---------------------------------------------------------------------

    def set_var(self, name: str, value: str) -> None:
        """pbx_builtin_setvar_helper: leading ``_``/``__`` (inheritance) are not part of
        the name; ``FUNC(arg)`` writes a function."""
        if name.endswith(")"):
            func, _, arg = name[:-1].partition("(")
            if func.upper() == "CALLERID":
                if arg.lower() in ("num", "number"):
                    self.caller = value
                elif arg.lower() == "name":
                    self.caller_name = value
            elif func.upper() == "CHANNEL" and arg.lower() == "language":
                self.language = value  # the sounds played from now on: sounds/<language>/
            return
        plain = name.removeprefix("_").removeprefix("_")
        self.call.variables[plain] = value
        if plain != name:
            self.call.inherited.add(plain)

    def lookup(self, name: str) -> str | None:
        """GET VARIABLE: a function, a built-in or a channel variable."""
        if name.endswith(")"):
            return self.function(name)
        builtins = {
            "CHANNEL": self.call.channel,
            "UNIQUEID": self.call.uniqueid,
            "CONTEXT": self.call.context,
            "EXTEN": self.call.extension,
            "PRIORITY": str(self.call.priority),
            "HANGUPCAUSE": str(self.hangup_cause),
            "CALLINGPRES": "0",
            "CALLINGANI2": "0",
            "CALLINGTON": "0",
            "CALLINGTNS": "0",
            # main/pbx_variables.c, pbx_retrieve_variable: asterisk.conf's folders
            "ASTSPOOLDIR": self.peer.spool_dir,
        }
        if name in builtins:
            return builtins[name]
        return self.call.variables.get(name)

    def function(self, expr: str) -> str | None:
        func, _, arg = expr[:-1].partition("(")
        func, key = func.upper(), arg.lower()
        if func == "CALLERID":
            callerid = {
                "num": self.caller,
                "number": self.caller,
                "name": self.caller_name,
                "all": f'"{self.caller_name}" <{self.caller}>',
            }
            return callerid.get(key)
        if func == "CHANNEL":
            channel = {
                "name": self.call.channel,
                "language": self.language,
                "state": "Up" if self.state == STATE_UP else "Ring",
                "uniqueid": self.call.uniqueid,
                # funcs/func_channel.c: the linkedid, else the uniqueid (an inbound call's
                # channel was requested by no one: its own, channel_internal_api.c)
                "linkedid": self.call.uniqueid,
                "musicclass": "default",
            }
            return channel.get(key)
        if func == "DB":
            family, _, db_key = arg.partition("/")
            return self.peer.database.get((family, db_key))
        if func == "LEN":
            return str(len(arg))
        if func == "DEVICE_STATE":
            return self.peer.device_state(arg)
        return None

    def substitute(self, text: str) -> str:
        """``${NAME}`` (nested, functions too) replaced by its value, "" when unset."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    if text.startswith("${", j):
                        depth += 1
                        j += 2
                        continue
                    if text[j] == "}":
                        depth -= 1
                    j += 1
                if depth:
                    out.append(text[i:])
                    break
                inner = self.substitute(text[i + 2 : j - 1])
                out.append(self.lookup(inner) or "")
                i = j
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    # -- AGI commands ------------------------------------------------------------------

    async def c_answer(self, argv: list[str]) -> str:
        self.answer()
        return "200 result=0"

    async def c_channel_status(self, argv: list[str]) -> str:
        if len(argv) == 2 or (len(argv) == 3 and argv[2] == self.call.channel):
            return f"200 result={self.state}"
        if len(argv) == 3:
            return "200 result=-1"
        raise _ShowUsage

    async def c_stream_file(self, argv: list[str]) -> str:
        if not 4 <= len(argv) <= 5:
            raise _ShowUsage
        offset = 0
        if len(argv) > 4:
            parsed = _scan_int(argv[4])
            if parsed is None:
                raise _ShowUsage
            offset = parsed
        played = await self.play(argv[2], argv[3], offset=offset)
        if played is None:
            return f"200 result=-1 endpos={offset}"
        outcome, endpos = played
        self.set_var("PLAYBACKSTATUS", "FAILED" if outcome.result else "SUCCESS")
        return f"200 result={outcome.result} endpos={endpos}"

    async def c_control_stream_file(self, argv: list[str]) -> str:
        if not 5 <= len(argv) <= 10:
            raise _ShowUsage
        stop = argv[4]
        if len(argv) > 5 and _scan_int(argv[5]) is None:
            raise _ShowUsage
        offset_ms = 0
        if len(argv) > 9:
            parsed = _scan_int(argv[9])
            if parsed is None:
                raise _ShowUsage
            offset_ms = parsed
        played = await self.play(argv[3], stop, offset=offset_ms * SAMPLE_RATE // 1000)
        if played is None:
            self.set_var("CPLAYBACKSTATUS", "ERROR")
            self.set_var("CPLAYBACKOFFSET", str(offset_ms))
            return f"200 result=-1 endpos={offset_ms}"
        outcome, endpos = played
        position_ms = endpos * 1000 // SAMPLE_RATE
        if outcome.kind == "key":
            self.set_var("CPLAYBACKSTATUS", "USERSTOPPED")
            self.set_var("CPLAYBACKSTOPKEY", outcome.key)
        else:
            self.set_var("CPLAYBACKSTATUS", "ERROR" if outcome.kind == "hangup" else "SUCCESS")
        self.set_var("CPLAYBACKOFFSET", str(position_ms))
        return f"200 result={outcome.result} endpos={position_ms}"

    async def c_get_option(self, argv: list[str]) -> str:
        if not 4 <= len(argv) <= 5:
            raise _ShowUsage
        escape = argv[3]
        timeout = _atoi(argv[4]) if len(argv) == 5 else 5000  # the pbx's dtimeoutms
        played = await self.play(argv[2], escape)
        if played is None:
            return "200 result=-1 endpos=0"
        outcome, endpos = played
        result = outcome.result
        if outcome.kind == "done":
            waited = await self.wait_digit(timeout)
            # strchr(edigits, res): a key that is no escape digit, or a hang-up, gives 0
            result = waited.result if waited.kind == "key" and waited.key in escape else 0
        return f"200 result={result} endpos={endpos}"

    async def c_wait_for_digit(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        timeout = _scan_int(argv[3])
        if timeout is None:
            raise _ShowUsage
        outcome = await self.wait_digit(timeout)
        return f"200 result={outcome.result}"

    async def c_get_data(self, argv: list[str]) -> str:
        if len(argv) < 3:
            raise _ShowUsage
        timeout = _atoi(argv[3]) if len(argv) >= 4 else 0
        maxlen = _atoi(argv[4]) if len(argv) >= 5 else 1024
        to, first_to = 2000, 6000  # ast_app_getdata_full's defaults
        if timeout > 0:
            to = first_to = timeout
        elif timeout < 0:
            to = first_to = 1_000_000_000
        prompt = argv[2]
        length: float | None = None
        if prompt:
            length = self.peer.prompt_length(prompt)
            if length is None:
                return "200 result=-1"
            self.media_started(prompt, self.now())
        if maxlen == 0:
            return "200 result=-1"
        digits = ""
        wait_ms = first_to
        while True:
            if length is not None:
                outcome = await self.wait(length, DIGIT_ANY)
                length = None
                if outcome.kind == "done":
                    outcome = await self.wait_digit(wait_ms)
            else:
                outcome = await self.wait_digit(wait_ms)
            if outcome.kind == "hangup":
                return "200 result=-1"
            if outcome.kind == "done":
                return f"200 result={digits} (timeout)"
            if outcome.key == "#" and not digits:
                return "200 result="
            if outcome.key != "#":
                digits += outcome.key
            if outcome.key == "#" or len(digits) >= maxlen:
                return f"200 result={digits}"
            wait_ms = to

    async def say(self, media: str, seconds: float, escape: str) -> str:
        length = self.peer.lookup_duration(media)
        played = await self.play(media, escape, length=seconds if length is None else length)
        assert played is not None
        return f"200 result={played[0].result}"

    async def c_say_digits(self, argv: list[str]) -> str:
        if len(argv) != 4 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self.say(f"digits:{argv[2]}", 0.6 * len(argv[2]), argv[3])

    async def c_say_number(self, argv: list[str]) -> str:
        if not 4 <= len(argv) <= 5:
            raise _ShowUsage
        number = _scan_int(argv[2])
        if number is None:
            raise _ShowUsage
        return await self.say(f"number:{number}", 0.6 * len(str(number)), argv[3])

    async def c_say_alpha(self, argv: list[str]) -> str:
        if not 4 <= len(argv) <= 5 or (len(argv) == 5 and argv[4][:1] not in "aAlLnNuU"):
            raise _ShowUsage
        return await self.say(f"characters:{argv[2]}", 0.6 * len(argv[2]), argv[3])

    async def c_say_phonetic(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        return await self.say(f"phonetic:{argv[2]}", 0.6 * len(argv[2]), argv[3])

    async def c_say_date(self, argv: list[str]) -> str:
        if len(argv) != 4 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self.say(f"date:{argv[2]}", 2.0, argv[3])

    async def c_say_time(self, argv: list[str]) -> str:
        if len(argv) != 4 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self.say(f"time:{argv[2]}", 2.0, argv[3])

    async def c_say_datetime(self, argv: list[str]) -> str:
        if len(argv) < 4 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self.say(f"datetime:{argv[2]}", 3.0, argv[3])

    async def c_record_file(self, argv: list[str]) -> str:
        if len(argv) < 6:
            raise _ShowUsage
        limit_ms = _scan_int(argv[5])
        if limit_ms is None:
            raise _ShowUsage
        silence_ms = 0
        silence_arg = next((a[a.index("s") :] for a in argv[6:9] if "s" in a), None)
        if silence_arg is not None and len(silence_arg) > 2 and silence_arg.startswith("s="):
            silence_ms = max(0, _atoi(silence_arg[2:])) * 1000
        offset, beep = 0, False
        if len(argv) > 6:
            parsed = _scan_int(argv[6])
            if parsed is not None:
                offset = parsed
            elif not argv[6].startswith("s="):
                beep = True
        if len(argv) > 7 and not argv[7].startswith("s="):
            beep = True
        escape = argv[4]
        if beep:
            length = self.peer.lookup_duration("beep")
            played = await self.play(
                "beep", escape, length=BEEP_SECONDS if length is None else length
            )
            assert played is not None
            if played[0].kind != "done":
                return f"200 result={played[0].result} (randomerror) endpos={offset}"
        start = self.now()
        end = None if limit_ms < 0 else limit_ms / 1000
        silence_end: float | None = None
        if silence_ms > 0 and self.script.silent_after is not None:
            silence_end = max(0.0, self.script.silent_after) + silence_ms / 1000
            if end is not None and silence_end >= end:
                silence_end = None
        outcome = await self.wait(end if silence_end is None else silence_end, escape)
        samples = offset + round((outcome.at - start) * SAMPLE_RATE)
        reason: Literal["timeout", "silence", "dtmf", "hangup"]
        if outcome.kind == "hangup":
            reason, reply = "hangup", f"200 result=-1 (hangup) endpos={samples}"
        elif outcome.kind == "key":
            samples = max(0, samples - 200 * SAMPLE_RATE // 1000)  # rewinds 200 ms
            reason, reply = "dtmf", f"200 result={outcome.result} (dtmf) endpos={samples}"
        elif silence_end is not None:
            samples = max(0, samples - (silence_ms - 1000) * SAMPLE_RATE // 1000)
            # `res` is what the last ast_waitfor left: the milliseconds still to go
            left = max(0, limit_ms - _ms(outcome.at - start)) if limit_ms >= 0 else 99980
            reason, reply = "silence", f"200 result={left} (timeout) endpos={samples}"
        else:
            reason, reply = "timeout", f"200 result=0 (timeout) endpos={samples}"
        self.call.recordings.append(
            RecordingRecord(start, argv[2], argv[3], outcome.at, reason, samples, beep)
        )
        return reply

    async def c_receive_char(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        timeout = _atoi(argv[2])
        if timeout:  # no text ever comes: it waits out its timeout or a hang-up
            await self.wait(None if timeout < 0 else timeout / 1000)
        return "200 result=-1 (hangup)"

    async def c_receive_text(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        timeout = _atoi(argv[2])
        if timeout:
            await self.wait(None if timeout < 0 else timeout / 1000)
        return "200 result=-1"

    async def c_send_text(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        return "200 result=0"

    async def c_send_image(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        return "200 result=0"

    async def c_tdd_mode(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        return "200 result=0"  # PJSIP has no TDD option: setting it fails

    async def c_set_autohangup(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        seconds = _scan_float(argv[2])
        if seconds is None:
            raise _ShowUsage
        self.autohangup_at = self.now() + seconds if seconds > 0 else None
        return "200 result=0"

    async def c_set_callerid(self, argv: list[str]) -> str:
        if len(argv) > 2:
            text = argv[2]
            if "<" in text and ">" in text:
                name, _, rest = text.partition("<")
                self.caller = rest.split(">", 1)[0].strip()
                self.caller_name = name.strip().strip('"')
            elif any(ch.isdigit() for ch in text) and not any(ch.isalpha() for ch in text):
                self.caller, self.caller_name = re.sub(r"[()\-. ]", "", text), ""
            else:
                self.caller, self.caller_name = "", text.strip('"')
        return "200 result=1"

    async def c_set_context(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        self.call.context = argv[2]
        return "200 result=0"

    async def c_set_extension(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        self.call.extension = argv[2]
        return "200 result=0"

    async def c_set_priority(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        priority = _scan_int(argv[2])
        if priority is None or priority < 1:  # a label: there is no dialplan to find it in
            raise _ShowUsage
        self.call.priority = priority
        return "200 result=0"

    async def c_set_music(self, argv: list[str]) -> str:
        if len(argv) < 3:
            raise _ShowUsage
        if argv[2][:2].lower() == "on":
            self.moh_start(argv[3] if len(argv) > 3 else None)
        elif argv[2][:3].lower() == "off":
            self.moh_stop(self.now())
        return "200 result=0"

    async def c_set_variable(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        self.set_var(argv[2], argv[3])
        return "200 result=1"

    async def c_get_variable(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise _ShowUsage
        value = self.lookup(argv[2])
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def c_get_full_variable(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            raise _ShowUsage
        if len(argv) == 5 and argv[4] != self.call.channel:
            return "200 result=0"
        return f"200 result=1 ({self.substitute(argv[3])})"

    async def c_hangup(self, argv: list[str]) -> str:
        if len(argv) > 2:
            raise _ShowUsage
        if len(argv) == 2 and argv[1] != self.call.channel:
            return "200 result=-1"
        self.hang_up(self.now(), "app")
        return "200 result=1"

    async def c_verbose(self, argv: list[str]) -> str:
        if len(argv) < 2:
            raise _ShowUsage
        return "200 result=1"

    async def c_noop(self, argv: list[str]) -> str:
        return "200 result=0"

    async def c_asyncagi_break(self, argv: list[str]) -> str:
        return "200 result=0"

    async def c_database_get(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        value = self.peer.database.get((argv[2], argv[3]))
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def c_database_put(self, argv: list[str]) -> str:
        if len(argv) != 5:
            raise _ShowUsage
        self.peer.database[argv[2], argv[3]] = argv[4]
        return "200 result=1"

    async def c_database_del(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        found = self.peer.database.pop((argv[2], argv[3]), None)
        return "200 result=0" if found is None else "200 result=1"

    async def c_database_deltree(self, argv: list[str]) -> str:
        if not 3 <= len(argv) <= 4:
            raise _ShowUsage
        tree = argv[3] if len(argv) == 4 else None
        doomed = [
            (family, key)
            for family, key in self.peer.database
            if family == argv[2] and (tree is None or key == tree or key.startswith(tree + "/"))
        ]
        for entry in doomed:
            del self.peer.database[entry]
        return "200 result=0" if doomed else "200 result=1"  # sic: res_agi.c has it inverted

    async def c_speech_create(self, argv: list[str]) -> str:
        return "200 result=0"  # no speech engine

    async def c_speech_set(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        return "200 result=0"

    async def c_speech_load_grammar(self, argv: list[str]) -> str:
        if len(argv) != 5:
            raise _ShowUsage
        return "200 result=0"

    async def c_speech_grammar(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise _ShowUsage
        return "200 result=0"

    async def c_speech_recognize(self, argv: list[str]) -> str:
        if len(argv) < 4:
            raise _ShowUsage
        return "200 result=0"

    async def c_exec(self, argv: list[str]) -> str:
        if len(argv) < 2:
            raise _ShowUsage
        app = _APPLICATIONS.get(argv[1].lower())
        if app is None:
            return "200 result=-2"
        data = "" if len(argv) == 2 else argv[2]
        if _is_true(self.call.variables.get("AGIEXECFULL")):
            data = self.substitute(data)
        return f"200 result={await app(self, data)}"

    # -- dialplan applications -----------------------------------------------------------

    async def app_answer(self, data: str) -> int:
        if not self.alive:
            return -1
        delay = _atoi(separate_args(data)[0]) if data and self.state != STATE_UP else 0
        self.answer()
        if delay > 0:
            return (await self.wait(delay / 1000)).result
        return 0

    async def app_playback(self, data: str) -> int:
        if not data:
            return -1
        args = separate_args(data)
        options = args[1].lower() if len(args) > 1 else ""
        if not self.alive:
            return -1
        failed = False
        if self.state != STATE_UP:
            if "skip" in options:
                self.set_var("PLAYBACKSTATUS", "SUCCESS")
                return 0
            if "noanswer" not in options:
                self.answer()
        result = 0
        for name in (part.strip() for part in args[0].split("&")):
            if not name:
                continue
            played = await self.play(name, "")
            if played is None:
                failed = True
                continue
            if played[0].kind == "hangup":
                result = -1
                break
        self.set_var("PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
        return result

    async def app_music_on_hold(self, data: str) -> int:
        args = separate_args(data)
        music_class = args[0] if args and args[0] else None
        seconds: float | None = None
        if len(args) > 1 and args[1]:
            parsed = _scan_int(args[1])
            seconds = parsed if parsed is not None and parsed > 0 else None
        self.moh_start(music_class)
        if not self.alive:
            self.moh_stop(self.now())
            return -1
        outcome = await self.wait(seconds)
        self.moh_stop(outcome.at)
        return outcome.result

    async def app_start_music_on_hold(self, data: str) -> int:
        args = separate_args(data)
        self.moh_start(args[0] if args and args[0] else None)
        return 0

    async def app_stop_music_on_hold(self, data: str) -> int:
        self.moh_stop(self.now())
        return 0

    async def app_wait(self, data: str) -> int:
        seconds = _timelen(data)
        if seconds is None or seconds <= 0:
            return 0
        if not self.alive:
            return -1
        return (await self.wait(seconds)).result

    async def app_hangup(self, data: str) -> int:
        cause = _scan_int(data) if data else None
        if self.alive:
            self.hang_up(self.now(), "app", cause if cause and cause > 0 else NORMAL_CLEARING)
        return -1

    async def app_goto(self, data: str) -> int:
        parts = data.split(",") if data else []
        if not 1 <= len(parts) <= 3:
            return -1
        text = parts[-1].strip()
        priority = _scan_int(text)
        if priority is None:
            return -1  # a label: there is no dialplan to find it in
        if text.startswith(("+", "-")):
            priority += self.call.priority
        if priority < 1:
            return -1
        if len(parts) == 3 and parts[0]:
            self.call.context = parts[0]
        if len(parts) >= 2 and parts[-2]:
            self.call.extension = parts[-2]
        self.call.priority = priority
        return 0

    async def app_set(self, data: str) -> int:
        name, sep, value = data.partition("=")
        if sep and name.strip():
            self.set_var(name.strip(), value)
        return 0

    async def app_mset(self, data: str) -> int:
        """pbx_builtin_setvar_multiple: up to 99 ``name=value`` pairs, split as
        AST_STANDARD_APP_ARGS does (quotes and backslashes removed), each at its first ``=``."""
        for pair in separate_args(data)[:99]:
            name, sep, value = pair.partition("=")
            if sep:
                self.set_var(name, value)
        return 0

    async def app_noop(self, data: str) -> int:
        return 0

    async def app_busy(self, data: str) -> int:
        seconds = _scan_float(data) if data else None
        if self.alive:
            await self.wait(seconds if seconds and seconds > 0 else None)
        return -1

    async def app_mixmonitor(self, data: str) -> int:
        """apps/app_mixmonitor.c, mixmonitor_exec: an argument is required (-1
        without); MIXMONITOR_FILENAME is set and the monitor runs beside the channel
        (0), whatever the channel does next."""
        if not data:  # "MixMonitor requires an argument (filename or ,t(filename) ...)"
            return -1
        args = separate_args(data)
        options = args[1] if len(args) > 1 else ""
        if parse_options(options) is None:
            return -1
        self.set_var("MIXMONITOR_FILENAME", args[0])
        self.call.mixmonitors.append(MixMonitorRecord(self.now(), args[0], options))
        return 0

    async def app_stop_mixmonitor(self, data: str) -> int:
        """apps/app_mixmonitor.c, stop_mixmonitor_exec: detaches the channel's monitor; 0
        even with none."""
        for monitor in self.call.mixmonitors:
            if monitor.t_stop is None:
                monitor.t_stop = self.now()
        return 0

    async def app_voicemail(self, data: str) -> int:
        if not data or not self.alive:
            return -1
        mailbox = separate_args(data)[0].split("&")[0]
        self.answer()
        greeting = await self.play("vm-intro", "")
        if greeting is not None and greeting[0].kind == "hangup":
            self.set_var("VMSTATUS", "USEREXIT")
            return -1
        length = self.peer.lookup_duration("beep")
        await self.play("beep", "", length=BEEP_SECONDS if length is None else length)
        if not self.alive:
            self.set_var("VMSTATUS", "USEREXIT")
            return -1
        start = self.now()
        outcome = await self.wait(VOICEMAIL_MAX_SECONDS, "#")
        reason: Literal["timeout", "dtmf", "hangup"] = (
            "hangup" if outcome.kind == "hangup" else "dtmf" if outcome.kind == "key" else "timeout"
        )
        samples = round((outcome.at - start) * SAMPLE_RATE)
        self.call.recordings.append(
            RecordingRecord(start, f"voicemail/{mailbox}", "wav", outcome.at, reason, samples, True)
        )
        self.set_var("VMSTATUS", "SUCCESS")
        return -1 if outcome.kind == "hangup" else 0

    async def app_dial(self, data: str) -> int:
        start = self.now()
        for name in _DIAL_VARIABLES:
            self.set_var(name, "")
        if not data:  # "Dial requires an argument (technology/resource)"
            self.call.dials.append(DialRecord(start, (), None, "", "INVALIDARGS", t_end=start))
            self.set_var("DIALSTATUS", "INVALIDARGS")
            return -1
        args = separate_args(data)
        options_text = args[2] if len(args) > 2 else ""
        record = DialRecord(
            start,
            tuple(t for t in args[0].split("&") if t) if args else (),
            _dial_timeout(args[1] if len(args) > 1 else ""),
            options_text,
        )
        self.call.dials.append(record)
        result = await self.dial(record)
        record.result = result
        record.t_end = self.now()
        self.set_var("DIALSTATUS", record.status)
        return result

    async def dial(self, record: DialRecord) -> int:
        """What dial_exec_full returns; sets ``record.status`` (DIALSTATUS)."""
        record.status = "INVALIDARGS"
        if not self.alive:
            record.status = "CANCEL"
            return -1
        options = parse_options(record.options)
        if options is None:
            return -1
        go_on = "g" in options
        if any(not t.partition("/")[2] for t in record.targets):
            return 0 if go_on else -1  # "Dial argument takes format (technology/resource)"
        if not record.targets:
            record.status = "CHANUNAVAIL"
            return 0
        legs: list[tuple[str, EndpointScript, str]] = []  # target, script, channel name
        failures: set[str] = set()
        for target in record.targets:
            script = self.peer.endpoint(target)
            if script.kind == "offline":  # the request fails: no channel at all
                failures.add("offline")
                continue
            legs.append((target, script, _peer_channel(target, next(self.next_channel))))
            if script.kind in ("busy", "congestion"):
                failures.add(script.kind)
        if legs and "m" in options:
            record.moh = options["m"] or "default"
            self.moh_start(record.moh)
        ringing = [leg for leg in legs if leg[1].kind in ("answer", "noanswer")]
        if not ringing:
            record.status = (
                "BUSY"
                if "busy" in failures
                else "CONGESTION"
                if "congestion" in failures
                else "CHANUNAVAIL"
            )
            self.moh_stop(self.now())
            return 0
        self.set_var("RINGTIME", "0")
        self.set_var("RINGTIME_MS", "0")
        answering = [
            leg
            for leg in ringing
            if leg[1].kind == "answer" and (record.timeout is None or leg[1].after < record.timeout)
        ]
        winner = min(answering, key=lambda leg: leg[1].after) if answering else None
        outcome = await self.wait(record.timeout if winner is None else winner[1].after)
        self.moh_stop(outcome.at)
        if outcome.kind == "hangup":
            record.status = "CANCEL"
            return -1
        if winner is None:
            record.status = "NOANSWER"
            return 0
        target, script, channel = winner
        record.answered_by, record.t_answer = target, outcome.at
        record.gosub = options.get("U")
        record.status = "ANSWER"
        self.set_var("DIALSTATUS", "ANSWER")
        self.set_var("DIALEDPEERNAME", channel)
        self.set_var("DIALEDPEERNUMBER", target.partition("/")[2])
        talk = self.peer.talk if script.hangup_after is None else script.hangup_after
        context = (record.gosub or "").split("^")[0]
        subroutine = self.peer.subroutines.get(context)
        if subroutine is not None:
            # app_dial.c: U() runs on the answered peer before the bridge (the caller
            # still hears ringing or hold music); GOSUB_RESULT=CONTINUE hangs the peer up
            # and Dial goes on (OPT_GO_ON, DIALSTATUS stays ANSWER, no bridge: no
            # ANSWEREDTIME); a Return hands GOSUB_RETVAL to the caller
            start = self.now()
            sub = record.subroutine = await self.peer.run_subroutine(
                subroutine, context, self, channel, script, talk
            )
            talk = max(0.0, talk - (self.now() - start))
            result = sub.variables.get("GOSUB_RESULT")
            if sub.hung_up_by is None and result is not None:
                # it returned (a hung-up peer never does) with GOSUB_RESULT set: only
                # then is the return value handed to the caller
                self.set_var("GOSUB_RETVAL", sub.variables.get(subroutine.returns, ""))
                if result.upper() == "CONTINUE":
                    self.moh_stop(self.now())
                    return 0
            else:
                talk = 0.0
        self.answer()
        limit = _atoi(options.get("S", ""))
        if limit > 0:
            talk = min(talk, float(limit))
        outcome = await self.wait(talk)
        self.set_duration("DIALEDTIME", outcome.at)
        self.set_duration("ANSWEREDTIME", outcome.at - (self.answered_at or 0.0))
        if outcome.kind == "hangup":
            return -1
        return 0 if go_on else -1

    def set_duration(self, name: str, seconds: float) -> None:
        ms = _ms(max(0.0, seconds))
        self.set_var(name, str(ms // 1000))
        self.set_var(f"{name}_MS", str(ms))


def _dial_timeout(text: str) -> float | None:
    """Dial's answer timeout (before any ``^``): seconds, None when absent or not > 0."""
    answer = text.split("^", 1)[0]
    seconds = _scan_float(answer) if answer else None
    return seconds if seconds is not None and seconds > 0 else None


def _timelen(text: str) -> float | None:
    """ast_app_parse_timelen in seconds: ``1.5``, ``500ms``, ``2m``, ``1h``."""
    match = re.fullmatch(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*(ms|s|m|h)?\s*", text, re.IGNORECASE)
    if match is None:
        return None
    value = float(match.group(1))
    unit = (match.group(2) or "s").lower()
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def _peer_channel(target: str, number: int) -> str:
    """The name of the channel a dial creates: ``PJSIP/101-00000002``,
    ``PJSIP/trunk-00000003`` for ``PJSIP/7916...@trunk``, ``Local/x@ctx-00000004;1``."""
    tech, _, resource = target.partition("/")
    if tech.lower() == "local":
        return f"{tech}/{resource}-{number:08x};1"
    if tech.upper() == "PJSIP":
        endpoint = resource.rsplit("@", 1)[1] if "@" in resource else resource.split("/")[0]
    else:
        endpoint = resource.split("@")[0].split("/")[0]
    return f"{tech}/{endpoint}-{number:08x}"


# -- the command and application tables ---------------------------------------------------

Handler = Callable[[_Session, list[str]], Awaitable[str]]
Application = Callable[[_Session, str], Awaitable[int]]


@dataclass(frozen=True)
class _Command:
    words: tuple[str, ...]
    dead_ok: bool  # res_agi.c's "dead" column: allowed on a hung-up channel
    usage: str
    run: Handler


def _cmd(words: str, dead_ok: bool, usage: str, run: Handler) -> _Command:
    return _Command(tuple(words.lower().split()), dead_ok, f"Usage: {usage}", run)


S = _Session
# The order of res_agi.c's table; find_command takes the first that matches.
_COMMANDS: tuple[_Command, ...] = (
    _cmd("answer", False, "ANSWER", S.c_answer),
    _cmd("asyncagi break", True, "ASYNCAGI BREAK", S.c_asyncagi_break),
    _cmd("channel status", False, "CHANNEL STATUS [<channelname>]", S.c_channel_status),
    _cmd("database del", True, "DATABASE DEL <family> <key>", S.c_database_del),
    _cmd("database deltree", True, "DATABASE DELTREE <family> [keytree]", S.c_database_deltree),
    _cmd("database get", True, "DATABASE GET <family> <key>", S.c_database_get),
    _cmd("database put", True, "DATABASE PUT <family> <key> <value>", S.c_database_put),
    _cmd("exec", True, "EXEC <application> <options>", S.c_exec),
    _cmd("get data", False, "GET DATA <file to be streamed> [timeout] [maxdigits]", S.c_get_data),
    _cmd(
        "get full variable",
        True,
        "GET FULL VARIABLE <variablename> [<channel name>]",
        S.c_get_full_variable,
    ),
    _cmd("get option", False, "GET OPTION <filename> <escape_digits> [timeout]", S.c_get_option),
    _cmd("get variable", True, "GET VARIABLE <variablename>", S.c_get_variable),
    _cmd("hangup", False, "HANGUP [<channelname>]", S.c_hangup),
    _cmd("noop", True, "NOOP", S.c_noop),
    _cmd("receive char", False, "RECEIVE CHAR <timeout>", S.c_receive_char),
    _cmd("receive text", False, "RECEIVE TEXT <timeout>", S.c_receive_text),
    _cmd(
        "record file",
        False,
        "RECORD FILE <filename> <format> <escape_digits> <timeout> [offset samples] [BEEP]"
        " [s=silence]",
        S.c_record_file,
    ),
    _cmd("say alpha", False, "SAY ALPHA <number> <escape_digits>", S.c_say_alpha),
    _cmd("say digits", False, "SAY DIGITS <number> <escape_digits>", S.c_say_digits),
    _cmd("say number", False, "SAY NUMBER <number> <escape_digits> [gender]", S.c_say_number),
    _cmd("say phonetic", False, "SAY PHONETIC <string> <escape_digits>", S.c_say_phonetic),
    _cmd("say date", False, "SAY DATE <date> <escape_digits>", S.c_say_date),
    _cmd("say time", False, "SAY TIME <time> <escape_digits>", S.c_say_time),
    _cmd(
        "say datetime",
        False,
        "SAY DATETIME <time> <escape_digits> [format] [timezone]",
        S.c_say_datetime,
    ),
    _cmd("send image", False, "SEND IMAGE <image>", S.c_send_image),
    _cmd("send text", False, 'SEND TEXT "<text to send>"', S.c_send_text),
    _cmd("set autohangup", False, "SET AUTOHANGUP <time>", S.c_set_autohangup),
    _cmd("set callerid", False, "SET CALLERID <number>", S.c_set_callerid),
    _cmd("set context", False, "SET CONTEXT <desired context>", S.c_set_context),
    _cmd("set extension", False, "SET EXTENSION <new extension>", S.c_set_extension),
    _cmd("set music", False, "SET MUSIC <on|off> [class]", S.c_set_music),
    _cmd("set priority", False, "SET PRIORITY <priority>", S.c_set_priority),
    _cmd("set variable", True, "SET VARIABLE <variablename> <value>", S.c_set_variable),
    _cmd(
        "stream file",
        False,
        "STREAM FILE <filename> <escape_digits> [sample offset]",
        S.c_stream_file,
    ),
    _cmd(
        "control stream file",
        False,
        "CONTROL STREAM FILE <filename> <escape_digits> [skipms] [ffchar] [rewchr] [pausechr]"
        " [offsetms]",
        S.c_control_stream_file,
    ),
    _cmd("tdd mode", False, "TDD MODE <on|off>", S.c_tdd_mode),
    _cmd("verbose", True, "VERBOSE <message> <level>", S.c_verbose),
    _cmd("wait for digit", False, "WAIT FOR DIGIT <timeout>", S.c_wait_for_digit),
    _cmd("speech create", False, "SPEECH CREATE <engine>", S.c_speech_create),
    _cmd("speech set", False, "SPEECH SET <name> <value>", S.c_speech_set),
    _cmd("speech destroy", True, "SPEECH DESTROY", S.c_speech_create),
    _cmd(
        "speech load grammar",
        False,
        "SPEECH LOAD GRAMMAR <grammar name> <path to grammar>",
        S.c_speech_load_grammar,
    ),
    _cmd("speech unload grammar", True, "SPEECH UNLOAD GRAMMAR <grammar name>", S.c_speech_grammar),
    _cmd(
        "speech activate grammar",
        False,
        "SPEECH ACTIVATE GRAMMAR <grammar name>",
        S.c_speech_grammar,
    ),
    _cmd(
        "speech deactivate grammar",
        False,
        "SPEECH DEACTIVATE GRAMMAR <grammar name>",
        S.c_speech_grammar,
    ),
    _cmd(
        "speech recognize",
        False,
        "SPEECH RECOGNIZE <prompt> <timeout> [offset]",
        S.c_speech_recognize,
    ),
)

_APPLICATIONS: dict[str, Application] = {
    "answer": S.app_answer,
    "busy": S.app_busy,
    "congestion": S.app_busy,
    "dial": S.app_dial,
    "goto": S.app_goto,
    "hangup": S.app_hangup,
    "log": S.app_noop,
    "mixmonitor": S.app_mixmonitor,
    "mset": S.app_mset,
    "musiconhold": S.app_music_on_hold,
    "noop": S.app_noop,
    "playback": S.app_playback,
    "progress": S.app_noop,
    "ringing": S.app_noop,
    "set": S.app_set,
    "startmusiconhold": S.app_start_music_on_hold,
    "stopmixmonitor": S.app_stop_mixmonitor,
    "stopmusiconhold": S.app_stop_music_on_hold,
    "verbose": S.app_noop,
    "voicemail": S.app_voicemail,
    "wait": S.app_wait,
}
del S


def _find_command(argv: Sequence[str]) -> _Command | None:
    """find_command(argv, 0): the first entry whose words all match (case-insensitively);
    extra words are its arguments, a missing word is no match."""
    for command in _COMMANDS:
        n = len(command.words)
        if len(argv) >= n and all(
            a.lower() == w for a, w in zip(argv[:n], command.words, strict=True)
        ):
            return command
    return None


# -- the peer ------------------------------------------------------------------------------


class AgiPeer:
    """Plays Asterisk towards a FastAGI server at ``host:port``: one `call` per session.

    ``durations``: how long a played file lasts (seconds), by name as given,
    then by its basename; a file it does not know lasts ``default_prompt``
    seconds, or does not exist when that is None.  ``endpoints``: what each
    Dial target does (by exact target string; default: answers after 2 s).
    ``talk``: how long an answered call lasts when the endpoint does not say.
    ``database`` is the AstDB the DATABASE commands use, shared by all calls.
    ``device_states``: what ``DEVICE_STATE(<device>)`` reports for a device
    (``PJSIP/201`` -> ``INUSE``), which a test sets and changes as it likes;
    see `device_state`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        clock: Clock | None = None,
        durations: Durations | None = None,
        endpoints: Mapping[str, EndpointScript] | None = None,
        talk: float = 60.0,
        default_prompt: float | None = 2.0,
        subroutines: Mapping[str, Subroutine] | None = None,
        spool_dir: str = "/var/spool/asterisk",
    ) -> None:
        self.host = host
        self.spool_dir = spool_dir  # ASTSPOOLDIR (asterisk.conf astspooldir)
        self.subroutines = dict(subroutines or {})
        self.port = port
        self.clock = clock if clock is not None else Clock()
        self.durations = durations
        self.endpoints = dict(endpoints or {})
        self.talk = talk
        self.default_prompt = default_prompt
        self.database: dict[tuple[str, str], str] = {}
        self.device_states: dict[str, str] = {}
        self.device_reads: list[str] = []  # the devices DEVICE_STATE() was asked about
        self.calls: list[AgiCall] = []
        self._serial = itertools.count(1)

    def endpoint(self, target: str) -> EndpointScript:
        return self.endpoints.get(target, DEFAULT_ENDPOINT)

    def device_state(self, device: str) -> str:
        """``DEVICE_STATE(device)``, as funcs/func_devstate.c's ``devstate_read`` answers
        it: ``ast_devstate_str(ast_device_state(device))``, a state's name.  A
        ``Custom:name`` device is func_devstate.c's own provider
        (``custom_devstate_callback``): ``ast_devstate_val`` of AstDB key
        ``CustomDevstate/name`` (`database`).  Any other device reports what
        `device_states` says, read by its name's state name as ``ast_devstate_val``
        would (any case, else UNKNOWN).  Simplification: a device the test did not set
        is UNKNOWN -- what a channel driver that cannot tell reports -- whatever its
        `endpoints` script does when dialled; no channel of a call here changes it."""
        self.device_reads.append(device)
        tech, _, name = device.partition(":")
        if tech.lower() == "custom" and name:
            return devices.devstate_val(self.database.get(("CustomDevstate", name), ""))
        return devices.devstate_val(self.device_states.get(device, devices.UNKNOWN))

    def lookup_duration(self, name: str) -> float | None:
        """The length ``durations`` gives ``name`` (or its basename), else None."""
        durations = self.durations
        if durations is None:
            return None
        for candidate in dict.fromkeys((name, posixpath.basename(name))):
            if isinstance(durations, Mapping):
                value = durations.get(candidate)
            else:
                value = durations(candidate)
            if value is not None:
                return value
        return None

    def prompt_length(self, name: str) -> float | None:
        """How long ``name`` plays; None: no such file."""
        value = self.lookup_duration(name)
        return self.default_prompt if value is None else value

    async def run_subroutine(
        self, subroutine: Subroutine, context: str, caller: _Session, channel: str,
        script: EndpointScript, talk: float,
    ) -> AgiCall:  # fmt: skip
        """``subroutine`` on the answered ``channel`` (a new FastAGI session): the
        variables the caller set with ``_``/``__`` are inherited (main/channel.c,
        ast_channel_inherit_variables); the person there presses ``script``'s
        ``confirm_key`` ``confirm_after`` seconds after a playback containing
        ``confirm_on`` starts, and hangs up ``talk`` seconds after answering."""
        inherited = {
            name: caller.call.variables[name]
            for name in caller.call.inherited
            if name in caller.call.variables
        }
        presses: tuple[Press, ...] = ()
        if script.confirm_key is not None:
            presses = (
                Press(
                    script.confirm_key, on_playback=script.confirm_on, delay=script.confirm_after
                ),
            )
        return await self.call(
            subroutine.path,
            caller=caller.caller or None,
            caller_name=caller.caller_name or None,
            dnid=None,
            extension="s",
            context=context,
            channel=channel,
            language=caller.language,
            script=CallerScript(presses, hangup_after=talk),
            variables=inherited,
            subroutine=True,
        )

    async def call(
        self,
        path: str = "scenario",
        *,
        caller: str | None = "79161234567",
        caller_name: str | None = None,
        dnid: str | None = "74951234567",
        extension: str = "74951234567",
        context: str = "from-trunk",
        channel: str = "PJSIP/trunk-00000001",
        language: str = "en",
        args: Sequence[str] = (),
        script: CallerScript | None = None,
        variables: Mapping[str, str] | None = None,
        uniqueid: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 -- the API: a real-time guard over the whole call
        subroutine: bool = False,
    ) -> AgiCall:
        """Connect, run one FastAGI session until the server closes it, and return it.

        ``timeout``: real seconds after which the peer gives up and closes the
        socket itself (``closed_by="peer"``).  ``subroutine``: a session a Dial's
        ``U()`` opened on an answered channel (`run_subroutine`): up already, and not
        one of `calls`.
        """
        serial = next(self._serial)
        uniqueid = uniqueid or f"1733050000.{serial}"
        env = environment_block(
            path,
            host=self.host,
            port=self.port,
            channel=channel,
            language=language,
            uniqueid=uniqueid,
            caller=caller,
            caller_name=caller_name,
            dnid=dnid,
            context=context,
            extension=extension,
            args=args,
            threadid=140000000 + serial - 1,
        )
        record = AgiCall(
            request=request_url(self.host, self.port, path),
            channel=channel,
            uniqueid=uniqueid,
            context=context,
            extension=extension,
            variables=dict(variables or {}),
        )
        if not subroutine:
            self.calls.append(record)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        session = _Session(
            self,
            reader,
            writer,
            record,
            script or CallerScript(),
            t0=self.clock.now(),
            caller=caller,
            caller_name=caller_name,
            language=language,
        )
        if subroutine:
            session.state = STATE_UP
            session.answered_at = 0.0
            record.answered = True
        lines = asyncio.create_task(session.read_lines())
        try:
            async with asyncio.timeout(timeout):
                await session.run(env)
        except TimeoutError:
            record.closed_by = "peer"
        finally:
            record.duration = session.now()
            record.language = session.language
            lines.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lines
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return record
