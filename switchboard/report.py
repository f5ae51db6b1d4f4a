"""`switchboard report`: the figures of a period, per scenario, and the three ways to show them.

A `Report` is what `switchboard.storage.reports.build_report` reads from the
analytics views: per scenario, the calls' figures (`Figures`: a total and, with
``--by``, one per group), the funnel (`NodeFigures`: per node, the calls that
entered, how many of them passed it more than once, how they left, who gave up
there and after how long) and the menu choices.  This module only shows it -- a
table for people (`report_table`), CSV (`write_report_csv`) and JSON
(`report_json`) for machines -- so every figure is computed once, in SQL, and
the three outputs cannot disagree.

What the figures mean
    ``calls`` and the results count inbound calls (the ``calls`` table).
    ``avg_wait_s`` is over answered calls (time to answer, in the node that
    connected them); ``avg_talk_s`` over calls with a conversation;
    ``avg_duration_s`` over all.  ``offered``: calls put through to a person
    (it rang someone, or waited in a queue); ``answered_within``: answered
    within the service-level seconds; ``service_level`` = answered_within /
    offered.  ``repeat_calls``: calls whose caller had called within the
    repeat hours before (withheld numbers never count); ``repeat_callers``:
    the distinct callers of those.  ``callback_attempts``: call-backs made in
    the period; ``callbacks_done``: those that connected the customer.
    ``--by department`` puts a call under the department that answered it,
    else the one whose queue its caller last waited in: a caller who gave up
    in a queue counts against that department's service level.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

GroupBy = Literal["number", "department", "agent", "reason", "day"]
GROUP_BY: tuple[GroupBy, ...] = ("number", "department", "agent", "reason", "day")


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass(frozen=True, slots=True)
class Figures:
    """One scenario's calls (``group`` None), or one group's (``--by``)."""

    group: str | None
    calls: int = 0
    connected: int = 0
    abandoned: int = 0
    voicemail: int = 0
    callback: int = 0
    dialplan: int = 0
    hangup: int = 0
    avg_wait_s: float | None = None
    avg_talk_s: float | None = None
    avg_duration_s: float | None = None
    offered: int = 0
    answered_within: int = 0
    transferred: int = 0
    repeat_calls: int = 0
    repeat_callers: int = 0
    callback_attempts: int = 0
    callbacks_done: int = 0

    @property
    def service_level(self) -> float | None:
        """answered_within / offered, or None when no call was offered."""
        return self.answered_within / self.offered if self.offered else None

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "connected": self.connected,
            "abandoned": self.abandoned,
            "voicemail": self.voicemail,
            "callback": self.callback,
            "dialplan": self.dialplan,
            "hangup": self.hangup,
            "avg_wait_s": _seconds(self.avg_wait_s),
            "avg_talk_s": _seconds(self.avg_talk_s),
            "avg_duration_s": _seconds(self.avg_duration_s),
            "offered": self.offered,
            "answered_within": self.answered_within,
            "service_level": _share(self.service_level),
            "transferred": self.transferred,
            "repeat_calls": self.repeat_calls,
            "repeat_callers": self.repeat_callers,
            "callback_attempts": self.callback_attempts,
            "callbacks_done": self.callbacks_done,
        }


@dataclass(frozen=True, slots=True)
class NodeExit:
    """Calls left a node by ``via`` (``option 1``, ``open``, ``next`` ...) to ``exit``."""

    via: str | None
    exit: str
    times: int


@dataclass(frozen=True, slots=True)
class NodeFigures:
    """One node of the funnel.  ``calls`` counts a call once however often it passed;
    ``visits``, ``exits`` count passes; ``repeated``: calls that passed it more than once
    (a menu heard again, a loop).  ``ended``: calls whose last node this was;
    ``abandoned``: of those, the ones the caller hung up, after ``abandoned_after_s``
    on the line (``abandoned_in_node_s`` of it in this node), on average."""

    node: str
    type: str
    calls: int
    visits: int
    ended: int
    abandoned: int
    abandoned_after_s: float | None
    abandoned_in_node_s: float | None
    exits: tuple[NodeExit, ...] = ()
    repeated: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "type": self.type,
            "calls": self.calls,
            "visits": self.visits,
            "repeated": self.repeated,
            "exits": [{"via": e.via, "exit": e.exit, "times": e.times} for e in self.exits],
            "ended": self.ended,
            "abandoned": self.abandoned,
            "abandoned_after_s": _seconds(self.abandoned_after_s),
            "abandoned_in_node_s": _seconds(self.abandoned_in_node_s),
        }


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """What callers did in a menu: ``kind`` option (``choice`` its key), extension
    (``choice`` the digits), default (nothing valid pressed), ended (the call ended in
    the menu)."""

    node: str
    kind: str
    choice: str | None
    times: int

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "kind": self.kind, "choice": self.choice, "times": self.times}

    @property
    def label(self) -> str:
        match self.kind:
            case "option":
                return f"option {self.choice}"
            case "extension":
                return f"extension {self.choice}"
            case _:
                return self.kind


@dataclass(frozen=True, slots=True)
class ScenarioReport:
    scenario: str
    total: Figures
    groups: tuple[Figures, ...] = ()
    funnel: tuple[NodeFigures, ...] = ()
    menus: tuple[MenuChoice, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """The period [start, end) in ``timezone``, how it was asked for, and its scenarios."""

    start: dt.datetime
    end: dt.datetime
    timezone: str
    by: GroupBy | None
    service_level_s: float
    repeat_hours: float
    scenario: str | None  # --scenario, if given
    scenarios: tuple[ScenarioReport, ...]


def parse_when(text: str, option: str) -> dt.datetime:
    """``--from``/``--to``: a day (midnight) or an ISO time; naive means the company's
    timezone.  ValueError says what is wrong, in one line."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not a date: use 2026-12-01 (or 2026-12-01T08:00)"
        ) from None


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as one JSON object (`switchboard report --json`)."""
    return {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "timezone": report.timezone,
        "scenario": report.scenario,
        "by": report.by,
        "service_level_s": report.service_level_s,
        "repeat_hours": report.repeat_hours,
        "scenarios": [
            {
                "scenario": s.scenario,
                **s.total.as_json(),
                "groups": [{"group": g.group, **g.as_json()} for g in s.groups],
                "funnel": [node.as_json() for node in s.funnel],
                "menus": [choice.as_json() for choice in s.menus],
            }
            for s in report.scenarios
        ],
    }


# --- CSV: one rectangular table, a `section` column says which columns a row fills -------

FIGURE_COLUMNS = tuple(Figures(None).as_json())
CSV_COLUMNS = (
    "section",  # summary | funnel | exit | menu
    "scenario",
    "by",
    "group",
    "node",
    "type",
    "via",
    "exit",
    "kind",
    "choice",
    *FIGURE_COLUMNS,
    "visits",
    "repeated",
    "times",
    "ended",
    "abandoned_after_s",
    "abandoned_in_node_s",
)


def write_report_csv(report: Report, out: TextIO) -> None:
    """The report as CSV with a header: ``summary`` rows (the scenario's total with an
    empty ``group``, then one per group), then ``funnel`` (one per node), ``exit`` (one
    per node and exit) and ``menu`` rows (one per menu choice)."""
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in report.scenarios:
        for figures in (s.total, *s.groups):
            group = "" if figures.group is None else figures.group
            writer.writerow(
                {"section": "summary", "scenario": s.scenario, "by": report.by or ""}
                | {"group": group}
                | _csv_values(figures.as_json())
            )
        for node in s.funnel:
            values = node.as_json()
            del values["exits"]
            writer.writerow({"section": "funnel", "scenario": s.scenario} | _csv_values(values))
            for e in node.exits:
                writer.writerow(
                    {"section": "exit", "scenario": s.scenario, "node": node.node}
                    | {"type": node.type, "via": e.via or "", "exit": e.exit, "times": e.times}
                )
        for choice in s.menus:
            writer.writerow(
                {"section": "menu", "scenario": s.scenario} | _csv_values(choice.as_json())
            )


def _csv_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: "" if v is None else v for k, v in values.items()}


# --- the table ---------------------------------------------------------------------------

SUMMARY_HEADER = (
    "CALLS", "CONNECTED", "ABANDONED", "VOICEMAIL", "CALL-BACK", "OTHER", "AVG WAIT",
    "AVG TALK", "AVG DURATION", "SERVICE LEVEL", "TRANSFERRED", "REPEAT CALLERS",
)  # fmt: skip
FUNNEL_HEADER = (
    "NODE", "TYPE", "CALLS", "REPEATED", "ENDED", "ABANDONED", "AFTER (ON LINE / IN NODE)",
)  # fmt: skip


def report_table(report: Report) -> str:
    """What a supervisor reads: the period, one summary row per scenario (and group),
    then each scenario's funnel and menu choices."""
    zone = report.timezone
    lines = [
        f"calls from {_when(report.start)} to {_when(report.end)} ({zone}, the end not included)"
        + (f", scenario {report.scenario}" if report.scenario else ""),
        f"service level: answered within {report.service_level_s:g} s, of the calls offered "
        f"to a person; repeat callers: called again within {report.repeat_hours:g} h",
        "",
    ]
    if not report.scenarios:
        lines.append("no calls")
        return "\n".join(lines)
    by = report.by.upper() if report.by else None
    rows: list[tuple[str, ...]] = [("SCENARIO", *((by,) if by else ()), *SUMMARY_HEADER)]
    for s in report.scenarios:
        rows.append((s.scenario, *(("all",) if by else ()), *_summary_cells(s.total)))
        rows.extend(
            (s.scenario, g.group if g.group is not None else "-", *_summary_cells(g))
            for g in s.groups
        )
    lines.extend(_aligned(rows, range(2 if by else 1, len(rows[0]))))
    made = [s for s in report.scenarios if s.total.callback_attempts]
    if made:
        lines.append("")
        lines.extend(
            f"call-backs made in {s.scenario}: {s.total.callback_attempts} attempts, "
            f"{s.total.callbacks_done} connected the customer"
            for s in made
        )
    for s in report.scenarios:
        if s.funnel:
            lines.extend(["", f"funnel of {s.scenario}"])
            funnel: list[tuple[str, ...]] = [(*FUNNEL_HEADER, "EXITS")]
            funnel.extend(_funnel_cells(node) for node in s.funnel)
            lines.extend(_aligned(funnel, range(2, 6)))
        if s.menus:
            lines.extend(["", f"menu choices in {s.scenario}"])
            menus: list[tuple[str, ...]] = [("NODE", "CHOICE", "TIMES")]
            menus.extend((c.node, c.label, str(c.times)) for c in s.menus)
            lines.extend(_aligned(menus, range(2, 3)))
    return "\n".join(lines)


