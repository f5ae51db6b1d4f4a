"""The caller-ID name an employee's phone shows, on a real Asterisk 22 (issue 15).

The suite's phones are Local channels into ``switchboard-test-phones``: the ``;2``
half that runs the phone's dialplan has for caller ID the connected line of the
``;1`` half Switchboard created (main/core_unreal.c, ast_unreal_call_setup) -- what a
SIP phone would show in its From header.  A department's ``caller_id_name`` is
that name; without one it is the caller's own.
"""

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

CONFIG = f"""
timezone: Europe/Moscow
employees:
  - {{id: e108, name: E108, extension: "108"}}
  - {{id: e109, name: E109, extension: "109"}}
departments:
  - {{id: sales, members: [e108], caller_id_name: "[Sales] {{caller_name}}"}}
  - {{id: support, members: [e109]}}
numbers:
  - {{number: "74951110001", scenario: sales}}
  - {{number: "74951110002", scenario: support}}
asterisk:
  app: {APP}
  endpoints: {{employee: "Local/{{extension}}@{PHONES}/n", mobile: "Local/{{number}}@{PHONES}/n"}}
scenarios:
  sales:
    start: ring
    nodes:
      ring: {{type: dial, target: sales, ring_timeout: 20, noanswer: bye}}
      bye: {{type: hangup}}
  support:
    start: ring
    nodes:
      ring: {{type: dial, target: support, ring_timeout: 20, noanswer: bye}}
      bye: {{type: hangup}}
"""


def shown(pbx: RealAsterisk, extension: str) -> set[tuple[str, str]]:
    """The caller IDs the phone ``extension``'s own half had, by Asterisk's events."""
    prefix = f"Local/{extension}@{PHONES}-"
    found = set()
    for event in pbx.events:
        channel: dict[str, Any] = event.get("channel", {})
        if channel.get("name", "").startswith(prefix) and channel["name"].endswith(";2"):
            caller = channel.get("caller", {})
            if event["type"] == "ChannelStateChange" and channel.get("state") == "Up":
                found.add((caller.get("name", ""), caller.get("number", "")))
    return found


async def test_the_departments_name_is_the_caller_id_the_phone_gets(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("108", "answer:1:1")
    await pbx.phone("109", "answer:1:1")
    company = load_text(CONFIG, "caller-id.yaml").raise_for_errors()
    async with switchboard(company) as sb:
        for called in ("74951110001", "74951110002"):
            call = await pbx.call(called, "79035550001", name="Anna")
            record = await sb.record(call)
            assert record.outcome.result == "connected"
    assert shown(pbx, "108") == {("[Sales] Anna", "79035550001")}
    assert shown(pbx, "109") == {("Anna", "79035550001")}
