"""Keeping call-back promises: a worker that claims due call-backs and makes them over ARI.

`CallbackWorker` is one loop (an owned task, cancelled and awaited on stop).
Each pass it renews the leases of the jobs it holds, hands back jobs whose
instance died (`release_stale`), moves the due jobs of departments whose
schedule is closed now to a later check (no attempt counted), and claims as
many due jobs as it has free slots (``FOR UPDATE SKIP LOCKED``: several
instances, one per Asterisk, share the table).  Each claimed job is one task:

- ``employee_first`` (default): ring a free member of the department (one at a
  time, in the department's order) on the desk (``asterisk.endpoints.employee``);
  when one answers they hear hold music while the customer is dialled
  (``asterisk.endpoints.mobile``); when the customer answers both meet in a
  mixing bridge and the job is ``done``;
- ``customer_first``: dial the customer first; once they answer they hear hold
  music while the employees are rung.

Every other outcome (``no employee``, ``busy``, ``no answer``, ``failed``, a
hang-up before the two met) is recorded and retried after a back-off, up to
``max_attempts``; then the job is ``failed``.  Before the customer is dialled
the worker re-checks its claim atomically (`mark_calling_customer`): a job
released meanwhile is never dialled by its old holder.  A call-back whose
instance died while the customer's phone rang is made again after the first
back-off (at least once: see `switchboard.storage.callbacks`).

Each recorded attempt says how long it took, in clock seconds from its first
dial (`AttemptTimes`): the wait until the two met (or the whole attempt), and
for a kept one the talk and the total, added once one of them hangs up.

Events: the worker's channels are made with ``channels/create`` + ``dial``
and the StasisStart argument `CALLBACK_MARKER`; `CallbackEvents` is the
supervisor's event sink that gives the worker the events of its channels and
the runtime everything else.  A channel with the marker that nobody owns (left
by a killed instance) is hung up.  Every delay is in seconds of the `Clock`;
the database gets them as real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import structlog

from ari_app.client import AriClient, AriError, AriUnavailable, CallGone
from ari_app.legs import STASIS_WAIT, finish_even_if_cancelled, leg_end
from ari_app.models import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    Dial,
    StasisStart,
    event_channel_id,
)
from ari_app.supervisor import EventSink
from switchboard.acd import Acd
from switchboard.acd.devices import elsewhere
from switchboard.clock import Clock
from switchboard.config.company import Company
from switchboard.config.model import Department
from switchboard.schedule import OPEN
from switchboard.storage import callbacks as store
from switchboard.storage.callbacks import AttemptTimes, CallbackJob, ClaimLost

log = structlog.get_logger("switchboard.callbacks")

CALLBACK_MARKER = "switchboard-callback"  # StasisStart args of the worker's channels
RING_GRACE = 5.0  # seconds past the dial timeout before we stop waiting for Asterisk
TEARDOWN_WAIT = 5.0  # seconds to wait for legs to go before destroying the bridge

# outcomes, as recorded in callback_attempts.result and callbacks.last_result
DONE = "done"
NO_EMPLOYEE = "no employee"
BUSY = "busy"
NO_ANSWER = "no answer"
FAILED = "failed"
EMPLOYEE_HUNG_UP = "employee hung up"
CUSTOMER_HUNG_UP = "customer hung up"
STOPPED = "stopped"
ERROR = "error"

CallbackOrder = Literal["employee_first", "customer_first"]
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True)
class CallbackSettings:
    """How call-backs are made; every time is in clock seconds."""

    order: CallbackOrder = "employee_first"
    max_attempts: int = 3
    backoff: tuple[float, ...] = (60.0, 300.0, 900.0)  # after attempt 1, 2, 3 ... failed
    employee_ring: float = 20.0  # how long each employee rings
    customer_ring: float = 30.0
    concurrency: int = 10  # call-backs this instance makes at once
    poll_interval: float = 5.0  # how often due call-backs are looked for
    lease: float = 120.0  # a claim not renewed this long is released (its instance died)
    closed_recheck: float = 300.0  # a closed department's due call-backs wait this long
    busy_recheck: float = 30.0  # every member busy: the call-back waits this long, uncounted
    max_talk: float = 4 * 3600.0

    @classmethod
    def from_company(cls, company: Company) -> CallbackSettings:
        """The configuration's `callbacks:` section."""
        section = company.config.callbacks
        return cls(
            order=section.order,
            max_attempts=section.max_attempts,
            backoff=tuple(section.retry_after),
            employee_ring=section.employee_ring,
            customer_ring=section.customer_ring,
            concurrency=section.concurrency,
        )

    def __post_init__(self) -> None:
        if self.order not in ("employee_first", "customer_first"):
            raise ValueError(f"unknown call-back order {self.order!r}")
        if self.max_attempts < 1 or self.concurrency < 1 or not self.backoff:
            raise ValueError("max_attempts, concurrency and backoff must be positive")
        if self.poll_interval * 3 > self.lease:
            raise ValueError("the lease must be at least three poll intervals (it is renewed)")

    def delay_after(self, attempt: int) -> float:
        """The back-off after attempt number ``attempt`` (1-based) failed."""
        return self.backoff[min(attempt, len(self.backoff)) - 1]


