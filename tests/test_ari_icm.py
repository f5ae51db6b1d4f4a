"""ICM's sources in the live runtime: the contacts table, call history, a CRM over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from switchboard.demo import AriStack
from tests.helpers import EXAMPLES, company_from

pytestmark = pytest.mark.asyncio

WHEN = dt.datetime(2026, 12, 1, 10, 15, tzinfo=dt.UTC)
STRANGER = "79035550000"


@pytest_asyncio.fixture
async def crm() -> AsyncIterator[tuple[str, dict[str, float]]]:
    """A CRM stub: /manager?phone=N answers {"manager": {"id": ...}} after a set delay."""
    behaviour: dict[str, float] = {"delay": 0.0}
    answers = {STRANGER: "petrov"}

    async def manager(request: web.Request) -> web.Response:
        if behaviour["delay"]:
            await asyncio.sleep(behaviour["delay"])  # the slow CRM itself, not a test waiting
        found = answers.get(request.query.get("phone", ""))
        return web.json_response({"manager": {"id": found}})

    app = web.Application()
    app.router.add_get("/manager", manager)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/manager?phone={{caller}}", behaviour
    await runner.cleanup()


def centre_with_crm(url: str):  # type: ignore[no-untyped-def]
    text = (EXAMPLES / "call-centre.yaml").read_text()
    text = text.replace("http://127.0.0.1:8099/crm/manager?phone={caller}", url)
    return company_from(text)


async def test_the_contacts_table_routes_a_caller_to_their_manager() -> None:
    company = centre_with_crm("http://127.0.0.1:9/none?phone={caller}")
    async with AriStack(company, when=WHEN) as stack:
        stack.sink.contacts[STRANGER] = "petrov"
        stack.script({})
        record = await stack.call(caller=STRANGER)
        await stack.settled()
    icm = record.steps[0]
    assert icm.details["sources"][0] == {"source": "contacts", "result": "petrov"}
    assert record.outcome.agent == "petrov"


async def test_call_history_routes_a_returning_caller_to_the_last_agent() -> None:
    company = centre_with_crm("http://127.0.0.1:9/none?phone={caller}")
    async with AriStack(company, when=WHEN) as stack:
        stack.sink.history[STRANGER] = "smirnov"
        stack.script({})
        record = await stack.call(caller=STRANGER)
    assert record.steps[0].details["sources"][1] == {"source": "last_agent", "result": "smirnov"}
    assert record.outcome.agent == "smirnov"


async def test_a_crm_that_answers_in_time_finds_the_manager(
    crm: tuple[str, dict[str, float]],
) -> None:
    url, _ = crm
    async with AriStack(centre_with_crm(url), when=WHEN) as stack:
        stack.script({})
        record = await stack.call(caller=STRANGER)
    assert record.steps[0].details["sources"][-1] == {"source": "http", "result": "petrov"}
    assert record.outcome.agent == "petrov"


async def test_a_crm_that_answers_after_5_s_holds_the_caller_only_its_timeout(
    crm: tuple[str, dict[str, float]],
) -> None:
    url, behaviour = crm
    behaviour["delay"] = 5.0
    stack = AriStack(centre_with_crm(url), when=WHEN)
    async with stack:
        stack.script({})
        record = await stack.call(caller=STRANGER)
        await stack.settled()
    icm = record.steps[0]
    assert icm.details["sources"][-1] == {"source": "http", "result": "timeout"}
    assert icm.via == "notfound"
    # the CRM source's timeout is 1.5 s; ARI round trips add a little on a busy machine
    assert icm.t_end is not None
    assert 1.5 <= icm.t_end < 2.5
    assert record.outcome.department == "support"  # the next step, the queue, served it
