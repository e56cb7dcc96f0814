"""Prometheus metrics, in a registry of our own so tests can run several servers side by side."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from webhook.registry import ResolverStats
from webhook.server.watching_metrics import WatchingCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# podinit_events_total's results, each exported from the start (0 until it happens), so that
# rates and alerts on them have a series to read (webhook/server/events.py).
EVENT_RESULTS = ("created", "series", "aggregated", "dropped", "failed", "unverified")
# podinit_certificate_reloads_total's results, exported from the start for the same reason.
CERTIFICATE_RELOAD_RESULTS = ("ok", "failed")


class _ResolverCollector(Collector):
    """Reads the resolver's own counters at scrape time, so lookups pay nothing for metrics."""

    def __init__(self, stats: ResolverStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily(
            "podinit_registry_lookups", "Image config lookups by result", labels=["result"]
        )
        for result, count in sorted(self.stats.lookups.items()):
            lookups.add_metric([result], count)
        yield lookups
        yield CounterMetricFamily(
            "podinit_image_cache_hits", "Lookups answered from cache", value=self.stats.cache_hits
        )
        yield CounterMetricFamily(
            "podinit_registry_fetches", "Registry fetch sequences started", value=self.stats.fetches
        )
        yield CounterMetricFamily(
            "podinit_registry_joined",
            "Lookups that waited on a fetch another admission had started (single flight)",
            value=self.stats.joined,
        )
        yield CounterMetricFamily(
            "podinit_registry_negative_hits",
            "Lookups answered by a recently remembered failure",
            value=self.stats.negative_hits,
        )


class LatencyHistogram:
    """Observations counted per bucket; cumulated only when scraped."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


class _AdmissionCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        admissions = CounterMetricFamily(
            "podinit_admissions", "Admission reviews by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(self.metrics.admissions.items()):
            admissions.add_metric([outcome], count)
        yield admissions
        yield self.metrics.latency.family(
            "podinit_admission_duration_seconds", "Time to answer an admission review"
        )
        containers = CounterMetricFamily(
            "podinit_containers", "Container decisions", labels=["outcome", "reason"]
        )
        for labels, count in sorted(self.metrics.containers.items()):
            containers.add_metric(list(labels), count)
        yield containers
        closed = CounterMetricFamily(
            "podinit_connections_closed",
            "Connections the server closed: request-timeout (an exchange not finished within "
            "requestTimeoutSeconds), over-limit (beyond maxConnections)",
            labels=["reason"],
        )
        for reason, count in sorted(self.metrics.connections_closed.items()):
            closed.add_metric([reason], count)
        yield closed
        events = CounterMetricFamily(
            "podinit_events",
            "Warning Events about pods left unwrapped: created (a new Event), series (a repeat "
            "patched into an existing Event's series), aggregated (a repeat folded in memory, "
            "no API call), dropped (the queue was full), failed (the API refused or did not "
            "answer), unverified (the object the review named does not exist as named)",
            labels=["result"],
        )
        for result in EVENT_RESULTS:
            events.add_metric([result], self.metrics.events[result])
        yield events
        expiry = GaugeMetricFamily(
            "podinit_certificate_expiry_timestamp_seconds",
            "notAfter of the certificate served to new connections (unix seconds)",
        )
        if self.metrics.certificate_expiry is not None:
            expiry.add_metric([], self.metrics.certificate_expiry)
        yield expiry
        reloads = CounterMetricFamily(
            "podinit_certificate_reloads",
            "New certificate files read: ok (served from then on, the first at start included), "
            "failed (not a pair that can be served: the one before keeps serving)",
            labels=["result"],
        )
        for result in CERTIFICATE_RELOAD_RESULTS:
            reloads.add_metric([result], self.metrics.certificate_reloads[result])
        yield reloads


class Metrics:
    """Plain counters on the admission path (one event loop thread: no locks needed), turned
    into Prometheus families only when /metrics is scraped."""

    def __init__(self, stats: ResolverStats | None = None) -> None:
        self.admissions: Counter[str] = Counter()
        self.containers: Counter[tuple[str, str]] = Counter()
        self.latency = LatencyHistogram(LATENCY_BUCKETS)
        self.connections_closed: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.certificate_expiry: float | None = None  # unix seconds; None: none loaded
        self.certificate_reloads: Counter[str] = Counter()
        self.registry = CollectorRegistry()
        self.registry.register(_AdmissionCollector(self))
        # The leading replica's pod watch and reconciler (podWatch): set by serve.
        self.watching = WatchingCollector()
        self.registry.register(self.watching)
        if stats is not None:
            self.registry.register(_ResolverCollector(stats))

    def count_admission(self, outcome: str) -> None:
        self.admissions[outcome] += 1

    def count_container(self, outcome: str, reason: str) -> None:
        self.containers[outcome, reason] += 1

    def count_connection_closed(self, reason: str) -> None:
        self.connections_closed[reason] += 1

    def count_event(self, result: str) -> None:
        self.events[result] += 1

    def set_certificate_expiry(self, not_after: float) -> None:
        self.certificate_expiry = not_after

    def count_certificate_reload(self, result: str) -> None:
        self.certificate_reloads[result] += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)
