"""The report's queries: a period's figures per scenario, from the analytics views.

The views (migrations 0005 and 0009) say what each call and each step means
once -- ``all_calls`` (answered, offered, transferred, the time since the
caller's previous call, the department: the one that answered, else the one
whose queue the caller waited in, so a department's service level counts the
callers who gave up in its queue; inbound calls and call-back attempts by
``call_type``) and
``call_steps`` (one row per node a call passed, its position, whether the call
ended there, the time spent in it).  The per-day views (``call_summary``,
``node_funnel``, ``node_exits``, ``menu_choices``) are for BI tools; a report
asks for any period and any service-level and repeat thresholds, so it
aggregates the per-call views itself, filtered on ``started_at`` (the index
``calls_started``), in one read-only snapshot.

``day`` is the date in the session's TimeZone: `set_timezone` first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import asyncpg

from switchboard.report import (
    Figures,
    GroupBy,
    MenuChoice,
    NodeExit,
    NodeFigures,
    Report,
    ScenarioReport,
)
from switchboard.storage.config_store import current_config

# the --by column of all_calls; fixed text, never from the user
GROUP_COLUMNS: dict[GroupBy, str] = {
    "number": "nullif(called, '')",
    "department": "department",
    "agent": "agent",
    "reason": "reason",
    "day": "day::text",
}
_PERIOD = "started_at >= $1 AND started_at < $2 AND ($3::text IS NULL OR scenario = $3)"
_INBOUND = "call_type = 'inbound'"
_FIGURES = f"""
    count(*) FILTER (WHERE {_INBOUND}) AS calls,
    count(*) FILTER (WHERE {_INBOUND} AND result = 'connected') AS connected,
    count(*) FILTER (WHERE {_INBOUND} AND result = 'abandoned') AS abandoned,
    count(*) FILTER (WHERE {_INBOUND} AND result = 'voicemail') AS voicemail,
    count(*) FILTER (WHERE {_INBOUND} AND result = 'callback') AS callback,
    count(*) FILTER (WHERE {_INBOUND} AND result = 'dialplan') AS dialplan,
    count(*) FILTER (WHERE {_INBOUND} AND result = 'hangup') AS hangup,
    avg(wait_s) FILTER (WHERE {_INBOUND} AND answered) AS avg_wait_s,
    avg(talk_s) FILTER (WHERE {_INBOUND}) AS avg_talk_s,
    avg(duration_s) FILTER (WHERE {_INBOUND}) AS avg_duration_s,
    count(*) FILTER (WHERE offered) AS offered,
    count(*) FILTER (WHERE offered AND answered AND wait_s <= $4::float8) AS answered_within,
    count(*) FILTER (WHERE transferred) AS transferred,
    count(*) FILTER (WHERE since_previous_s <= $5::float8) AS repeat_calls,
    count(DISTINCT caller) FILTER (WHERE since_previous_s <= $5::float8) AS repeat_callers,
    count(*) FILTER (WHERE call_type = 'callback') AS callback_attempts,
    count(*) FILTER (WHERE call_type = 'callback' AND answered) AS callbacks_done"""

# `repeated` as the node_funnel view counts it: calls that passed the node more than once
_FUNNEL = f"""
SELECT scenario, node, type,
       count(DISTINCT call_id) AS calls,
       count(*) AS visits,
       count(DISTINCT call_id) FILTER (WHERE passes > 1) AS repeated,
       count(*) FILTER (WHERE last_step) AS ended,
       count(*) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned,
       avg(duration_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_after_s,
       avg(in_node_s) FILTER (WHERE last_step AND result = 'abandoned') AS abandoned_in_node_s
FROM (
    SELECT call_id, scenario, node, type, position, last_step, result, duration_s, in_node_s,
           count(*) OVER (PARTITION BY call_id, scenario, node) AS passes
    FROM call_steps
    WHERE {_PERIOD}
) steps
GROUP BY scenario, node, type
ORDER BY scenario, min(position), count(*) DESC, node, type
"""  # noqa: S608 - fixed text
_EXITS = f"""
SELECT scenario, node, type, via, exit, count(*) AS times
FROM call_steps
WHERE {_PERIOD} AND exit IS NOT NULL
GROUP BY scenario, node, type, via, exit
ORDER BY count(*) DESC, via, exit
"""  # noqa: S608 - fixed text
# `kind` as the menu_choices view says it
_MENUS = f"""
SELECT scenario, node,
       CASE WHEN details ? 'choice' THEN 'option'
            WHEN details ? 'extension' THEN 'extension'
            WHEN exit IS NULL THEN 'ended'
            ELSE coalesce(via, 'default') END AS kind,
       coalesce(details ->> 'choice', details ->> 'extension') AS choice,
       count(*) AS times
FROM call_steps
WHERE {_PERIOD} AND type = 'menu'
GROUP BY 1, 2, 3, 4
ORDER BY scenario, node, count(*) DESC, kind, choice
"""  # noqa: S608 - fixed text


def summary_sql(by: GroupBy | None) -> str:
    """Per scenario: the total, and with ``by`` one row per group as well ($1, $2: the
    period; $3: a scenario or NULL; $4: service-level seconds; $5: repeat seconds)."""
    if by is None:
        return f"SELECT scenario, NULL AS grp, true AS total, {_FIGURES} FROM all_calls WHERE {_PERIOD} GROUP BY scenario"  # noqa: E501, S608 - fixed text
    group = GROUP_COLUMNS[by]
    return (
        f"SELECT scenario, {group} AS grp, GROUPING({group}) = 1 AS total, {_FIGURES} "  # noqa: S608 - fixed text
        f"FROM all_calls WHERE {_PERIOD} "
        f"GROUP BY GROUPING SETS ((scenario), (scenario, {group}))"
    )


async def company_timezone(conn: asyncpg.Connection) -> str | None:
    """The timezone of the current configuration version; None when none is stored.

    Raises `ConfigError` when the stored version does not load with this release."""
    current = await current_config(conn)
    if current is None:
        return None
    return current[2].tz.key


async def set_timezone(conn: asyncpg.Connection, zone: str) -> None:
    """The session's TimeZone: the views' ``day`` and every time read are in ``zone``.

    Raises `asyncpg.InvalidParameterValueError` for a zone PostgreSQL does not know."""
    await conn.execute("SELECT set_config('TimeZone', $1, false)", zone)


async def build_report(
    conn: asyncpg.Connection,
    *,
    start: dt.datetime,
    end: dt.datetime,
    timezone: str,
    scenario: str | None = None,
    by: GroupBy | None = None,
    service_level_s: float = 20.0,
    repeat_hours: float = 24.0,
) -> Report:
    """The report of calls that started in [start, end) (aware times)."""
    period = (start, end, scenario)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        summary = await conn.fetch(summary_sql(by), *period, service_level_s, repeat_hours * 3600.0)
        funnel = await conn.fetch(_FUNNEL, *period)
        exits = await conn.fetch(_EXITS, *period)
        menus = await conn.fetch(_MENUS, *period)

    totals: dict[str, Figures] = {}
    groups: dict[str, list[Figures]] = defaultdict(list)
    for row in summary:
        if row["total"]:
            totals[row["scenario"]] = _figures(row, None)
        else:
            group = row["grp"]
            groups[row["scenario"]].append(_figures(row, None if group is None else str(group)))
    left: dict[tuple[str, str, str], list[NodeExit]] = defaultdict(list)
    for row in exits:
        left[row["scenario"], row["node"], row["type"]].append(
            NodeExit(row["via"], row["exit"], row["times"])
        )
    nodes: dict[str, list[NodeFigures]] = defaultdict(list)
    for row in funnel:
        key = (row["scenario"], row["node"], row["type"])
        nodes[row["scenario"]].append(
            NodeFigures(
                node=row["node"],
                type=row["type"],
                calls=row["calls"],
                visits=row["visits"],
                repeated=row["repeated"],
                ended=row["ended"],
                abandoned=row["abandoned"],
                abandoned_after_s=row["abandoned_after_s"],
                abandoned_in_node_s=row["abandoned_in_node_s"],
                exits=tuple(left.get(key, ())),
            )
        )
    choices: dict[str, list[MenuChoice]] = defaultdict(list)
    for row in menus:
        choices[row["scenario"]].append(
            MenuChoice(row["node"], row["kind"], row["choice"], row["times"])
        )
    names = sorted(totals.keys() | nodes.keys())
    return Report(
        start=start,
        end=end,
        timezone=timezone,
        by=by,
        service_level_s=service_level_s,
        repeat_hours=repeat_hours,
        scenario=scenario,
        scenarios=tuple(
            ScenarioReport(
                scenario=name,
                total=totals.get(name, Figures(None)),
                groups=tuple(sorted(groups[name], key=_group_order)),
                funnel=tuple(nodes[name]),
                menus=tuple(choices[name]),
            )
            for name in names
        ),
    )


def _figures(row: asyncpg.Record, group: str | None) -> Figures:
    return Figures(
        group=group,
        calls=row["calls"],
        connected=row["connected"],
        abandoned=row["abandoned"],
        voicemail=row["voicemail"],
        callback=row["callback"],
        dialplan=row["dialplan"],
        hangup=row["hangup"],
        avg_wait_s=row["avg_wait_s"],
        avg_talk_s=row["avg_talk_s"],
        avg_duration_s=row["avg_duration_s"],
        offered=row["offered"],
        answered_within=row["answered_within"],
        transferred=row["transferred"],
        repeat_calls=row["repeat_calls"],
        repeat_callers=row["repeat_callers"],
        callback_attempts=row["callback_attempts"],
        callbacks_done=row["callbacks_done"],
    )


def _group_order(figures: Figures) -> tuple[bool, str]:
    """Groups in order of their value (days in time), the calls with none last."""
    return figures.group is None, figures.group or ""
