"""Transfers on a real Asterisk 22 (issue 11): an employee's SIP phone transfers the
caller with a REFER, blind or attended, and Switchboard follows the call to its end.

The employee's phone is SIPp running ``sipp/refer_uas.xml`` on 127.0.0.1:5070: it
answers, talks ``talk_ms``, sends ``REFER`` to ``transfer_to``, and hangs up after
Asterisk's final NOTIFY (RFC 5589).  It needs, besides the suite's usual set-up:

- ``SWITCHBOARD_TEST_SIPP``: the ``sipp`` binary (else this test is skipped);
- a PJSIP endpoint whose contact is ``sip:...@127.0.0.1:5070``,
  ``SWITCHBOARD_TEST_SIPP_ENDPOINT`` (default ``op``), ``allow_transfer`` on (the
  default), whose context answers ``SWITCHBOARD_TEST_TRANSFER_TO`` (default ``777``)
  and hangs up a moment later (e.g. ``Answer() / Playback(beep) / Wait(1) /
  Hangup()``).

Seen on Asterisk 22.10.1 (main/bridge.c blind_transfer_bridge): the Local channel
``777@<context>`` enters the app with ``replace_channel`` naming the phone's
channel, Asterisk swaps it into Switchboard's bridge, then ``BridgeBlindTransfer``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from switchboard.acd.agents import Agent
from switchboard.calls import CallRecord
from switchboard.config.company import Company
from switchboard.config.load import load_text
from tests.real_asterisk.conftest import Running
from tests.real_asterisk.harness import APP, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
Start = Callable[[Company], AbstractAsyncContextManager[Running]]

SIPP = os.environ.get("SWITCHBOARD_TEST_SIPP", "")
PHONE = os.environ.get("SWITCHBOARD_TEST_SIPP_ENDPOINT", "op")
TRANSFER_TO = os.environ.get("SWITCHBOARD_TEST_TRANSFER_TO", "777")
SCENARIO = Path(__file__).parent / "sipp" / "refer_uas.xml"
ATTENDED = Path(__file__).parent / "sipp" / "attended_uas.xml"
CONSULT_TO = os.environ.get("SWITCHBOARD_TEST_CONSULT_TO", "778")
NUMBER, CALLER = "74950001122", "79035550000"
TALK_MS = 3000

CONFIG = f"""
timezone: Europe/Moscow
asterisk:
  app: {APP}
  endpoints: {{employee: "PJSIP/{PHONE}"}}
employees:
  - {{id: ivanov, name: Ivan Ivanov, extension: "201"}}
departments:
  - {{id: sales, strategy: all_at_once, ring_timeout: 20, wrapup: 30, members: [ivanov]}}
numbers: [{{number: "{NUMBER}", scenario: main}}]
scenarios:
  main:
    start: wait
    nodes:
      wait: {{type: queue, department: sales, announce_every: 0, max_wait: 60, overflow: bye}}
      bye: {{type: hangup}}
"""


async def transferred_call(
    pbx: RealAsterisk, switchboard: Start, folder: Path, scenario: Path, *sets: str
) -> tuple[CallRecord, Agent]:
    """A caller queued to ivanov, whose phone is SIPp running ``scenario`` (``sets``: its
    ``-set NAME VALUE`` pairs); the record, and ivanov as the ACD left him.  The phone
    must end its part with exit 0; Asterisk is left with no channel and no bridge."""
    company = load_text(CONFIG, "transfer.yaml").raise_for_errors()
    variables = [
        word for pair in zip(sets[::2], sets[1::2], strict=True) for word in ("-set", *pair)
    ]
    phone = await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", "5070", "-m", "1", "-nostdin",
        *variables, "-set", "talk_ms", str(TALK_MS),
        "-timeout", "40s", "-timeout_error", "-trace_err",
        cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with switchboard(company) as sb:
            call = await pbx.call(NUMBER, CALLER)
            record = await sb.record(call, within=40)
            ivanov = sb.app.runtime.acd.agents["ivanov"]
            # his part ended with the transfer: his wrap-up (30 s) outlasts the target's talk
            assert (ivanov.state, ivanov.stats.calls) == ("wrapup", 1)
            assert await pbx.settled() == ([], []), "left behind in Asterisk"
        async with asyncio.timeout(30):
            out, _ = await phone.communicate()
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
    assert phone.returncode == 0, out.decode(errors="replace")[-2000:]
    outcome = record.outcome
    assert (outcome.result, outcome.agent, outcome.reason) == (
        "connected", "ivanov", "transfer target hung up",
    )  # fmt: skip
    assert (outcome.extra["transfers"], outcome.extra["ended_by"]) == (1, "transfer target")
    return record, ivanov


@pytest.mark.skipif(not SIPP, reason="no SIPp: set SWITCHBOARD_TEST_SIPP to run")
async def test_a_phones_blind_transfer_is_followed_to_the_end_and_recorded(
    pbx: RealAsterisk, switchboard: Start, tmp_path: Path
) -> None:
    record, ivanov = await transferred_call(
        pbx, switchboard, tmp_path, SCENARIO, "transfer_to", TRANSFER_TO
    )
    assert str(record.outcome.extra["transferred_to"]).startswith(f"{TRANSFER_TO}@")
    assert ivanov.stats.talk == pytest.approx(TALK_MS / 1000, abs=1.5)  # up to the transfer


@pytest.mark.skipif(not SIPP, reason="no SIPp: set SWITCHBOARD_TEST_SIPP to run")
async def test_a_phones_attended_transfer_is_followed_to_the_end_and_recorded(
    pbx: RealAsterisk, switchboard: Start, tmp_path: Path
) -> None:
    """The phone holds the caller, calls a colleague (``CONSULT_TO`` in the endpoint's
    context: answered, then hung up a moment later) and transfers the caller to that
    call.  Asterisk puts ``Local/_attended@transfer`` into Switchboard's bridge in place
    of the phone's channel (main/bridge.c attended_transfer_bridge); its other half
    takes the colleague's place."""
    record, _ = await transferred_call(
        pbx, switchboard, tmp_path, ATTENDED, "consult_to", CONSULT_TO, "consult_ms", "300"
    )
    [transferred] = [e for s in record.steps for e in s.events if e["event"] == "transferred"]
    assert transferred["kind"] == "attended"
