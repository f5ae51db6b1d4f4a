"""Message waiting indication over ARI (issue 15): a message left for an employee whose
phone subscribes to a mailbox sets that mailbox's counts in Asterisk (``PUT
/mailboxes/{name}``), new and old as the messages' statuses say."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from switchboard.calls import CallRecord
from switchboard.demo import AriStack
from switchboard.storage.messages import set_status
from switchboard.storage.sink import PostgresSink
from tests.helpers import company_from

CALLER = "79035550000"
OFFICE = """
employees:
  - {id: ivanov, name: Ivan Ivanov, extension: "101", mwi: "101@switchboard"}
  - {id: petrov, name: Pyotr Petrov, extension: "102"}
default_scenario: main
scenarios:
  main:
    start: leave
    nodes:
      leave: {type: voicemail, mailbox: ivanov, max_length: 60, next: bye}
      bye: {type: hangup}
"""


def mailbox_requests(stack: AriStack) -> list[tuple[str, dict[str, str]]]:
    return [
        (r.path, dict(r.query))
        for r in stack.sim.requests
        if r.method == "PUT" and r.path.startswith("/ari/mailboxes/")
    ]


async def leave_message(stack: AriStack) -> CallRecord:
    """A caller leaves a message; once the lamp is set again."""
    before = len(mailbox_requests(stack))
    record = await stack.call(caller=CALLER, hangup_after=5)
    await stack.sim.wait_for(lambda s: len(mailbox_requests(stack)) > before, what="the lamp")
    return record


@pytest.mark.asyncio
async def test_a_message_lights_the_owners_lamp_and_a_handled_one_counts_as_old(
    sink: PostgresSink,
) -> None:
    async with AriStack(company_from(OFFICE), store=sink) as stack:
        stack.script({})
        # set at the connection: no message yet
        await stack.sim.wait_for(lambda s: s.mailbox("101@switchboard") is not None)
        assert stack.sim.mailbox("101@switchboard") == (0, 0)
        first = await leave_message(stack)
        assert first.outcome.result == "voicemail"
        assert stack.sim.mailbox("101@switchboard") == (0, 1)
        path, query = mailbox_requests(stack)[-1]
        assert path == "/ari/mailboxes/101@switchboard"
        assert query == {"oldMessages": "0", "newMessages": "1"}
        async with asyncio.timeout(10):
            await sink.writer.drained()  # the message is in the database
        async with sink.pool.acquire() as conn:
            message_id = await conn.fetchval("SELECT id FROM messages")
            await set_status(conn, message_id, "handled", "cli:anna")
        await leave_message(stack)  # the second: one new, the first old
        assert stack.sim.mailbox("101@switchboard") == (1, 1)


@pytest.mark.asyncio
async def test_an_asterisk_without_mailboxes_is_one_warning_and_the_call_goes_on() -> None:
    with capture_logs() as logs:
        async with AriStack(company_from(OFFICE), mailboxes=False) as stack:
            stack.script({})
            first = await stack.call(caller=CALLER, hangup_after=5)
            await stack.call(caller=CALLER, hangup_after=5)
    assert first.outcome.result == "voicemail"
    warned = [e for e in logs if "no /mailboxes" in e["event"]]
    assert len(warned) == 1
    assert "res_ari_mailboxes.so" in warned[0]["event"]
