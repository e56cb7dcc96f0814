"""Prometheus metrics, in a registry of our own so tests can run several servers side by side."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from webhook.registry import ResolverStats

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _ResolverCollector(Collector):
    """Reads the resolver's own counters at scrape time, so lookups pay nothing for metrics."""

    def __init__(self, stats: ResolverStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[CounterMetricFamily]:
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


class Metrics:
    def __init__(self, stats: ResolverStats | None = None) -> None:
        self.registry = CollectorRegistry()
        self.admissions = Counter(
            "podinit_admissions",
            "Admission reviews by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "podinit_admission_duration_seconds",
            "Time to answer an admission review",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.containers = Counter(
            "podinit_containers",
            "Container decisions",
            ["outcome", "reason"],
            registry=self.registry,
        )
        if stats is not None:
            self.registry.register(_ResolverCollector(stats))
        # labels() hashes and locks on every call; the label sets are few and fixed.
        self._children: dict[tuple[str, ...], Any] = {}

    def count_admission(self, outcome: str) -> None:
        self._child(self.admissions, outcome).inc()

    def count_container(self, outcome: str, reason: str) -> None:
        self._child(self.containers, outcome, reason).inc()

    def _child(self, metric: Counter, *labels: str) -> Any:
        key = (str(id(metric)), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
