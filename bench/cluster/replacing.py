"""Replacing pods that slipped through (issue 20), for `make bench-cluster`: podinit's
reconciler against the fix an operator makes by hand, `kubectl rollout restart`, measured
in the same run on the same node.

A Deployment of REPLICAS shell-form app pods, guarded by a PodDisruptionBudget that allows one
down, is created while the webhook is scaled to 0, so every pod slips through unwrapped. Then
the webhook is scaled back and either the operator restarts the rollout (the reconciler off)
or the reconciler, as the chart ships it (`reconcile.enabled: true`, every other setting its
default: 2 evictions a minute per namespace, one pod of a workload at a time), replaces them.
Measured from the webhook serving again to the last pod wrapped and Ready: the seconds, the
fewest Ready pods seen (sampled twice a second) and the evictions podinit made.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from e2e.node import workloads
from e2e.node.cluster import Cluster

REPLICAS = 4
GRACE = 5  # seconds: an unwrapped pod's shell is PID 1 and ignores SIGTERM: each takes this long
APP = "app"
TIMEOUT = 600.0


@dataclass(frozen=True)
class Replacement:
    seconds: float
    fewest_ready: int
    evictions: int


def _objects(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    pod_spec = workloads.app_pod(APP, namespace, cluster, grace=GRACE)["spec"]
    return [
        workloads.workload("Deployment", APP, namespace, pod_spec, replicas=REPLICAS),
        workloads.disruption_budget(namespace, APP, maxUnavailable=1),
    ]


def _pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.cp.kubectl_json("get", "pods", "-n", namespace)["items"]
    return items


def _slipped(cluster: Cluster) -> str:
    """A namespace whose Deployment's pods all run unwrapped, the webhook at 0 replicas."""
    workloads.scale_webhook(cluster, 0)
    namespace = workloads.fresh_namespace(cluster, prefix="replacing")
    for obj in _objects(cluster, namespace):
        cluster.cp.apply(obj)

    def running() -> bool:
        pods = _pods(cluster, namespace)
        return len(pods) == REPLICAS and all(workloads.ready(p) for p in pods)

    cluster.cp.wait_for(f"{REPLICAS} slipped pods Ready", running, timeout=240)
    assert not any(workloads.wrapped(p) for p in _pods(cluster, namespace))
    return namespace


def _replaced(cluster: Cluster, namespace: str, start: Callable[[], None]) -> Replacement:
    workloads.scale_webhook(cluster, 2)
    began = time.monotonic()
    start()
    fewest = REPLICAS
    while time.monotonic() - began < TIMEOUT:
        pods = _pods(cluster, namespace)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        fewest = min(fewest, sum(workloads.ready(p) for p in live))
        done = len(pods) == REPLICAS and all(
            workloads.ready(p) and workloads.wrapped(p) for p in pods
        )
        if done:
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"{namespace}: pods not all wrapped within {TIMEOUT:.0f}s")
    seconds = time.monotonic() - began
    listed = cluster.cp.kubectl_json("get", "events.events.k8s.io", "-n", namespace)["items"]
    evictions = sum(e.get("reason") == "PodinitReplacing" for e in listed)
    return Replacement(seconds, fewest, evictions)


def replacing(cluster: Cluster) -> dict[str, Replacement]:
    """Both ways of replacing the same slipped Deployment, the operator's first."""
    found = {}
    for name, reconcile in (("kubectl rollout restart", False), ("podinit's reconciler", True)):
        values = workloads.chart_values(cluster)
        values["reconcile"] = {"enabled": reconcile}
        workloads.helm_install(cluster, values=values)
        namespace = _slipped(cluster)

        def start(namespace: str = namespace, reconcile: bool = reconcile) -> None:
            if not reconcile:
                cluster.cp.kubectl("rollout", "restart", f"deployment/{APP}", "-n", namespace)

        found[name] = _replaced(cluster, namespace, start)
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false")
    return found


def markdown(found: dict[str, Replacement], *, title: str) -> str:
    baseline = next(iter(found.values()))
    rows = "\n".join(
        f"| {name} | {r.seconds:.0f} s | {r.seconds / baseline.seconds:.2f}x | "
        f"{r.fewest_ready} of {REPLICAS} | {r.evictions} |"
        for name, r in found.items()
    )
    return f"""## {title}

`make bench-cluster BENCH_CLUSTER_ARGS=--only-replacing` (bench/cluster/replacing.py), on the
one-node cluster of `make cluster`. A Deployment of {REPLICAS} shell-form pods (a PodDisruptionBudget allows one down,
{GRACE} s grace: unwrapped, its shell is PID 1 and ignores SIGTERM) created while the webhook was scaled to 0, so all
slipped through unwrapped; then the webhook back, and the pods replaced by wrapped ones (from
the webhook serving again to the last pod wrapped and Ready, fewest Ready sampled twice a
second):

| replaced by | took | vs rollout restart | fewest Ready | podinit evictions |
| --- | ---: | ---: | ---: | ---: |
{rows}

The reconciler runs as the chart ships it once enabled: one pod of a workload at a time, the
next only when the replacement is Ready and wrapped, at most 2 evictions a minute in a
namespace (`reconcile.namespaceEvictionsPerMinute`). It is slower than a rollout restart by
design: it needs no person, and never takes a workload below what its budget allows.
Measured {dt.datetime.now(dt.UTC):%Y-%m-%d} on this 2-core VM.
"""