def _summary_cells(f: Figures) -> tuple[str, ...]:
    level = f.service_level
    shown_level = "-" if level is None else f"{level:.0%} ({f.answered_within}/{f.offered})"
    return (
        str(f.calls),
        str(f.connected),
        str(f.abandoned),
        str(f.voicemail),
        str(f.callback),
        str(f.dialplan + f.hangup),
        _duration(f.avg_wait_s),
        _duration(f.avg_talk_s),
        _duration(f.avg_duration_s),
        shown_level,
        str(f.transferred),
        str(f.repeat_callers),
    )


def _funnel_cells(node: NodeFigures) -> tuple[str, ...]:
    after = (
        f"{_duration(node.abandoned_after_s)} / {_duration(node.abandoned_in_node_s)}"
        if node.abandoned
        else "-"
    )
    exits = ", ".join(f"{e.via or '-'} -> {e.exit} {e.times}" for e in node.exits)
    return (
        node.node,
        node.type,
        str(node.calls),
        str(node.repeated),
        str(node.ended),
        str(node.abandoned),
        after,
        exits or "-",
    )


def _aligned(rows: Sequence[tuple[str, ...]], numeric: range) -> list[str]:
    """Columns padded to their widest cell; the ``numeric`` ones right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def _when(moment: dt.datetime) -> str:
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M:%S}"
