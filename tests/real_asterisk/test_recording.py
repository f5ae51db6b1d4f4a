"""Conversation recording on a real Asterisk 22 (issue 15): the bridge Switchboard made
is recorded (``POST /bridges/{id}/record``), and the file appears in Asterisk's
recording folder under the call's id -- read back through Asterisk's own
``/recordings/stored``.  Under ``record: on_demand`` the recording starts only when
the employee presses the key (their phone sends *3)."""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest

from switchboard.config.company import Company
from switchboard.config.load import load_text
from tests.real_asterisk.conftest import Running
from tests.real_asterisk.harness import APP, PHONES, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
Start = Callable[[Company], AbstractAsyncContextManager[Running]]
CALLER = "79035550002"

CONFIG = f"""
timezone: Europe/Moscow
employees:
  - {{id: e120, name: E120, extension: "120"}}
  - {{id: e121, name: E121, extension: "121"}}
departments:
  - {{id: sales, members: [e120], record: always}}
  - {{id: support, members: [e121], record: on_demand}}
recording: {{notice: [please-hold]}}
numbers:
  - {{number: "74951110004", scenario: sales}}
  - {{number: "74951110005", scenario: support}}
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


async def stored_seconds(pbx: RealAsterisk, name: str) -> float:
    """The stored recording's length, from its file as Asterisk serves it."""
    stored = await pbx.request("GET", f"/recordings/stored/{name}")
    assert stored["format"] == "wav"
    token = base64.b64encode(f"{pbx.user}:{pbx.password}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http:
        url = f"{pbx.url.rstrip('/')}/ari/recordings/stored/{name}/file"
        async with http.get(url) as response:
            assert response.status == 200
            data = await response.read()
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() / wav.getframerate()


def first(events: list[dict[str, Any]], match: Callable[[dict[str, Any]], bool]) -> int:
    return next(i for i, e in enumerate(events) if match(e))


async def test_an_always_recorded_conversation_leaves_a_file_under_the_call_id(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("120", "answer:1:4")
    company = load_text(CONFIG, "recording.yaml").raise_for_errors()
    async with switchboard(company) as sb:
        call = await pbx.call("74951110004", CALLER)
        record = await sb.record(call)
    name = f"switchboard-{record.call_id}-conversation"
    try:
        assert (record.outcome.result, record.outcome.agent) == ("connected", "e120")
        assert record.outcome.extra["recording"] == "conversation"
        events = pbx.events
        started = first(events, lambda e: e["type"] == "RecordingStarted"
                        and e["recording"]["name"] == name)  # fmt: skip
        assert events[started]["recording"]["target_uri"] == f"bridge:{record.call_id}-bridge"
        seconds = await stored_seconds(pbx, name)
        assert 2.0 <= seconds <= 6.0  # the 4 s conversation
    finally:
        await pbx.request("DELETE", f"/recordings/stored/{name}")


async def test_on_demand_the_recording_starts_when_the_employee_presses_the_key(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("121", "ondemand:1:4")
    company = load_text(CONFIG, "recording.yaml").raise_for_errors()
    async with switchboard(company) as sb:
        call = await pbx.call("74951110005", CALLER)
        record = await sb.record(call)
    name = f"switchboard-{record.call_id}-conversation"
    try:
        assert record.outcome.extra["recording"] == "conversation"
        (leg,) = [c["id"] for c in pbx.created() if c["dialplan"]["exten"] == "121"]
        events = pbx.events
        pressed = first(events, lambda e: e["type"] == "ChannelDtmfReceived"
                        and e["channel"]["id"] == leg and e["digit"] == "3")  # fmt: skip
        started = first(events, lambda e: e["type"] == "RecordingStarted"
                        and e["recording"]["name"] == name)  # fmt: skip
        assert pressed < started
        assert 1.0 <= await stored_seconds(pbx, name) <= 5.0
    finally:
        await pbx.request("DELETE", f"/recordings/stored/{name}")
