"""Wrapped pods where the platform, not the pod, decides the uid (issue 19 D3), on the real node:
OpenShift's restricted-v2 uid ranges (reproduced by e2e.node.uid_range's admission policies),
Pod Security 'restricted', and a ResourceQuota on requests and limits, in both injection modes.

The webhook's own pods are checked first, in a ranged namespace; then the app tests run once per
injection mode (a module-scoped release per mode).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from e2e.node import uid_range, workloads
from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE

FIRST = 1000680000  # the first uid of a range as OpenShift hands them out
WEBHOOK_FIRST = 1000710000
PROMPT = 5.0  # seconds a wrapped app's delete may take (see test_user_journey.py)
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def policies(cluster: Cluster) -> Iterator[None]:
    cp = cluster.cp
    cp.apply(*uid_range.policies())
    probes = [
        _ranged_namespace(cluster, "probe", FIRST, per_container=per_container)
        for per_container in (False, True)
    ]

    def dry_run(pod: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        argv = ("create", "--dry-run=server", "-o", "json", "-f", "-")
        return cp.kubectl(*argv, input=yaml.safe_dump(pod), check=False)

    def in_force() -> bool:
        # policies take effect a moment after they are stored: wait until each refuses a uid
        # outside its range and gives one to a pod that names none
        for probe in probes:
            outside = dry_run(_pod(probe, "probe", cluster, container_uid=65532))
            if outside.returncode == 0 or "must be in the ranges" not in outside.stderr:
                return False
            given = dry_run(_pod(probe, "probe", cluster))
            if given.returncode != 0 or str(FIRST) not in given.stdout:
                return False
        return True

    cp.wait_for("the uid-range policies in force", in_force, timeout=30)
    yield
    for probe in probes:
        cp.kubectl("delete", "namespace", probe, "--wait=false", check=False)
    for name in uid_range.names():
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            cp.kubectl("delete", kind, name, check=False)
        for kind in ("mutatingadmissionpolicybinding", "mutatingadmissionpolicy"):
            cp.kubectl("delete", kind, name, check=False)


def _ranged_namespace(
    cluster: Cluster, prefix: str, first: int, *, per_container: bool = False
) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    metadata = uid_range.namespace_metadata(name, first, per_container=per_container)
    metadata["labels"]["podinit.dev/inject"] = "enabled"
    return _namespace(cluster, metadata)


def _namespace(cluster: Cluster, metadata: dict[str, Any]) -> str:
    """Create the namespace; returns its name once its ServiceAccount exists (until then
    pods are refused)."""
    name: str = metadata["name"]
    cluster.cp.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    cluster.cp.wait_for(
        f"ServiceAccount {name}/default",
        lambda: cluster.cp.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
    )
    return name


def _pod(
    namespace: str,
    name: str,
    cluster: Cluster,
    *,
    container_uid: int | None = None,
    pod_security: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The shell-form app as a Pod Security 'restricted' pod: no uid of its own unless told."""
    pod = workloads.app_pod(name, namespace, cluster, grace=30)
    app = pod["spec"]["containers"][0]
    app["securityContext"] = dict(RESTRICTED)
    if container_uid is not None:
        app["securityContext"]["runAsUser"] = container_uid
    if pod_security is not None:
        pod["spec"]["securityContext"] = pod_security
    return pod


