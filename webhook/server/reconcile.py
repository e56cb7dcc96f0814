"""Replace pods that slipped through, the way a careful operator would (`reconcile: true`).

Runs on the leading replica only (webhook/server/lease.py), over the pods the watch found
slipped (webhook/server/unwrapped.py), oldest first. A pass acts only while the webhook is
serving: this replica is ready, and a dry-run pod create in the probe namespace comes back
wrapped (the apiserver reaches a replica now; a replacement would be wrapped). Then, per pod:

- in the release's namespace (the webhook's own pods), or a failed pod (its lookup failed: a
  new one would fail the same way): left alone;
- not owned by a ReplicaSet, StatefulSet, DaemonSet or ReplicationController (a bare pod, a
  Job's), or the only pod of its workload (evicting it would stop the workload until its
  replacement is Ready; `single_pod_workloads` allows it): never deleted; one Event on it (or
  its owner) says so, the metric counts it;
- its workload is waiting for an earlier replacement, is stalled, or has a pod that is not
  Ready (as its controller counts them; asked of the cluster each time, so a replica that
  takes over the Lease mid-replacement waits as well): next time;
- otherwise, within the rate limits (cluster-wide and per namespace, tokens per minute), it
  is evicted through the Eviction API, so PodDisruptionBudgets hold; a refused eviction (429)
  is tried again after `retry` seconds and reported once. The workload then waits until its
  new pod is Ready and wrapped; one that does not get there within `ready_timeout` stalls the
  workload (an Event says so) for `stall` seconds: podinit never takes a second pod from a
  workload whose first replacement is not serving.

`dry_run` reports what it would evict (Event + metric) and evicts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from webhook.core import State
from webhook.server.cluster_actions import ClusterActions, Eviction, owner_reference
from webhook.server.events import quoted
from webhook.server.unwrapped import Owner, UnwrappedPod, UnwrappedPods

log = logging.getLogger("podinit.reconcile")

REPLACEABLE = {
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicationController": "v1",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileSettings:
    own_namespace: str
    probe_namespace: str
    dry_run: bool = False
    per_minute: float = 6.0  # evictions cluster-wide
    namespace_per_minute: float = 2.0
    interval: float = 5.0  # seconds between passes
    retry: float = 60.0  # after a refused eviction
    ready_timeout: float = 600.0
    stall: float = 3600.0
    probe_every: float = 30.0
    probe_retry: float = 5.0
    # Evict the one pod of a workload of one replica (it stops until its replacement is
    # Ready)? Off: such pods are reported, as bare ones are.
    single_pod_workloads: bool = False


class Bucket:
    """Tokens per minute, at most one minute's worth saved up (so a burst stays bounded)."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self.clock = per_minute / 60.0, max(per_minute, 1.0), clock
        self.tokens, self.at = 1.0, clock()

    def ready(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass(slots=True)
class Waiting:
    owner: Owner
    namespace: str
    since: float  # wall clock of the eviction (creation times are wall clock)
    deadline: float  # monotonic


@dataclass(slots=True)
class ReconcileCounts:
    evicted: int = 0
    refused: int = 0
    reported: int = 0  # bare or Job pods, never deleted
    would_evict: int = 0  # dry run
    stalled: int = 0
    not_serving: int = 0  # passes skipped: the webhook was not reached
    by_result: dict[str, int] = field(default_factory=dict)


class Reconciler:
    def __init__(
        self,
        *,
        pods: UnwrappedPods,
        actions: ClusterActions,
        settings: ReconcileSettings,
        ready: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pods, self.actions, self.settings = pods, actions, settings
        self.ready, self.clock = ready, clock
        self.cluster = Bucket(settings.per_minute, clock)
        self.namespaces: dict[str, Bucket] = {}
        self.waiting: dict[str, Waiting] = {}  # by owner uid
        self.stalled: dict[str, float] = {}  # owner uid -> monotonic time it may go on
        self.retry_at: dict[str, float] = {}  # pod uid -> after a refused eviction
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
        slipped = sorted(
            (p for p in self.pods.pods.values() if p.state == State.SLIPPED),
            key=lambda p: p.created,
        )
        actionable = [p for p in slipped if p.namespace != self.settings.own_namespace]
        if not actionable:
            return
        if not await self._serving():
            self.counts.not_serving += 1
            return
        for pod in actionable:
            await self._consider(pod)

    async def _serving(self) -> bool:
        """Ready, and the probe came back wrapped: asked again every `probe_every` seconds
        while it does, every `probe_retry` while it does not; the log says when that changes."""
        if not self.ready():
            return False
        at, answer = self._probed
        wait = self.settings.probe_every if answer else self.settings.probe_retry
        if self.clock() - at >= wait:
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
        return answer

    async def _consider(self, pod: UnwrappedPod) -> None:
        owner = pod.owner
        if owner is None or owner.kind not in REPLACEABLE:
            await self._report(pod)
            return
        now = self.clock()
        if owner.uid in self.waiting or self.stalled.get(owner.uid, 0.0) > now:
            return
        if self.retry_at.get(pod.uid, 0.0) > now:
            return
        bucket = self.namespaces.setdefault(
            pod.namespace, Bucket(self.settings.namespace_per_minute, self.clock)
        )
        if not (self.cluster.ready() and bucket.ready()):
            return
        availability = await self.actions.available(owner, pod.namespace)
        if availability.wanted == 1 and not self.settings.single_pod_workloads:
            await self._report(pod, "the only pod of its workload; evicting it would stop it")
            return
        if not availability.all_ready:
            return  # a pod of it is not Ready (a replacement on its way, or a real problem)
        regarding = owner_reference(pod, REPLACEABLE[owner.kind])
        if self.settings.dry_run:
            if pod.uid not in self.reported:
                self.reported.add(pod.uid)
                self.counts.would_evict += 1
                await self._tell(regarding, "PodinitWouldReplace", "DryRun", pod, "would evict")
            return
        result = await self.actions.evict(pod)
        self.cluster.take()
        bucket.take()
        if result is Eviction.EVICTED:
            self.counts.evicted += 1
            self.waiting[owner.uid] = Waiting(
                owner, pod.namespace, time.time(), now + self.settings.ready_timeout
            )
            log.info("evicted slipped pod %s/%s", pod.namespace, pod.name)
            await self._tell(regarding, "PodinitReplacing", "Evict", pod, "evicted")
        elif result is Eviction.REFUSED:
            self.counts.refused += 1
            self.retry_at[pod.uid] = now + self.settings.retry
            if pod.uid not in self.reported:
                self.reported.add(pod.uid)
                note = "eviction refused by a PodDisruptionBudget; trying again later"
                await self._tell(regarding, "PodinitEvictionRefused", "Evict", pod, note, True)
        elif result is Eviction.GONE:
            self.pods.forget(pod.uid)
        else:
            self.retry_at[pod.uid] = now + self.settings.retry

    async def _report(self, pod: UnwrappedPod, why: str | None = None) -> None:
        """A pod podinit will not delete: told once."""
        if pod.uid in self.reported:
            return
        self.reported.add(pod.uid)
        self.counts.reported += 1
        owner = pod.owner
        api_version = REPLACEABLE.get(owner.kind, "v1") if owner else "v1"
        if owner and owner.kind == "Job":
            api_version = "batch/v1"
        if why is None:
            why = f"owned by {owner.kind if owner else 'no controller'}"
        note = f"not replaced: {why}; delete and re-create it to wrap it"
        await self._tell(
            owner_reference(pod, api_version), "PodinitNotReplaced", "Report", pod, note, True
        )

    async def _check_waiting(self) -> None:
        now = self.clock()
        for uid, waiting in list(self.waiting.items()):
            found = await self.actions.replacement(waiting.owner, waiting.namespace, waiting.since)
            if found is not None and found.ready and found.wrapped:
                del self.waiting[uid]
                continue
            if now < waiting.deadline:
                continue
            del self.waiting[uid]
            self.stalled[uid] = now + self.settings.stall
            self.counts.stalled += 1
            what = "not Ready" if found is None or not found.ready else "not wrapped"
            reference = owner_reference(
                _placeholder(waiting), REPLACEABLE.get(waiting.owner.kind, "v1")
            )
            note = (
                f"the pod replacing a slipped one is {what} after "
                f"{self.settings.ready_timeout:.0f}s; no more pods of it are replaced for "
                f"{self.settings.stall:.0f}s"
            )
            await self.actions.event(
                reference,
                reason="PodinitReplacementStalled",
                action="Wait",
                note=note,
                warning=True,
            )

    async def _tell(
        self,
        regarding: dict[str, str] | object,
        reason: str,
        action: str,
        pod: UnwrappedPod,
        what: str,
        warning: bool = False,
    ) -> None:
        note = f"{what}: pod {quoted(pod.name)} slipped through podinit's webhook unwrapped"
        log.info("%s %s/%s: %s", reason, pod.namespace, pod.name, what)
        await self.actions.event(
            regarding,  # type: ignore[arg-type]
            reason=reason,
            action=action,
            note=note,
            warning=warning,
        )


def _placeholder(waiting: Waiting) -> UnwrappedPod:
    """A stand-in pod naming the waiting workload, for its Event's `regarding`."""
    return UnwrappedPod(
        namespace=waiting.namespace,
        name="",
        uid="",
        state=State.SLIPPED,
        created=waiting.since,
        owner=waiting.owner,
        generation=1,
        containers=(),
    )
