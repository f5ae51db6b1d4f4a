"""Property tests: whatever the config, the keys, the people and the caller do,
every call ends with one of the outcomes, in a bounded number of steps, and
nothing raises."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.config.company import Company
from switchboard.config.load import load_text
from switchboard.engine.call import CallInfo, CallRun
from switchboard.engine.events import (
    AgentStatus,
    CallbackStored,
    CallerHungUp,
    Digits,
    LegAnswered,
    LegBusy,
    LegFailed,
    LegHungUp,
    LegNoAnswer,
    LookupResult,
    PlaybackFinished,
    RecordingFinished,
    TimerFired,
)
from switchboard.engine.trace import RESULTS
from switchboard.simulate import AgentBehaviour, simulate

EMPLOYEES = ["e0", "e1", "e2", "e3"]
KINDS = [
    "assign",
    "switch",
    "notify",
    "play",
    "menu",
    "schedule",
    "dial",
    "queue",
    "callback",
    "icm",
    "voicemail",
    "dialplan",
    "hangup",
    "goto",
]
WAITING = {"play", "menu", "queue", "callback", "voicemail"}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    employees = []
    for i, name in enumerate(EMPLOYEES):
        emp: dict[str, Any] = {"id": name, "extension": str(101 + i)}
        if draw(st.booleans()):
            emp["mobile"] = f"7916000000{i}"
            if draw(st.booleans()):
                emp["forward_to_mobile_after"] = draw(st.integers(0, 20))
        employees.append(emp)
    departments = [
        {
            "id": f"d{j}",
            "strategy": draw(st.sampled_from(["all_at_once", "one_by_one", "cascade"])),
            "ring_delay": draw(st.integers(1, 20)),
            "ring_timeout": draw(st.integers(1, 60)),
            "members": draw(
                st.lists(st.sampled_from(EMPLOYEES), min_size=1, max_size=4, unique=True)
            ),
        }
        for j in range(2)
    ]
    count = draw(st.integers(2, 9))
    names = [f"n{i}" for i in range(count)]
    nodes: dict[str, Any] = {}
    for i, name in enumerate(names):
        last = i == count - 1
        kind = "hangup" if last else draw(st.sampled_from(KINDS))

        def target(kind: str = kind, i: int = i) -> str:
            # instant nodes only point forward, so the file has no loop that never waits
            low = 0 if kind in WAITING else i + 1
            return names[draw(st.integers(low, count - 1))]

        nodes[name] = node(draw, kind, target)
    # `check` rejects a callback node that a call can reach without passing a queue and
    # without a `department:` of its own: name one there, as a user would be told to
    for name in without_queue(nodes, "n0"):
        if nodes[name]["type"] == "callback" and "department" not in nodes[name]:
            nodes[name]["department"] = "d1"
    return {
        "timezone": "Europe/Moscow",
        "numbering": {"country_code": "7", "city_code": "495", "national_prefix": "8"},
        "employees": employees,
        "departments": departments,
        "schedules": {
            "s": {"hours": {"mon-fri": "09:00-18:00"}, "breaks": {"lunch": "13:00-14:00"}}
        },
        "contacts": {"79161112233": "e1"},
        "default_scenario": "main",
        "limits": {"max_call_duration": 3600},
        "scenarios": {
            "main": {"start": "n0", "nodes": nodes},
            "side": {
                "start": "x",
                "nodes": {
                    "x": {"type": "play", "prompt": "welcome", "next": "y"},
                    "y": {"type": "hangup"},
                },
            },
        },
    }


def without_queue(nodes: dict[str, Any], start: str) -> set[str]:
    """The nodes a call reaches from ``start`` without passing a queue node."""

    def targets(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [t for v in value.values() for t in targets(v)]
        return [value] if isinstance(value, str) and value in nodes else []

    seen, stack = {start}, [start]
    while stack:
        here = nodes[stack.pop()]
        if here["type"] == "queue":
            continue
        for name in targets(here):
            if name not in seen:
                seen.add(name)
                stack.append(name)
    return seen


def node(draw: st.DrawFn, kind: str, target: Any) -> dict[str, Any]:
    if kind == "assign":
        return {"type": kind, "var": "v", "value": "{caller}-{digits}", "next": target()}
    if kind == "switch":
        return {
            "type": kind,
            "value": "{var.v}",
            "cases": {"prefix:7": target()},
            "default": target(),
        }
    if kind == "notify":
        return {"type": kind, "message": "at {time} from {caller}", "next": target()}
    if kind == "play":
        return {
            "type": kind,
            "prompt": ["greeting", "welcome"],
            "interruptible": draw(st.booleans()),
            "next": target(),
        }
    if kind == "menu":
        return {
            "type": kind,
            "prompt": "main-menu",
            "wait": draw(st.integers(1, 6)),
            "retries": draw(st.integers(0, 3)),
            "extension_dialing": draw(st.booleans()),
            "options": {"1": target(), "2": target(), "12": target()},
            "default": target(),
        }
    if kind == "schedule":
        return {
            "type": kind,
            "schedule": "s",
            "open": target(),
            "closed": target(),
            "lunch": target(),
        }
    if kind == "dial":
        return {
            "type": kind,
            "target": draw(st.sampled_from(["d0", "d1", "e0", "103"])),
            "noanswer": target(),
            "busy": target(),
            "unavailable": target(),
        }
    if kind == "queue":
        return {
            "type": kind,
            "department": "d0",
            "announce_every": draw(st.integers(0, 50)),
            "max_wait": draw(st.integers(1, 400)),
            "callback_key": "1",
            "overflow": target(),
            "callback": target(),
        }
    if kind == "callback":
        found = {"type": kind, "ask_number": draw(st.booleans()), "next": target()}
        if draw(st.booleans()):  # else the queue's, where every way here passes one
            found["department"] = draw(st.sampled_from(["d0", "d1"]))
        return found
    if kind == "icm":
        return {
            "type": kind,
            "sources": ["contacts", "last_agent", {"type": "http", "url": "http://x/{caller}"}],
            "exceptions": ["e0"],
            "to_mobile": draw(st.booleans()),
            "noanswer": target(),
            "notfound": target(),
        }
    if kind == "voicemail":
        return {"type": kind, "max_length": draw(st.integers(1, 200)), "next": target()}
    if kind == "dialplan":
        return {"type": kind, "context": "fax"}
    if kind == "goto":
        return {"type": kind, "scenario": "side"}
    return {"type": "hangup"}


def load(config: dict[str, Any]) -> Company:
    result = load_text(yaml.safe_dump(config), "generated.yaml")
    assert result.company is not None, [p.format("generated.yaml") for p in result.errors]
    return result.company


behaviours = st.sampled_from(
    ["answer", "answer:0", "answer:7", "busy", "busy:30", "noanswer", "offline"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=configs(),
    dtmf=st.text(alphabet="0123456789*#w", max_size=40),
    agents=st.dictionaries(st.sampled_from(EMPLOYEES), behaviours),
    hangup_after=st.none() | st.floats(0, 1000),
    caller=st.sampled_from(["79161112233", "anonymous", "84951234567", "", "101"]),
    hour=st.integers(0, 23),
)
def test_every_simulated_call_ends_with_an_outcome(
    config: dict[str, Any],
    dtmf: str,
    agents: dict[str, str],
    hangup_after: float | None,
    caller: str,
    hour: int,
) -> None:
    company = load(config)
    sim = simulate(
        company,
        caller=caller,
        at=dt.datetime(2026, 12, 1, hour, 30, tzinfo=company.tz),
        dtmf=dtmf,
        agents={k: AgentBehaviour.parse(v) for k, v in agents.items()},
        hangup_after=hangup_after,
    )
    assert sim.outcome.result in RESULTS
    # a file `check` passes never promises a call-back nobody can make (issue 11)
    assert all(c.department in company.departments for c in sim.callbacks)
    assert sim.outcome.duration <= 3600 + 60 + 1e-6  # max_call_duration, plus a conversation
    # a waiting node lasts at least a second here, and between two waits the call passes
    # each node at most once (the file has no instant loop): a bounded number of steps
    assert len(sim.steps) <= 3600 * len(config["scenarios"]["main"]["nodes"]) + 10
    if hangup_after is not None:
        assert sim.outcome.duration <= hangup_after + 1e-6


IDS = st.sampled_from(["leg-1", "leg-2", "leg-5", "timer-1", "timer-3", "playback-2", "x"])
events = st.one_of(
    st.builds(Digits, st.text(alphabet="0123456789*#", min_size=1, max_size=3)),
    st.builds(PlaybackFinished, IDS),
    st.builds(TimerFired, IDS),
    st.builds(LegAnswered, IDS),
    st.builds(LegBusy, IDS),
    st.builds(LegFailed, IDS),
    st.builds(LegNoAnswer, IDS),
    st.builds(LegHungUp, IDS),
    st.builds(
        AgentStatus,
        st.sampled_from([*EMPLOYEES, "ghost"]),
        st.sampled_from(["available", "busy", "offline"]),
    ),
    st.builds(LookupResult, IDS, st.none() | st.sampled_from([*EMPLOYEES, "102", "zzz"])),
    st.builds(RecordingFinished, IDS, st.floats(0, 100)),
    st.builds(CallbackStored, IDS, st.booleans()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), feed=st.lists(events, max_size=60))
def test_the_engine_never_raises_on_any_event_sequence(
    config: dict[str, Any], feed: list[Any]
) -> None:
    """Events the runtime should not send (stale ids, unknown agents) are ignored safely."""
    company = load(config)
    call = CallRun(
        company,
        CallInfo.from_raw(company, None, "79161112233"),
        dt.datetime(2026, 12, 1, 10, 0, tzinfo=company.tz),
    )
    call.start()
    now = 0.0
    for event in feed:
        now += 1.0
        call.handle(event, now)
    call.handle(CallerHungUp(), now + 1)
    assert call.finished
    assert call.outcome is not None
    assert call.outcome.result in RESULTS


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), dtmf=st.text(alphabet="0129#w", max_size=20), hour=st.integers(0, 23))
def test_the_same_call_gives_the_same_trace_every_time(
    config: dict[str, Any], dtmf: str, hour: int
) -> None:
    """The engine reads no clock of its own: a dry run is exactly repeatable."""
    company = load(config)
    when = dt.datetime(2026, 12, 1, hour, 30, tzinfo=company.tz)
    first = simulate(company, caller="79161112233", at=when, dtmf=dtmf).as_json()
    second = simulate(company, caller="79161112233", at=when, dtmf=dtmf).as_json()
    assert first == second
