"""The control plane itself: real etcd, kube-apiserver and kube-controller-manager."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from e2e.testwebhook import TestWebhook


def _owned_by(obj: dict[str, Any], kind: str, name: str) -> bool:
    return any(
        ref["kind"] == kind and ref["name"] == name and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences", [])
    )


def _deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
            },
        },
    }


def test_the_apiserver_serves_the_built_version_on_loopback_to_the_admin_kubeconfig(
    control_plane: ControlPlane,
) -> None:
    assert control_plane.apiserver_url.startswith("https://127.0.0.1:")
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == control_plane.tools.versions["KUBE_VERSION"]
    assert control_plane.kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"


def test_a_deployment_created_with_kubectl_gets_a_replicaset_and_generated_pods_from_the_controller_manager(  # noqa: E501
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    ns = "smoke"
    cp.kubectl("create", "namespace", ns)
    cp.kubectl("create", "deployment", "web", "--image=busybox:1.36", "--replicas=2", "-n", ns)

    replicasets = cp.wait_for(
        "a ReplicaSet owned by deployment/web",
        lambda: [
            rs
            for rs in cp.kubectl_json("get", "replicasets", "-n", ns)["items"]
            if _owned_by(rs, "Deployment", "web")
        ],
    )
    assert len(replicasets) == 1
    rs_name = replicasets[0]["metadata"]["name"]

    pods = cp.wait_for_pods(ns, "app=web", 2)
    assert len(pods) == 2
    for pod in pods:
        meta = pod["metadata"]
        # created by the ReplicaSet controller with generateName: the name is server-made
        assert meta["generateName"] == f"{rs_name}-"
        assert meta["name"].startswith(meta["generateName"])
        assert _owned_by(pod, "ReplicaSet", rs_name)
        # the ServiceAccount admission plugin ran; there is no kubelet to run the pod
        assert pod["spec"]["serviceAccountName"] == "default"
        assert pod["status"]["phase"] == "Pending"
        assert not pod["spec"].get("nodeName")


def test_pod_security_admission_enforces_the_restricted_level_of_a_labelled_namespace(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": namespace},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(subprocess.CalledProcessError) as err:
        cp.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert 'violates PodSecurity "restricted:latest"' in err.value.stderr


def test_a_webhook_on_loopback_trusted_through_its_ca_bundle_mutates_the_controller_managers_pods(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    hook = TestWebhook(
        cp.ca,
        lambda req: [{"op": "add", "path": "/metadata/annotations", "value": {"seen": "yes"}}],
    )
    with hook:
        config = hook.configuration(
            "e2e-harness-smoke",
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        )
        cp.apply(config)
        try:
            cp.apply(
                {
                    **_deployment("hooked", replicas=1),
                    "metadata": {"name": "hooked", "namespace": namespace},
                }
            )
            [pod] = cp.wait_for_pods(namespace, "app=hooked", 1)
        finally:
            cp.kubectl("delete", "mutatingwebhookconfiguration", "e2e-harness-smoke")

    assert pod["metadata"]["annotations"]["seen"] == "yes"
    [request] = [r for r in hook.requests() if r["namespace"] == namespace]
    assert request["operation"] == "CREATE"
    # generateName: the name is not known yet, and the empty field is left out of the review
    assert "name" not in request
    assert request["object"]["metadata"]["generateName"].startswith("hooked-")
    controller = "system:serviceaccount:kube-system:replicaset-controller"
    assert request["userInfo"]["username"] == controller
    # and the apiserver's audit log says so
    [admission] = cp.pod_admissions(namespace)
    assert admission.user == controller
    assert admission.mutated_by("e2e-harness-smoke")
    assert admission.patches[0]["patch"] == hook.mutate(request)


def test_a_service_account_kubeconfig_is_authorised_by_exactly_the_rbac_of_that_account(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    cp.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cp.kubectl("create", "role", "read-pods", "--verb=get,list", "--resource=pods", "-n", namespace)
    cp.kubectl(
        "create", "rolebinding", "reader", "--role=read-pods",
        f"--serviceaccount={namespace}:reader", "-n", namespace,
    )  # fmt: skip
    kubeconfig = str(cp.service_account_kubeconfig(namespace, "reader"))

    def can_i(*args: str) -> str:
        res = cp.kubectl("--kubeconfig", kubeconfig, "auth", "can-i", *args, check=False)
        return res.stdout.strip()

    assert can_i("list", "pods", "-n", namespace) == "yes"
    assert can_i("list", "secrets", "-n", namespace) == "no"
    assert can_i("list", "pods", "-n", "kube-system") == "no"
    whoami = cp.kubectl_json("--kubeconfig", kubeconfig, "auth", "whoami")
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"


def test_a_spawned_process_is_stopped_together_with_the_children_it_forked(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    proc = cp.spawn("forker", ["sh", "-c", "sleep 300 & sleep 300 & wait"])
    group = proc.popen.pid  # its own process group (and session)
    # sh and its two sleeps
    cp.wait_for("the children", lambda: len([p for p in _pids() if _pgid(p) == group]) == 3)

    proc.stop()

    assert proc.popen.returncode is not None
    # SIGKILLed children leave the process table a moment later on a busy machine (CI saw one
    # still there right after stop): wait for it rather than read it once
    cp.wait_for(
        "the forked children gone",
        lambda: not [pid for pid in _pids() if _pgid(pid) == group],
        timeout=10,
    )


def _pids() -> list[int]:
    """Living processes (a zombie is dead, waiting for its new parent to reap it)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text() if entry.isdigit() else ""
        except OSError:
            continue
        if stat and stat.rpartition(")")[2].split()[0] != "Z":
            pids.append(int(entry))
    return pids


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
