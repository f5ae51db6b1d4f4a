"""Voicemail messages told by e-mail: each message's owner (the voicemail node's
``mailbox``: an employee or a department, by their ``email``; else ``mail.messages_to``)
gets one, with the recording attached when it is here and not bigger than
``mail.attach_max``.

A call never waits: `MessageMail.tell` queues the message; one task sends the queue
in order through SMTP (the standard library's client, in a thread), retrying
``mail.retries`` times after 1, 2, 4 ... seconds.  A message that cannot be sent is
one warning line each try (the server and the error; never the password).  The
message stays in the database and is listed by `switchboard messages` either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import structlog

from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.config.model import MailSection
from switchboard.redaction import describe
from switchboard.storage.messages import recording_file, recordings_dir
from switchboard.templates import MissingEnv, fill_env, header_value

log = structlog.get_logger("switchboard.mail")


def recipient(company: Company, mailbox: str | None) -> str | None:
    """Who is told of a message left in ``mailbox`` (an employee or department id)."""
    if mailbox is not None:
        target = company.resolve_target(mailbox)
        email = None
        if target is not None and target[0] == "employee":
            email = company.employees[target[1]].email
        elif target is not None and target[0] == "department":
            email = company.departments[target[1]].email
        if email:
            return email
    return company.config.mail.messages_to


def compose(company: Company, message: dict[str, Any], to: str, recordings: Path) -> EmailMessage:
    """The e-mail of one message (``message``: the driver's "message" event)."""
    mail = company.config.mail
    caller = message.get("caller") or "unknown"
    name = header_value(message.get("caller_name") or "")
    left = message["message"]
    length = float(left.get("length") or 0)
    owner = left.get("mailbox") or "the office"
    email = EmailMessage()
    email["From"] = mail.sender
    email["To"] = to
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain="switchboard")
    who = f"{name} <{caller}>" if name else caller
    email["Subject"] = header_value(f"Voicemail for {owner} from {who}, {length:.0f} s")
    lines = [
        f"A caller left a message for {owner}.",
        "",
        f"From:      {caller}" + (f" ({name})" if name else ""),
        f"Dialled:   {message.get('called') or '-'}",
        f"When:      {message.get('at')}",
        f"Length:    {length:.1f} s",
        f"Call:      {message.get('call_id')}",
        f"Recording: {left.get('recording')}",
        "",
    ]
    plain = str(left.get("recording") or "")
    path = recording_file(recordings, plain)
    size = None
    if path is not None:
        with contextlib.suppress(OSError):
            size = path.stat().st_size
    if path is not None and size is not None and size <= mail.attach_max:
        email.set_content("\n".join([*lines, "The recording is attached."]))
        email.add_attachment(
            path.read_bytes(), maintype="audio", subtype="wav", filename=f"{plain}.wav"
        )
    elif size is not None:
        email.set_content(
            "\n".join(
                [*lines, f"The recording ({size} bytes) is bigger than mail.attach_max: "
                 "download it from the admin API (GET /api/v1/messages)."]
            )
        )  # fmt: skip
    else:
        email.set_content(
            "\n".join([*lines, "The recording is not on this machine: the admin API serves it."])
        )
    return email


def send(mail: MailSection, email: EmailMessage) -> None:
    """Send ``email`` through ``mail``'s server (blocking: run it in a thread)."""
    assert mail.host is not None
    password = None
    if mail.password is not None:
        password = fill_env(mail.password, os.environ)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if mail.security == "tls":
        smtp = smtplib.SMTP_SSL(mail.host, mail.port, timeout=mail.timeout, context=context)
    else:
        smtp = smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout)
    with smtp:
        if mail.security == "starttls":
            smtp.starttls(context=context)
        if mail.user is not None and password is not None:
            smtp.login(mail.user, password)
        smtp.send_message(email)


class MessageMail:
    """The runtime's sender of voicemail e-mails; ``company()`` is read at each message."""

    def __init__(self, company: Callable[[], Company], clock: Clock) -> None:
        self.company = company
        self.clock = clock
        self.sent = 0
        self.failed = 0
        self._queue: asyncio.Queue[tuple[Company, dict[str, Any], str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def wanted(self) -> bool:
        """Is an SMTP server configured (else no e-mail is made)?"""
        return self.company().config.mail.host is not None

    def tell(self, message: dict[str, Any]) -> None:
        """Queue the e-mail of one message (the driver's "message" event); never waits."""
        company = self.company()
        if company.config.mail.host is None:
            return
        to = recipient(company, message["message"].get("mailbox"))
        if to is None:
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mail")
        self._queue.put_nowait((company, message, to))

    async def _run(self) -> None:
        while True:
            company, message, to = await self._queue.get()
            try:
                await self._send(company, message, to)
            except Exception:  # a bug of ours: said, and the next message still goes out
                log.exception("voicemail e-mail failed", to=to)
            finally:
                self._queue.task_done()

    async def _send(self, company: Company, message: dict[str, Any], to: str) -> None:
        mail = company.config.mail
        email = await asyncio.to_thread(compose, company, message, to, recordings_dir())
        for attempt in range(mail.retries + 1):
            if attempt:
                await asyncio.sleep(self.clock.real(float(2 ** (attempt - 1))))
            try:
                await asyncio.to_thread(send, mail, email)
            except MissingEnv as exc:
                error = f"environment variable {exc.args[0]} is not set"
            except (smtplib.SMTPException, OSError) as exc:
                error = describe(exc) or type(exc).__name__
            else:
                self.sent += 1
                log.info("voicemail e-mailed", to=to, call_id=message.get("call_id"))
                return
            log.warning(
                "voicemail e-mail not sent",
                server=f"{mail.host}:{mail.port}", to=to, attempt=attempt + 1, error=error,
                retrying=attempt < mail.retries,
            )  # fmt: skip
        self.failed += 1

    async def close(self, within: float = 5.0) -> None:
        """Stop: messages still queued get ``within`` real seconds to go out."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
