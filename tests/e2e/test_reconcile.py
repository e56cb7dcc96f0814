"""Pods that slipped through while the apiserver could not reach the webhook are counted and,
with `reconcile`, replaced through the Eviction API, on a real apiserver and controller manager.

The webhook configuration first points at a dead address (every admission fails, and with
failurePolicy Ignore every pod is created unwrapped: the webhook down, a network policy, an
expired certificate all look like this to the apiserver), then at the server. No kubelet runs
here: the test marks pods Running and Ready as a kubelet would (tests/node runs the same with
a real one), which is what Deployments, StatefulSets and PodDisruptionBudgets go by.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    Podinit,
    chart_account,
    container,
    create,
    delete_namespace,
    deployment,
    is_wrapped,
    new_namespace,
    pod,
    running_podinit,
    unique,
)
from tests.server.harness import Webhook, make_certs, run_webhook

DEAD_URL = "https://127.0.0.1:9/mutate"  # nothing listens on the discard port
OPT_IN = {"podinit.dev/inject": "enabled"}
APP = [container("app", command=["sleep", "3600"])]


def server_env(probe: str, release: str, release_namespace: str, name: str) -> dict[str, str]:
    return {
        "PODINIT_POD_WATCH": "true",
        "PODINIT_RECONCILE": "true",
        "PODINIT_RECONCILE_PROBE_NAMESPACE": probe,
        "PODINIT_RECONCILE_INTERVAL_SECONDS": "0.5",
        "PODINIT_RECONCILE_EVICTIONS_PER_MINUTE": "600",
        "PODINIT_RECONCILE_NAMESPACE_EVICTIONS_PER_MINUTE": "600",
        "PODINIT_NAMESPACE": release_namespace,
        "PODINIT_WEBHOOK_CONFIGURATION": release,
        "PODINIT_POD_NAME": name,
        "PODINIT_LEASE_NAME": f"{release}-leader",  # the name the chart's Role grants
    }


@contextmanager
def reconciling_server(
    cp: ControlPlane, tmp: Path, probe: str, **settings: str
) -> Iterator[Podinit]:
    """A reconciling server (`settings`: more PODINIT_* variables) with the chart's
    ServiceAccount and RBAC (reconcile on, the probe namespace made by the test), the chart's
    webhook configuration pointing at a dead address."""
    release, release_namespace = unique("podinit-rec"), unique("podinit-rec-release")
    env = {**server_env(probe, release, release_namespace, "replica-a"), **settings}
    with chart_account(
        cp,
        release,
        release_namespace,
        "reconcile.enabled=true",
        "reconcile.createProbeNamespace=false",
        f"reconcile.probeNamespace={probe}",
    ) as kubeconfig:
        env["PODINIT_KUBECONFIG"] = str(kubeconfig)
        with running_podinit(cp, tmp, env=env, release=release, url=DEAD_URL) as podinit:
            yield podinit


@pytest.fixture(scope="module")
def reconciling(
    control_plane: ControlPlane, probe_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Podinit]:
    with reconciling_server(control_plane, tmp_path_factory.mktemp("rec"), probe_namespace) as p:
        yield p


def metrics(server: Webhook) -> dict[str, float]:
    """The server's samples by `name{labels}` as written."""
    with server.client() as client:
        text = client.get("/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def unwrapped_gauge(podinit: Podinit, namespace: str, state: str = "slipped") -> float:
    key = f'podinit_pods_unwrapped{{namespace="{namespace}",state="{state}"}}'
    return metrics(podinit.server).get(key, 0.0)


def pods(cp: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return cp.kubectl_json("get", "pods", "-n", namespace)["items"]  # type: ignore[no-any-return]


def act_as_kubelet(cp: ControlPlane, namespace: str) -> None:
    """Every pod not yet Running becomes Running and Ready (no kubelet runs here)."""
    for item in pods(cp, namespace):
        if item.get("status", {}).get("phase") == "Running" or item["metadata"].get(
            "deletionTimestamp"
        ):
            continue
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {
            "phase": "Running",
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": now}
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
        }
        cp.kubectl(
            "patch", "pod", item["metadata"]["name"], "-n", namespace,
            "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}),
            check=False,
        )  # fmt: skip


def slipped_namespace(
    cp: ControlPlane, podinit: Podinit, *objects: dict[str, Any], count: int
) -> str:
    """`objects` created in a new opted-in namespace while the webhook configuration points
    at a dead address, until `count` of its pods are Running, Ready and counted slipped."""
    namespace = new_namespace(cp, "rec", **OPT_IN)
    for item in objects:
        item["metadata"]["namespace"] = namespace
        create(cp, item)

    def counted() -> bool:
        act_as_kubelet(cp, namespace)
        return unwrapped_gauge(podinit, namespace) == count

    cp.wait_for(f"{count} slipped pods in the gauge", counted, timeout=90)
    return namespace


def owned_by(item: dict[str, Any], name_prefix: str) -> bool:
    return any(
        ref.get("name", "").startswith(name_prefix)
        for ref in item["metadata"].get("ownerReferences") or []
    )


def events(cp: ControlPlane, namespace: str, reason: str) -> list[dict[str, Any]]:
    listed = cp.kubectl_json("get", "events.events.k8s.io", "-n", namespace)["items"]
    return [e for e in listed if e.get("reason") == reason]


def workloads() -> list[dict[str, Any]]:
    """Without a namespace: slipped_namespace sets it."""
    namespace = ""
    web = deployment(namespace, "web", *APP, replicas=2)
    guarded = deployment(namespace, "guarded", *APP, replicas=2)
    solo = deployment(namespace, "solo", *APP, replicas=1)
    stateful = deployment(namespace, "db", *APP, replicas=2, kind="StatefulSet")
    stateful["spec"]["serviceName"] = "db"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "batch", "namespace": namespace},
        "spec": {"template": {"spec": {"containers": APP, "restartPolicy": "Never"}}},
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guarded", "namespace": namespace},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    return [web, guarded, solo, stateful, job, budget, pod(namespace, "bare", *APP)]


def test_slipped_pods_are_counted_then_replaced_wrapped_one_at_a_time_and_budgets_hold(
    control_plane: ControlPlane, reconciling: Podinit
) -> None:
    cp = control_plane
    namespace = slipped_namespace(cp, reconciling, *workloads(), count=9)
    try:
        _nothing_is_evicted_while_the_webhook_is_dead(cp, reconciling, namespace)
        reconciling.url = None  # the apiserver reaches the server from now on
        reconciling.upgrade("optIn")
        _web_and_db_are_replaced_one_pod_at_a_time(cp, namespace)
        _what_may_not_be_evicted_is_reported_and_left(cp, reconciling, namespace)
    finally:
        delete_namespace(cp, namespace)


def _nothing_is_evicted_while_the_webhook_is_dead(
    cp: ControlPlane, podinit: Podinit, namespace: str
) -> None:
    assert all(not is_wrapped(c) for p in pods(cp, namespace) for c in p["spec"]["containers"])
    # A pass asks the probe once a workload is steady (its controller has seen the pods
    # Ready): the dry-run pod comes back unwrapped while the webhook is dead.
    cp.wait_for(
        "the dry-run probe to fail while the webhook is dead",
        lambda: (
            metrics(podinit.server)['podinit_reconcile_actions_total{action="not-serving"}'] > 0
        ),
        timeout=60,
    )
    assert metrics(podinit.server)['podinit_reconcile_actions_total{action="evicted"}'] == 0


def _web_and_db_are_replaced_one_pod_at_a_time(cp: ControlPlane, namespace: str) -> None:
    fewest_ready_web = 2

    def replaced() -> bool:
        nonlocal fewest_ready_web
        act_as_kubelet(cp, namespace)
        current = [p for p in pods(cp, namespace) if not p["metadata"].get("deletionTimestamp")]
        web = [p for p in current if owned_by(p, "web-")]
        fewest_ready_web = min(fewest_ready_web, sum(_ready(p) for p in web))
        replaced_ones = [p for p in current if owned_by(p, "web-") or owned_by(p, "db")]
        return len(replaced_ones) == 4 and all(_wrapped(p) for p in replaced_ones)

    cp.wait_for("web and db replaced by wrapped pods", replaced, timeout=120)
    assert fewest_ready_web >= 1, "two pods of one workload were replaced at once"
    replacing = events(cp, namespace, "PodinitReplacing")
    assert {e["regarding"]["kind"] for e in replacing} == {"ReplicaSet", "StatefulSet"}


def _what_may_not_be_evicted_is_reported_and_left(
    cp: ControlPlane, podinit: Podinit, namespace: str
) -> None:
    reported: list[str] = []

    def told() -> bool:
        reported[:] = [e["note"] for e in events(cp, namespace, "PodinitNotReplaced")]
        return bool(events(cp, namespace, "PodinitEvictionRefused")) and len(reported) >= 3

    cp.wait_for("the refused eviction and the pods never deleted reported", told, timeout=60)
    assert len(reported) == 3, reported  # bare, the Job's, solo's
    current = {p["metadata"]["name"]: p for p in pods(cp, namespace)}
    assert "bare" in current and not _wrapped(current["bare"])
    guarded = [p for p in current.values() if owned_by(p, "guarded-")]
    assert len(guarded) == 2 and not any(_wrapped(p) for p in guarded), "the budget held"
    batch = [p for p in current.values() if owned_by(p, "batch")]
    assert len(batch) == 1 and not _wrapped(batch[0]), "a Job's pod is never deleted"
    [single] = [p for p in current.values() if owned_by(p, "solo-")]
    assert not _wrapped(single), "the one pod of a workload is not evicted by default"
    assert unwrapped_gauge(podinit, namespace) == 5  # guarded x2, solo, bare, the Job's


def _wrapped(item: dict[str, Any]) -> bool:
    return all(is_wrapped(c) for c in item["spec"]["containers"])


def _ready(item: dict[str, Any]) -> bool:
    conditions = item.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_a_namespace_selected_later_has_its_pods_counted_and_forgotten_when_deselected(
    control_plane: ControlPlane, reconciling: Podinit
) -> None:
    cp = control_plane
    namespace = new_namespace(cp, "rec-late")  # not opted in
    try:
        create(cp, pod(namespace, "early", *APP))
        time.sleep(2)
        assert unwrapped_gauge(reconciling, namespace) == 0, "not selected: not slipped"
        cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
        # the namespace gate reads the selected namespaces every 30 s
        cp.wait_for(
            "the early pod counted", lambda: unwrapped_gauge(reconciling, namespace) == 1, 60
        )
        cp.kubectl("label", "namespace", namespace, "podinit.dev/inject-")
        cp.wait_for(
            "the early pod forgotten", lambda: unwrapped_gauge(reconciling, namespace) == 0, 60
        )
    finally:
        delete_namespace(cp, namespace)


def leader(server: Webhook) -> bool:
    return metrics(server).get("podinit_leader") == 1.0


def test_a_stopped_leader_hands_over_at_once_and_a_killed_one_within_the_lease_duration(
    control_plane: ControlPlane,
    reconciling: Podinit,
    probe_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Runs last: it stops the module's server (SIGTERM, as in a rolling update; a SIGKILL
    would also lose what the server measured of its own coverage), then SIGKILLs a replica
    of its own."""
    cp = control_plane
    release, release_namespace = reconciling.release, reconciling.release_namespace

    def lease() -> dict[str, Any]:
        found = cp.kubectl_json("get", "lease", f"{release}-leader", "-n", release_namespace)
        return found["spec"]  # type: ignore[no-any-return]

    def holder() -> str:
        return str(lease().get("holderIdentity") or "")

    def replica(name: str) -> AbstractContextManager[Webhook]:
        tmp = tmp_path_factory.mktemp(name)
        env = {
            **server_env(probe_namespace, release, release_namespace, name),
            "PODINIT_KUBECONFIG": str(cp.service_account_kubeconfig(release_namespace, release)),
        }
        return run_webhook(make_certs(tmp), tmp, env=env)

    cp.wait_for("replica-a leads", lambda: leader(reconciling.server), timeout=30)
    reconciling.server.process.terminate()
    reconciling.server.process.wait(timeout=30)
    assert holder() == "", "a stopping leader releases its lease"
    assert any(entry.get("msg") == "released the lease" for entry in reconciling.server.logs())
    with replica("replica-b") as b:
        # the Lease has no holder: taken at the first try, not after its duration
        cp.wait_for("replica-b leads", lambda: leader(b), timeout=2 * 2 + 5)
        with replica("replica-c") as c:
            time.sleep(3)
            assert not leader(c)
            b.process.kill()
            # The lease lasts 15 s, as this replica sees it unchanged; it looks every 2 s.
            cp.wait_for("replica-c leads", lambda: leader(c), timeout=15 + 2 * 2 + 10)
            spec = lease()
            assert str(spec["holderIdentity"]).startswith("replica-c_")
            assert spec["leaseTransitions"] >= 2
