"""The ACD: who is offered which call next, for every runtime.

`Acd` keeps the agents (`agents.Agent`) and the calls waiting in each
department's queue, and answers the two questions distribution asks:

- `ranked`: for a call (or a plain ring of a department), the free members to
  ring, tier by tier, each tier in the department's strategy's order;
- `who_takes`: for an agent who just became free, the waiting call that
  should be offered them -- the highest priority first, first come first
  served within a priority, across every department they serve.

It is pure: time is the ``now`` each call passes (the runtime's clock, or
`simulate`'s virtual one), and nothing here does I/O.  What must outlive the
process -- the states agents chose and their changes -- is the runtime's to
keep: it passes the kept states in (``states``) and hears each change
(`on_change`); `switchboard.storage.agents` keeps them in PostgreSQL.

Strategies (a department's ``strategy``; app_queue's name in brackets):
``all_at_once`` [ringall], ``one_by_one`` [linear] and ``cascade`` keep the
configuration's order; ``least_recent`` [leastrecent] the member whose last
conversation ended longest ago (never: first); ``fewest_calls`` [fewestcalls]
the fewest conversations; ``round_robin`` [rrmemory] the member after the one
who took the department's last call; ``random`` [random].  Ties keep the
configuration's order.  A member's ``penalty`` is their tier: tier 0 before
tier 1, and so on.

Skills: a call may require skills (``en``).  Until ``widen_after`` s of waiting
only members with every skill at the best level any member has are offered
it; until twice that, any member with the skills, the higher levels first;
after that any member.  Without ``widen_after`` a call waits for skilled
members for good.

Wait estimate (app_queue's holdtime, smoothed the same way: each new handle
time weighs a quarter): ``ceil(position / agents) * handle``, where
``agents`` is the department's members logged in (not logged out) and
``handle`` the smoothed talk + wrap-up time of its conversations; None until
one conversation has been seen or while no member is logged in.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from switchboard.acd.agents import AGENT_STATES, Agent, AgentChange, AgentState, DeviceState
from switchboard.config.company import Company
from switchboard.config.model import Department, RingStrategy

# how the members a strategy picked are rung
RingMode = Literal["all_at_once", "one_by_one", "cascade"]
RING_MODES: dict[RingStrategy, RingMode] = {
    "all_at_once": "all_at_once",
    "one_by_one": "one_by_one",
    "cascade": "cascade",
    "least_recent": "one_by_one",
    "fewest_calls": "one_by_one",
    "round_robin": "one_by_one",
    "random": "one_by_one",
}
HANDLE_WEIGHT = 0.25  # app_queue: holdtime = (3 * holdtime + new) / 4
CHANGES_KEPT = 10_000  # the agents' latest changes, in memory
# the holder of an agent a call of another instance holds (database.shared_agents): busy
# here, offered to nobody, until that instance frees them (`Acd.release(.., ELSEWHERE)`)
ELSEWHERE = "@elsewhere"


# an agent's own state, as kept for them across restarts: (state, pause reason)
KeptState = tuple[AgentState, str]


class _Agents(dict[str, Agent]):
    """Every employee's `Agent`, made the first time it is asked for: a single call's
    ACD (`simulate`) never makes the ones it does not ring.  Iterating gives the ones
    made so far (the others are available, with no statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.known: set[str] = set()

    def __missing__(self, agent_id: str) -> Agent:
        if agent_id not in self.known:
            raise KeyError(agent_id)
        agent = self[agent_id] = Agent(agent_id)
        return agent

    def get(self, agent_id: str, default: Agent | None = None) -> Agent | None:  # type: ignore[override]
        try:
            return self[agent_id]
        except KeyError:
            return default

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self.known


# departments by id, each agent's departments (config order), every agent's id, and
# each employee's skills and levels: what an `Acd` reads of a configuration
_Structure = tuple[dict[str, Department], dict[str, list[str]], set[str], dict[str, dict[str, int]]]


def _structure(departments: Iterable[Department], skills: dict[str, dict[str, int]]) -> _Structure:
    by_id: dict[str, Department] = {}
    serves: dict[str, list[str]] = {}
    known = set(skills)
    for department in departments:
        by_id[department.id] = department
        for member in department.members:
            known.add(member)
            serves.setdefault(member, []).append(department.id)
    return by_id, serves, known, skills


def _company_structure(company: Company) -> _Structure:
    """`_structure` of a configuration snapshot, worked out once for it (never
    changed after: every `Acd` over it shares it)."""
    found: _Structure | None = company.derived.get(("acd", "structure"))
    if found is None:
        skills = {e.id: dict(e.skills) for e in company.config.employees}
        found = _structure(company.config.departments, skills)
        company.derived[("acd", "structure")] = found
    return found


@dataclass(slots=True)
class Waiting:
    """A call waiting in a department's queue."""

    call: str
    department: str
    priority: int
    seq: int
    joined: float
    skills: tuple[str, ...] = ()
    widen_after: float | None = None
    resting: dict[str, float] = field(default_factory=dict)  # agent -> may be offered again at
    # the caller left the queue but keeps this place for a call-back (`park`): offered
    # no agent until a call-back is bound to it (`bind`)
    parked: bool = False


@dataclass(slots=True)
class _Line:
    """One department's queue: calls by priority, each priority first come first served."""

    levels: dict[int, dict[str, Waiting]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # priorities, highest first
    handle: float | None = None  # smoothed talk + wrap-up of its conversations, s
    rr_last: int = -1  # round_robin: index of the member who took its last call

    def add(self, waiting: Waiting) -> None:
        level = self.levels.get(waiting.priority)
        if level is None:
            level = self.levels[waiting.priority] = {}
            self.order.append(waiting.priority)
            self.order.sort(reverse=True)
        level[waiting.call] = waiting

    def remove(self, waiting: Waiting) -> None:
        level = self.levels[waiting.priority]
        del level[waiting.call]
        if not level:
            del self.levels[waiting.priority]
            self.order.remove(waiting.priority)

    def __iter__(self) -> Iterator[Waiting]:
        for priority in self.order:
            yield from self.levels[priority].values()

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels.values())


class _Lines(dict[str, _Line]):
    """Each department's queue, made when first asked for."""

    def __missing__(self, department: str) -> _Line:
        line = self[department] = _Line()
        return line


class Acd:
    def __init__(
        self,
        departments: Iterable[Department],
        skills: dict[str, dict[str, int]] | None = None,
        states: dict[str, KeptState] | None = None,
        seed: int | None = None,
        *,
        structure: _Structure | None = None,
    ) -> None:
        """``skills``: each employee's skills and levels (the config's ``skills``);
        ``states``: the states agents chose before (logged out, paused), as kept;
        ``structure``: `_structure` of the departments and skills, already worked out."""
        self.changes: deque[AgentChange] = deque(maxlen=CHANGES_KEPT)  # the latest
        self._change_listeners: list[Callable[[AgentChange], None]] = []
        self.agents = _Agents()
        self.skills: dict[str, dict[str, int]] = {}
        self._departments: dict[str, Department] = {}
        self._serves: dict[str, list[str]] = {}  # agent -> departments, config order
        self._lines = _Lines()
        self._waiting: dict[str, Waiting] = {}
        self._seq = 0
        self._best: dict[tuple[str, str], int] = {}  # (department, skill) -> best level
        self._seed = seed
        self._random: random.Random | None = None  # made for the first `random` order
        self._listeners: list[Callable[[str], None]] = []
        self._device_listeners: list[Callable[[str, DeviceState], None]] = []
        self._configure(structure or _structure(departments, skills or {}))
        self.restore(states or {})

    def _configure(self, structure: _Structure) -> None:
        """Departments and employees (every employee is an agent: one on a call is
        busy for a department's queue too); agents already known keep their state."""
        self._departments, self._serves, self.agents.known, self.skills = structure
        self._best = {}

    def reconfigure(self, company: Company) -> None:
        """A new configuration version: agents keep their states and statistics, calls
        their places (a department that went away keeps its callers until they leave)."""
        self._configure(_company_structure(company))

    @classmethod
    def for_company(
        cls,
        company: Company,
        states: dict[str, KeptState] | None = None,
        seed: int | None = None,
    ) -> Acd:
        """An ACD over a loaded `Company`'s departments and employees' skills."""
        return cls((), None, states, seed, structure=_company_structure(company))

    def on_device(self, listener: Callable[[str, DeviceState], None]) -> None:
        """``listener(agent_id, state)`` whenever an agent's phone changes state."""
        self._device_listeners.append(listener)

    def on_free(self, listener: Callable[[str], None]) -> None:
        """``listener(agent_id)`` whenever an agent may have become free to offer."""
        self._listeners.append(listener)

    def on_change(self, listener: Callable[[AgentChange], None]) -> None:
        """``listener(change)`` for each change an agent made (log in or out, pause,
        resume): what a store keeps, and reports read."""
        self._change_listeners.append(listener)

    def restore(self, states: dict[str, KeptState]) -> None:
        """The states agents chose before (as kept), read after the ACD was made: each
        agent known here takes theirs, telling no one (nothing changed for a store)."""
        for agent_id, (state, reason) in states.items():
            agent = self.agents.get(agent_id)
            if agent is not None and state in ("logged_out", "paused", "available"):
                agent.state, agent.reason = state, reason

    def kept_states(self) -> dict[str, KeptState]:
        """Each agent's own state (``available``, ``logged_out`` or ``paused``) and pause
        reason, as a store keeps them."""
        kept: dict[str, KeptState] = {}
        for agent in (self.agents[a] for a in sorted(self.agents.known)):
            state = agent.state if agent.state in ("logged_out", "paused") else "available"
            kept[agent.id] = (state, agent.reason if state == "paused" else "")
        return kept

    def state_counts(self, now: float) -> dict[str, int]:
        """How many agents are in each state now, every state named (a wrap-up that has
        run out is available; an agent never asked for yet is available)."""
        counts = dict.fromkeys(AGENT_STATES, 0)
        known = self.agents.known
        seen = 0
        for agent_id, agent in self.agents.items():
            if agent_id in known:  # one a new configuration version dropped is not counted
                counts[agent.shown_state(now)] += 1
                seen += 1
        counts["available"] += len(known) - seen
        return counts

    # --- agents: their own changes ------------------------------------------------------

    def login(self, agent_id: str, now: float, by: str = "cli") -> None:
        agent = self._agent(agent_id)
        if agent.state in ("logged_out", "paused"):
            self._set(agent, "available", now, by=by)
            self._freed(agent, now)

    def logout(self, agent_id: str, now: float, by: str = "cli") -> None:
        """Logged out; a call ringing or talking to them goes on, no new one comes."""
        self._set(self._agent(agent_id), "logged_out", now, by=by)

    def pause(self, agent_id: str, now: float, reason: str = "", by: str = "cli") -> None:
        agent = self._agent(agent_id)
        if agent.state == "logged_out":
            raise ValueError(f"agent {agent_id!r} is logged out: log in first")
        self._set(agent, "paused", now, reason=reason, by=by)

    def resume(self, agent_id: str, now: float, by: str = "cli") -> None:
        agent = self._agent(agent_id)
        if agent.state == "paused":
            self._set(agent, "available", now, by=by)
            self._freed(agent, now)

    def device(self, agent_id: str, state: DeviceState, now: float) -> None:
        """Asterisk says what the agent's phone is doing."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.device == state:
            return
        was_free = agent.free(now)
        agent.device = state
        for listener in self._device_listeners:
            listener(agent_id, state)
        if not was_free:
            self._freed(agent, now)

    # --- agents: what calls do to them ---------------------------------------------------

    def claim(self, agent_id: str, call: str, now: float) -> bool:
        """Hold a free agent for ``call``'s offer (ringing); False when they are not
        free.  The same call claiming again (their other phone) is granted."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return True  # not a member of any department: nothing to hold
        if agent.holder == call:
            return True
        if agent.holder is not None or not agent.free(now):
            return False
        agent.holder = call
        self._set(agent, "ringing", now)
        return True

    def release(self, agent_id: str, call: str, now: float, rest: float = 0.0) -> None:
        """``call``'s offer to the agent is over without a conversation; the call will
        not offer them again for ``rest`` s."""
        agent = self.agents.get(agent_id)
        waiting = self._waiting.get(call)
        if waiting is not None and rest > 0:
            waiting.resting[agent_id] = now + rest
        if agent is None or agent.holder != call:
            return
        agent.holder = None
        if agent.state == "ringing":
            self._set(agent, "available", now)
        self._freed(agent, now)

    def hold_elsewhere(self, agent_id: str, call: str, now: float) -> None:
        """``call``'s offer found the agent held by another instance's call: they are
        held here for that one (`ELSEWHERE`), busy, until it frees them."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.holder not in (None, call):
            return
        agent.holder = ELSEWHERE
        if agent.state == "available":
            self._set(agent, "ringing", now)

    def held_elsewhere(self) -> list[str]:
        """The agents held here for another instance's calls."""
        return [a.id for a in self.agents.values() if a.holder == ELSEWHERE]

    def talking(self, agent_id: str, call: str, now: float) -> None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        agent.holder = call
        if agent.state != "logged_out":
            self._set(agent, "talking", now)

    def finished(
        self, agent_id: str, call: str, now: float, talk: float, department: str | None
    ) -> None:
        """The conversation with ``call`` ended after ``talk`` s: statistics, then
        wrap-up (the department's ``wrapup``) or available."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        if agent.holder == call:
            agent.holder = None
        agent.stats.calls += 1
        agent.stats.last_end = now
        agent.stats.talk += talk
        dep = self._departments.get(department) if department else None
        wrapup = dep.wrapup if dep is not None else 0.0
        if dep is not None:
            line = self._lines[dep.id]
            handle = talk + wrapup
            line.handle = (
                handle
                if line.handle is None
                else line.handle * (1 - HANDLE_WEIGHT) + handle * HANDLE_WEIGHT
            )
            if agent_id in dep.members:
                line.rr_last = dep.members.index(agent_id)
        if agent.state in ("talking", "ringing"):
            if wrapup > 0:
                agent.wrapup_until = now + wrapup
                self._set(agent, "wrapup", now)
            else:
                self._set(agent, "available", now)
        self._freed(agent, now)

    def free(self, agent_id: str, now: float) -> bool:
        agent = self.agents.get(agent_id)
        return agent is None or (agent.holder is None and agent.free(now))

    def next_change(self, now: float) -> float | None:
        """When the next agent comes out of wrap-up: the runtime wakes the queues then."""
        ends = [
            a.wrapup_until
            for a in self.agents.values()
            if a.state == "wrapup" and a.wrapup_until > now
        ]
        return min(ends, default=None)

    # --- waiting calls -------------------------------------------------------------------

    def join(
        self,
        call: str,
        department: str,
        now: float,
        priority: int = 0,
        skills: tuple[str, ...] = (),
        widen_after: float | None = None,
    ) -> int:
        """``call`` waits in ``department``'s queue (keeping its place if it already
        does there); its position."""
        waiting = self._waiting.get(call)
        if waiting is not None and waiting.department == department:
            return self.position(call) or 0
        self.leave(call)
        self._seq += 1
        waiting = Waiting(call, department, priority, self._seq, now, skills, widen_after)
        self._waiting[call] = waiting
        self._lines[department].add(waiting)
        return self.position(call) or 0

    def leave(self, call: str) -> None:
        waiting = self._waiting.pop(call, None)
        if waiting is not None:
            self._lines[waiting.department].remove(waiting)

    def waits(self, call: str) -> bool:
        return call in self._waiting

    def park(self, call: str) -> bool:
        """``call`` leaves its queue but keeps its place, for the call-back it may ask for
        (`bind`); False when it did not wait."""
        waiting = self._waiting.get(call)
        if waiting is None:
            return False
        waiting.parked = True
        return True

    def bind(self, call: str, key: str) -> bool:
        """The call-back ``key`` takes parked ``call``'s place: it is offered a freed agent
        when its turn comes, as the caller would have been (`who_takes` gives ``key``).
        False when ``call`` holds no parked place."""
        waiting = self._waiting.get(call)
        if waiting is None or not waiting.parked:
            return False
        line = self._lines[waiting.department]
        level = line.levels[waiting.priority]
        # the same place in its level: the entries after it keep coming after it
        entries = [(key if c == call else c, w) for c, w in level.items()]
        level.clear()
        level.update(entries)
        del self._waiting[call]
        waiting.call, waiting.parked = key, False
        self._waiting[key] = waiting
        return True

    def precedes(self, first: str, second: str) -> bool:
        """Is waiting call ``first`` served before ``second`` (a higher priority, or the
        same and it came earlier)?  False when either does not wait."""
        a, b = self._waiting.get(first), self._waiting.get(second)
        if a is None or b is None:
            return False
        return (-a.priority, a.seq) < (-b.priority, b.seq)

    def waiting(self, call: str) -> Waiting | None:
        """How ``call`` waits (department, priority, since when); None when it does not."""
        return self._waiting.get(call)

    def department_of(self, call: str) -> str | None:
        """The department whose queue ``call`` waits in; None when it does not wait."""
        waiting = self._waiting.get(call)
        return waiting.department if waiting is not None else None

    def position(self, call: str) -> int | None:
        """1 for the next to be offered an agent; None when ``call`` is not waiting."""
        waiting = self._waiting.get(call)
        if waiting is None:
            return None
        line = self._lines[waiting.department]
        ahead = 0
        for priority in line.order:
            level = line.levels[priority]
            if priority == waiting.priority:
                for other in level:
                    if other == call:
                        return ahead + 1
                    ahead += 1
            ahead += len(level)
        return None  # unreachable: `_waiting` and the lines change together

    def line(self, department: str) -> Iterator[str]:
        """The calls waiting in ``department``'s queue, in the order they are served."""
        for waiting in self._lines[department]:
            yield waiting.call

    def seed_handle(self, seconds: float, department: str | None = None) -> None:
        """Start a department's (every department's) handle time at ``seconds``, as if
        its conversations had lasted that long (`simulate --handle-time`)."""
        for name in self._departments:
            if department is None or name == department:
                self._lines[name].handle = seconds

    def estimate(self, call: str) -> float | None:
        """Seconds ``call`` may still wait (see the module's formula); None: unknown."""
        waiting = self._waiting.get(call)
        if waiting is None:
            return None
        line = self._lines[waiting.department]
        position = self.position(call)
        dep = self._departments.get(waiting.department)
        members = dep.members if dep is not None else ()
        logged_in = sum(1 for m in members if self.agents[m].state != "logged_out")
        if line.handle is None or not logged_in or position is None:
            return None
        return math.ceil(position / logged_in) * line.handle

    # --- distribution --------------------------------------------------------------------

    def ranked(
        self, department: str, now: float, call: str | Waiting | None = None
    ) -> list[list[str]]:
        """The members to ring, free now, tier by tier (lowest penalty first), each in the
        strategy's order.  With ``call`` (waiting in the queue, or what it needs, as
        the call itself knows it): its skills and rests apply too."""
        waiting = self._waiting.get(call) if isinstance(call, str) else call
        return self._tiers(department, now, waiting, True)

    def order(self, department: str, now: float) -> list[list[str]]:
        """Every member, free or not, tier by tier in the strategy's order: a plain ring
        of the department (a `dial` node), which skips the busy ones as it goes."""
        return self._tiers(department, now, None, False)

    def _tiers(
        self, department: str, now: float, waiting: Waiting | None, only_free: bool
    ) -> list[list[str]]:
        dep = self._departments[department]
        stage = self._stage(waiting, now)
        candidates: list[tuple[int, int, float, int, str]] = []
        required = waiting.skills if waiting is not None else ()
        best = self._best_levels(dep, required) if stage == 0 else {}
        order = self._order(dep)
        for index, member in enumerate(dep.members):
            agent = self.agents[member]
            if only_free and (agent.holder is not None or not agent.free(now)):
                continue
            if waiting is not None and waiting.resting.get(member, 0.0) > now:
                continue
            level = self._level(member, required)
            if required and stage < 2 and level is None:
                continue
            if stage == 0 and any(
                self.skills.get(member, {}).get(skill, 0) < best[skill] for skill in required
            ):
                continue
            candidates.append((dep.penalty(member), -(level or 0), order(index), index, member))
        candidates.sort()
        tiers: list[list[str]] = []
        last: int | None = None
        for penalty, _, _, _, member in candidates:
            if penalty != last:
                tiers.append([])
                last = penalty
            tiers[-1].append(member)
        return tiers

    def who_takes(
        self, agent_id: str, now: float, accept: Callable[[str], bool] | None = None
    ) -> str | None:
        """The waiting call to offer a freed agent: the highest priority, then the longest
        waiting, over every department they serve, that may be offered them now (and
        that ``accept`` takes: the runtime's say, e.g. not while it rings somebody)."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.holder is not None or not agent.free(now):
            return None
        best: Waiting | None = None
        for department in self._serves.get(agent_id, ()):
            for waiting in self._lines[department]:
                if best is not None and (-waiting.priority, waiting.seq) >= (
                    -best.priority,
                    best.seq,
                ):
                    break
                if self._may_offer(agent_id, waiting, now) and (
                    accept is None or accept(waiting.call)
                ):
                    best = waiting
                    break
        return best.call if best is not None else None

    def tick(self, now: float) -> None:
        """Wrap-ups that ended by ``now`` end: the agents are available, and told
        (`on_free`).  The runtime calls it at `next_change`."""
        for agent in list(self.agents.values()):
            if agent.state == "wrapup" and agent.wrapup_until <= now:
                self._set(agent, "available", now)
                self._freed(agent, now)

    # --- internals -----------------------------------------------------------------------

    def _may_offer(self, agent_id: str, waiting: Waiting, now: float) -> bool:
        if waiting.parked or waiting.resting.get(agent_id, 0.0) > now:
            return False
        if not waiting.skills:
            return True
        stage = self._stage(waiting, now)
        if stage == 2:
            return True
        level = self._level(agent_id, waiting.skills)
        if level is None:
            return False
        if stage == 1:
            return True
        best = self._best_levels(self._departments[waiting.department], waiting.skills)
        mine = self.skills.get(agent_id, {})
        return all(mine.get(skill, 0) >= best[skill] for skill in waiting.skills)

    @staticmethod
    def _stage(waiting: Waiting | None, now: float) -> int:
        """0: the best levels only; 1: any level of the skills; 2: anyone."""
        if waiting is None or not waiting.skills:
            return 2
        if waiting.widen_after is None:
            return 0
        waited = now - waiting.joined
        if waited < waiting.widen_after:
            return 0
        return 1 if waited < 2 * waiting.widen_after else 2

    def _level(self, member: str, required: tuple[str, ...]) -> int | None:
        """The sum of ``member``'s levels in ``required``; None when one is missing."""
        mine = self.skills.get(member, {})
        total = 0
        for skill in required:
            level = mine.get(skill)
            if level is None:
                return None
            total += level
        return total

    def _best_levels(self, dep: Department, required: tuple[str, ...]) -> dict[str, int]:
        """For each required skill, the best level any member has (logged in or not: the
        configuration's, so worked out once)."""
        best: dict[str, int] = {}
        for skill in required:
            level = self._best.get((dep.id, skill))
            if level is None:
                level = self._best[(dep.id, skill)] = max(
                    (self.skills.get(m, {}).get(skill, 0) for m in dep.members), default=0
                )
            best[skill] = level
        return best

    def _order(self, dep: Department) -> Callable[[int], float]:
        """The strategy's sort key for member ``index`` (lower: rung first)."""
        members = dep.members
        match dep.strategy:
            case "least_recent":

                def key(index: int) -> float:
                    last = self.agents[members[index]].stats.last_end
                    return -math.inf if last is None else last

                return key
            case "fewest_calls":
                return lambda index: self.agents[members[index]].stats.calls
            case "round_robin":
                start = self._lines[dep.id].rr_last + 1
                size = len(members)
                return lambda index: (index - start) % size
            case "random":
                if self._random is None:
                    self._random = random.Random(self._seed)  # noqa: S311 - an order
                draws = [self._random.random() for _ in members]
                return lambda index: draws[index]
            case _:
                return lambda index: 0

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise KeyError(f"no employee {agent_id!r}")
        return agent

    def _set(
        self, agent: Agent, state: AgentState, now: float, reason: str = "", by: str = "acd"
    ) -> None:
        """A new state (the callers tell `on_free` listeners, once, when it frees them)."""
        agent.state, agent.since, agent.reason = state, now, reason
        if by != "acd":
            change = AgentChange(agent.id, now, state, reason, by)
            self.changes.append(change)
            for listener in self._change_listeners:
                listener(change)

    def _freed(self, agent: Agent, now: float) -> None:
        """Tell the listeners when ``agent`` is free to offer now."""
        if agent.holder is None and agent.free(now):
            for listener in self._listeners:
                listener(agent.id)
