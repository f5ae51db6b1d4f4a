"""Message waiting indication: the lamp of a phone whose mailbox has new voicemail.

An employee or department with ``mwi:`` (the Asterisk mailbox their phones subscribe
to, pjsip.conf ``mailboxes=``) has its counts set over ARI, ``PUT
/mailboxes/{name}?oldMessages=&newMessages=`` (res/ari/resource_mailboxes.c), when a
message is left for them, at each connection, and every `REFRESH` seconds after (so
that a message marked heard or handled with `switchboard messages mark` or the admin
API turns the lamp off).  New are the messages marked ``new``; old, the others.

Asterisk serves ``/mailboxes`` only with res_ari_mailboxes, res_stasis_mailbox and
res_mwi_external loaded (not built by default: menuselect's "Resource Modules").
Without them the first ``404 Resource not found`` is one warning saying so, and no
lamp is set until a reconnection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from ari_app.client import AriClient, AriError
from switchboard.calls import CallSink
from switchboard.config.company import Company

log = structlog.get_logger("switchboard.ari")

REFRESH = 60.0  # seconds between two settings of every lamp


def mwi_names(company: Company) -> dict[str, str]:
    """Employee or department id -> the Asterisk mailbox of its phones."""
    found = {e.id: e.mwi for e in company.config.employees if e.mwi}
    found |= {d.id: d.mwi for d in company.config.departments if d.mwi}
    return found


class Mwi:
    """A runtime's lamps: set on each message, refreshed while connected."""

    def __init__(
        self, client: AriClient, company: Callable[[], Company], sink: Callable[[], CallSink]
    ) -> None:
        self.client = client
        self.company = company
        self.sink = sink
        self.missing = False  # Asterisk has no /mailboxes: said once a connection
        self.updates = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._keeping: asyncio.Task[None] | None = None

    def message(self, pop: Callable[[], dict[str, Any]]) -> None:
        """A message was left (the driver's "message" event): its owner's lamp."""
        names = mwi_names(self.company())
        if not names:
            return  # no lamp anywhere: the payload is not even made
        left = pop().get("message") or {}
        mailbox = left.get("mailbox")
        if mailbox and mailbox in names:
            task = asyncio.get_running_loop().create_task(
                self.update(mailbox, including=left.get("recording"))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def connected(self) -> None:
        """(Re)connected: every lamp now, then every `REFRESH` seconds."""
        self.missing = False
        if self._keeping is None or self._keeping.done():
            self._keeping = asyncio.get_running_loop().create_task(self._keep(), name="mwi")

    async def update(self, mailbox: str, including: str | None = None) -> None:
        name = mwi_names(self.company()).get(mailbox)
        if name is None or self.missing:
            return
        counts = await self.sink().message_counts(mailbox, including)
        if counts is None:
            return  # the database cannot say now: the next refresh
        try:
            await self.client.update_mailbox(name, *counts)
        except AriError as exc:
            if exc.status == 404:
                self.missing = True
                log.warning(
                    "message waiting lamps not set: this Asterisk has no /mailboxes (load "
                    "res_mwi_external.so, res_stasis_mailbox.so and res_ari_mailboxes.so)"
                )
            else:
                log.warning("message waiting lamp not set", mailbox=name, error=str(exc))
            return
        self.updates += 1

    async def _keep(self) -> None:
        while True:
            for mailbox in mwi_names(self.company()):
                await self.update(mailbox)
            await asyncio.sleep(REFRESH)

    async def settled(self) -> None:
        """Until the lamps of the messages left so far are set (or could not be)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._keeping] if self._keeping else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
