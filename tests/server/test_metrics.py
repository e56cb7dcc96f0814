"""The latency histogram keeps Prometheus' bucket semantics while counting without locks."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from e2e.pki import CertAuthority
from tests.server.harness import Certs, run_webhook
from webhook.server.metrics import LatencyHistogram, Metrics
from webhook.server.tls import CertReloader


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


def test_every_events_result_is_exported_at_zero_before_it_happens() -> None:
    text = Metrics().render().decode()
    assert "# TYPE podinit_events_total counter" in text
    for result in ("created", "series", "aggregated", "dropped", "failed", "unverified"):
        assert f'podinit_events_total{{result="{result}"}} 0.0' in text
    assert "# TYPE podinit_certificate_expiry_timestamp_seconds gauge" in text


def expiry(metrics: Metrics) -> float | None:
    for line in metrics.render().decode().splitlines():
        if line.startswith("podinit_certificate_expiry_timestamp_seconds "):
            return float(line.split()[1])
    return None


def test_the_certificate_expiry_follows_the_certificate_loaded(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path, "expiry")
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    metrics = Metrics()
    reloader = CertReloader(
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
        cert_file,
        key_file,
        on_load=metrics.set_certificate_expiry,
    )
    assert expiry(metrics) is None  # nothing loaded: no sample
    for not_after in (datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2032, 6, 1, tzinfo=UTC)):
        leaf = ca.issue_server("leaf", not_after=not_after)
        cert_file.write_bytes(leaf.cert.read_bytes())
        key_file.write_bytes(leaf.key.read_bytes())
        assert reloader.check()
        assert expiry(metrics) == not_after.timestamp()


def test_podinit_serve_exports_the_expiry_of_the_certificate_it_serves(
    certs: Certs, tmp_path: Path
) -> None:
    cert_file, key_file = certs.issue("expiry")
    not_after = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc
    with (
        run_webhook(certs, tmp_path, cert=(cert_file, key_file)) as webhook,
        webhook.client() as client,
    ):
        text = client.get("/metrics").text
    [line] = [
        line
        for line in text.splitlines()
        if line.startswith("podinit_certificate_expiry_timestamp_seconds ")
    ]
    assert float(line.split()[1]) == not_after.timestamp()
