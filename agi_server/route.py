"""`agi://host/route`, `/schedule` and `/icm`: decisions for a dialplan that rings itself.

``route`` runs the scenario (prompts and menus included) up to the first node
that would ring someone or queue the caller, and answers in channel
variables, so the dialplan goes on with its own ``Dial()`` or ``Queue()``:

=========================  ==============================================================
``SWITCHBOARD_ACTION``     ``dial``, ``queue``, ``dialplan`` or ``hangup``
``SWITCHBOARD_TARGETS``    a ready ``Dial()`` string: ``PJSIP/101&PJSIP/102``
``SWITCHBOARD_TIMEOUT``    seconds for that ``Dial()`` (queue: the longest wait)
``SWITCHBOARD_STEPS``      how many successive dials the ring strategy makes;
                           ``SWITCHBOARD_TARGETS_<n>``/``SWITCHBOARD_TIMEOUT_<n>`` each
``SWITCHBOARD_SCENARIO``   the scenario, and ``SWITCHBOARD_NODE`` the node that decided
``SWITCHBOARD_NOANSWER``   the node to come back to when nobody answers
                           (``route?scenario=…&node=…``); ``SWITCHBOARD_BUSY`` likewise
``SWITCHBOARD_ICM``        ``found``/``default``/``notfound`` when ICM ran, with
                           ``SWITCHBOARD_ICM_EMPLOYEE`` and ``SWITCHBOARD_ICM_SOURCE``
=========================  ==============================================================

The successive dials of a strategy come from the engine itself: a copy of the
call's run is played forward on a virtual clock with nobody answering, and
every change in who rings starts a new step.  So one-by-one gives one step
per member, cascade a growing set, desk-then-mobile the desk and then both.

Who is rung is the ACD's say, as over ARI and in `simulate`: the server's
ACD knows the agents' own states (logged out, paused: ``switchboard
agents``) and the device states the call read just before it decided
(``DEVICE_STATE()``, `agi_server.call`), so a department's ring plan skips
members who are not free and follows its tiers and strategy (`Acd.order`),
and a queue's ``SWITCHBOARD_TARGETS`` lists its free members in the order
the ACD would offer them the call (`Acd.ranked`; ``all_at_once``: the best
tier's).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchboard.acd import Waiting
from switchboard.config.company import Company
from switchboard.config.model import DialNode, QueueNode
from switchboard.engine import actions as act
from switchboard.engine import events as ev
from switchboard.engine.call import CallRun

PLAN_STEPS = 500  # engine steps a ring plan may take (a strategy is a handful)


@dataclass(frozen=True)
class RingStep:
    rings: tuple[act.Ring, ...]
    seconds: float


def ring_plan(run: CallRun, actions: list[act.Action]) -> list[RingStep]:
    """Who rings, and for how long, if nobody answers: the engine's own strategy.

    The same node ringing the same phones in the same ACD order, every member
    free, always plays out the same way, so such a plan is kept with the
    configuration snapshot; one with a member not free now (or a ``random``
    order) is worked out for the call.
    """
    rings = tuple(
        (a.employee_id, a.device, a.number, a.confirm, a.timeout)
        for a in actions
        if isinstance(a, act.Ring)
    )
    order = _plan_order(run)
    if order is None:
        return _play_out(run, actions)
    key = ("ring_plan", run.scenario, run.node_name, rings, order)
    plan: list[RingStep] | None = run.company.derived.get(key)
    if plan is None:
        plan = run.company.derived[key] = _play_out(run, actions)
    return plan


def _plan_order(run: CallRun) -> tuple[tuple[str, ...], ...] | None:
    """The ACD's order of the department a `dial` node rings, as part of a kept plan's
    key (() for any other node); None when the plan is not to be kept."""
    company = run.company
    node = company.node(run.scenario, run.node_name)
    target = company.resolve_target(node.target) if isinstance(node, DialNode) else None
    if target is None or target[0] != "department":
        return ()
    if company.departments[target[1]].strategy == "random":
        return None
    acd, now = run.acd, run.clock
    tiers = acd.order(target[1], now)
    if not all(acd.free(member, now) for tier in tiers for member in tier):
        return None
    return tuple(tuple(tier) for tier in tiers)


def _play_out(run: CallRun, actions: list[act.Action]) -> list[RingStep]:
    # the ACD is shared: the run only reads a runtime's ACD (the copy too)
    fork = copy.deepcopy(run, {id(run.company): run.company, id(run.acd): run.acd})
    node = (fork.scenario, fork.node_name)
    ringing: dict[str, act.Ring] = {}
    timers: dict[str, float] = {}
    changes: list[tuple[float, tuple[act.Ring, ...]]] = []

    def absorb(out: list[act.Action], t: float) -> None:
        changed = False
        for action in out:
            if isinstance(action, act.Ring):
                ringing[action.leg_id] = action
                changed = True
            elif isinstance(action, act.StopRinging):
                changed = ringing.pop(action.leg_id, None) is not None or changed
            elif isinstance(action, act.StartTimer):
                timers[action.timer_id] = action.at
            elif isinstance(action, act.CancelTimer):
                timers.pop(action.timer_id, None)
        if changed:
            if changes and changes[-1][0] == t:
                changes.pop()
            changes.append((t, tuple(ringing.values())))

    absorb(actions, fork.now)
    for _ in range(PLAN_STEPS):
        if fork.finished or (fork.scenario, fork.node_name) != node or not timers:
            break
        timer_id = min(timers, key=timers.__getitem__)
        at = timers.pop(timer_id)
        absorb(fork.handle(ev.TimerFired(timer_id), at), at)
    end = fork.now
    steps = []
    for i, (t, rings) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else end
        if rings and until > t:
            steps.append(RingStep(rings, until - t))
    return steps


def seconds(value: float) -> str:
    return str(max(1, math.ceil(value - 1e-9)))


def decision_variables(
    run: CallRun, actions: list[act.Action], dial_string: Callable[[Sequence[act.Ring]], str]
) -> dict[str, str]:
    """The channel variables of a `route` that stopped at a ring or a queue."""
    company = run.company
    node = company.node(run.scenario, run.node_name)
    exits = company.node_exits(run.scenario, run.node_name)
    out = {"SWITCHBOARD_SCENARIO": run.scenario, "SWITCHBOARD_NODE": run.node_name}
    if isinstance(node, QueueNode):
        department = company.departments[node.department]
        members = [company.employees[m] for m in free_members(run, department.id, actions)]
        rings = [
            act.Ring(f"q{i}", e.id, "desk", e.extension, False, node.max_wait)
            for i, e in enumerate(members)
            if e.extension
        ]
        out |= {
            "SWITCHBOARD_ACTION": "queue",
            "SWITCHBOARD_QUEUE": department.id,
            "SWITCHBOARD_TARGETS": dial_string(rings),
            "SWITCHBOARD_TIMEOUT": seconds(node.max_wait),
            "SWITCHBOARD_MOH": node.moh,
            "SWITCHBOARD_NOANSWER": exits.get("overflow", ""),
            "SWITCHBOARD_CALLBACK_KEY": node.callback_key or "",
        }
        return out
    plan = ring_plan(run, actions)
    out["SWITCHBOARD_ACTION"] = "dial"
    out["SWITCHBOARD_STEPS"] = str(len(plan))
    for n, step in enumerate(plan, 1):
        out[f"SWITCHBOARD_TARGETS_{n}"] = dial_string(step.rings)
        out[f"SWITCHBOARD_TIMEOUT_{n}"] = seconds(step.seconds)
    out["SWITCHBOARD_TARGETS"] = out.get("SWITCHBOARD_TARGETS_1", "")
    out["SWITCHBOARD_TIMEOUT"] = out.get("SWITCHBOARD_TIMEOUT_1", "0")
    out["SWITCHBOARD_RING_TIME"] = seconds(sum(s.seconds for s in plan)) if plan else "0"
    out["SWITCHBOARD_NOANSWER"] = exits.get("noanswer", "")
    out["SWITCHBOARD_BUSY"] = exits.get("busy", exits.get("noanswer", ""))
    if isinstance(node, DialNode):
        target = company.resolve_target(node.target)
        if target is not None and target[0] == "department":
            out["SWITCHBOARD_DEPARTMENT"] = target[1]
    return out


def free_members(run: CallRun, department: str, actions: list[act.Action]) -> list[str]:
    """The members a queue would offer the call to now, in the ACD's order: free (not
    logged out or paused, their phone neither busy nor unavailable), tier by tier in
    the strategy's order, with the skills the call asks for (its `JoinQueue`);
    ``all_at_once`` rings only the best tier (as the engine's queue does)."""
    join = next((a for a in actions if isinstance(a, act.JoinQueue)), None)
    need = None
    if join is not None:
        need = Waiting(
            run.call_key, department, join.priority, 0, run.clock, join.skills,
            join.widen_after,
        )  # fmt: skip
    tiers = run.acd.ranked(department, run.clock, need)
    if run.company.departments[department].strategy == "all_at_once":
        tiers = tiers[:1]
    employees = run.company.employees
    return [member for tier in tiers for member in tier if member in employees]


def icm_variables(run: CallRun) -> dict[str, str]:
    """What ICM found on this call's way, if it passed an ICM node."""
    steps = [s for s in run.trace if s.type == "icm"]
    if not steps:
        return {}
    details = steps[-1].details
    tried = details.get("sources") or []
    manager = details.get("manager")
    default = details.get("default")
    found = "found" if manager else "default" if default else "notfound"
    source = tried[-1]["source"] if manager and tried else ""
    return {
        "SWITCHBOARD_ICM": found,
        "SWITCHBOARD_ICM_EMPLOYEE": str(manager or ""),
        "SWITCHBOARD_ICM_SOURCE": str(source),
    }


def schedule_variables(company: Company, name: str, when: dt.datetime) -> dict[str, str]:
    """`agi://host/schedule?name=office`: is it open now, and if not, why."""
    schedule = company.schedules.get(name)
    if schedule is None:
        raise LookupError(f"no schedule {name!r}")
    state = schedule.state(company.local_time(when))
    kind = state if state in ("open", "closed", "holiday") else "break"
    return {
        "SWITCHBOARD_OPEN": "1" if state == "open" else "0",
        "SWITCHBOARD_SCHEDULE_STATE": kind,
        "SWITCHBOARD_BREAK": state if kind == "break" else "",
    }
