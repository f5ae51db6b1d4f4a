"""Voicemail messages told by e-mail (issue 15), through a real SMTP server on loopback.

The server here is a small one of the test's own, speaking SMTP (RFC 5321: HELO/EHLO,
MAIL, RCPT, DATA, QUIT) over a socket; what it receives is parsed with the standard
library's e-mail parser.  A caller leaves a message on the ARI runtime against the
Asterisk simulator; the message's owner gets the e-mail.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from switchboard.clock import Clock
from switchboard.config.load import load_text
from switchboard.demo import AriStack
from switchboard.mail import MessageMail
from tests.helpers import company_from

CALLER = "79035550000"


@dataclass
class SmtpServer:
    port: int = 0
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await say("220 test ESMTP")
        sender, recipients = "", []
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await say("250 test")
            elif verb == "MAIL":
                sender, recipients = line.split(":", 1)[1].strip(" <>"), []
                await say("250 ok")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip(" <>"))
                await say("250 ok")
            elif verb == "DATA":
                await say("354 go on")
                data = bytearray()
                while (chunk := await reader.readline()) != b".\r\n":
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                parsed = email.message_from_bytes(bytes(data), policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                self.received.append((sender, recipients, parsed))
                self.changed.set()
                await say("250 queued")
            elif verb == "QUIT":
                await say("221 bye")
                break
            else:
                await say("250 ok")  # RSET, NOOP
        writer.close()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(15):
            while len(self.received) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest_asyncio.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    listening = await asyncio.start_server(server.session, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield server


def office(port: int, mailbox: str = "ivanov") -> str:
    return f"""
employees:
  - {{id: ivanov, name: Ivan Ivanov, extension: "101", email: ivanov@example.com}}
departments:
  - {{id: sales, members: [ivanov], email: "Sales <sales@example.com>"}}
mail: {{host: 127.0.0.1, port: {port}, sender: switchboard@example.com,
        messages_to: office@example.com}}
default_scenario: main
scenarios:
  main:
    start: leave
    nodes:
      leave: {{type: voicemail, mailbox: {mailbox}, max_length: 60, next: bye}}
      bye: {{type: hangup}}
"""


@pytest.mark.asyncio
async def test_a_message_left_on_a_live_call_is_e_mailed_to_its_owner(smtp: SmtpServer) -> None:
    async with AriStack(company_from(office(smtp.port))) as stack:
        stack.script({})
        record = await stack.call(caller=CALLER, caller_name="Anna <Petrova>", hangup_after=8)
        await smtp.until(1)
    assert record.outcome.result == "voicemail"
    sender, recipients, mail = smtp.received[0]
    assert (sender, recipients) == ("switchboard@example.com", ["ivanov@example.com"])
    assert mail["To"] == "ivanov@example.com"
    assert mail["Subject"].startswith(f"Voicemail for ivanov from Anna <Petrova> <{CALLER}>")
    text = mail.get_content()
    assert f"Call:      {record.call_id}" in text
    assert "not on this machine" in text  # the simulator keeps its recordings to itself


def message(mailbox: str | None, recording: str = "switchboard-c1-r1") -> dict[str, Any]:
    """The driver's "message" event, as a voicemail node's SaveMessage makes it."""
    return {
        "call_id": "c1",
        "at": "2026-12-01T20:15:00+03:00",
        "called": "74951234567",
        "caller": CALLER,
        "caller_name": "",
        "message": {"mailbox": mailbox, "recording": recording, "length": 12.0},
    }


@pytest.mark.asyncio
async def test_the_recording_is_attached_when_it_is_here_and_small_enough(
    smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(tmp_path))
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)
    (tmp_path / "switchboard-c1-r1.wav").write_bytes(wav)
    (tmp_path / "switchboard-c2-r1.wav").write_bytes(wav * 100)  # 4.4 kB
    text = office(smtp.port).replace("messages_to:", "attach_max: 1000, messages_to:")
    company = company_from(text)
    sender = MessageMail(lambda: company, Clock())
    sender.tell(message("sales"))
    sender.tell(message("ivanov", "switchboard-c2-r1"))
    sender.tell(message(None))  # nobody's: the office's address
    await smtp.until(3)
    await sender.close()
    to = [recipients for _, recipients, _ in smtp.received]
    assert to == [["sales@example.com"], ["ivanov@example.com"], ["office@example.com"]]
    attached = [list(mail.iter_attachments()) for _, _, mail in smtp.received]
    assert [a.get_filename() for a in attached[0]] == ["switchboard-c1-r1.wav"]
    assert attached[0][0].get_content_type() == "audio/wav"
    assert attached[0][0].get_content() == wav
    assert attached[1] == []  # bigger than attach_max: said in the text instead
    body = smtp.received[1][2].get_body(("plain",))
    assert body is not None
    assert "bigger than mail.attach_max" in body.get_content()


@pytest.mark.asyncio
async def test_a_server_that_refuses_is_one_warning_a_try_and_nothing_else(
    unused_tcp_port: int,
) -> None:
    company = company_from(
        office(unused_tcp_port).replace("messages_to:", "retries: 1, messages_to:")
    )
    sender = MessageMail(lambda: company, Clock())
    with capture_logs() as logs:
        sender.tell(message("ivanov"))
        await sender.close(within=10)
    lines = [e for e in logs if e["event"] == "voicemail e-mail not sent"]
    assert [(e["attempt"], e["retrying"]) for e in lines] == [(1, True), (2, False)]
    assert lines[0]["server"] == f"127.0.0.1:{unused_tcp_port}"
    assert sender.failed == 1


def test_check_names_an_address_that_is_no_address() -> None:
    text = office(25).replace("email: ivanov@example.com", "email: ivanov")
    problems = [p.message for p in load_text(text, "mail.yaml").problems]
    assert "'ivanov' is not an e-mail address" in problems
