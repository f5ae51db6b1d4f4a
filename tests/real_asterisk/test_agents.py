"""Agents on a real Asterisk 22 (issue 11): a phone busy with a call of its own is not
offered a queue call, as Asterisk's device state says.

The suite's phones are Local channels into ``switchboard-test-phones``; the device
of the desk ``201`` is ``Local/201@switchboard-test-phones`` (main/core_local.c),
which Switchboard follows over ARI (``deviceState:`` subscription, ``GET
/deviceStates/Local%2F201%40switchboard-test-phones``).  The test gives 201 a call
Switchboard never placed, then calls the queue."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from switchboard.config.company import Company
from tests.real_asterisk.conftest import Running, example
from tests.real_asterisk.harness import PHONES, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
Start = Callable[[Company], AbstractAsyncContextManager[Running]]
CENTRE_NUMBER = "74951112233"


def _centre(data: dict[str, Any]) -> None:
    support = data["departments"][0]
    support.update(strategy="one_by_one", ring_delay=3, ring_timeout=9)
    nodes = data["scenarios"]["support"]["nodes"]
    nodes["returning"].update(ring_timeout=5)
    nodes["returning"]["sources"] = nodes["returning"]["sources"][:2]  # no CRM here
    nodes["queue"].update(max_wait=30, announce_every=0)


CENTRE = example("call-centre.yaml", _centre)


async def test_a_desk_phone_on_its_own_call_is_skipped_until_it_hangs_up(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    # sidorova (201) is first in support's order; her phone is on another call
    await pbx.phone("201", "answer:0:600")
    await pbx.phone("202", "answer:1:2")
    await pbx.phone("203", "answer:1:2")
    async with switchboard(CENTRE) as sb:
        runtime = sb.app.runtime
        assert runtime.devices.get(f"Local/201@{PHONES}") == "sidorova"
        own = await pbx.request(
            "POST",
            "/channels",
            {"endpoint": f"Local/201@{PHONES}/n", "app": pbx.caller_app, "timeout": 30},
        )
        await pbx.wait_event(
            lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == own["id"], within=10
        )
        # Asterisk tells every subscriber, the test's app (subscribeAll) and Switchboard's
        await pbx.wait_event(
            lambda e: (
                e["type"] == "DeviceStateChanged"
                and e["device_state"]["name"] == f"Local/201@{PHONES}"
                and e["device_state"]["state"] == "INUSE"
            ),
            within=10,
        )
        first = await pbx.call(CENTRE_NUMBER, "79035550001")
        record = await sb.record(first)
        assert (record.outcome.result, record.outcome.agent) == ("connected", "kuznetsova")
        rung = [c["name"].split("@")[0] for c in pbx.created() if c["id"] != own["id"]]
        assert rung == ["Local/202"]
        await pbx.request("DELETE", f"/channels/{own['id']}")
        await pbx.phone("201", "answer:1:2")
        second = await pbx.call(CENTRE_NUMBER, "79035550002")
        record = await sb.record(second)
        channels, bridges = await pbx.settled()
    assert (channels, bridges) == ([], []), "left behind in Asterisk"
    assert record.outcome.agent == "sidorova"  # free again: first in the order
