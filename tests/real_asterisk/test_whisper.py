"""Whisper on a real Asterisk 22 (issue 15): the employee's Local channel hears the
announcement before it enters the bridge with the caller, read from Asterisk's own
events (PlaybackStarted / PlaybackFinished on the leg Switchboard created, then its
ChannelEnteredBridge)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from switchboard.config.company import Company
from switchboard.config.load import load_text
from tests.real_asterisk.conftest import Running
from tests.real_asterisk.harness import APP, PHONES, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
Start = Callable[[Company], AbstractAsyncContextManager[Running]]
CALLER = "79035550001"

CONFIG = f"""
timezone: Europe/Moscow
employees: [{{id: e110, name: E110, extension: "110"}}]
departments:
  - {{id: sales, members: [e110], whisper: {{prompts: [please-hold, "digits:{{line}}7"]}}}}
numbers: [{{number: "74951110003", scenario: main}}]
asterisk:
  app: {APP}
  endpoints: {{employee: "Local/{{extension}}@{PHONES}/n", mobile: "Local/{{number}}@{PHONES}/n"}}
scenarios:
  main:
    start: ring
    nodes:
      ring: {{type: dial, target: sales, ring_timeout: 20, noanswer: bye}}
      bye: {{type: hangup}}
"""


def at(events: list[dict[str, Any]], match: Callable[[dict[str, Any]], bool]) -> int:
    """The position of the first event ``match`` es (Asterisk's order: one websocket)."""
    return next(i for i, e in enumerate(events) if match(e))


async def test_the_whisper_is_heard_on_the_employees_leg_before_the_bridge(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("110", "answer:1:8")  # talks past the whisper (some 3 s)
    company = load_text(CONFIG, "whisper.yaml").raise_for_errors()
    async with switchboard(company) as sb:
        call = await pbx.call("74951110003", CALLER)
        record = await sb.record(call)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "e110")
    (leg,) = [c["id"] for c in pbx.created()]  # the ;1 half Switchboard made
    events = pbx.events
    target = f"channel:{leg}"
    started = at(events, lambda e: e["type"] == "PlaybackStarted"
                 and e["playback"]["target_uri"] == target)  # fmt: skip
    finished = at(events, lambda e: e["type"] == "PlaybackFinished"
                  and e["playback"]["target_uri"] == target)  # fmt: skip
    bridged = at(events, lambda e: e["type"] == "ChannelEnteredBridge"
                 and e["channel"]["id"] == leg)  # fmt: skip
    playback = events[started]["playback"]
    assert playback["media_uri"] == "sound:switchboard/please-hold"  # the first prompt
    assert started < finished < bridged
