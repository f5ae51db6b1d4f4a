"""The prompts in every format on a real Asterisk (issue 13).

Needs, besides the suite's setup (conftest.py), the prompts installed in every
format into that Asterisk's sounds folder:

    switchboard sounds install --to /var/lib/asterisk/sounds \\
        --formats wav,ulaw,alaw,g722,sln16

Asterisk indexes its sounds folder again for each ``GET /sounds``, so no reload
is needed.  It must list each file under the format its extension names, and play
the G.722 one, in real time, to a channel that speaks only G.722.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from switchboard.sounds import sounds_dir
from tests.real_asterisk.harness import PHONES, AsteriskError, Json, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]

SOUNDS = Path(str(sounds_dir()))  # the shipped prompts
# file extension -> the name of the format Asterisk reads it as (ast_format_get_name)
FORMAT_NAMES = {"wav": "slin", "ulaw": "ulaw", "alaw": "alaw", "g722": "g722", "sln16": "slin16"}
INSTALL = "switchboard sounds install --to <sounds folder> --formats wav,ulaw,alaw,g722,sln16"


def shipped(lang: str) -> list[str]:
    return sorted(p.stem for p in (SOUNDS / lang / "switchboard").glob("*.wav"))


def seconds(lang: str, name: str) -> float:
    for row in (SOUNDS / "durations.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        prompt, language, length = row.split("\t")
        if (prompt, language) == (name, lang):
            return float(length)
    raise LookupError(name)


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_asterisk_finds_every_prompt_in_every_format(pbx: RealAsterisk, lang: str) -> None:
    listed = await pbx.request("GET", "/sounds", {"lang": lang})
    formats = {
        sound["id"]: {f["format"] for f in sound["formats"] if f["language"] == lang}
        for sound in listed
        if sound["id"].startswith("switchboard/")
    }
    for name in shipped(lang):
        found = formats.get(f"switchboard/{name}", set())
        missing = set(FORMAT_NAMES.values()) - found
        assert not missing, f"{lang}/switchboard/{name}: no {sorted(missing)}; run {INSTALL}"


async def test_a_g722_channel_hears_the_g722_prompt_played_through(pbx: RealAsterisk) -> None:
    name = "main-menu"
    await pbx.phone("2999", "answer:0:30")  # answers at once, stays 30 s
    channel = await pbx.request(
        "POST",
        "/channels",
        {
            "endpoint": f"Local/2999@{PHONES}/n",
            "app": pbx.caller_app,
            "formats": "g722",  # this side speaks G.722 only: the .g722 file needs no translation
            "timeout": 30,
        },
    )
    await pbx.wait_event(
        lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == channel["id"], within=10
    )
    try:
        playback = await pbx.request(
            "POST", f"/channels/{channel['id']}/play", {"media": f"sound:switchboard/{name}"}
        )
        loop = asyncio.get_running_loop()

        def of_ours(kind: str) -> Callable[[Json], bool]:
            return lambda e: e["type"] == kind and e["playback"]["id"] == playback["id"]

        await pbx.wait_event(of_ours("PlaybackStarted"), within=5)
        started = loop.time()
        finished = await pbx.wait_event(of_ours("PlaybackFinished"), within=30)
        took = loop.time() - started
        assert finished["playback"]["state"] == "done"
        assert took == pytest.approx(seconds("en", name), abs=0.5)  # 8000 bytes a second
    finally:
        with contextlib.suppress(AsteriskError):  # gone already
            await pbx.request("DELETE", f"/channels/{channel['id']}")