class _NotNow(Exception):
    """Every member of the department is busy: put the job back without an attempt."""


@dataclass
class _Leg:
    channel_id: str
    role: Literal["employee", "customer"]
    employee_id: str | None = None
    in_stasis: bool = False  # its StasisStart arrived: it may be dialled
    answered: bool = False
    failure: str | None = None  # busy / no answer / failed, once known
    gone: bool = False
    hung_up: bool = False  # we asked Asterisk to hang it up


@dataclass(frozen=True)
class _Outcome:
    result: str
    agent: str | None = None
    settled: bool = False  # already written (done at the moment the two met)


class CallbackWorker:
    """Claims due call-backs from the shared table and makes them through ``client``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: AriClient,
        company: Callable[[], Company],
        instance: str,
        settings: CallbackSettings | None = None,
        *,
        clock: Clock | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
        agents: Acd | None = None,
    ) -> None:
        self.pool = pool
        self.client = client
        self.company = company
        self.instance = instance
        self.settings = settings or CallbackSettings()
        self.clock = clock or Clock()
        # local time for the departments' schedules (tests fix it)
        self.wall_clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
        self.agents = agents
        self.connected = False  # the ARI connection is up (told by `CallbackEvents`)
        self.failures = 0  # attempts or passes ended by a bug (logged with the traceback)
        self.log = log.bind(instance=instance)
        self._legs: dict[str, tuple[_Attempt, _Leg]] = {}  # every channel the worker owns
        self._attempts: dict[int, _Attempt] = {}  # by call-back id
        self._tasks: set[asyncio.Task[None]] = set()
        self._engaged: set[str] = set()  # employees ringing or talking on our call-backs
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._last_sweep: float | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name=f"callbacks-{self.instance}")

    async def stop(self) -> None:
        """Stop claiming; end every attempt in progress (a job not yet attempted goes back)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> CallbackWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def wake(self) -> None:
        """Look for due call-backs now rather than at the next poll."""
        self._wake.set()

    @property
    def active(self) -> int:
        """Call-backs being made by this worker now."""
        return len(self._attempts)

    # --- events ----------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        return channel_id in self._legs

    def on_event(self, event: AriEvent) -> bool:
        """Take the event if it belongs to one of our channels (or a stray call-back leg)."""
        channel_id = event_channel_id(event)
        if channel_id is None:
            return False
        found = self._legs.get(channel_id)
        if found is None:
            if isinstance(event, StasisStart) and event.args[:1] == (CALLBACK_MARKER,):
                self._hang_up_strays([event.channel])
                return True
            return False
        attempt, leg = found
        attempt.apply(leg, event)
        return True

    def on_connected(self, channels: list[Channel]) -> list[Channel]:
        """After a (re)connect: our legs that vanished have ended, stray call-back legs
        (a killed instance's) are hung up; returns the channels that are not ours."""
        self.connected = True
        live = {c.id for c in channels}
        for channel_id, (attempt, leg) in list(self._legs.items()):
            if channel_id not in live and not leg.gone:
                attempt.apply(leg, ChannelDestroyed(Channel(channel_id, "", ""), 16, "gone"))
        strays = [c for c in channels if c.id not in self._legs and self._is_callback_leg(c)]
        if strays:
            self._hang_up_strays(strays)
        self.wake()
        stray_ids = {c.id for c in strays}
        return [c for c in channels if c.id not in self._legs and c.id not in stray_ids]

    def on_disconnected(self) -> None:
        self.connected = False

    def _is_callback_leg(self, channel: Channel) -> bool:
        return channel.in_stasis_app(self.client.app) and channel.app_data.split(",")[1:2] == [
            CALLBACK_MARKER
        ]

    def _hang_up_strays(self, channels: list[Channel]) -> None:
        async def hang_up() -> None:
            for channel in channels:
                self.log.warning("stray call-back leg hung up", channel=channel.id)
                with contextlib.suppress(AriError):
                    await self.client.hangup(channel.id)

        self._spawn(hang_up(), "callbacks-strays")

    # --- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self.settings
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except DB_ERRORS as exc:
                self.log.warning("call-backs: database unavailable", error=str(exc))
            except Exception:  # a bug in one pass is logged; the next pass comes as usual
                self.failures += 1
                self.log.exception("call-backs: pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    self.clock.real(min(settings.poll_interval, settings.lease / 4))
                ):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """One pass: renew, release stale claims, postpone closed departments, claim and
        start due call-backs.  Returns how many were claimed."""
        settings = self.settings
        company = self.company()
        closed = self.closed_departments(company)
        async with self.pool.acquire() as conn:
            now = self.clock.now()
            if self._last_sweep is None or now - self._last_sweep >= settings.lease / 4:
                self._last_sweep = now
                await self._sweep(conn)
            await store.postpone_due(conn, closed, self.clock.real(settings.closed_recheck))
            free = settings.concurrency - len(self._attempts)
            if not self.connected or free <= 0:
                return 0
            jobs = await store.claim_due(conn, self.instance, free, skip_departments=closed)
        for job in jobs:
            attempt = _Attempt(self, job, company)
            self._attempts[job.id] = attempt
            self._spawn(self._attempt(attempt), f"callback-{job.id}")
        return len(jobs)

    async def make_kept(self, request_id: str, agent: str, acd_key: str) -> bool:
        """The place call-back ``request_id`` kept in a queue came up and the ACD gave it
        ``agent``, held under ``acd_key``: make it now with them; False when it is not
        pending (made already, being made, or claimed by another)."""
        if not self.connected:
            return False
        company = self.company()
        async with self.pool.acquire() as conn:
            job = await store.claim_request(conn, self.instance, request_id)
        if job is None:
            return False
        attempt = _Attempt(self, job, company, preferred=agent)
        attempt.acd_key = acd_key
        if self.agents is not None and not self.agents.claim(
            agent, attempt.acd_key, self.clock.now()
        ):
            attempt.preferred = None  # taken meanwhile: whoever of the department is free
        self._attempts[job.id] = attempt
        self._spawn(self._attempt(attempt), f"callback-{job.id}")
        return True

    async def _sweep(self, conn: store.Conn) -> None:
        held = [a.job for a in self._attempts.values() if a.holding]
        kept = await store.renew(conn, held)
        for job in held:
            attempt = self._attempts.get(job.id)
            # an attempt that settled meanwhile is not lost: it is no longer holding
            if job.id not in kept and attempt is not None and attempt.holding:
                self.log.warning("call-back claim lost", callback_id=job.id)
        released = await store.release_stale(
            conn,
            self.clock.real(self.settings.lease),
            self.settings.max_attempts,
            customer_retry=self.clock.real(self.settings.backoff[0]),
        )
        for job in released:
            self.log.warning(
                "call-back released: its instance stopped renewing the claim",
                callback_id=job.id,
                claimed_by=job.claimed_by,
                result=job.last_result,
            )

    def closed_departments(self, company: Company) -> list[str]:
        """Departments whose call-back schedule is not open at this moment."""
        local = self.wall_clock().astimezone(company.tz)
        closed = []
        for department in company.departments.values():
            schedule = company.schedules.get(department.schedule or "")
            if schedule is not None and schedule.state(local) != OPEN:
                closed.append(department.id)
        return closed

    def free_members(self, company: Company, department: Department) -> list[str]:
        """Members with a desk phone who are not on a call now, in the department's order."""
        free = []
        for member in department.members:
            employee = company.employees.get(member)
            if employee is None or employee.extension is None or member in self._engaged:
                continue
            if self.agents is not None and not self.agents.free(member, self.clock.now()):
                continue
            free.append(member)
        return free

    # --- one attempt ---------------------------------------------------------------------

    async def _attempt(self, attempt: _Attempt) -> None:
        job = attempt.job
        logger = self.log.bind(callback_id=job.id, request_id=job.request_id, attempt=job.attempts)
        try:
            outcome = await self._make(attempt, logger)
            if outcome is None:
                return
            if not outcome.settled and attempt.holding:
                await self._settle(attempt, outcome)
            logger.info("call-back attempt", result=outcome.result, agent=outcome.agent)
        except ClaimLost:
            logger.warning("call-back claim lost before its outcome was written")
        except DB_ERRORS as exc:
            # the lease runs out and release_stale decides: retried, or failed if dialled
            logger.warning("call-back outcome not written", error=str(exc))
        finally:
            self._attempts.pop(job.id, None)
            self.wake()

    async def _make(self, attempt: _Attempt, logger: Any) -> _Outcome | None:
        """Make the call-back; its outcome, or None when there is nothing to write."""
        try:
            return await attempt.run()
        except asyncio.CancelledError:
            await attempt.teardown()
            await self._settle_stopped(attempt)
            raise
        except _NotNow:
            await attempt.teardown()
            async with self.pool.acquire() as conn:
                await store.put_back(conn, attempt.job, self.clock.real(self.settings.busy_recheck))
            logger.info("call-back waits: every member is busy")
            return None
        except ClaimLost:
            logger.warning("call-back claim lost: the customer is not dialled")
            return None
        except DB_ERRORS as exc:
            logger.warning("call-back attempt stopped: database unavailable", error=str(exc))
            return None  # the lease decides
        except AriUnavailable as exc:
            logger.warning("call-back attempt failed: asterisk unavailable", error=str(exc))
            return _Outcome(f"{ERROR}: asterisk unavailable", attempt.agent)
        except Exception:  # a bug ends this attempt, never the worker
            self.failures += 1
            logger.exception("call-back attempt failed")
            return _Outcome(ERROR, attempt.agent)
        finally:
            await attempt.teardown()

    async def _settle(self, attempt: _Attempt, outcome: _Outcome) -> None:
        job = attempt.job
        attempt.holding = False
        times = attempt.times(self.clock.now())
        async with self.pool.acquire() as conn:
            if outcome.result == DONE:
                await store.finish(conn, job, DONE, outcome.agent, times)
                return
            delay = self.clock.real(self.settings.delay_after(job.attempts))
            await store.retry_later(
                conn, job, outcome.result, delay, self.settings.max_attempts, outcome.agent, times
            )

    async def _settle_stopped(self, attempt: _Attempt) -> None:
        """The worker stops mid-attempt: a job whose customer was not dialled goes back
        uncounted; one whose customer was dialled counts as an attempt."""
        if not attempt.holding:
            return
        with contextlib.suppress(ClaimLost, *DB_ERRORS):
            if attempt.customer_dialled:
                await self._settle(attempt, _Outcome(STOPPED, attempt.agent))
            else:
                attempt.holding = False
                async with self.pool.acquire() as conn:
                    await store.put_back(conn, attempt.job, 0.0)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # used by _Attempt

    def _own(self, attempt: _Attempt, leg: _Leg) -> None:
        self._legs[leg.channel_id] = (attempt, leg)

    def _disown(self, leg: _Leg) -> None:
        self._legs.pop(leg.channel_id, None)

    def _engage(self, employee_id: str) -> None:
        self._engaged.add(employee_id)

    def _release(self, employee_id: str) -> None:
        self._engaged.discard(employee_id)


