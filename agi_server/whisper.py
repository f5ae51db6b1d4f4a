"""Whisper over FastAGI: what an answered employee hears before the caller is put through.

The call's `Dial()` gets ``U(switchboard-whisper)`` (`agi_server.call`), and the caller's
channel the whisper in variables its callees inherit (one ``_``): the media
(`WHISPER`), their language and the refuse key.  Asterisk runs
``[switchboard-whisper]`` on the answered phone before bridging it
(``dialplan/extensions-switchboard-agi.conf``; app_dial.c, OPT_CALLEE_GOSUB):
``AGI(agi://…/whisper)`` -- `whisper` here, on the phone's channel -- then
``Return(${SWITCHBOARD_WHISPER_RESULT})``, which Dial hands to the caller's channel
as ``GOSUB_RETVAL``:

- ``accepted:<seconds>``: the whisper was heard to its end, in that many seconds;
  ``GOSUB_RESULT=ACCEPT`` (a value app_dial.c does not act on) makes Dial hand the
  return value over -- it does only when GOSUB_RESULT is set -- and bridge the two;
- ``refused``: the refuse key was pressed; ``GOSUB_RESULT=CONTINUE`` makes Dial hang the
  phone up and return (DIALSTATUS stays ANSWER), and the call rings on as after a
  no-answer.

A phone hung up during the whisper never returns: ``GOSUB_RETVAL`` stays empty, which
the call reads as not taken too.  The caller hears ringing or hold music meanwhile
(app_dial.c stops them only when it bridges).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from agi_server.protocol import AgiSession
from switchboard.clock import Clock

log = structlog.get_logger("switchboard.agi")

# set on the caller's channel before the Dial, inherited by each callee (one "_")
WHISPER = "_SWITCHBOARD_WHISPER"  # the media: file:X, number:N, digits:N, &-joined
WHISPER_LANGUAGE = "_SWITCHBOARD_WHISPER_LANGUAGE"
REFUSE_KEY = "_SWITCHBOARD_REFUSE_KEY"  # "" : no refusing
CONTEXT = "switchboard-whisper"  # the subroutine Dial's U() runs (the shipped dialplan)
RESULT = "SWITCHBOARD_WHISPER_RESULT"  # on the callee; the subroutine returns it
ACCEPTED = "accepted"
REFUSED = "refused"
# AGI commands by the media's kind, as `AgiCallSettings.media` gives them
_KINDS = {"STREAM FILE": "file", "SAY NUMBER": "number", "SAY DIGITS": "digits"}
_COMMANDS = {kind: command for command, kind in _KINDS.items()}


def whisper_media(plays: Iterable[tuple[str, str]]) -> str:
    """The `WHISPER` value of (AGI command, argument) pairs (`AgiCallSettings.media`).
    An ``&`` inside a value (a caller's digits are the caller's) is dropped: it would
    split the list."""
    return "&".join(f"{_KINDS[command]}:{value.replace('&', '')}" for command, value in plays)


def parse_media(text: str) -> list[tuple[str, str]]:
    """(AGI command, argument) pairs back from a `WHISPER` value; unknown kinds skipped."""
    found: list[tuple[str, str]] = []
    for item in text.split("&"):
        kind, _, value = item.partition(":")
        command = _COMMANDS.get(kind)
        if command is not None and value:
            found.append((command, value))
    return found


def accepted(retval: str) -> float | None:
    """The whisper's seconds when ``GOSUB_RETVAL`` says the callee took the call; None:
    refused, or hung up during it (nothing returned)."""
    kind, _, seconds = retval.partition(":")
    if kind != ACCEPTED:
        return None
    try:
        return max(0.0, float(seconds))
    except ValueError:
        return 0.0


async def whisper(session: AgiSession, clock: Clock) -> None:
    """``agi://…/whisper``, on the answered phone's channel: play the inherited
    whisper, listening for the refuse key, and leave the verdict for the subroutine's
    ``Return``."""
    variables = {}
    for name in (WHISPER, WHISPER_LANGUAGE, REFUSE_KEY):
        plain = name.lstrip("_")
        answer = await session.command("GET", "VARIABLE", plain)
        variables[plain] = answer.data if answer.result == 1 else ""
    media = parse_media(variables[WHISPER.lstrip("_")])
    key = variables[REFUSE_KEY.lstrip("_")][:1]
    language = variables[WHISPER_LANGUAGE.lstrip("_")]
    if language and language != session.env.language:
        await session.command("SET", "VARIABLE", "CHANNEL(language)", language)
    start = clock.now()
    for command, value in media:
        answer = await session.command(*command.split(), value, key)
        if session.hung_up or answer.result < 0:
            return  # the phone hung up: the subroutine never returns
        if key and answer.result > 0 and chr(answer.result) == key:
            log.info("whisper refused", channel=session.env.channel)
            await session.command("SET", "VARIABLE", "GOSUB_RESULT", "CONTINUE")
            await session.command("SET", "VARIABLE", RESULT, REFUSED)
            return
    heard = round(clock.now() - start, 3)
    # a GOSUB_RESULT app_dial.c does not know: it bridges the two as usual, and only
    # with one set does it hand the subroutine's return value to the caller's channel
    await session.command("SET", "VARIABLE", "GOSUB_RESULT", "ACCEPT")
    await session.command("SET", "VARIABLE", RESULT, f"{ACCEPTED}:{heard}")
