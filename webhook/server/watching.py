"""The leading replica's work beside admissions (`podWatch`, `reconcile`): watch pods, export
what is unwrapped, and, when asked to, replace what slipped through.

Every replica runs for the Lease; the one holding it lists and watches pods
(webhook/server/podwatch.py into webhook/server/unwrapped.py) and runs the reconciler
(webhook/server/reconcile.py). A replica that loses or never holds the Lease exports no
unwrapped-pod series (`podinit_leader` 0), so a sum over replicas counts each pod once. A
change of the installed webhook configuration's selectors (the namespace gate's answer) lists
pods again, since every pod's state may have changed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook.server.lease import Leadership
from webhook.server.namespaces import NamespaceGate
from webhook.server.podwatch import PodWatch
from webhook.server.reconcile import Reconciler
from webhook.server.unwrapped import UnwrappedPods

log = logging.getLogger("podinit.watching")

SELECTOR_CHECK_SECONDS = 5.0


class Watching:
    def __init__(
        self,
        *,
        leadership: Leadership,
        watch: PodWatch,
        pods: UnwrappedPods,
        gate: NamespaceGate,
        reconciler: Reconciler | None,
    ) -> None:
        self.leadership, self.watch, self.pods = leadership, watch, pods
        self.gate, self.reconciler = gate, reconciler

    async def run(self) -> None:
        await self.leadership.run(self._lead)

    async def _lead(self) -> None:
        """While leading: the watch (again under new selectors) and the reconciler."""
        tasks: list[asyncio.Task[None]] = []
        try:
            while True:
                changes = self.gate.changes
                self.pods.reset()
                self.watch.synced.clear()
                tasks = [asyncio.ensure_future(self.watch.run())]
                if self.reconciler is not None:
                    tasks.append(asyncio.ensure_future(self.reconciler.run(self.watch.synced.wait)))
                while self.gate.changes == changes:
                    await asyncio.sleep(SELECTOR_CHECK_SECONDS)
                    for task in tasks:
                        if task.done():
                            task.result()  # a crash ends the leadership: another replica leads
                log.info("the webhook's selectors changed: listing pods again")
                await _cancel(tasks)
        finally:
            await _cancel(tasks)
            self.pods.reset()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*tasks, return_exceptions=True)


class WatchingCollector(Collector):
    """podinit_leader, podinit_pods_unwrapped{namespace,state}, the oldest one's age, and the
    reconciler's actions."""

    def __init__(self, watching: Watching) -> None:
        self.watching = watching

    def collect(self) -> Iterator[Metric]:
        leading = self.watching.leadership.leading
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
        if leading and self.watching.watch.synced.is_set():
            for (namespace, state), count in sorted(self.watching.pods.counts().items()):
                unwrapped.add_metric([namespace, state], count)
            for state, age in sorted(self.watching.pods.oldest().items()):
                oldest.add_metric([state], age)
        yield unwrapped
        yield oldest
        actions = CounterMetricFamily(
            "podinit_reconcile_actions",
            "What the reconciler did with slipped pods: evicted, refused (by a "
            "PodDisruptionBudget, tried again later), reported (bare or Job pods, never "
            "deleted), would-evict (dryRun), stalled (a replacement not Ready and wrapped in "
            "time), not-serving (a pass skipped: the webhook was not reached)",
            labels=["action"],
        )
        if self.watching.reconciler is not None:
            counts = self.watching.reconciler.counts
            for action, value in (
                ("evicted", counts.evicted),
                ("refused", counts.refused),
                ("reported", counts.reported),
                ("would-evict", counts.would_evict),
                ("stalled", counts.stalled),
                ("not-serving", counts.not_serving),
            ):
                actions.add_metric([action], value)
        yield actions
