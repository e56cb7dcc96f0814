"""The chart against a real API server (the e2e control plane: etcd, kube-apiserver,
kube-controller-manager on loopback, no kubelet).

The API server checks what the schemas cannot (the matchConditions' CEL, cross-field rules),
and decides which pods it sends to the webhook: the chart's selectors and conditions are
proved by pointing the chart's own webhook configuration (`webhook.url`) at a recording
webhook and creating pods.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.controlplane import ControlPlane
from e2e.processes import Process, StartupError, free_port
from e2e.testwebhook import TestWebhook
from e2e.tools import ToolsMissing, find_tools
from scripts.chart import generate
from tests.chart.conftest import MODES, Render
from tests.unavailable import unavailable

CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}


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


@pytest.mark.parametrize("major", [3, 4])
def test_helm_installs_upgrades_and_uninstalls_the_chart(cluster: ControlPlane, major: int) -> None:
    release, namespace = name("podinit"), name("podinit")
    chart = str(generate.CHART)
    # no --wait: neither Helm waits by default (Helm 4 calls --wait=false deprecated)
    installed = cluster.helm(
        "install", release, chart, "-n", namespace, "--create-namespace", major=major
    )
    assert "podinit.dev/inject=enabled" in installed.stdout  # the NOTES
    configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
    [hook] = configuration["webhooks"]
    assert hook["clientConfig"]["service"]["namespace"] == namespace
    # The server writes the caBundle later; an upgrade must not take it away again.
    write_ca_bundle(cluster, release, "Q0EK")
    cluster.helm(
        "upgrade", release, chart, "-n", namespace, "--set", "mode=clusterWide", major=major
    )
    configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
    [hook] = configuration["webhooks"]
    assert hook["clientConfig"].get("caBundle") == "Q0EK"
    assert hook["namespaceSelector"]["matchExpressions"][0]["operator"] == "NotIn"
    cluster.helm("uninstall", release, "-n", namespace, major=major)
    gone = cluster.kubectl("get", "mutatingwebhookconfiguration", release, check=False)
    assert gone.returncode != 0


def write_ca_bundle(cluster: ControlPlane, release: str, bundle: str) -> None:
    """What the server does in selfManaged mode: a patch of the caBundle alone (its own
    field manager, not Helm's)."""
    patch = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": bundle}]
    cluster.kubectl(
        "patch", "mutatingwebhookconfiguration", release, "--type=json", "-p", json.dumps(patch)
    )


def helm_operations(cluster: ControlPlane, kind: str, name: str, *namespace: str) -> set[str]:
    """How Helm wrote the object: the operations of its managedFields entries (Update for a
    client-side patch, Apply for server-side apply)."""
    stored = cluster.kubectl_json("get", kind, name, *namespace, "--show-managed-fields")
    fields = stored["metadata"]["managedFields"]
    return {str(m["operation"]) for m in fields if m["manager"] == "helm"}


def test_helm_4_applies_server_side_and_taking_over_a_ca_bundle_the_server_wrote_needs_force(
    cluster: ControlPlane,
) -> None:
    """Helm 4 installs with server-side apply: a field another manager wrote (the server's
    caBundle) is a conflict when the chart starts setting it (webhook.caBundle, or
    certificates.mode=existingSecret), where Helm 3 overwrites it."""
    chart = str(generate.CHART)
    ca_bundle = ["--set", "webhook.caBundle=WFlaCg=="]
    for major in (3, 4):
        release, namespace = name("podinit"), name("podinit")
        cluster.helm("install", release, chart, "-n", namespace, "--create-namespace", major=major)
        kinds = ("deployment", release, "-n", namespace), ("mutatingwebhookconfiguration", release)
        for kind in kinds:
            operation = "Apply" if major == 4 else "Update"
            assert helm_operations(cluster, *kind) == {operation}, (major, kind)
        write_ca_bundle(cluster, release, "Q0EK")
        upgrade = ["upgrade", release, chart, "-n", namespace, *ca_bundle]
        if major == 4:
            refused = cluster.helm(*upgrade, major=4, check=False)
            assert refused.returncode != 0
            assert "conflict" in refused.stderr and ".clientConfig.caBundle" in refused.stderr
            upgrade.append("--force-conflicts")
        cluster.helm(*upgrade, major=major)
        configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
        assert configuration["webhooks"][0]["clientConfig"]["caBundle"] == "WFlaCg==", major
        cluster.helm("uninstall", release, "-n", namespace, major=major)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_a_release_helm_3_installed_is_upgraded_and_uninstalled_by_helm_4(
    cluster: ControlPlane,
) -> None:
    """Moving to Helm 4: it keeps a Helm 3 release's client-side apply (--server-side=auto)
    until told otherwise; either way the server's caBundle stays."""
    release, namespace = name("podinit"), name("podinit")
    chart = str(generate.CHART)
    cluster.helm("install", release, chart, "-n", namespace, "--create-namespace", major=3)
    write_ca_bundle(cluster, release, "Q0EK")
    for step in (["--set", "mode=clusterWide"], ["--server-side=true"]):
        cluster.helm("upgrade", release, chart, "-n", namespace, "--reuse-values", *step, major=4)
        metadata = cluster.helm("get", "metadata", release, "-n", namespace, major=4).stdout
        method = "server-side" if step == ["--server-side=true"] else "client-side"
        assert f"APPLY_METHOD: {method} apply" in metadata, metadata
        configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
        [hook] = configuration["webhooks"]
        assert hook["clientConfig"].get("caBundle") == "Q0EK", step
        assert hook["namespaceSelector"]["matchExpressions"][0]["operator"] == "NotIn", step
    assert "Apply" in helm_operations(cluster, "mutatingwebhookconfiguration", release)
    cluster.helm("uninstall", release, "-n", namespace, major=4)
    for kind in ("mutatingwebhookconfiguration", "clusterrole"):
        left = cluster.kubectl("get", kind, "-l", f"app.kubernetes.io/instance={release}")
        assert "No resources found" in left.stderr, (kind, left.stdout)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def pod(namespace: str, pod_name: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    spec.update(extra.pop("spec", {}))
    metadata = {"name": pod_name, "namespace": namespace, **extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# pod name: (its namespace's role, extra metadata/spec, sent in optIn, sent in clusterWide)
SELECTION_CASES: dict[str, tuple[str, dict[str, Any], bool, bool]] = {
    "in-enabled": ("enabled", {}, True, True),
    "in-plain": ("plain", {}, False, True),
    "in-disabled": ("disabled", {}, False, False),
    "in-kube-system": ("kube-system", {}, False, False),
    "in-release-namespace": ("release", {}, False, False),
    "labelled-disabled": ("enabled", {"labels": {"podinit.dev/inject": "disabled"}}, False, False),
    "annotated-false": ("enabled", {"annotations": {"podinit.dev/inject": "false"}}, False, False),
    "annotated-no": ("enabled", {"annotations": {"podinit.dev/inject": " No"}}, False, False),
    "annotated-true": ("enabled", {"annotations": {"podinit.dev/inject": "true"}}, True, True),
    "other-annotation": ("enabled", {"annotations": {"team": "a"}}, True, True),
    "windows": ("enabled", {"spec": {"os": {"name": "windows"}}}, False, False),
    "linux": ("enabled", {"spec": {"os": {"name": "linux"}}}, True, True),
}


def labelled_namespaces(cluster: ControlPlane) -> dict[str, str]:
    """A fresh namespace per role: unlabelled, opted in, opted out."""
    namespaces = {role: name(role) for role in ("plain", "enabled", "disabled")}
    for ns in namespaces.values():
        cluster.kubectl("create", "namespace", ns)
    cluster.kubectl("label", "namespace", namespaces["enabled"], "podinit.dev/inject=enabled")
    cluster.kubectl("label", "namespace", namespaces["disabled"], "podinit.dev/inject=disabled")
    return namespaces


@pytest.mark.parametrize("mode", ["optIn", "clusterWide"])
def test_the_api_server_sends_the_webhook_exactly_the_pods_the_chart_selects(
    cluster: ControlPlane, mode: str
) -> None:
    release, namespace = name("selects"), name("podinit")
    namespaces = {
        **labelled_namespaces(cluster),
        "kube-system": "kube-system",
        "release": namespace,
    }
    with TestWebhook(cluster.ca, lambda request: None, name=release) as hook:
        cluster.helm(
            "install", release, str(generate.CHART), "-n", namespace, "--create-namespace",
            "--set", f"mode={mode}", "--set", "server.enabled=false",
            "--set", f"webhook.url={hook.url}", "--set", f"webhook.caBundle={cluster.ca.ca_bundle}",
            "--set", "webhook.failurePolicy=Fail",
        )  # fmt: skip
        try:
            for pod_name, (role, extra, _, _) in SELECTION_CASES.items():
                manifest = pod(namespaces[role], pod_name, **extra)
                cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
        finally:
            cluster.helm("uninstall", release, "-n", namespace, check=False)
        sent = {(r["namespace"], r["name"]) for r in hook.requests()}

    for pod_name, (role, _, in_opt_in, in_cluster_wide) in SELECTION_CASES.items():
        expected = in_opt_in if mode == "optIn" else in_cluster_wide
        assert ((namespaces[role], pod_name) in sent) == expected, f"{pod_name} in {mode} mode"
    for role in ("plain", "enabled", "disabled", "release"):
        cluster.kubectl("delete", "namespace", namespaces[role], "--wait=false", check=False)
    cluster.kubectl("delete", "pod", "in-kube-system", "-n", "kube-system", "--wait=false")


def can_i(cluster: ControlPlane, kubeconfig: str, *args: str) -> bool:
    result = cluster.kubectl("--kubeconfig", kubeconfig, "auth", "can-i", *args, check=False)
    return result.stdout.strip() == "yes"


def test_the_server_account_has_exactly_the_rights_its_options_need(
    cluster: ControlPlane,
) -> None:
    for pull_secrets, events in ((True, True), (False, False)):
        release, namespace = name("podinit-rbac"), name("podinit")
        cluster.helm(
            "install", release, str(generate.CHART), "-n", namespace, "--create-namespace",
            "--set", f"config.pullSecretLookups={str(pull_secrets).lower()}",
            "--set", f"config.events={str(events).lower()}",
        )  # fmt: skip
        sa = str(cluster.service_account_kubeconfig(namespace, release))
        own = ["-n", namespace]
        assert can_i(cluster, sa, "get", f"secrets/{release}-tls", *own)
        assert can_i(cluster, sa, "update", f"secrets/{release}-tls", *own)
        assert can_i(cluster, sa, "create", "secrets", *own)
        assert not can_i(cluster, sa, "delete", f"secrets/{release}-tls", *own)
        assert not can_i(cluster, sa, "list", "secrets", *own)
        assert not can_i(cluster, sa, "update", "secrets/other", *own)
        assert not can_i(cluster, sa, "create", "secrets", "-n", "default")
        assert can_i(cluster, sa, "patch", f"mutatingwebhookconfigurations/{release}")
        assert not can_i(cluster, sa, "patch", "mutatingwebhookconfigurations/other")
        assert not can_i(cluster, sa, "delete", f"mutatingwebhookconfigurations/{release}")
        for resource in ("secrets/pull", "serviceaccounts/default"):
            assert can_i(cluster, sa, "get", resource, "-n", "default") == pull_secrets, resource
        assert not can_i(cluster, sa, "list", "secrets", "-A")
        assert not can_i(cluster, sa, "create", "pods", *own)
        for verb in ("create", "patch"):  # in any namespace, through events.k8s.io only
            assert can_i(cluster, sa, verb, "events.events.k8s.io", "-n", "default") == events
            assert not can_i(cluster, sa, verb, "events", "-n", "default")  # core v1 events
        for verb in ("get", "list", "update", "delete"):
            assert not can_i(cluster, sa, verb, "events.events.k8s.io", "-n", "default")
        cluster.helm("uninstall", release, "-n", namespace)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_the_server_runs_with_the_charts_config_and_rbac_and_wraps_a_pod(
    cluster: ControlPlane, tmp_path: Path
) -> None:
    """`podinit serve` outside the cluster, as the chart's ServiceAccount, with the config
    file the chart rendered: it creates its certificate Secret, writes the caBundle into the
    chart's webhook configuration, and the API server then has it wrap a pod."""
    release, namespace, app = name("podinit-serve"), name("podinit"), name("app")
    port = free_port()
    cluster.helm(
        "install", release, str(generate.CHART), "-n", namespace, "--create-namespace",
        "--set", f"webhook.url=https://127.0.0.1:{port}/mutate",
        "--set", f"config.port={port}",
        "--set", "config.certificateHosts[0]=127.0.0.1",
        "--set", "webhook.failurePolicy=Fail",
    )  # fmt: skip
    server = serve_as_the_chart(cluster, tmp_path, release=release, namespace=namespace)
    try:

        def ca_bundle() -> str | None:
            configuration = cluster.kubectl_json("get", "mutatingwebhookconfiguration", release)
            return configuration["webhooks"][0]["clientConfig"].get("caBundle")

        cluster.wait_for("the server to write the caBundle", ca_bundle, timeout=60)
        secret = cluster.kubectl_json("get", "secret", f"{release}-tls", "-n", namespace)
        assert {"tls.crt", "tls.key", "ca.crt"} <= set(secret["data"])

        cluster.kubectl("create", "namespace", app)
        cluster.kubectl("label", "namespace", app, "podinit.dev/inject=enabled")
        assert_a_pod_is_wrapped(cluster, server, app)
        assert_an_unwrapped_pod_gets_a_warning_event(cluster, app, server)
    finally:
        server.stop()
        cluster.helm("uninstall", release, "-n", namespace, check=False)
        for ns in (namespace, app):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def serve_as_the_chart(
    cluster: ControlPlane, tmp_path: Path, *, release: str, namespace: str
) -> Process:
    """`podinit serve` with the config file the chart rendered, as its ServiceAccount."""
    configmap = cluster.kubectl_json("get", "configmap", release, "-n", namespace)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(configmap["data"]["config.yaml"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODINIT_", "KUBERNETES_"))}
    env.update(
        PODINIT_CONFIG_FILE=str(config_file),
        PODINIT_KUBECONFIG=str(cluster.service_account_kubeconfig(namespace, release)),
        # The chart's paths are the pod's (an emptyDir); here, a temporary directory.
        PODINIT_TLS_CERT_FILE=str(tmp_path / "tls.crt"),
        PODINIT_TLS_KEY_FILE=str(tmp_path / "tls.key"),
        PODINIT_HOST="127.0.0.1",
        PODINIT_METRICS_PORT=str(free_port()),  # not the chart's fixed 9443: runs may overlap
    )
    return cluster.spawn(release, [str(Path(sys.executable).parent / "podinit"), "serve"], env=env)


def assert_a_pod_is_wrapped(cluster: ControlPlane, server: Process, app: str) -> None:
    manifest = pod(app, "wrapped")
    manifest["spec"]["containers"][0]["command"] = ["/app", "--serve"]
    created = json.loads(
        cluster.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(manifest)).stdout
    )
    annotations = created["metadata"].get("annotations", {})
    assert "podinit.dev/status" in annotations, server.tail()
    [container] = created["spec"]["containers"]
    assert container["command"] != ["/app", "--serve"], annotations["podinit.dev/status"]
    assert "/app" in container["command"] + container.get("args", [])


def assert_an_unwrapped_pod_gets_a_warning_event(
    cluster: ControlPlane, app: str, server: Process
) -> None:
    """A pod it cannot wrap (nothing listens on port 9): a Warning Event, written with the
    chart's RBAC (events.k8s.io create only; no core events rights)."""
    unwrapped = pod(app, "unwrapped")
    unwrapped["spec"]["containers"][0]["image"] = "127.0.0.1:9/nowhere/app:1"
    cluster.kubectl("create", "-f", "-", input=json.dumps(unwrapped))

    def event() -> dict[str, Any] | None:
        items = cluster.kubectl_json("get", "events.events.k8s.io", "-n", app)["items"]
        return next((e for e in items if e["reason"] == "PodinitNotWrapped"), None)

    try:
        written = cluster.wait_for("the server to write an Event", event, timeout=60)
    except StartupError as error:
        raise AssertionError(f"{error}\n--- podinit serve:\n{server.tail()}") from None
    assert written["regarding"]["name"] == "unwrapped", written
    assert written["note"].startswith('container "app": '), written
