"""Message waiting indication on a real Asterisk 22 (issue 15): a voicemail message left
for an employee whose phone subscribes to a mailbox sets that mailbox's counts in
Asterisk (``PUT /mailboxes/{name}``), read back from Asterisk itself.

Needs res_mwi_external, res_stasis_mailbox and res_ari_mailboxes loaded (menuselect's
Resource Modules; off by default) -- and so app_voicemail not loaded, which is the
other voicemail provider (res_mwi_external.c: "Failure registering as a voicemail
provider").  Without them the test is skipped, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from switchboard.config.company import Company
from switchboard.config.load import load_text
from tests.real_asterisk.conftest import Running
from tests.real_asterisk.harness import APP, PHONES, AsteriskError, RealAsterisk

pytestmark = [pytest.mark.asyncio, pytest.mark.real_asterisk]
Start = Callable[[Company], AbstractAsyncContextManager[Running]]
MAILBOX = "140@switchboard-test"

CONFIG = f"""
timezone: Europe/Moscow
employees: [{{id: e140, name: E140, extension: "140", mwi: "{MAILBOX}"}}]
numbers: [{{number: "74951110009", scenario: main}}]
asterisk:
  app: {APP}
  endpoints: {{employee: "Local/{{extension}}@{PHONES}/n", mobile: "Local/{{number}}@{PHONES}/n"}}
scenarios:
  main:
    start: leave
    nodes:
      leave: {{type: voicemail, mailbox: e140, max_length: 2, next: bye}}
      bye: {{type: hangup}}
"""


async def test_a_message_sets_the_owners_mailbox_counts_in_asterisk(
    pbx: RealAsterisk, switchboard: Start
) -> None:
    try:
        await pbx.request("GET", "/mailboxes")
    except AsteriskError as exc:
        pytest.skip(f"this Asterisk has no /mailboxes (res_ari_mailboxes): {exc}")
    company = load_text(CONFIG, "mwi.yaml").raise_for_errors()
    async with switchboard(company) as sb:
        call = await pbx.call("74951110009", "79035550004")
        record = await sb.record(call)
        await sb.app.runtime.mwi.settled()
    try:
        assert record.outcome.result == "voicemail"
        mailbox = await pbx.request("GET", f"/mailboxes/{MAILBOX}")
        assert mailbox == {"name": MAILBOX, "old_messages": 0, "new_messages": 1}
    finally:
        await pbx.request("DELETE", f"/mailboxes/{MAILBOX}")
        for stored in await pbx.request("GET", "/recordings/stored"):
            if stored["name"].startswith(f"switchboard-{record.call_id}-"):
                await pbx.request("DELETE", f"/recordings/stored/{stored['name']}")
