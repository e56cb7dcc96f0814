"""The reconciler's limits on a real apiserver and controller manager: a dry run evicts
nothing and says what it would do; the only pod of a workload is replaced only when allowed;
a namespace's eviction rate holds. Pods slip through as in test_reconcile.py (the webhook
configuration at a dead address), then the apiserver reaches the server."""

from __future__ import annotations

import time

import pytest

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    Podinit,
    delete_namespace,
    deployment,
)
from tests.e2e.test_reconcile import (
    APP,
    act_as_kubelet,
    events,
    metrics,
    pods,
    reconciling_server,
    slipped_namespace,
)


def slipped(cp: ControlPlane, podinit: Podinit, *workloads: tuple[str, int]) -> str:
    """A namespace of Deployments (name, replicas) whose pods all slipped, Ready; then the
    apiserver reaches the server."""
    made = [deployment("", name, *APP, replicas=replicas) for name, replicas in workloads]
    total = sum(replicas for _, replicas in workloads)
    namespace = slipped_namespace(cp, podinit, *made, count=total)
    podinit.url = None
    podinit.upgrade("optIn")
    return namespace


def test_a_dry_run_evicts_nothing_and_tells_each_pod_it_would_replace(
    control_plane: ControlPlane, probe_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cp = control_plane
    tmp = tmp_path_factory.mktemp("dry")
    with reconciling_server(cp, tmp, probe_namespace, PODINIT_RECONCILE_DRY_RUN="true") as podinit:
        namespace = slipped(cp, podinit, ("web", 2))
        try:
            before = {p["metadata"]["uid"] for p in pods(cp, namespace)}
            cp.wait_for(
                "two 'would evict' Events",
                lambda: len(events(cp, namespace, "PodinitWouldReplace")) == 2,
                timeout=60,
            )
            time.sleep(3)  # passes go on every 0.5 s: still nothing evicted
            assert {p["metadata"]["uid"] for p in pods(cp, namespace)} == before
            assert events(cp, namespace, "PodinitReplacing") == []
            counted = metrics(podinit.server)
            assert counted['podinit_reconcile_actions_total{action="would-evict"}'] == 2
            assert counted['podinit_reconcile_actions_total{action="evicted"}'] == 0
        finally:
            delete_namespace(cp, namespace)


def test_the_only_pod_of_a_workload_is_replaced_when_allowed_within_the_namespace_rate(
    control_plane: ControlPlane, probe_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cp = control_plane
    tmp = tmp_path_factory.mktemp("solo")
    limits = {
        "PODINIT_RECONCILE_SINGLE_POD_WORKLOADS": "true",
        "PODINIT_RECONCILE_NAMESPACE_EVICTIONS_PER_MINUTE": "1",
    }
    with reconciling_server(cp, tmp, probe_namespace, **limits) as podinit:
        namespace = slipped(cp, podinit, ("solo", 1), ("pair", 2))
        try:

            def evicted() -> int:
                act_as_kubelet(cp, namespace)
                return len(events(cp, namespace, "PodinitReplacing"))

            cp.wait_for("the first eviction", lambda: evicted() == 1, timeout=60)
            started = time.monotonic()
            while time.monotonic() - started < 20:  # one a minute in this namespace
                assert evicted() == 1
                time.sleep(1)
            [first] = events(cp, namespace, "PodinitReplacing")
            assert first["regarding"]["kind"] == "ReplicaSet"
            assert events(cp, namespace, "PodinitNotReplaced") == [], "solo may be replaced"
        finally:
            delete_namespace(cp, namespace)
