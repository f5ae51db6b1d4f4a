"""Structured logging: structlog with context variables first, JSON in production."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from switchboard.engine.actions import Notify
from switchboard.redaction import redact

if TYPE_CHECKING:
    from switchboard.simulate import Simulation

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(json_output: bool, level: str = "info", cache: bool = False) -> None:
    """Log to stderr: JSON lines for machines, readable lines in a terminal.

    ``cache``: each logger keeps its processors once it has logged (the servers: a
    third less work a line); a process that reconfigures logging later must not.

    Readable lines are coloured on a terminal, unless ``NO_COLOR`` is set to anything
    but nothing (https://no-color.org).
    """
    colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    renderer: structlog.types.Processor = structlog.dev.ConsoleRenderer(colors=colors)
    factory: structlog.BytesLoggerFactory | structlog.PrintLoggerFactory
    factory = structlog.PrintLoggerFactory(file=sys.stderr)
    binary = getattr(sys.stderr, "buffer", None)
    if json_output and binary is not None:
        # JSON lines through orjson, written as bytes: a third of the cost of json.dumps
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(file=binary)
    elif json_output:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            # the traceback as text in both forms (the console renderer prints a text one
            # as it would its own), so that the redaction sees it too
            structlog.processors.format_exc_info,
            # before level and time are added: two values fewer to look at, no secret there
            redact_secrets,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The last line of defence: no password, token or secret in any text of a line,
    whoever wrote it (a DSN or URL quoted by a driver's error, a traceback ...).

    Costs two substring tests a text value when there is nothing to hide (every
    form of secret needs an '@' or an '='): cheap enough for every line."""
    for key, value in event_dict.items():
        if type(value) is str and ("@" in value or "=" in value):
            event_dict[key] = redact(value)
    return event_dict


def log_notifications(sim: Simulation) -> None:
    """Write each `notify` node's line to the log, as a live runtime would."""
    log = structlog.get_logger("switchboard.notify").bind(
        scenario=sim.scenario, caller=sim.call.caller, called=sim.call.called
    )
    for t, action in sim.actions:
        if isinstance(action, Notify):
            emit = log.warning if action.level == "warning" else log.info
            emit("notify", message=action.message, t=t)


@dataclass
class _Run:
    first: float
    repeats: int = 0


class RepeatedWarnings:
    """Logs the first of a run of one warning, then counts the rest.

    A run lasts ``window`` seconds from its first line; then the count of what
    it held is logged (at the next warning of any kind, at `expire` or at
    `flush`, on shutdown), and the warning may be logged again.  Four thousand
    failed rings are two lines, not four thousand.
    """

    def __init__(
        self,
        logger: Any,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.window = window
        self._clock = clock
        self._runs: dict[tuple[str, ...], _Run] = {}

    def warning(self, key: tuple[str, ...], event: str, **fields: Any) -> bool:
        """``event`` once per run of ``key`` (its first item names the warning).

        True when the line was logged (a run started), False when only counted.
        """
        now = self._clock()
        self._close_runs(now)
        run = self._runs.get(key)
        if run is not None:
            run.repeats += 1
            return False
        self._runs[key] = _Run(now)
        self.log.warning(event, **fields)
        return True

    def expire(self) -> None:
        """Log the counts of the runs whose window is over (a timer, when no warning comes)."""
        self._close_runs(self._clock())

    def flush(self) -> None:
        """Log the counts of every run now (shutdown)."""
        self._close_runs(None)

    def _close_runs(self, now: float | None) -> None:
        for key, run in list(self._runs.items()):
            if now is not None and now - run.first < self.window:
                continue
            del self._runs[key]
            if run.repeats:
                seconds = (now if now is not None else self._clock()) - run.first
                self.log.warning(
                    "warning repeated", warning=key[0], key=list(key[1:]),
                    repeats=run.repeats, seconds=round(seconds, 1),
                )  # fmt: skip