def _create_ready(cluster: Cluster, pod: dict[str, Any]) -> dict[str, Any]:
    """Create the pod and wait for it Ready (as workloads.create_ready), failing with the
    apiserver's answer when it is refused."""
    cp, namespace, name = cluster.cp, pod["metadata"]["namespace"], pod["metadata"]["name"]
    created = cp.kubectl("create", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert created.returncode == 0, created.stderr
    ready = ("wait", "-n", namespace, f"pod/{name}", "--for=condition=Ready", "--timeout=90s")
    cp.kubectl(*ready, timeout=100)
    stored: dict[str, Any] = cp.kubectl_json("get", "-n", namespace, f"pod/{name}")
    return stored


def _uids(pod: dict[str, Any]) -> dict[str, int]:
    """The uid each container's process ran as, as the kubelet reports it (status.user)."""
    statuses = [
        *pod["status"].get("initContainerStatuses", []),
        *pod["status"]["containerStatuses"],
    ]
    return {s["name"]: s["user"]["linux"]["uid"] for s in statuses}


def _exec(cluster: Cluster, namespace: str, name: str, *argv: str) -> str:
    return cluster.cp.kubectl("exec", "-n", namespace, name, "--", *argv).stdout.strip()


def test_the_webhooks_own_pods_run_under_a_uid_range_and_pod_security_restricted(
    cluster: Cluster, policies: None
) -> None:
    """The chart's defaults name no uid: the release namespace's range gives one, and the
    replicas and the `helm test` pod are admitted, Ready and serving."""
    cp = cluster.cp
    metadata = uid_range.namespace_metadata(RELEASE_NAMESPACE, WEBHOOK_FIRST)
    cp.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    try:
        workloads.helm_install(cluster, "--timeout", "90s", values=workloads.chart_values(cluster))
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=webhook"
        pods = cp.kubectl_json("get", "pods", "-n", RELEASE_NAMESPACE, "-l", selector)["items"]
        assert len(pods) == 2
        for pod in pods:
            assert _uids(pod) == {"webhook": WEBHOOK_FIRST}, pod["metadata"]["name"]
        test = cp.helm("test", RELEASE, "-n", RELEASE_NAMESPACE, "--timeout", "90s")
        assert re.search(r"^Phase:\s+Succeeded$", test.stdout, re.M), test.stdout
        # and a wrapped pod elsewhere proves the replicas admit
        labelled = workloads.fresh_namespace(cluster, prefix="admits")
        try:
            pod = workloads.create_ready(cluster, workloads.app_pod("a", labelled, cluster))
            assert workloads.pid1(cluster, labelled, pod["metadata"]["name"])[0] == (
                "/podinit/podinit"
            )
        finally:
            cp.kubectl("delete", "namespace", labelled, "--wait=false", check=False)
    finally:
        # later modules expect a plain release namespace
        labels = [f"{key}-" for key in metadata["labels"]]
        cp.kubectl("label", "namespace", RELEASE_NAMESPACE, *labels, check=False)
        cp.kubectl(
            "annotate", "namespace", RELEASE_NAMESPACE, f"{uid_range.RANGE_ANNOTATION}-",
            check=False,
        )  # fmt: skip


@pytest.fixture(scope="module", params=["copy", "imageVolume"])
def mode(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    mode: str = request.param
    workloads.helm_install(cluster, values=workloads.chart_values(cluster, injectionMode=mode))
    yield mode
    if mode == "imageVolume":  # the last one
        cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


def _assert_injected(pod: dict[str, Any], mode: str, *, copy_uid: int | None = None) -> None:
    """Wrapped in `mode`; the copy container's uid is `copy_uid`: podinit names none, only a
    platform that gives every container one does."""
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "podinit")
    if mode == "copy":
        copy = pod["spec"]["initContainers"][0]
        assert copy["name"] == "podinit-install"
        assert copy["securityContext"].get("runAsUser") == copy_uid, copy["securityContext"]
        assert "emptyDir" in volume
    else:
        assert "image" in volume and not pod["spec"].get("initContainers")


def test_a_wrapped_pod_runs_under_the_uid_its_namespaces_range_assigns(
    cluster: Cluster, policies: None, mode: str
) -> None:
    namespace = _ranged_namespace(cluster, "range", FIRST)
    try:
        pod = _create_ready(cluster, _pod(namespace, "app", cluster))
        _assert_injected(pod, mode)
        assert pod["spec"]["securityContext"]["runAsUser"] == FIRST  # set by the policy
        expected = {"app": FIRST} | ({"podinit-install": FIRST} if mode == "copy" else {})
        assert _uids(pod) == expected
        assert _exec(cluster, namespace, "app", "id", "-u") == str(FIRST)
        assert workloads.pid1(cluster, namespace, "app")[:2] == ["/podinit/podinit", "--"]
        assert workloads.timed_delete(cluster, namespace, "app") < PROMPT

        # the rule itself: a container asking for a uid outside the range is refused
        outside = _pod(namespace, "outside", cluster, container_uid=65532)
        with pytest.raises(subprocess.CalledProcessError) as refused:
            cluster.cp.apply(outside)
        assert (
            f"runAsUser: Invalid value: 65532: must be in the ranges: [{FIRST}, {FIRST + 9999}]"
            in refused.value.stderr
        )
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_wrapped_pod_runs_where_the_platform_gives_each_container_its_uid(
    cluster: Cluster, policies: None, mode: str
) -> None:
    """The SCC's other way: a uid on every container, none on the pod. The copy container
    arrives after the platform's first pass; it gets its uid when the platform's policy runs
    again, and a container left without one would be refused."""
    namespace = _ranged_namespace(cluster, "per-container", FIRST, per_container=True)
    try:
        pod = _create_ready(cluster, _pod(namespace, "app", cluster))
        _assert_injected(pod, mode, copy_uid=FIRST)
        assert "runAsUser" not in (pod["spec"].get("securityContext") or {})
        given = {
            c["name"]: c["securityContext"].get("runAsUser")
            for c in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]
        }
        expected = {"app": FIRST} | ({"podinit-install": FIRST} if mode == "copy" else {})
        assert given == expected
        assert _uids(pod) == expected
        assert workloads.pid1(cluster, namespace, "app")[:2] == ["/podinit/podinit", "--"]
        assert workloads.timed_delete(cluster, namespace, "app") < PROMPT
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_restricted_pod_runs_wrapped_when_its_app_runs_as_another_uid_than_the_copy(
    cluster: Cluster, mode: str
) -> None:
    """Pod Security 'restricted' enforced; the pod's uid 1000 (the copy container's) and the
    app's own 2000: the binary the copy wrote is executable by any uid, without an fsGroup."""
    labels = {
        "podinit.dev/inject": "enabled",
        "pod-security.kubernetes.io/enforce": "restricted",
    }
    namespace = _namespace(
        cluster, {"name": f"restricted-{uuid.uuid4().hex[:6]}", "labels": labels}
    )
    try:
        spec = _pod(namespace, "app", cluster, container_uid=2000, pod_security={"runAsUser": 1000})
        pod = _create_ready(cluster, spec)
        _assert_injected(pod, mode)
        expected = {"app": 2000} | ({"podinit-install": 1000} if mode == "copy" else {})
        assert _uids(pod) == expected
        owner, permissions = _exec(
            cluster, namespace, "app", "stat", "-c", "%u %a", "/podinit/podinit"
        ).split()
        # copy mode: written by uid 1000; image volume: the image's file, root's
        assert (owner, permissions) == ("1000" if mode == "copy" else "0", "755")
        assert workloads.pid1(cluster, namespace, "app")[0] == "/podinit/podinit"
        assert workloads.timed_delete(cluster, namespace, "app") < PROMPT
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


