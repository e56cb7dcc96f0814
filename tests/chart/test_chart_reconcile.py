"""charts/podinit: the pod watch, the reconciler and fail-closed admission, as rendered (what
each grants, what each refuses to render). They run on the real apiserver in
tests/e2e/test_reconcile.py and on the node in tests/node."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart.conftest import Objects, Render, one, pod_spec, render_error

POD_WATCH = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
EVICTION = {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}


def rules_of(objs: Objects, kind: str, name: str) -> list[dict[str, Any]]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return [rule for o in found for rule in o["rules"]]


def config(objs: Objects) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        one(objs, "ConfigMap", "podinit")["data"]["config.yaml"]
    )
    return loaded


def test_the_pod_watch_is_on_by_default_with_read_rights_on_pods_and_its_own_lease(
    render: Render,
) -> None:
    objs = render()
    assert rules_of(objs, "ClusterRole", "podinit-pod-watch") == [POD_WATCH]
    assert rules_of(objs, "Role", "podinit-leader") == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["podinit-leader"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    assert config(objs)["podWatch"] is True and config(objs)["leaseName"] == "podinit-leader"
    assert "reconcile" not in config(objs)
    env = {e["name"]: e for e in pod_spec(objs)["containers"][0]["env"]}
    assert env["PODINIT_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert not any(o["kind"] == "Namespace" for o in objs)


def test_without_the_pod_watch_no_pod_list_watch_or_lease_right_is_granted(render: Render) -> None:
    objs = render(["podWatch.enabled=false"])
    assert rules_of(objs, "ClusterRole", "podinit-pod-watch") == []
    assert rules_of(objs, "Role", "podinit-leader") == []
    assert "podWatch" not in config(objs)
    listed = [r for o in objs if o["kind"].endswith("Role") for r in o.get("rules", [])]
    assert not any({"list", "watch"} & set(r["verbs"]) and "pods" in r["resources"] for r in listed)


def test_the_reconciler_may_evict_but_never_delete_and_create_pods_only_in_its_probe_namespace(
    render: Render,
) -> None:
    objs = render(["reconcile.enabled=true"])
    granted = rules_of(objs, "ClusterRole", "podinit-pod-watch")
    assert EVICTION in granted
    assert not any("delete" in r["verbs"] for o in objs if "rules" in o for r in o["rules"])
    probe = one(objs, "Namespace", "podinit-probe")
    assert probe["metadata"]["labels"]["podinit.dev/inject"] == "enabled"
    assert probe["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    role = one(objs, "Role", "podinit-probe")
    assert role["metadata"]["namespace"] == "podinit-probe"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
    creates_pods = [
        o["metadata"].get("namespace")
        for o in objs
        if o["kind"] in ("Role", "ClusterRole")
        for r in o["rules"]
        if "pods" in r["resources"] and "create" in r["verbs"]
    ]
    assert creates_pods == ["podinit-probe"]
    settings = config(objs)
    assert settings["reconcile"] is True and settings["reconcileDryRun"] is False
    assert settings["reconcileProbeNamespace"] == "podinit-probe"


def test_a_probe_namespace_made_elsewhere_gets_only_the_role_to_create_pods_in_it(
    render: Render,
) -> None:
    objs = render(
        [
            "reconcile.enabled=true",
            "reconcile.createProbeNamespace=false",
            "reconcile.probeNamespace=platform-probe",
        ]
    )
    assert not any(o["kind"] == "Namespace" for o in objs)
    role = one(objs, "Role", "podinit-probe")
    assert role["metadata"]["namespace"] == "platform-probe"
    assert config(objs)["reconcileProbeNamespace"] == "platform-probe"


def test_the_reconciler_needs_the_pod_watch(helm: str) -> None:
    error = render_error(helm, "reconcile.enabled=true", "podWatch.enabled=false")
    assert "reconcile.enabled needs podWatch.enabled" in error


@pytest.mark.parametrize(
    "probe", ["default", "kube-system", "kube-public"]
)  # default: the release's
def test_a_probe_namespace_the_webhook_never_selects_is_refused(helm: str, probe: str) -> None:
    error = render_error(helm, "reconcile.enabled=true", f"reconcile.probeNamespace={probe}")
    assert f"reconcile.probeNamespace {probe} is never sent to the webhook" in error


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["replicaCount=1"], "needs replicaCount >= 2"),
        (["podDisruptionBudget.enabled=false"], "needs podDisruptionBudget.enabled"),
    ],
)
def test_fail_closed_admission_is_refused_with_one_replica_or_without_a_budget(
    helm: str, sets: list[str], message: str
) -> None:
    assert message in render_error(helm, "webhook.failurePolicy=Fail", *sets)


def test_fail_closed_admission_renders_with_two_replicas_and_a_budget(render: Render) -> None:
    objs = render(["webhook.failurePolicy=Fail"])
    [hook] = one(objs, "MutatingWebhookConfiguration")["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert one(objs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_the_release_namespace_and_kube_system_are_never_selected_whatever_is_excluded(
    render: Render,
) -> None:
    for mode in ("optIn", "clusterWide"):
        objs = render([f"mode={mode}", "webhook.excludedNamespaces[0]=kube-public"])
        [hook] = one(objs, "MutatingWebhookConfiguration")["webhooks"]
        [names] = [
            e["values"]
            for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        ]
        assert {"podinit", "kube-system"} <= set(names)
