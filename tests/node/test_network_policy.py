"""The chart's NetworkPolicy on the real node, enforced by kube-router's firewall
(e2e.node.netpol, started for this module only): a pod in another namespace reaches the
webhook port (/mutate) neither through the Service nor at a webhook pod's address, while a
pod the policy admits (``networkPolicy.apiServer`` selects its namespace) gets an answer from
/mutate at both, and the API server still has pods wrapped. With the policy off the same
outsider gets its answer: the denial is the policy's, not a broken network.

What this node cannot show: kube-router admits everything whose source is one of the node's
own addresses, and the API server runs on the node here, so it reaches the webhook whatever
the policy says. That a policy naming only the API server keeps every pod out is what the
outsider shows; that the API server is let in is true here for any policy (on a real cluster
it takes the `networkPolicy.apiServer` of its platform, charts/podinit/README.md).

The probes are the webhook image's Python (busybox's wget crashes on this machine), posting an
AdmissionReview to /mutate without checking the certificate: who answers matters here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.node import netpol, workloads
from e2e.node.cluster import Cluster
from e2e.node.netpol import PolicyEnforcer
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE
from e2e.tools import ToolsMissing, find_kube_router
from tests.unavailable import found, require_tool

STATUS = "podinit.dev/status"
WEBHOOK_PORT = 8443  # the chart's port (containerPort "https"); the Service's is 443
SYNC = 60  # seconds for kube-router to apply a changed policy (it syncs on every change)

# Run in a probe pod: POST an AdmissionReview to a /mutate URL (GET anything else), print
# "answered <HTTP status>" or "unreached <error>".
PROBE = r"""
import json, ssl, sys, urllib.error, urllib.request
url, namespace = sys.argv[1], sys.argv[2]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace},
       "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1",
                                "command": ["/app"]}]}}
review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
          "request": {"uid": "00000000-0000-0000-0000-000000000001",
                      "kind": {"group": "", "version": "v1", "kind": "Pod"},
                      "resource": {"group": "", "version": "v1", "resource": "pods"},
                      "namespace": namespace, "operation": "CREATE", "dryRun": True,
                      "userInfo": {"username": "probe"}, "object": pod}}
data = json.dumps(review).encode() if url.endswith("/mutate") else None
request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, context=context, timeout=5) as answer:
        print("answered", answer.status)
except urllib.error.HTTPError as e:
    print("answered", e.code)
except OSError as e:
    print("unreached", e)
"""


@dataclass(frozen=True)
class Prober:
    namespace: str
    name: str = "probe"


@dataclass(frozen=True)
class Targets:
    mutate: list[str]  # /mutate at the Service and at each webhook pod's address
    metrics: str  # /readyz at the Service's metrics port


@pytest.fixture(scope="module")
def enforcer(cluster: Cluster) -> Iterator[PolicyEnforcer]:
    require_tool("ipset", "ipset")
    binary = found(find_kube_router, ToolsMissing)
    with netpol.enforcing(cluster, binary) as running:
        yield running
    # stopped and its rules gone: the node's other tests run without policies, as before
    assert netpol.leftovers() == []


@pytest.fixture(scope="module")
def probers(cluster: Cluster, enforcer: PolicyEnforcer) -> Iterator[tuple[Prober, Prober]]:
    """A pod in a namespace the policy does not name (the outsider) and one in the namespace
    it admits; neither namespace is selected for injection."""
    namespaces = [
        workloads.fresh_namespace(cluster, prefix=prefix, labelled=False)
        for prefix in ("outsider", "admitted")
    ]
    try:
        for namespace in namespaces:
            workloads.create_ready(cluster, probe_pod(cluster, namespace))
        outsider, admitted = (Prober(namespace) for namespace in namespaces)
        yield outsider, admitted
    finally:
        cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)
        for namespace in namespaces:
            cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def probe_pod(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """The webhook image, idle: its Python makes the requests."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "probe",
                    "image": cluster.images["webhook"].reference,
                    "command": ["python", "-c", "import time\nwhile True: time.sleep(3600)"],
                }
            ],
        },
    }


