"""podinit replaces what slipped through, on the real node (issue 20): the webhook scaled to 0,
workloads created (all slipped), the webhook back with `reconcile.enabled`: every pod of a
Deployment, StatefulSet or DaemonSet is replaced by a wrapped one, one at a time,
PodDisruptionBudgets hold, bare pods are only reported; and the leader SIGKILLed mid-way
changes none of that. The DaemonSet has one pod (one node), so `singlePodWorkloads` is on.

Measured and printed: seconds from the webhook's return to the last replacement Ready.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from e2e import audit
from e2e.node import disruption, workloads
from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE, ready, scale_webhook, wrapped

STATUS = "podinit.dev/status"
GRACE = 15  # an unwrapped shell-form app ignores SIGTERM: its pods linger this long, Ready


@pytest.fixture(scope="module")
def reconciling(cluster: Cluster) -> Iterator[None]:
    values = workloads.chart_values(cluster, reconcileIntervalSeconds=1)
    values["reconcile"] = {
        "enabled": True,
        "evictionsPerMinute": 120,
        "namespaceEvictionsPerMinute": 60,
        "readyTimeoutSeconds": 180,
        "singlePodWorkloads": True,  # the DaemonSet's one pod on the one node
    }
    workloads.helm_install(cluster, values=values)
    yield
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


# name -> (kind, replicas, fewest Ready pods allowed while it is being replaced)
REPLACED = {
    "web": ("Deployment", 3, 2),  # its PDB allows one pod down
    "api": ("Deployment", 2, 1),
    "db": ("StatefulSet", 2, 1),
    "agent": ("DaemonSet", 1, 0),  # down while its one pod is replaced (singlePodWorkloads)
}
EVICTED = sum(replicas for _, replicas, _ in REPLACED.values())
SLIPPED = EVICTED + 3  # and guarded's 2 pods, and the bare pod


@dataclass
class Watched:
    pods: list[dict[str, Any]] = field(default_factory=list)
    fewest_ready: dict[str, int] = field(default_factory=dict)


def slipped_workloads(cluster: Cluster) -> str:
    """The webhook at 0 replicas, then a namespace of workloads, all running unwrapped."""
    scale_webhook(cluster, 0)
    namespace = workloads.fresh_namespace(cluster, prefix="slipped")
    pod_spec = workloads.app_pod("app", namespace, cluster, grace=GRACE)["spec"]
    objects = [
        workloads.workload(kind, name, namespace, pod_spec, replicas=replicas)
        for name, (kind, replicas, _) in REPLACED.items()
    ]
    objects += [
        workloads.workload("Deployment", "guarded", namespace, pod_spec, replicas=2),
        workloads.disruption_budget(namespace, "web", maxUnavailable=1),
        workloads.disruption_budget(namespace, "guarded", minAvailable=2),
        workloads.app_pod("bare", namespace, cluster, grace=GRACE),
    ]
    for obj in objects:
        cluster.cp.apply(obj)

    def running() -> bool:
        pods = _pods(cluster, namespace)
        return len(pods) == SLIPPED and all(ready(p) for p in pods)

    cluster.cp.wait_for(f"{SLIPPED} slipped pods Ready", running, timeout=240)
    assert not any(
        STATUS in (p["metadata"].get("annotations") or {}) for p in _pods(cluster, namespace)
    )
    return namespace


def _pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.cp.kubectl_json("get", "pods", "-n", namespace)["items"]
    return items


def _owned(item: dict[str, Any], name: str) -> bool:
    return any(
        r["name"] == name or r["name"].startswith(f"{name}-")
        for r in item["metadata"].get("ownerReferences") or []
    )


def replaced(cluster: Cluster, namespace: str, watched: Watched) -> Callable[[], bool]:
    """Whether every pod of REPLACED is wrapped and Ready; records the fewest Ready seen."""

    def check() -> bool:
        current = [
            p for p in _pods(cluster, namespace) if not p["metadata"].get("deletionTimestamp")
        ]
        watched.pods = current
        done = True
        for name, (_, replicas, _) in REPLACED.items():
            mine = [p for p in current if _owned(p, name)]
            up = sum(ready(p) for p in mine)
            watched.fewest_ready[name] = min(watched.fewest_ready.get(name, replicas), up)
            done &= len(mine) == replicas and all(ready(p) and wrapped(p) for p in mine)
        return done

    return check


def events(cluster: Cluster, namespace: str, reason: str) -> list[dict[str, Any]]:
    listed = cluster.cp.kubectl_json("get", "events.events.k8s.io", "-n", namespace)["items"]
    return [e for e in listed if e.get("reason") == reason]


def assert_left_alone(cluster: Cluster, namespace: str) -> None:
    """The PDB that allows no disruption held; the bare pod was reported, never deleted."""
    cluster.cp.wait_for(
        "the refused eviction and the bare pod reported",
        lambda: (
            bool(events(cluster, namespace, "PodinitEvictionRefused"))
            and bool(events(cluster, namespace, "PodinitNotReplaced"))
        ),
        timeout=60,
    )
    current = _pods(cluster, namespace)
    guarded = [p for p in current if _owned(p, "guarded")]
    assert len(guarded) == 2 and all(ready(p) and not wrapped(p) for p in guarded)
    [bare] = [p for p in current if p["metadata"]["name"] == "bare"]
    assert not wrapped(bare) and not bare["metadata"].get("deletionTimestamp")


def test_slipped_workloads_are_replaced_wrapped_while_budgets_and_bare_pods_hold(
    cluster: Cluster, reconciling: None, measured: Callable[[str], None]
) -> None:
    namespace = slipped_workloads(cluster)
    try:
        scale_webhook(cluster, 2)
        started, watched = time.monotonic(), Watched()
        cluster.cp.wait_for(
            "every replaceable pod wrapped", replaced(cluster, namespace, watched), 300
        )
        took = time.monotonic() - started
        measured(
            f"reconcile: {EVICTED} slipped pods of {len(REPLACED)} workloads replaced in "
            f"{took:.0f}s"
        )
        for name, (_, _, fewest) in REPLACED.items():
            assert watched.fewest_ready[name] >= fewest, (name, watched.fewest_ready)
        assert_left_alone(cluster, namespace)
        assert len(events(cluster, namespace, "PodinitReplacing")) == EVICTED, "one per pod"
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _leader(cluster: Cluster) -> str:
    lease = cluster.cp.kubectl_json("get", "lease", f"{RELEASE}-leader", "-n", RELEASE_NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")


def test_the_leader_killed_mid_reconcile_hands_over_and_no_pod_is_evicted_twice(
    cluster: Cluster, reconciling: None
) -> None:
    namespace = slipped_workloads(cluster)
    try:
        scale_webhook(cluster, 2)
        cluster.cp.wait_for(
            "the first eviction",
            lambda: bool(events(cluster, namespace, "PodinitReplacing")),
            timeout=120,
        )
        first = _leader(cluster)  # <pod name>_<process>
        disruption.kill_replica(cluster, first.rsplit("_", 1)[0])
        cluster.cp.wait_for(
            "another process leads", lambda: _leader(cluster) not in ("", first), timeout=60
        )
        watched = Watched()
        cluster.cp.wait_for(
            "every replaceable pod wrapped", replaced(cluster, namespace, watched), 300
        )
        for name, (_, _, fewest) in REPLACED.items():
            assert watched.fewest_ready[name] >= fewest, (name, watched.fewest_ready)
        # the apiserver's own record: every replaceable pod evicted, none twice
        evicted = audit.evictions(cluster.cp.audit_events(), namespace)
        assert len(evicted) == len(set(evicted)) == EVICTED, evicted
        # An Event for each eviction, but one the killed process had made and not yet
        # reported (the Event is written once the eviction is answered) may have none.
        replacing = events(cluster, namespace, "PodinitReplacing")
        told = [re.search(r'pod "([^"]+)"', e["note"])[1] for e in replacing]  # type: ignore[index]
        assert len(told) == len(set(told)) and set(told) <= set(evicted), (told, evicted)
        assert len(told) >= EVICTED - 1, json.dumps([e["note"] for e in replacing])
        assert {e["reportingInstance"] for e in replacing} >= {first}
        assert_left_alone(cluster, namespace)
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


STREAM = 10  # Deployments of 2 pods, one a second, while one webhook replica is SIGKILLed


def _stream(cluster: Cluster, namespace: str) -> list[str]:
    template = workloads.app_pod("x", namespace, cluster, grace=GRACE)["spec"]
    return disruption.stream_deployments(
        cluster,
        namespace,
        template,
        count=STREAM,
        rate=1,
        replicas=2,
        during=disruption.kill_one_replica(cluster),
    )


def _all_wrapped_and_ready(cluster: Cluster, namespace: str) -> Callable[[], bool]:
    def check() -> bool:
        current = [
            p for p in _pods(cluster, namespace) if not p["metadata"].get("deletionTimestamp")
        ]
        return len(current) == 2 * STREAM and all(ready(p) and wrapped(p) for p in current)

    return check


def test_pods_that_slip_past_a_killed_replica_are_all_wrapped_soon_after(
    cluster: Cluster, reconciling: None, measured: Callable[[str], None]
) -> None:
    """D4 (b): failurePolicy Ignore, the reconciler on: whatever slipped while a replica was
    SIGKILLed is replaced; the count and the time are printed."""
    namespace = workloads.fresh_namespace(cluster, prefix="kill-ignore")
    try:
        _stream(cluster, namespace)
        started = time.monotonic()
        cluster.cp.wait_for("every pod wrapped", _all_wrapped_and_ready(cluster, namespace), 300)
        admissions = cluster.cp.pod_admissions(namespace)
        slipped = [a for a in admissions if a.status < 300 and not a.mutated_by(RELEASE)]
        measured(
            f"SIGKILL, Ignore + reconcile: {len(admissions)} pod creations, {len(slipped)} "
            f"slipped; all {2 * STREAM} pods wrapped {time.monotonic() - started:.0f}s after "
            "the stream"
        )
        assert len(events(cluster, namespace, "PodinitReplacing")) == len(slipped)
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_fail_closed_admission_admits_nothing_unwrapped_and_every_deployment_gets_its_pods(
    cluster: Cluster, reconciling: None, measured: Callable[[str], None]
) -> None:
    """D4 (c): failurePolicy Fail under the same SIGKILL: creations the apiserver could not
    get answered are refused (the ReplicaSets retry them), none is admitted unwrapped."""
    values = workloads.chart_values(cluster, reconcileIntervalSeconds=1)
    values["webhook"] = {"failurePolicy": "Fail"}
    workloads.helm_install(cluster, values=values)
    namespace = workloads.fresh_namespace(cluster, prefix="kill-fail")
    try:
        _stream(cluster, namespace)
        cluster.cp.wait_for("every pod wrapped", _all_wrapped_and_ready(cluster, namespace), 300)
        admissions = [a for a in cluster.cp.pod_admissions(namespace) if not a.dry_run]
        unwrapped = [a for a in admissions if a.status < 300 and not a.mutated_by(RELEASE)]
        refused = [a for a in admissions if a.status >= 400]
        measured(
            f"SIGKILL, Fail: {len(admissions)} pod creations, {len(refused)} refused and "
            f"retried by their ReplicaSets, {len(unwrapped)} unwrapped"
        )
        assert unwrapped == []
        assert len(admissions) - len(refused) == 2 * STREAM
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
