"""Replace pods that slipped through, the way a careful operator would (`reconcile: true`).

Runs on the leading replica only (webhook/server/lease.py), over the pods the watch found
slipped (webhook/server/unwrapped.py), oldest first. Nothing is evicted unless the webhook is
serving: this replica is ready, and a dry-run pod create in the probe namespace comes back
wrapped (asked right before each eviction; while it does not, again every `probe_retry`).
Then, per pod:

- in the release's namespace (the webhook's own pods), a failed pod (its lookup failed: a
  new one would fail the same way), or one a new admission would not wrap either (every
  container skipped, a bad option annotation): left alone;
- not owned by a ReplicaSet, StatefulSet, DaemonSet or ReplicationController (a bare pod, a
  Job's, a custom controller's), or the only pod of its workload (evicting it would stop the
  workload until its replacement is Ready; `single_pod_workloads` allows it): never deleted;
  one Event on it (or its owner) says so, the metric counts it;
- its workload is not steady (webhook/server/workloads.py: a pod not available or
  terminating, a rollout in progress; read from the cluster each time, so a replica that
  takes over the Lease mid-replacement waits as well), is waiting for an earlier replacement,
  or was given up: next time, or never;
- otherwise, within the rate limits (cluster-wide and per namespace, tokens per minute, spent
  only on evictions that happened), it is evicted through the Eviction API, so
  PodDisruptionBudgets hold; a refused eviction (429) is tried again after `retry` seconds,
  doubling up to an hour, and reported once. The workload then waits until it is steady again
  with a new pod the webhook decided; one that does not get there within `ready_timeout`
  stalls the workload for `stall` seconds, and one whose new pod slipped as well (a
  matchCondition or selector the reconciler cannot see, or the webhook lost right after the
  probe) for `stall` seconds doubled each time it happens again: evicting more would only
  restart pods.

`dry_run` reports what it would evict (Event + metric) and evicts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from webhook.core import State
from webhook.server.cluster_actions import ClusterActions, Eviction, owner_reference
from webhook.server.event_content import quoted
from webhook.server.reconcile_state import Bucket, ReconcileCounts, Waiting
from webhook.server.unwrapped import UnwrappedPod, UnwrappedPods
from webhook.server.workloads import Workload, Workloads, replaceable

log = logging.getLogger("podinit.reconcile")

MAX_RETRY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileSettings:
    own_namespace: str
    probe_namespace: str
    dry_run: bool = False
    per_minute: float = 6.0  # evictions cluster-wide
    namespace_per_minute: float = 2.0
    interval: float = 5.0  # seconds between passes
    retry: float = 60.0  # after a refused eviction (doubling)
    ready_timeout: float = 600.0
    stall: float = 3600.0
    probe_retry: float = 5.0
    # Evict the one pod of a workload of one replica (it stops until its replacement is
    # Ready)? Off: such pods are reported, as bare ones are.
    single_pod_workloads: bool = False


class Reconciler:
    def __init__(
        self,
        *,
        pods: UnwrappedPods,
        actions: ClusterActions,
        workloads: Workloads,
        settings: ReconcileSettings,
        ready: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pods, self.actions, self.workloads = pods, actions, workloads
        self.settings, self.ready, self.clock = settings, ready, clock
        self.cluster = Bucket(settings.per_minute, clock)
        self.namespaces: dict[str, Bucket] = {}
        self.waiting: dict[str, Waiting] = {}  # by owner uid
        self.stalled: dict[str, float] = {}  # owner uid -> monotonic time it may go on
        self.slipped_again: dict[str, int] = {}  # owner uid -> replacements that slipped too
        self.retry_at: dict[str, tuple[float, int]] = {}  # pod uid -> (when, refusals)
        self.reported: set[str] = set()  # pod uids told about once
        self.counts = ReconcileCounts()
        self._probed: tuple[float, bool] = (-float("inf"), False)

    async def run(self, synced: Callable[[], Awaitable[object]]) -> None:
        """Passes until cancelled (leadership lost), after the watch's first whole list."""
        await synced()
        while True:
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile pass failed")
            await asyncio.sleep(self.settings.interval)

    async def run_pass(self) -> None:
        await self._check_waiting()
        slipped = {uid: p for uid, p in self.pods.pods.items() if p.state == State.SLIPPED}
        self._forget_gone(slipped)
        now = self.clock()
        todo = sorted(
            (p for p in slipped.values() if p.namespace != self.settings.own_namespace),
            key=lambda p: (self.retry_at.get(p.uid, (0.0, 0))[1], p.created),
        )
        seen: dict[str, Workload | None] = {}  # one read per workload and pass
        for pod in todo:
            if self.retry_at.get(pod.uid, (0.0, 0))[0] > now:
                continue
            await self._consider(pod, seen)

    def _forget_gone(self, slipped: dict[str, UnwrappedPod]) -> None:
        """What is kept per pod lives as long as the pod is slipped; per workload and namespace,
        as long as a pod of it is, or its stall lasts."""
        for uid in [u for u in self.retry_at if u not in slipped]:
            del self.retry_at[uid]
        self.reported &= slipped.keys()
        now = self.clock()
        owners = {p.owner.uid for p in slipped.values() if p.owner} | self.waiting.keys()
        self.stalled = {u: t for u, t in self.stalled.items() if t > now or u in owners}
        self.slipped_again = {u: n for u, n in self.slipped_again.items() if u in owners}
        namespaces = {p.namespace for p in slipped.values()}
        self.namespaces = {n: b for n, b in self.namespaces.items() if n in namespaces}

    async def _consider(self, pod: UnwrappedPod, seen: dict[str, Workload | None]) -> None:
        owner = pod.owner
        if pod.uid in self.reported or not pod.wrappable:
            return
        if owner is None or not replaceable(owner):
            await self._report(pod, f"owned by {owner.kind if owner else 'no controller'}")
            return
        if owner.uid in self.waiting:
            return
        if self.stalled.get(owner.uid, 0.0) > self.clock():
            return
        if owner.uid not in seen:
            seen[owner.uid] = await self.workloads.read(owner, pod.namespace)
        workload = seen[owner.uid]
        if workload is None or not workload.steady:
            return  # gone, unreadable, or a pod of it not available: next time
        if workload.wanted == 1 and not self.settings.single_pod_workloads:
            await self._report(pod, "the only pod of its workload; evicting it would stop it")
            return
        if self.settings.dry_run:
            self.reported.add(pod.uid)
            self.counts.would_evict += 1
            await self._tell(pod, "PodinitWouldReplace", "DryRun", "would evict")
            return
        bucket = self.namespaces.setdefault(
            pod.namespace, Bucket(self.settings.namespace_per_minute, self.clock)
        )
        if not (self.cluster.ready() and bucket.ready()) or not await self._serving():
            return
        await self._evict(pod, workload, bucket)
        seen.pop(owner.uid, None)

    async def _evict(self, pod: UnwrappedPod, workload: Workload, bucket: Bucket) -> None:
        assert pod.owner is not None
        result = await self.actions.evict(pod)
        if result is Eviction.EVICTED:
            self.cluster.take()
            bucket.take()
            self.counts.evicted += 1
            self.waiting[pod.owner.uid] = Waiting(
                owner=pod.owner,
                namespace=pod.namespace,
                before=frozenset(p.uid for p in workload.pods),
                deadline=self.clock() + self.settings.ready_timeout,
                pod=pod,
            )
            log.info("evicted slipped pod %s/%s", pod.namespace, pod.name)
            await self._tell(pod, "PodinitReplacing", "Evict", "evicted")
            return
        refusals = self.retry_at.get(pod.uid, (0.0, 0))[1]
        delay = min(self.settings.retry * 2**refusals, MAX_RETRY_SECONDS)
        self.retry_at[pod.uid] = (self.clock() + delay, refusals + 1)
        if result is Eviction.REFUSED:
            self.counts.refused += 1
            if refusals == 0:
                note = "eviction refused by a PodDisruptionBudget; trying again later"
                await self._tell(pod, "PodinitEvictionRefused", "Evict", note, warning=True)
        elif result is Eviction.FAILED:
            self.counts.failed += 1
            if refusals == 0:
                note = "eviction failed (the log says why); trying again later"
                await self._tell(pod, "PodinitEvictionFailed", "Evict", note, warning=True)

    async def _serving(self) -> bool:
        """Ready, and the probe comes back wrapped: asked before each eviction, and while it
        does not, again every `probe_retry` seconds; the log says when that changes."""
        if not self.ready():
            return False
        at, answer = self._probed
        if answer or self.clock() - at >= self.settings.probe_retry:
            serving = await self.actions.webhook_reached(self.settings.probe_namespace)
            if serving != answer or at == -float("inf"):
                log.log(
                    logging.INFO if serving else logging.WARNING,
                    "serving probe: a dry-run pod in %s %s",
                    self.settings.probe_namespace,
                    "comes back wrapped" if serving else "is not wrapped: replacing nothing",
                )
            self._probed = (self.clock(), serving)
            answer = serving
        if not answer:
            self.counts.not_serving += 1
        return answer

    async def _report(self, pod: UnwrappedPod, why: str) -> None:
        """A pod podinit will not delete: told once."""
        self.reported.add(pod.uid)
        self.counts.reported += 1
        note = f"not replaced: {why}; delete and re-create it to wrap it"
        await self._tell(pod, "PodinitNotReplaced", "Report", note, warning=True)

    async def _check_waiting(self) -> None:
        for uid, waiting in list(self.waiting.items()):
            try:
                await self._check(uid, waiting)
            except Exception:
                log.exception("checking the replacement of %s", waiting.owner.name)

    async def _check(self, uid: str, waiting: Waiting) -> None:
        workload = await self.workloads.read(waiting.owner, waiting.namespace)
        if workload is None:  # the workload is gone
            del self.waiting[uid]
            return
        new = [p for p in workload.pods if p.uid not in waiting.before and not p.terminating]
        if workload.steady and new and all(p.settled for p in new):
            del self.waiting[uid]
            return
        if new and all(p.ready for p in new) and not any(p.settled for p in new):
            del self.waiting[uid]
            times = self.slipped_again.get(uid, 0)
            self.slipped_again[uid] = times + 1
            pause = self.settings.stall * 2**times  # evicting more would only restart pods
            self.stalled[uid] = self.clock() + pause
            self.counts.stalled += 1
            note = "its new pod was not wrapped either (a matchCondition or selector the "
            note += f"reconciler cannot see?); no more pods of it are replaced for {pause:.0f}s"
            await self._tell(waiting.pod, "PodinitReplacementStalled", "Wait", note, True)
            return
        if self.clock() < waiting.deadline:
            return
        del self.waiting[uid]
        self.stalled[uid] = self.clock() + self.settings.stall
        self.counts.stalled += 1
        note = (
            f"the pod replacing a slipped one is not Ready and wrapped after "
            f"{self.settings.ready_timeout:.0f}s; no more pods of it are replaced for "
            f"{self.settings.stall:.0f}s"
        )
        await self._tell(waiting.pod, "PodinitReplacementStalled", "Wait", note, True)

    async def _tell(
        self, pod: UnwrappedPod, reason: str, action: str, what: str, warning: bool = False
    ) -> None:
        """An Event on the pod's owner (the pod when it has none) and a log line."""
        note = f"{what}: pod {quoted(pod.name)} slipped through podinit's webhook unwrapped"
        log.info("%s %s/%s: %s", reason, pod.namespace, pod.name, what)
        await self.actions.event(
            owner_reference(pod), reason=reason, action=action, note=note, warning=warning
        )
