"""The latency histogram keeps Prometheus' bucket semantics while counting without locks."""

from __future__ import annotations

from webhook.server.metrics import LatencyHistogram, Metrics


def test_an_observation_on_a_bound_counts_in_that_bucket_and_every_later_one() -> None:
    histogram = LatencyHistogram((0.001, 0.01, 0.1))
    for seconds in (0.0005, 0.001, 0.002, 0.1, 7.0):
        histogram.observe(seconds)
    family = histogram.family("t", "test")
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name == "t_bucket"}
    assert buckets == {"0.001": 2, "0.01": 3, "0.1": 4, "+Inf": 5}
    totals = {s.name: s.value for s in family.samples if s.name != "t_bucket"}
    assert totals == {"t_count": 5, "t_sum": 0.0005 + 0.001 + 0.002 + 0.1 + 7.0}


def test_rendered_metrics_keep_their_names_labels_and_values() -> None:
    metrics = Metrics()
    metrics.count_admission("mutated")
    metrics.count_admission("mutated")
    metrics.count_container("failed", "lookup-failed")
    metrics.latency.observe(0.0004)
    text = metrics.render().decode()
    assert 'podinit_admissions_total{outcome="mutated"} 2.0' in text
    assert 'podinit_containers_total{outcome="failed",reason="lookup-failed"} 1.0' in text
    assert 'podinit_admission_duration_seconds_bucket{le="0.0005"} 1.0' in text
    assert "# TYPE podinit_admission_duration_seconds histogram" in text