def install(cluster: Cluster, admitted: Prober, *, policy: bool) -> Targets:
    """The chart with its NetworkPolicy on (the webhook port admitting ``admitted``'s
    namespace alone, as `networkPolicy.apiServer` would name the API server's) or off."""
    values = workloads.chart_values(cluster)
    selector = {"kubernetes.io/metadata.name": admitted.namespace}
    values["networkPolicy"] = {
        "enabled": policy,
        "apiServer": [{"namespaceSelector": {"matchLabels": selector}}],
    }
    workloads.helm_install(cluster, values=values)
    cp = cluster.cp
    service = cp.kubectl_json("get", "-n", RELEASE_NAMESPACE, "service", RELEASE)
    address = service["spec"]["clusterIP"]
    deployment = cp.kubectl_json("get", "-n", RELEASE_NAMESPACE, "deployment", RELEASE)
    labels = deployment["spec"]["selector"]["matchLabels"]
    selection = ",".join(f"{k}={v}" for k, v in labels.items())
    pods = cp.kubectl_json("get", "pods", "-n", RELEASE_NAMESPACE, "-l", selection)["items"]
    assert pods, "no webhook pods"
    return Targets(
        mutate=[f"https://{address}:443/mutate"]
        + [f"https://{p['status']['podIP']}:{WEBHOOK_PORT}/mutate" for p in pods],
        metrics=f"https://{address}:9443/readyz",
    )


def answer(cluster: Cluster, prober: Prober, url: str) -> str:
    """The probe's line: "answered <status>" or "unreached <error>"."""
    argv = ["exec", "-n", prober.namespace, prober.name, "--"]
    result = cluster.cp.kubectl(*argv, "python", "-c", PROBE, url, prober.namespace, timeout=30)
    return result.stdout.strip()


def answers(cluster: Cluster, prober: Prober, urls: list[str]) -> dict[str, str]:
    return {url: answer(cluster, prober, url) for url in urls}


def reached(line: str) -> bool:
    return line.startswith("answered ")


def test_a_pod_in_another_namespace_cannot_reach_mutate_while_the_pods_the_policy_admits_can(
    cluster: Cluster, probers: tuple[Prober, Prober]
) -> None:
    outsider, admitted = probers
    targets = install(cluster, admitted, policy=True)
    # kube-router applies the policy moments after it is created: then it holds everywhere
    cluster.cp.wait_for(
        "the outsider kept from every webhook address",
        lambda: not any(map(reached, answers(cluster, outsider, targets.mutate).values())),
        SYNC,
    )
    for _ in range(3):  # the Service picks a pod at random: more than one try
        kept_out = answers(cluster, outsider, targets.mutate)
        assert not any(map(reached, kept_out.values())), kept_out
    let_in = answers(cluster, admitted, targets.mutate)
    assert all(map(reached, let_in.values())), let_in
    # only the webhook port is closed: metricsPort is open to any source (metricsFrom empty)
    assert reached(answer(cluster, outsider, targets.metrics))
    # and the API server, on the node, still calls the webhook for every opted-in pod
    labelled = workloads.fresh_namespace(cluster, prefix="opted")
    try:
        pod = workloads.app_pod("app", labelled, cluster)
        cluster.cp.apply(pod)
        stored = cluster.cp.kubectl_json("get", "-n", labelled, "pod/app")
        status = json.loads(stored["metadata"].get("annotations", {}).get(STATUS, "{}"))
        assert status.get("containers", {}).get("app") == "injected", stored["metadata"]
    finally:
        cluster.cp.kubectl("delete", "namespace", labelled, "--wait=false", check=False)


def test_without_the_network_policy_the_same_outsider_reaches_mutate(
    cluster: Cluster, probers: tuple[Prober, Prober]
) -> None:
    outsider, admitted = probers
    targets = install(cluster, admitted, policy=False)
    policies = cluster.cp.kubectl_json("get", "networkpolicies", "-n", RELEASE_NAMESPACE)
    assert policies["items"] == []
    # kube-router drops the pod's chains moments after the policy goes
    cluster.cp.wait_for(
        "the outsider answered at every webhook address",
        lambda: all(map(reached, answers(cluster, outsider, targets.mutate).values())),
        SYNC,
    )
