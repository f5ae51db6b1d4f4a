"""The three examples' main paths on a real Asterisk 22, with nothing left behind.

Each test starts Switchboard's Stasis app on the Asterisk named by
``SWITCHBOARD_TEST_ARI_URL``, sets what each employee's phone does, calls in
through a Local channel (see ``conftest`` and the test dialplan) and reads the
call's record; then, with Switchboard still running, Asterisk's own channel and
bridge lists must be empty.  Timings are the examples' own, shortened.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from switchboard.config.company import Company
from tests.real_asterisk.conftest import Running, example
from tests.real_asterisk.harness import RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]

Start = Callable[[Company], AbstractAsyncContextManager[Running]]
OFFICE_NUMBER = "74951234567"
CALLER = "79035550000"


def _office(data: dict[str, Any]) -> None:
    ivanov = data["employees"][0]
    ivanov["forward_to_mobile_after"] = 2
    sales, support = data["departments"]
    sales.update(ring_delay=8, ring_timeout=16)
    support.update(ring_timeout=8)
    nodes = data["scenarios"]["office"]["nodes"]
    nodes["menu"].update(wait=3)
    nodes["voicemail"].update(max_length=2)


def _centre(data: dict[str, Any]) -> None:
    data["departments"][0].update(ring_delay=3, ring_timeout=9)
    nodes = data["scenarios"]["support"]["nodes"]
    nodes["returning"].update(ring_timeout=5)
    nodes["returning"]["sources"] = nodes["returning"]["sources"][:2]  # no CRM here
    nodes["queue"].update(max_wait=14, announce_every=5)
    nodes["voicemail"].update(max_length=2)


def _multi(data: dict[str, Any]) -> None:
    for department in data["departments"]:
        department.update(ring_delay=3, ring_timeout=9)
    data["scenarios"]["inbound"]["nodes"]["voicemail"]["max_length"] = 2


OFFICE = example("office.yaml", _office)
CENTRE = example("call-centre.yaml", _centre)
MULTI = example("multi-number.yaml", _multi)


async def nothing_left(pbx: RealAsterisk) -> None:
    assert await pbx.settled() == ([], []), "left behind in Asterisk"


# --- office.yaml ------------------------------------------------------------------------


async def test_menu_key_2_rings_support_all_at_once_and_the_first_to_answer_takes_it(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("103", "answer:2:2")
    await pbx.phone("104", "noanswer")
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        await call.prompt("main-menu")
        await call.press("2")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "sidorova")
    assert [s.node for s in record.steps][-1] == "ring_support"
    assert len(pbx.created()) == 2  # both support phones rang, once each


async def test_an_extension_dialled_in_the_menu_rings_that_employee(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("104", "answer:1:2")
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        await call.prompt("main-menu")
        await call.press("104")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "kuznetsova")
    assert [c["name"].split("@")[0] for c in pbx.created()] == ["Local/104"]


async def test_sales_rings_ivan_then_his_mobile_which_takes_the_call_after_pressing_1(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("101", "noanswer")
    await pbx.phone("79161234567", "confirm:1:2")
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        await call.prompt("main-menu")  # no key: the menu's default, sales
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "ivanov")
    assert [c["name"].split("@")[0] for c in pbx.created()] == ["Local/101", "Local/79161234567"]


async def test_a_mobile_voicemail_never_takes_the_call_and_sales_moves_on_to_petrov(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("101", "noanswer")
    await pbx.phone("79161234567", "voicemail:1")
    await pbx.phone("102", "answer:1:2")
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        await call.prompt("main-menu")
        await call.press("1")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")


async def test_nobody_in_sales_answers_and_the_caller_leaves_a_message(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    for number in ("101", "102", "79161234567"):
        await pbx.phone(number, "noanswer")
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        await call.prompt("main-menu")
        await call.press("1")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert record.outcome.result == "voicemail"
    assert [s.node for s in record.steps][-3:] == ["ring_sales", "voicemail", "goodbye"]
    assert len(sb.sink.messages) == 1


@pytest.mark.parametrize(
    ("stage", "last_node"),
    [("greeting", "welcome"), ("menu", "menu"), ("ringing", "ring_sales"),
     ("talking", "ring_sales")],
)  # fmt: skip
async def test_the_caller_hanging_up_at_any_stage_leaves_nothing_behind(
    pbx: RealAsterisk, switchboard: Start, stage: str, last_node: str
) -> None:
    await pbx.phone("101", "answer:1:30" if stage == "talking" else "noanswer")
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        if stage == "greeting":
            await call.prompt("greeting-")
        elif stage == "menu":
            await call.prompt("main-menu")
        else:
            await call.prompt("main-menu")
            await call.press("1")
            await pbx.wait_event(
                lambda e: (
                    e["type"] == ("Dial" if stage == "ringing" else "ChannelEnteredBridge")
                    and (e.get("peer") or e.get("channel", {}))
                    .get("name", "")
                    .startswith("Local/101")
                ),
                within=10,
            )
        await call.hang_up()
        record = await sb.record(call)
        await nothing_left(pbx)
    expected = "connected" if stage == "talking" else "abandoned"
    assert record.outcome.result == expected
    assert [s.node for s in record.steps][-1] == last_node


# --- multi-number.yaml --------------------------------------------------------------------


async def test_support_cascade_adds_petrov_while_sidorova_rings_and_he_takes_it(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("103", "noanswer")
    await pbx.phone("102", "answer:1:2")
    async with switchboard(MULTI) as sb:
        call = await pbx.call("74959876543", CALLER)
        await call.prompt("support-menu")
        await call.press("1")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "petrov")
    assert [c["name"].split("@")[0] for c in pbx.created()] == ["Local/103", "Local/102"]


async def test_sales_all_busy_goes_to_reception(pbx: RealAsterisk, switchboard: Start) -> None:
    await pbx.phone("101", "busy")
    await pbx.phone("102", "congestion")
    await pbx.phone("100", "answer:1:2")
    async with switchboard(MULTI) as sb:
        call = await pbx.call("74951234567", CALLER)
        await call.prompt("sales-menu")
        await call.press("1")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "reception")


# --- call-centre.yaml ---------------------------------------------------------------------


async def test_a_queue_whose_members_are_busy_overflows_at_max_wait_ringing_each_per_retry(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    for number in ("201", "202", "203"):
        await pbx.phone(number, "busy")
    async with switchboard(CENTRE) as sb:
        call = await pbx.call("74951112233", CALLER)
        record = await sb.record(call)
        await nothing_left(pbx)
    assert record.outcome.result == "voicemail"
    assert [s.node for s in record.steps][-3:] == ["queue", "voicemail", "goodbye"]
    # 14 s in the queue, each member offered at most once per `retry` (5 s): no runaway
    assert 3 <= len(pbx.created()) <= 3 * 3


async def test_a_queued_caller_gets_the_member_who_frees_up(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("201", "answer:1:6")
    await pbx.phone("202", "busy")
    await pbx.phone("203", "busy")
    async with switchboard(CENTRE) as sb:
        first = await pbx.call("74951112233", "79035550001")
        await pbx.wait_event(lambda e: e["type"] == "ChannelEnteredBridge", within=20)
        await pbx.phone("201", "answer:1:1")
        second = await pbx.call("74951112233", "79035550002")
        records = [await sb.record(first), await sb.record(second)]
        await nothing_left(pbx)
    assert [(r.outcome.result, r.outcome.agent) for r in records] == [
        ("connected", "sidorova"),
        ("connected", "sidorova"),
    ]
    assert records[1].outcome.wait >= 3  # waited for sidorova's first call to end


async def test_the_callback_key_in_the_queue_takes_a_call_back(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    for number in ("201", "202", "203"):
        await pbx.phone(number, "busy")
    async with switchboard(CENTRE) as sb:
        call = await pbx.call("74951112233", CALLER)
        await call.answered()
        await call.prompt("callback-offer")
        await call.press("1")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert record.outcome.result == "callback"
    assert [(c.number, c.department) for c in sb.sink.callbacks] == [(CALLER, "support")]


async def test_a_known_customer_is_put_through_to_their_manager(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    await pbx.phone("101", "answer:1:2")
    async with switchboard(CENTRE) as sb:
        call = await pbx.call("74951112233", "79161112233")
        record = await sb.record(call)
        await nothing_left(pbx)
    assert (record.outcome.result, record.outcome.agent) == ("connected", "ivanov")


async def test_a_calls_record_joins_asterisks_cdr_by_uniqueid_and_linkedid(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    """Issue 12: the caller's channel carries ``SWITCHBOARD_CALL_ID`` and
    ``SWITCHBOARD_SCENARIO`` (Asterisk's CDR and CEL can keep them), and the record
    stores the channel's uniqueid and linkedid as Asterisk has them."""
    async with switchboard(OFFICE) as sb:
        call = await pbx.call(OFFICE_NUMBER, CALLER)
        await call.prompt("main-menu")

        async def variable(name: str) -> str:
            found = await pbx.request("GET", f"/channels/{call.inner}/variable", {"variable": name})
            return str(found["value"])

        marked = (await variable("SWITCHBOARD_CALL_ID"), await variable("SWITCHBOARD_SCENARIO"))
        linkedid = await variable("CHANNEL(linkedid)")
        await call.hang_up()
        record = await sb.record(call)
        await nothing_left(pbx)
    assert marked == (record.call_id, record.scenario)
    assert (record.channel_id, record.linkedid) == (call.inner, linkedid)
    assert linkedid