class _Attempt:
    """One claimed call-back being made: its legs, its bridge, what it reached."""

    def __init__(
        self,
        worker: CallbackWorker,
        job: CallbackJob,
        company: Company,
        preferred: str | None = None,
    ) -> None:
        """``preferred``: the agent the ACD gave this call-back when the place its
        caller kept in the queue came up (held for it): the only one rung."""
        self.worker = worker
        self.job = job
        self.preferred = preferred
        self.company = company
        self.client = worker.client
        self.settings = worker.settings
        self.clock = worker.clock
        self.token = secrets.token_hex(3)  # channel ids stay unique even if attempts repeat
        self.legs: list[_Leg] = []
        self.bridge_id: str | None = None
        self.changed = asyncio.Event()
        self.holding = True  # the claim is ours and its outcome not yet written
        self.customer_dialled = False
        self.agent: str | None = None
        self.connected = False  # the agent is talking, as the runtime's ACD knows
        self.connected_at = 0.0
        self.dialled_at: float | None = None  # clock time of the first dial
        self.met_at: float | None = None  # clock time the employee and the customer met
        self.attempt_id: int | None = None  # its callback_attempts row, once written
        self.acd_key = f"callback-{job.id}-{self.token}"  # the ACD's name for this attempt
        self.engaged: set[str] = set()
        self._torn_down = False

    # --- events ------------------------------------------------------------------------

    def apply(self, leg: _Leg, event: AriEvent) -> None:
        match event:
            case StasisStart():
                leg.in_stasis = True
            case Dial(dialstatus="ANSWER"):
                leg.answered = True
            case Dial(dialstatus="BUSY"):
                leg.failure = leg.failure or BUSY
            case Dial(dialstatus="NOANSWER"):
                leg.failure = leg.failure or NO_ANSWER
            case Dial(dialstatus="CHANUNAVAIL" | "CONGESTION"):
                leg.failure = leg.failure or FAILED
            case ChannelDestroyed():
                leg.gone = True
                if not leg.answered and leg.failure is None:
                    # a real PJSIP leg often ends with no final Dial status: the cause says
                    leg.failure = {"busy": BUSY, "noanswer": NO_ANSWER, "failed": FAILED}[
                        leg_end(event.cause)
                    ]
            case _:
                return
        self.changed.set()

    async def _until(self, done: Callable[[], bool], within: float) -> bool:
        """Wait (on events, never polling) until ``done()``; False after ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.clock.real(within)):
                while not done():
                    self.changed.clear()
                    await self.changed.wait()
        return done()

    def times(self, now: float | None) -> AttemptTimes:
        """The attempt's durations if it ended at ``now`` (`store.AttemptTimes`); ``now``
        None: the two have just met, only the wait is known."""
        if self.dialled_at is None:
            return AttemptTimes()  # nobody was dialled
        if self.met_at is None:
            end = self.clock.now() if now is None else now
            return AttemptTimes(end - self.dialled_at, None, end - self.dialled_at)
        wait = self.met_at - self.dialled_at
        if now is None:
            return AttemptTimes(wait)
        return AttemptTimes(wait, now - self.met_at, now - self.dialled_at)

    # --- the call-back -------------------------------------------------------------------

    async def run(self) -> _Outcome:
        department = self.company.departments.get(self.job.department or "")
        if department is None:
            return _Outcome(NO_EMPLOYEE)
        if not any(
            (e := self.company.employees.get(m)) is not None and e.extension is not None
            for m in department.members
        ):
            return _Outcome(NO_EMPLOYEE)
        if self.preferred is None and not self.worker.free_members(self.company, department):
            raise _NotNow
        if self.settings.order == "customer_first":
            return await self._customer_first(department)
        return await self._employee_first(department)

    async def _employee_first(self, department: Department) -> _Outcome:
        employee = await self._reach_employee(department, waiting=None)
        if employee is None:
            return _Outcome(NO_EMPLOYEE)
        await self._safe(self.client.start_moh(employee.channel_id))
        customer = await self._ring_customer(caller=employee)
        if employee.gone:
            return _Outcome(EMPLOYEE_HUNG_UP, employee.employee_id)
        if not customer.answered or customer.gone:
            return _Outcome(customer.failure or NO_ANSWER, employee.employee_id)
        await self._safe(self.client.stop_moh(employee.channel_id))
        return await self._connect(employee, customer)

    async def _customer_first(self, department: Department) -> _Outcome:
        customer = await self._ring_customer(caller=None)
        if not customer.answered or customer.gone:
            return _Outcome(customer.failure or NO_ANSWER)
        await self._safe(self.client.start_moh(customer.channel_id))
        employee = await self._reach_employee(department, waiting=customer)
        if customer.gone:
            return _Outcome(CUSTOMER_HUNG_UP, employee.employee_id if employee else None)
        if employee is None:
            return _Outcome(NO_EMPLOYEE)
        await self._safe(self.client.stop_moh(customer.channel_id))
        return await self._connect(employee, customer)

    async def _reach_employee(self, department: Department, waiting: _Leg | None) -> _Leg | None:
        """Ring the free members one at a time; the first to answer, or None."""
        endpoints = self.company.config.asterisk.endpoints
        members = department.members if self.preferred is None else (self.preferred,)
        for member in members:
            if waiting is not None and waiting.gone:
                return None
            if member != self.preferred and member not in self.worker.free_members(
                self.company, department
            ):
                continue
            employee = self.company.employees[member]
            assert employee.extension is not None  # free_members keeps desks only
            self.worker._engage(member)
            self.engaged.add(member)
            leg = await self._ring(
                endpoints.desk(
                    employee.extension, elsewhere(self.company, member, self.worker.instance)
                ),
                "employee",
                self.settings.employee_ring,
                employee_id=member,
                caller=waiting,
                stop_if_gone=waiting,
            )
            if leg.answered and not leg.gone:
                self.agent = member
                return leg
            self.worker._release(member)
            self.engaged.discard(member)
        return None

    async def _ring_customer(self, caller: _Leg | None) -> _Leg:
        # the gate: dial the customer only while the claim is still ours, and say so
        async with self.worker.pool.acquire() as conn:
            await store.mark_calling_customer(conn, self.job)
        self.customer_dialled = True
        endpoint = self.company.config.asterisk.endpoints.mobile.format(number=self.job.number)
        return await self._ring(
            endpoint, "customer", self.settings.customer_ring, caller=caller, stop_if_gone=caller
        )

    async def _ring(
        self,
        endpoint: str,
        role: Literal["employee", "customer"],
        ring_for: float,
        *,
        employee_id: str | None = None,
        caller: _Leg | None = None,
        stop_if_gone: _Leg | None = None,
    ) -> _Leg:
        """Ring one leg until it answers, fails, times out, or ``stop_if_gone`` hangs up."""
        leg = _Leg(f"callback-{self.job.id}-{self.job.attempts}-{self.token}-{len(self.legs) + 1}",
                   role, employee_id)  # fmt: skip
        self.legs.append(leg)
        self.worker._own(self, leg)  # before creating it: its events may beat the response
        if self.dialled_at is None:
            self.dialled_at = self.clock.now()
        try:
            await self.client.create_channel(endpoint, leg.channel_id, app_args=CALLBACK_MARKER)
            # Asterisk takes a dial only once the channel is in the app (see ari_app.legs)
            if not await self._until(lambda: leg.in_stasis or leg.gone, STASIS_WAIT):
                raise AriError(0, "the channel never entered the app", "POST", "/channels/create")
            if not leg.gone:
                await self.client.dial(
                    leg.channel_id,
                    caller=caller.channel_id if caller is not None else None,
                    ring_for=max(1, round(ring_for)),
                )
        except AriUnavailable:
            await self._hang_up(leg)  # the create may have been made all the same
            raise
        except AriError as exc:
            self.worker.log.warning("could not ring", endpoint=endpoint, error=str(exc))
            leg.failure = FAILED
            await self._hang_up(leg)
            return leg

        def decided() -> bool:
            return (
                leg.answered
                or leg.failure is not None
                or leg.gone
                or (stop_if_gone is not None and stop_if_gone.gone)
            )

        await self._until(decided, ring_for + RING_GRACE)
        if not leg.answered:
            leg.failure = leg.failure or NO_ANSWER
            await self._hang_up(leg)
        return leg

    async def _connect(self, employee: _Leg, customer: _Leg) -> _Outcome:
        """Bridge the two; the call-back is kept (written at once), then the talk runs out."""
        bridge_id = f"callback-{self.job.id}-{self.job.attempts}-{self.token}-bridge"
        # destroyed at the teardown even if the attempt is stopped while the create is
        # on its way (a 404 then is fine): the bridge would be left in Asterisk
        self.bridge_id = bridge_id
        try:
            await self.client.create_bridge(bridge_id)
            await self.client.add_channel(bridge_id, [employee.channel_id, customer.channel_id])
        except AriError as exc:
            if not isinstance(exc, CallGone) and exc.status != 400:
                raise
            # one of them hung up this instant (addChannel: 400 Channel not found): its
            # ChannelDestroyed is on the way
            await self._until(lambda: employee.gone or customer.gone, RING_GRACE)
        if employee.gone or customer.gone:
            who = EMPLOYEE_HUNG_UP if employee.gone else CUSTOMER_HUNG_UP
            return _Outcome(who, employee.employee_id)
        self.met_at = self.clock.now()
        if self.worker.agents is not None and employee.employee_id is not None:
            self.connected_at = self.worker.clock.now()
            self.worker.agents.talking(employee.employee_id, self.acd_key, self.connected_at)
            self.connected = True
        self.holding = False
        written = await self._write_done(employee.employee_id, self.times(None))
        await self._until(lambda: employee.gone or customer.gone, self.settings.max_talk)
        times = self.times(self.clock.now())  # one of them has hung up: the talk is over
        if not written:
            await self._write_done(employee.employee_id, times)  # the database may be back
        else:
            await self._write_ended(times)
        return _Outcome(DONE, employee.employee_id, settled=True)

    async def _write_done(self, agent: str | None, times: AttemptTimes) -> bool:
        """Write ``done``; a database problem must not cut the conversation."""
        try:
            async with self.worker.pool.acquire() as conn:
                self.attempt_id = await store.finish(conn, self.job, DONE, agent, times)
        except (ClaimLost, *DB_ERRORS) as exc:
            self.worker.log.warning("call-back kept but not written", error=str(exc))
            return False
        return True

    async def _write_ended(self, times: AttemptTimes) -> None:
        """The conversation of a kept call-back is over: its talk and duration."""
        if self.attempt_id is None or times.talk is None or times.duration is None:
            return
        try:
            async with self.worker.pool.acquire() as conn:
                await store.attempt_ended(conn, self.attempt_id, times.talk, times.duration)
        except DB_ERRORS as exc:
            self.worker.log.warning("call-back's talk not written", error=str(exc))

    # --- the end ---------------------------------------------------------------------------

    async def _safe(self, request: Coroutine[Any, Any, None]) -> None:
        """An ARI request the attempt survives failing (the channel may be gone)."""
        try:
            await request
        except CallGone:
            pass
        except AriError as exc:
            self.worker.log.warning("ari request failed", error=str(exc))

    async def _hang_up(self, leg: _Leg) -> None:
        if not leg.gone and not leg.hung_up:
            leg.hung_up = True
            await self._safe(self.client.hangup(leg.channel_id))

    async def teardown(self) -> None:
        """Hang up every leg still up, destroy the bridge once they are gone, free the
        employees.  Idempotent."""
        if self._torn_down:
            return
        self._torn_down = True
        await finish_even_if_cancelled(self._teardown())

    async def _teardown(self) -> None:
        for leg in self.legs:
            await self._hang_up(leg)
        if self.bridge_id is not None:
            await self._until(lambda: all(leg.gone for leg in self.legs), TEARDOWN_WAIT)
            await self._safe(self.client.destroy_bridge(self.bridge_id))
        for leg in self.legs:
            self.worker._disown(leg)
        for member in self.engaged:
            self.worker._release(member)
        if self.preferred is not None and not self.connected and self.worker.agents is not None:
            # held for this call-back by the ACD; not talked to: free again
            self.worker.agents.release(self.preferred, self.acd_key, self.worker.clock.now())
        if self.connected and self.worker.agents is not None and self.agent is not None:
            now = self.worker.clock.now()
            self.worker.agents.finished(
                self.agent, self.acd_key, now, now - self.connected_at, self.job.department
            )


class CallbackEvents:
    """The supervisor's event sink when a worker shares the app's ARI connection: the
    worker's channels go to the worker, everything else to the runtime."""

    def __init__(self, runtime: EventSink, worker: CallbackWorker) -> None:
        self.runtime = runtime
        self.worker = worker

    async def on_connected(self, channels: list[Channel]) -> None:
        await self.runtime.on_connected(self.worker.on_connected(channels))

    def on_event(self, event: AriEvent) -> None:
        if not self.worker.on_event(event):
            self.runtime.on_event(event)

    def on_disconnected(self) -> None:
        self.worker.on_disconnected()
        self.runtime.on_disconnected()
