"""Prometheus metrics of a runtime, read when they are scraped.

Nothing here is counted on a call's path: the runtime already keeps what the
metrics say (the ACD's agents and queues, the record writer's counters, the
supervisor's connections, the FastAGI server's sessions, the calls' results
counted at the sink), and `SwitchboardCollector` reads a `Snapshot` of it at
each scrape.  The one figure measured as it happens, how long ARI requests
take, goes into `Latencies`: a bisect and two additions a request.

============================================  =========  =================================
``switchboard_calls_total``                   counter    calls finished, by ``result``
``switchboard_calls_in_progress``             gauge      calls being carried now
``switchboard_queue_callers``                 gauge      callers waiting, by ``department``
``switchboard_agents``                        gauge      agents, by ``state``
``switchboard_records_buffered``              gauge      records not yet in the database
``switchboard_records_written_total``         counter    records written (or kept in memory)
``switchboard_records_spilled_total``         counter    records put in the spill file
``switchboard_callbacks_pending``             gauge      call-backs waiting to be made
``switchboard_ari_request_duration_seconds``  histogram  ARI requests, by ``method``
``switchboard_ari_reconnects_total``          counter    websocket connections after the first
``switchboard_ari_connected``                 gauge      1 while connected to ARI
``switchboard_agi_sessions_total``            counter    FastAGI sessions accepted
``switchboard_agi_sessions_in_progress``      gauge      FastAGI sessions running now
============================================  =========  =================================

The ``switchboard_ari_*`` metrics come from `switchboard run`, the
``switchboard_agi_*`` ones from `switchboard agi`; ``callbacks_pending`` only
with a database.  The server adds the ``process_*`` metrics of the process.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from switchboard.acd.agents import AGENT_STATES
from switchboard.engine.trace import RESULTS

# seconds: an ARI request over loopback takes about a millisecond; REQUEST_TIMEOUT is 10
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Histogram:
    """Durations counted into buckets: ``counts[i]`` are those up to ``buckets[i]`` (and
    above the bucket before); the last count is those above every bucket."""

    buckets: tuple[float, ...]
    counts: tuple[int, ...]
    total: float  # seconds, all of them

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(slots=True)
class _Series:
    counts: list[int]
    total: float = 0.0


class Latencies:
    """Durations by key (an ARI request's method), counted into fixed buckets as they
    happen: nothing is kept per request, and a scrape reads the counts."""

    __slots__ = ("_series", "buckets")

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self._series: dict[str, _Series] = {}

    def observe(self, key: str, seconds: float) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series([0] * (len(self.buckets) + 1))
        series.counts[bisect_left(self.buckets, seconds)] += 1  # le: a bucket holds its bound
        series.total += seconds

    def snapshot(self) -> dict[str, Histogram]:
        return {
            key: Histogram(self.buckets, tuple(series.counts), series.total)
            for key, series in self._series.items()
        }


@dataclass(frozen=True, slots=True)
class RecordCounts:
    """Rows the runtime's store took: call records and voicemail messages."""

    buffered: int  # not yet in the database: in memory, or in the spill file
    written: int  # acknowledged by the database; without one, kept in memory
    spilled: int  # ever written to the spill file (the database away, or slow)


@dataclass(frozen=True, slots=True)
class AriFigures:
    latencies: Mapping[str, Histogram]  # by HTTP method
    reconnects: int
    connected: bool


@dataclass(frozen=True, slots=True)
class AgiFigures:
    sessions: int  # accepted since the start
    in_progress: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a runtime knows at one moment, as the metrics say it."""

    calls: Mapping[str, int]  # finished, by result
    in_progress: int
    waiting: Mapping[str, int]  # department -> callers in its queue
    agents: Mapping[str, int]  # state -> agents
    records: RecordCounts
    callbacks_pending: int | None = None  # None: no database, or it cannot say
    ari: AriFigures | None = None
    agi: AgiFigures | None = None


class SwitchboardCollector:
    """The ``switchboard_*`` metrics of ``snapshot()``, taken at each scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        now = self._snapshot()
        calls = CounterMetricFamily(
            "switchboard_calls", "Calls finished, by result.", labels=["result"]
        )
        for result in (*RESULTS, *sorted(set(now.calls) - set(RESULTS))):
            calls.add_metric([result], now.calls.get(result, 0))
        yield calls
        yield GaugeMetricFamily(
            "switchboard_calls_in_progress", "Calls being carried now.", value=now.in_progress
        )
        yield _labelled(
            GaugeMetricFamily(
                "switchboard_queue_callers",
                "Callers waiting in a department's queue.",
                labels=["department"],
            ),
            now.waiting,
        )
        agents = GaugeMetricFamily("switchboard_agents", "Agents, by state.", labels=["state"])
        for state in (*AGENT_STATES, *sorted(set(now.agents) - set(AGENT_STATES))):
            agents.add_metric([state], now.agents.get(state, 0))
        yield agents
        yield from _records(now.records)
        if now.callbacks_pending is not None:
            yield GaugeMetricFamily(
                "switchboard_callbacks_pending",
                "Call-backs waiting to be made (every instance's).",
                value=now.callbacks_pending,
            )
        if now.ari is not None:
            yield from _ari(now.ari)
        if now.agi is not None:
            yield from _agi(now.agi)


def _labelled(family: GaugeMetricFamily, values: Mapping[str, int]) -> GaugeMetricFamily:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


def _records(records: RecordCounts) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "switchboard_records_buffered",
        "Call records and messages not yet in the database (in memory or the spill file).",
        value=records.buffered,
    )
    yield CounterMetricFamily(
        "switchboard_records_written",
        "Call records and messages written to the database (without one: kept in memory).",
        value=records.written,
    )
    yield CounterMetricFamily(
        "switchboard_records_spilled",
        "Call records and messages written to the spill file while the database was away.",
        value=records.spilled,
    )


def _ari(ari: AriFigures) -> Iterator[Metric]:
    requests = HistogramMetricFamily(
        "switchboard_ari_request_duration_seconds",
        "ARI requests (HTTP or over the events websocket), answered or failed, by method.",
        labels=["method"],
    )
    for method, histogram in sorted(ari.latencies.items()):
        cumulative, buckets = 0, []
        for bound, count in zip((*histogram.buckets, float("inf")), histogram.counts, strict=True):
            cumulative += count
            buckets.append((_bound(bound), cumulative))
        requests.add_metric([method], buckets, histogram.total)
    yield requests
    yield CounterMetricFamily(
        "switchboard_ari_reconnects",
        "ARI websocket connections made after the first.",
        value=ari.reconnects,
    )
    yield GaugeMetricFamily(
        "switchboard_ari_connected",
        "1 while the events websocket is connected and reconciled, else 0.",
        value=int(ari.connected),
    )


def _agi(agi: AgiFigures) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "switchboard_agi_sessions", "FastAGI sessions accepted.", value=agi.sessions
    )
    yield GaugeMetricFamily(
        "switchboard_agi_sessions_in_progress",
        "FastAGI sessions running now.",
        value=agi.in_progress,
    )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
