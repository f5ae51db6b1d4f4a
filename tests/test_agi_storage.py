"""FastAGI calls leave what ARI calls leave, in the same PostgreSQL tables.

The `AgiApp` writes through the same `PostgresSink` as `switchboard run`: the
call record with its trace, the voicemail message, the call-back request
(committed before the caller hears the promise, for `run`'s worker to make).
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from asterisk_sim.script import CallerScript, Press
from switchboard.simulate import AgentBehaviour, simulate
from switchboard.storage.sink import PostgresSink
from tests.agi_stack import AgiStack
from tests.helpers import at, example

pytestmark = pytest.mark.asyncio
DEADLINE = 10.0


async def rows(dsn: str, sql: str) -> list[asyncpg.Record]:
    """The rows of ``sql`` (drain the sink's writer first: records go in the background)."""
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def test_an_agi_call_record_is_a_full_call_record(db: str, sink: PostgresSink) -> None:
    company = example("office.yaml")
    when = at("2026-12-01T10:15", company)
    agents = {"kuznetsova": AgentBehaviour.parse("answer:4")}
    async with AgiStack(company, when, agents, sink=sink) as stack:
        call = await stack.call(
            "scenario",
            caller="89035550000",
            caller_name='Ivan "the client" <b>',
            extension="74957654321",
            args=("8 495 765-43-21",),
            channel="PJSIP/trunk-0000002a",
            uniqueid="1733050000.42",
            script=CallerScript((Press("2", on_playback="main-menu"),)),
        )
    async with asyncio.timeout(DEADLINE):
        await sink.writer.drained()
    [row] = await rows(db, "SELECT * FROM calls")
    want = simulate(
        company, called="8 495 765-43-21", caller="89035550000", at=when, dtmf="2",
        agents=agents,
    )  # fmt: skip
    assert row["call_id"] == call.variables["SWITCHBOARD_CALL_ID"]
    assert row["channel"] == "PJSIP/trunk-0000002a"
    assert (row["called_raw"], row["called"]) == ("8 495 765-43-21", "74957654321")
    assert row["caller"] == "79035550000"
    assert row["caller_name"] == 'Ivan "the client" <b>'
    assert (row["scenario"], row["result"]) == ("office", "connected")
    assert row["agent"] == want.outcome.agent
    assert row["config_version"] == company.config_version
    steps = json.loads(row["steps"])
    assert [s["node"] for s in steps] == [s.node for s in want.steps]


async def test_an_agi_voicemail_is_a_message_in_the_messages_table(
    db: str, sink: PostgresSink
) -> None:
    company = example("office.yaml")
    async with AgiStack(company, at("2026-12-01T20:00", company), sink=sink) as stack:
        call = await stack.call(
            "scenario",
            extension="74951234567",
            args=("74951234567",),
            script=CallerScript((), hangup_after=30),
        )
    async with asyncio.timeout(DEADLINE):
        await sink.writer.drained()
    [message] = await rows(db, "SELECT * FROM messages")
    [record] = call.recordings
    assert message["call_id"] == call.variables["SWITCHBOARD_CALL_ID"]
    assert record.file.endswith(message["recording"])  # the file Asterisk recorded
    assert message["length_s"] > 0
    [row] = await rows(db, "SELECT result FROM calls")
    assert row["result"] == "voicemail"


async def test_an_agi_call_back_is_stored_for_the_worker_before_the_caller_hears_the_promise(
    db: str, sink: PostgresSink
) -> None:
    company = example("call-centre.yaml")
    busy = {e: AgentBehaviour.parse("busy") for e in ("sidorova", "kuznetsova", "smirnov")}
    async with AgiStack(company, at("2026-12-01T10:15", company), busy, sink=sink) as stack:
        call = await stack.call(
            "scenario",
            caller="79035550000",
            extension="74951112233",
            args=("74951112233",),
            script=CallerScript((Press("1", at=50),)),
        )
    [request] = await rows(db, "SELECT * FROM callbacks")
    assert request["number"] == "79035550000"
    assert request["status"] == "pending"
    assert request["call_id"] == call.variables["SWITCHBOARD_CALL_ID"]
    assert call.variables["SWITCHBOARD_RESULT"] == "callback"
    promise = [t for t, file in call.played if "callback-confirmed" in file or "callback" in file]
    assert promise  # the caller heard the promise, after it was committed
