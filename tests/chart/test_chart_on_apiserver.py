"""The chart against a real API server (the e2e control plane: etcd, kube-apiserver,
kube-controller-manager on loopback, no kubelet).

The API server checks what the schemas cannot (the matchConditions' CEL, cross-field rules),
and decides which pods it sends to the webhook: the chart's selectors and conditions are
proved by pointing the chart's own webhook configuration (`webhook.url`) at a recording
webhook and creating pods.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.cluster import ControlPlane, ToolsMissing, find_tools
from e2e.testwebhook import TestWebhook
from scripts.chart import generate
from tests.chart.conftest import MODES, Render, unavailable

CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[ControlPlane]:
    try:
        tools = find_tools()
    except ToolsMissing as error:
        unavailable(str(error))
        raise
    with ControlPlane.running(tools) as cp:
        yield cp


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize("mode", [m for m in MODES if m != "url-only"])
def test_the_api_server_accepts_every_object_of_every_mode(
    cluster: ControlPlane, render: Render, mode: str
) -> None:
    namespace = name("chart")
    cluster.kubectl("create", "namespace", namespace)
    objs = [o for o in render(MODES[mode], namespace=namespace) if o["kind"] not in CRD_KINDS]
    docs = yaml.safe_dump_all(objs)
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=docs, check=False)
    assert result.returncode == 0, result.stderr


def test_helm_installs_upgrades_and_uninstalls_the_chart(cluster: ControlPlane) -> None:
    release, namespace = name("podinit"), name("podinit")
    chart = str(generate.CHART)
    installed = cluster.helm(
        "install", release, chart, "-n", namespace, "--create-namespace", "--wait=false"
    )
    assert "podinit.dev/inject=enabled" in installed.stdout  # the NOTES
    configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
    [hook] = configuration["webhooks"]
    assert hook["clientConfig"]["service"]["namespace"] == namespace
    # The server writes the caBundle later; an upgrade must not take it away again.
    patch = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Q0EK"}]
    cluster.kubectl(
        "patch", "mutatingwebhookconfiguration", release, "--type=json", "-p", json.dumps(patch)
    )
    cluster.helm("upgrade", release, chart, "-n", namespace, "--set", "mode=clusterWide")
    configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
    [hook] = configuration["webhooks"]
    assert hook["clientConfig"].get("caBundle") == "Q0EK"
    assert hook["namespaceSelector"]["matchExpressions"][0]["operator"] == "NotIn"
    cluster.helm("uninstall", release, "-n", namespace)
    gone = cluster.kubectl("get", "mutatingwebhookconfiguration", release, check=False)
    assert gone.returncode != 0


def pod(namespace: str, pod_name: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    spec.update(extra.pop("spec", {}))
    metadata = {"name": pod_name, "namespace": namespace, **extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@pytest.mark.parametrize("mode", ["optIn", "clusterWide"])
def test_the_api_server_sends_the_webhook_exactly_the_pods_the_chart_selects(
    cluster: ControlPlane, mode: str
) -> None:
    release, namespace = name("selects"), name("podinit")
    plain, enabled, disabled = name("plain"), name("enabled"), name("disabled")
    for ns in (plain, enabled, disabled):
        cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("label", "namespace", enabled, "podinit.dev/inject=enabled")
    cluster.kubectl("label", "namespace", disabled, "podinit.dev/inject=disabled")

    with TestWebhook(cluster.ca, lambda request: None, name=release) as hook:
        cluster.helm(
            "install", release, str(generate.CHART), "-n", namespace, "--create-namespace",
            "--set", f"mode={mode}", "--set", "server.enabled=false",
            "--set", f"webhook.url={hook.url}", "--set", f"webhook.caBundle={cluster.ca.ca_bundle}",
            "--set", "webhook.failurePolicy=Fail",
        )  # fmt: skip
        cases = {
            # (namespace, pod name, extra metadata/spec): sent in optIn, in clusterWide
            "in-enabled": ((enabled, {}), True, True),
            "in-plain": ((plain, {}), False, True),
            "in-disabled": ((disabled, {}), False, False),
            "in-kube-system": (("kube-system", {}), False, False),
            "in-release-namespace": ((namespace, {}), False, False),
            "labelled-disabled": (
                (enabled, {"labels": {"podinit.dev/inject": "disabled"}}),
                False,
                False,
            ),
            "annotated-false": (
                (enabled, {"annotations": {"podinit.dev/inject": "false"}}),
                False,
                False,
            ),
            "annotated-no": (
                (enabled, {"annotations": {"podinit.dev/inject": " No"}}),
                False,
                False,
            ),
            "annotated-true": (
                (enabled, {"annotations": {"podinit.dev/inject": "true"}}),
                True,
                True,
            ),
            "other-annotation": ((enabled, {"annotations": {"team": "a"}}), True, True),
            "windows": ((enabled, {"spec": {"os": {"name": "windows"}}}), False, False),
            "linux": ((enabled, {"spec": {"os": {"name": "linux"}}}), True, True),
        }
        try:
            for pod_name, ((ns, extra), _, _) in cases.items():
                cluster.kubectl("create", "-f", "-", input=json.dumps(pod(ns, pod_name, **extra)))
        finally:
            cluster.helm("uninstall", release, "-n", namespace, check=False)
        sent = {(r["namespace"], r["name"]) for r in hook.requests()}

    column = 1 if mode == "optIn" else 2
    for pod_name, case in cases.items():
        ns = case[0][0]
        assert ((ns, pod_name) in sent) == case[column], f"{pod_name} in {mode} mode"
    for ns in (plain, enabled, disabled, namespace):
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    cluster.kubectl("delete", "pod", "in-kube-system", "-n", "kube-system", "--wait=false")
