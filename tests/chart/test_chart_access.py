"""charts/podinit: what the release may do and who may reach it (RBAC, NetworkPolicy, client
certificates), monitoring, `helm test` and the notes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from scripts.chart import generate
from tests.chart.conftest import MODES, Objects, Render, kinds, one, pod_spec

ROOT = generate.ROOT
CHART = generate.CHART
# Kinds defined by CRDs (cert-manager, prometheus-operator): no schema in kubernetes-validate.
CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}
# The pod watch's rights (a ClusterRole and the leader's Role of their own) are checked in
# test_chart_reconcile.py; these tests look at the admission server's alone.
NO_POD_WATCH = "podWatch.enabled=false"
ALWAYS_EXCLUDED = ["kube-system", "kube-public", "kube-node-lease"]


# --------------------------------------------------------------------------- RBAC


def rules(objs: Objects, kind: str) -> list[dict[str, Any]]:
    return [rule for o in objs if o["kind"] == kind for rule in o["rules"]]


SELECTION = [
    {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations"],
        "resourceNames": ["podinit"],
        "verbs": ["get"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
    # auto mode asks the nodes; registryDenyClusterNetworks their Pod ranges and the Service ranges
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["servicecidrs"], "verbs": ["list"]},
]
EVENT_OWNERS = [
    {"apiGroups": [""], "resources": ["pods", "replicationcontrollers"], "verbs": ["get"]},
    {
        "apiGroups": ["apps"],
        "resources": ["replicasets", "statefulsets", "daemonsets"],
        "verbs": ["get"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]},
]


def test_self_managed_certificates_may_change_only_their_own_secret_and_configuration(
    render: Render,
) -> None:
    objs = render([NO_POD_WATCH, "config.pullSecretLookups=false", "config.events=false"])
    [get_update, create] = rules(objs, "Role")
    assert get_update == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["podinit-tls"],
        "verbs": ["get", "update"],
    }
    # create cannot be limited by resourceNames: the only unnamed right, and namespaced
    assert create == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    [cabundle, *selection] = rules(objs, "ClusterRole")
    assert selection == SELECTION
    assert cabundle == {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations"],
        "resourceNames": [one(objs, "MutatingWebhookConfiguration")["metadata"]["name"]],
        "verbs": ["get", "patch"],
    }
    server_account = pod_spec(objs)["serviceAccountName"]
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": server_account, "namespace": "podinit"}
        ]


def test_secrets_and_service_accounts_are_readable_only_with_pull_secret_lookups(
    render: Render,
) -> None:
    on = rules(
        render([NO_POD_WATCH, "certificates.mode=certManager", "config.events=false"]),
        "ClusterRole",
    )
    assert on == [
        *SELECTION,
        {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": ["get"]},
    ]
    off = render(
        [
            NO_POD_WATCH,
            "certificates.mode=certManager",
            "config.pullSecretLookups=false",
            "config.events=false",
        ]
    )
    assert rules(off, "ClusterRole") == SELECTION
    assert kinds(off).isdisjoint({"Role", "RoleBinding"})


def test_events_may_only_be_created_and_patched_and_only_with_events_on(render: Render) -> None:
    options = [NO_POD_WATCH, "certificates.mode=certManager", "config.pullSecretLookups=false"]
    objs = render(options)
    assert rules(objs, "ClusterRole") == [
        *SELECTION,
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        *EVENT_OWNERS,
    ]
    for binding in [o for o in objs if o["kind"] == "ClusterRoleBinding"]:
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": pod_spec(objs)["serviceAccountName"],
                "namespace": "podinit",
            }
        ]
    off = render([*options, "config.events=false"])
    assert rules(off, "ClusterRole") == SELECTION


def o_name(rule: dict[str, Any], objs: Objects) -> str:
    """The suffix of the name of the Role or ClusterRole that holds `rule`."""
    [name] = [
        o["metadata"]["name"] for o in objs if o["kind"].endswith("Role") and rule in o["rules"]
    ]
    return str(name).removeprefix("podinit-")


def test_no_rule_grants_more_than_get_create_update_or_patch(render: Render) -> None:
    for mode in MODES.values():
        for kind in ("Role", "ClusterRole"):
            for rule in rules(render(mode), kind):
                if rule["resources"] in (["namespaces"], ["nodes"], ["servicecidrs"]):
                    assert rule["verbs"] == ["list"]
                    continue
                if rule["resources"] == ["pods"] and o_name(rule, render(mode)) == "pod-watch":
                    assert rule["verbs"] == ["get", "list", "watch"]  # podWatch
                    continue
                assert set(rule["verbs"]) <= {"get", "create", "update", "patch"}
                assert "*" not in rule["resources"] + rule["apiGroups"]


def test_service_cidrs_are_listed_only_while_lookups_deny_the_clusters_ranges(
    render: Render,
) -> None:
    def lists_service_cidrs(*sets: str) -> bool:
        return any(r["resources"] == ["servicecidrs"] for r in rules(render(sets), "ClusterRole"))

    assert lists_service_cidrs()
    assert lists_service_cidrs("config.registryDenyClusterNetworks=true")
    assert not lists_service_cidrs("config.registryDenyClusterNetworks=false")


# --------------------------------------------------------------------------- the rest


def test_the_service_monitor_is_optional_and_scrapes_the_metrics_port(render: Render) -> None:
    assert "ServiceMonitor" not in kinds(render())
    objs = render(MODES["everything-on"])
    monitor = one(objs, "ServiceMonitor")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["path"] == "/metrics" and endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == "podinit-tls"


def test_the_network_policy_is_on_by_default_and_opens_only_the_webhook_and_metrics_ports(
    render: Render,
) -> None:
    objs = render()
    policy = one(objs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "https", "protocol": "TCP"}]},
        {"ports": [{"port": "metrics", "protocol": "TCP"}]},
    ]
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == (one(objs, "Deployment")["spec"]["selector"]["matchLabels"])
    )
    container = pod_spec(objs)["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "https": 8443,
        "metrics": 9443,
    }
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"  # no client certificate there
    config = yaml.safe_load(one(objs, "ConfigMap")["data"]["config.yaml"])
    assert config["metricsPort"] == 9443


def test_the_network_policy_admits_only_the_api_server_to_the_webhook_port_once_named(
    render: Render,
) -> None:
    policy = one(
        render(
            [
                "networkPolicy.apiServer[0].ipBlock.cidr=172.16.0.0/28",
                "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
            ]
        ),
        "NetworkPolicy",
    )
    assert policy["spec"]["ingress"] == [
        {
            "ports": [{"port": "https", "protocol": "TCP"}],
            "from": [{"ipBlock": {"cidr": "172.16.0.0/28"}}],
        },
        {
            "ports": [{"port": "metrics", "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}],
        },
    ]
    legacy = one(render(["networkPolicy.ingressFrom[0].ipBlock.cidr=10.0.0.1/32"]), "NetworkPolicy")
    assert legacy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert "NetworkPolicy" not in kinds(render(["networkPolicy.enabled=false"]))


def test_a_client_ca_is_mounted_and_named_in_the_config(render: Render) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    objs = render(["server.clientCA=" + pem])
    [main, client_ca] = [o for o in objs if o["kind"] == "ConfigMap"]
    assert client_ca["data"]["ca.crt"].strip() == pem.replace("\\n", "\n")
    config = yaml.safe_load(main["data"]["config.yaml"])
    assert config["clientCaFile"] == "/etc/podinit/client-ca/ca.crt"
    mounts = pod_spec(objs)["containers"][0]["volumeMounts"]
    assert {"name": "client-ca", "mountPath": "/etc/podinit/client-ca", "readOnly": True} in mounts
    assert "clientCaFile" not in yaml.safe_load(one(render(), "ConfigMap")["data"]["config.yaml"])


def test_helm_test_pod_checks_readyz_through_the_service(render: Render) -> None:
    objs = render()
    pod = one(objs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    service = one(objs, "Service")
    assert f"https://{service['metadata']['name']}.podinit.svc:9443/readyz" in script
    compile(script, "helm-test", "exec")
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def render_notes(helm: str, tmp_path: Path, *sets: str) -> str:
    """NOTES.txt as `helm install` prints it (helm template leaves it out)."""
    chart = tmp_path / "podinit"
    shutil.copytree(CHART, chart)
    (chart / "NOTES.src").write_text((chart / "templates" / "NOTES.txt").read_text())
    (chart / "templates" / "notes-as-object.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ tpl (.Files.Get "NOTES.src") . | toJson }}}\n'
    )
    objs = generate.helm_template(helm, sets, chart=chart)
    return str(one(objs, "ConfigMap", "notes")["data"]["notes"])


def test_notes_say_how_to_opt_a_namespace_in_and_check_a_pod(helm: str, tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path / "opt-in")
    assert "kubectl label namespace NAMESPACE podinit.dev/inject=enabled" in notes
    assert "podinit\\.dev/status" in notes
    assert "helm test podinit" in notes
    notes = render_notes(helm, tmp_path / "cluster-wide", "mode=clusterWide")
    assert "kubectl label namespace NAMESPACE podinit.dev/inject=disabled" in notes
    assert "kube-system, kube-public, kube-node-lease, podinit" in notes
