"""Issue 10, finding 11: two instances on one Stasis app name.

Asterisk gives an app name to the last connection that asked for it and sends
the one before ``ApplicationReplaced`` (``res/stasis/app.c``, ``app_update``).
Before this issue the replaced instance reconnected at once and took the
name back, over and over (3 takeovers each, 30 of 100 calls without a record)
with no clear error (371d264).  Now the replaced one says so in one error
and stays off; its calls are the other's, which sends them on with a record;
every later call is served by the other, once.
"""

from __future__ import annotations

import datetime as dt

import pytest
from structlog.testing import capture_logs

from ari_app.app import AriApp, AriSettings
from asterisk_sim import AsteriskSimulator
from switchboard.calls import MemorySink
from switchboard.clock import ScaledClock
from tests.helpers import example

WHEN = dt.datetime(2026, 12, 1, 7, 15, tzinfo=dt.UTC)  # 10:15 in Moscow, a Tuesday
USER, PASSWORD = "u", "p"
CALLED = "74951234567"
LATER_CALLS = 30


def websocket_connects(sim: AsteriskSimulator) -> int:
    return sum(1 for r in sim.requests if r.path == "/ari/events")


@pytest.mark.asyncio
async def test_an_instance_whose_app_is_taken_stays_off_and_every_call_gets_one_record() -> None:
    company = example("office.yaml")
    app_name = company.config.asterisk.app
    clock = ScaledClock(0.02)
    first_sink, second_sink = MemorySink(), MemorySink()
    async with AsteriskSimulator(clock=clock, user=USER, password=PASSWORD) as sim:
        settings = AriSettings(sim.url, USER, PASSWORD, app_name)

        def app(sink: MemorySink) -> AriApp:
            return AriApp(
                lambda: company, settings, sink=sink, clock=clock, backoff_first=0.05,
                wall_clock=lambda: WHEN,
            )  # fmt: skip

        first = app(first_sink)
        with capture_logs() as logs:
            async with first:
                await first.wait_ready()
                # three callers listening to the first instance's menu
                early = [
                    await sim.place_call(f"7903555000{n}", CALLED, app=app_name) for n in range(3)
                ]
                await sim.wait_for(
                    lambda s: {p.target_id for p in s.playbacks.values()} >= set(early),
                    what="three menus playing",
                )
                second = app(second_sink)
                async with second:
                    await second.wait_ready()
                    await sim.wait_for(lambda s: websocket_connects(s) == 2, what="taken over")
                    later = [
                        await sim.place_call(f"7916555{n:04}", CALLED, app=app_name)
                        for n in range(LATER_CALLS)
                    ]
                    await sim.wait_for(
                        lambda s: all(s.channels[c].continued_to for c in early),
                        what="the first instance's callers sent on",
                    )
                    for caller in [*early, *later]:  # the fallback's callers hang up too
                        await sim.hangup(caller)
                    await sim.wait_for(
                        lambda s: not s.live_channels(), timeout=20, what="every call over"
                    )
                    await second.runtime.wait_idle()
                    connects = websocket_connects(sim)
    # the first connected once and stayed off: the second was never replaced
    assert connects == 2
    assert first.supervisor.connections == 1
    assert not second.supervisor.replaced.is_set()
    # every call has exactly one record: the first instance's by the second, with why
    assert first_sink.records == []
    by_channel: dict[str, int] = {}
    for record in second_sink.records:
        by_channel[record.channel_id] = by_channel.get(record.channel_id, 0) + 1
    assert by_channel == dict.fromkeys([*early, *later], 1)
    for record in second_sink.records:
        if record.channel_id in early:
            assert record.outcome.result == "dialplan"
    # one clear error, naming the conflict
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == [
        "stasis app taken over: calls left to the other connection",
        "another connection took this instance's Stasis app: staying off",
    ]
    assert errors[1]["app"] == app_name
    assert "asterisk.app" in errors[1]["hint"]
