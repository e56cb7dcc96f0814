"""The metrics of the leading replica's work (webhook/server/watching.py), declared by every
replica from the start: a scrape of a replica that does not lead, or runs without podWatch,
lists the families without samples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # watching.py imports the reconciler, whose Events import the metrics
    from webhook.server.watching import Watching


class WatchingCollector(Collector):
    """podinit_leader, podinit_pods_unwrapped{namespace,state}, the oldest one's age, and the
    reconciler's actions; families without samples until `watching` is set (podWatch off: for
    good), so that every podinit series is declared from the start."""

    def __init__(self) -> None:
        self.watching: Watching | None = None

    def collect(self) -> Iterator[Metric]:
        watching = self.watching
        leading = watching is not None and watching.leadership.leading
        yield GaugeMetricFamily(
            "podinit_leader", "1 on the replica holding the Lease", value=1 if leading else 0
        )
        unwrapped = GaugeMetricFamily(
            "podinit_pods_unwrapped",
            "Pods not running podinit's init that should (the states of `podinit scan`): "
            "slipped (admitted without the webhook), failed (the webhook could not wrap a "
            "container). Exported by the leading replica only",
            labels=["namespace", "state"],
        )
        oldest = GaugeMetricFamily(
            "podinit_pods_unwrapped_oldest_seconds",
            "Age of the oldest unwrapped pod per state (leading replica only)",
            labels=["state"],
        )
        if watching is not None and leading and watching.watch.synced.is_set():
            for (namespace, state), count in sorted(watching.pods.counts().items()):
                unwrapped.add_metric([namespace, state], count)
            for state, age in sorted(watching.pods.oldest().items()):
                oldest.add_metric([state], age)
        yield unwrapped
        yield oldest
        actions = CounterMetricFamily(
            "podinit_reconcile_actions",
            "What the reconciler did with slipped pods: evicted, refused (by a "
            "PodDisruptionBudget, tried again later), failed (any other refusal), reported "
            "(bare, Job or single-pod workload pods, never deleted), would-evict (dryRun), "
            "stalled (a replacement not Ready and wrapped in time, or not wrapped either), "
            "not-serving (an eviction held back: the webhook was not reached)",
            labels=["action"],
        )
        if watching is not None and watching.reconciler is not None:
            counts = watching.reconciler.counts
            for action, value in (
                ("evicted", counts.evicted),
                ("refused", counts.refused),
                ("failed", counts.failed),
                ("reported", counts.reported),
                ("would-evict", counts.would_evict),
                ("stalled", counts.stalled),
                ("not-serving", counts.not_serving),
            ):
                actions.add_metric([action], value)
        yield actions
