"""The pieces the metrics are read from, on their own: ARI latency buckets and agents'
states counted as the ACD sees them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from switchboard.acd import Acd
from switchboard.admin.metrics import (
    AriFigures,
    Latencies,
    RecordCounts,
    Snapshot,
    SwitchboardCollector,
)
from tests.helpers import company_from

TEAM = """
employees:
  - {id: anna, extension: "101"}
  - {id: boris, extension: "102"}
  - {id: vera, extension: "103"}
  - {id: guest, extension: "104"}
departments:
  - {id: support, members: [anna, boris, vera], wrapup: 30}
numbers: [{number: "74951234567", scenario: main}]
scenarios:
  main: {start: bye, nodes: {bye: {type: hangup}}}
"""


def test_a_duration_on_a_bucket_bound_is_counted_in_that_bucket_as_prometheus_reads_le() -> None:
    latencies = Latencies(buckets=(0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 0.1, 3.0):
        latencies.observe("POST", seconds)
    latencies.observe("GET", 0.002)
    histograms = latencies.snapshot()
    assert histograms["POST"].counts == (2, 2, 1)  # <= 0.01, <= 0.1, above
    assert histograms["POST"].count == 5
    assert abs(histograms["POST"].total - 3.165) < 1e-9
    assert histograms["GET"].counts == (1, 0, 0)


def test_the_histogram_is_exposed_cumulative_with_its_sum_and_count() -> None:
    latencies = Latencies(buckets=(0.01, 0.1))
    for seconds in (0.005, 0.05, 3.0):
        latencies.observe("DELETE", seconds)
    snapshot = Snapshot(
        calls={},
        in_progress=0,
        waiting={},
        agents={},
        records=RecordCounts(0, 0, 0),
        ari=AriFigures(latencies.snapshot(), reconnects=2, connected=True),
    )
    registry = CollectorRegistry()
    registry.register(SwitchboardCollector(lambda: snapshot))
    samples = {
        (s.name, s.labels.get("le", "")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name.startswith("switchboard_ari_request_duration_seconds")
    }
    assert samples == {
        ("switchboard_ari_request_duration_seconds_bucket", "0.01"): 1,
        ("switchboard_ari_request_duration_seconds_bucket", "0.1"): 2,
        ("switchboard_ari_request_duration_seconds_bucket", "+Inf"): 3,
        ("switchboard_ari_request_duration_seconds_count", ""): 3,
        ("switchboard_ari_request_duration_seconds_sum", ""): 3.055,
    }


def test_agents_are_counted_by_the_state_a_supervisor_sees_every_state_named() -> None:
    acd = Acd.for_company(company_from(TEAM))
    assert acd.state_counts(now=0) == {
        "logged_out": 0,
        "available": 4,
        "ringing": 0,
        "talking": 0,
        "wrapup": 0,
        "paused": 0,
    }  # fmt: skip  (every employee is an agent, guest of no department too)
    acd.pause("anna", 0, "lunch")
    acd.logout("boris", 0)
    assert acd.claim("vera", "call-1", 1)
    acd.talking("vera", "call-1", 2)
    counts = acd.state_counts(now=3)
    assert (counts["paused"], counts["logged_out"], counts["talking"]) == (1, 1, 1)
    acd.finished("vera", "call-1", 10, talk=8, department="support")
    assert acd.state_counts(now=20)["wrapup"] == 1
    assert acd.state_counts(now=41)["available"] == 2  # vera's wrap-up has run out; guest