RESOURCES = {
    "requests": {"cpu": "100m", "memory": "64Mi"},
    "limits": {"cpu": "200m", "memory": "128Mi"},
}
CHARGED = {
    "requests.cpu": "100m",
    "requests.memory": "64Mi",
    "limits.cpu": "200m",
    "limits.memory": "128Mi",
    "pods": "1",
}


def test_a_resource_quota_namespace_admits_a_wrapped_pod_and_charges_only_the_app(
    cluster: Cluster, mode: str
) -> None:
    """A quota on requests and limits refuses any container that names neither; the copy
    container mirrors the app's, so the pod is admitted and charged what the app asks."""
    namespace = workloads.fresh_namespace(cluster, prefix="quota")
    try:
        hard = {"requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2",
                "limits.memory": "2Gi", "pods": "5"}  # fmt: skip
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": namespace},
            "spec": {"hard": hard},
        }
        cluster.cp.apply(quota)
        cluster.cp.wait_for(
            "the quota's first status",
            lambda: (
                cluster.cp.kubectl_json("get", "resourcequota", "compute", "-n", namespace)
                .get("status", {})
                .get("hard")
            ),
        )
        pod = workloads.app_pod("app", namespace, cluster)
        pod["spec"]["containers"][0]["resources"] = RESOURCES
        pod = _create_ready(cluster, pod)
        _assert_injected(pod, mode)

        def charged() -> dict[str, str] | None:
            used = cluster.cp.kubectl_json("get", "resourcequota", "compute", "-n", namespace)
            found: dict[str, str] = used["status"].get("used", {})
            return found if found == CHARGED else None

        cluster.cp.wait_for(f"the quota to charge {CHARGED}", charged, timeout=30)
        assert workloads.pid1(cluster, namespace, "app")[0] == "/podinit/podinit"
        assert workloads.timed_delete(cluster, namespace, "app") < PROMPT
    finally:
        cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
