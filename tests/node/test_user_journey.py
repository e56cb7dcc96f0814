"""The user's journey on a real node: `helm install` the chart with the images built from
the Dockerfile, label a namespace, roll out a shell-form app, delete its pods.

The tests run in file order and share one release: install, use, upgrade, uninstall. They
run on the newest cluster and on the oldest supported one (every Kubernetes program 1.34,
containerd 1.7), where `auto` is copy mode.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE

STATUS = "podinit.dev/status"
GRACE = 10  # seconds: long enough to tell a grace-period stop from a prompt one
# The node's own teardown of a pod whose app exits at once on SIGTERM takes 1.2-2.3 s here
# (kubelet and containerd, measured with an exec-form app): "prompt" allows for that.
PROMPT = 5.0

pytestmark = pytest.mark.clusters("newest", "oldest")


def mounts_image_volumes(cluster: Cluster) -> bool:
    """Whether `auto` gives the init as an image volume: that needs an apiserver and kubelets
    of 1.35+ (ImageVolume is off in 1.34) and containerd 2.1+; the oldest cluster has none."""
    return cluster.release.newest


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[str]:
    yield workloads.helm_install(cluster, values=workloads.chart_values(cluster))
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, check=False)


@pytest.fixture
def labelled(cluster: Cluster) -> Iterator[str]:
    """A namespace opted in to injection, deleted afterwards."""
    name = workloads.fresh_namespace(cluster, prefix="shop")
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _status(pod: dict[str, Any]) -> dict[str, Any]:
    annotation = pod["metadata"].get("annotations", {}).get(STATUS)
    return json.loads(annotation) if annotation else {}


def test_the_chart_runs_two_ready_replicas_behind_its_service_and_helm_test_passes(
    cluster: Cluster, release: str
) -> None:
    deployment = cluster.cp.kubectl_json("get", "-n", RELEASE_NAMESPACE, "deployment", RELEASE)
    assert deployment["status"].get("readyReplicas") == 2
    endpoints = cluster.cp.kubectl_json(
        "get",
        "-n",
        RELEASE_NAMESPACE,
        "endpointslices",
        "-l",
        f"kubernetes.io/service-name={RELEASE}",
    )
    ready = [
        e
        for s in endpoints["items"]
        for e in s.get("endpoints") or []
        if e.get("conditions", {}).get("ready")
    ]
    assert len(ready) == 2
    webhook = cluster.cp.kubectl_json("get", "mutatingwebhookconfiguration", RELEASE)
    assert "url" not in webhook["webhooks"][0]["clientConfig"], "called through its Service"
    test = cluster.cp.helm("test", RELEASE, "-n", RELEASE_NAMESPACE, "--timeout", "90s")
    assert re.search(r"^Phase:\s+Succeeded$", test.stdout, re.M), test.stdout


def test_the_ca_bundle_is_written_from_inside_the_cluster(cluster: Cluster, release: str) -> None:
    webhook = cluster.cp.kubectl_json("get", "mutatingwebhookconfiguration", RELEASE)
    bundle = base64.b64decode(webhook["webhooks"][0]["clientConfig"]["caBundle"])
    secret = cluster.cp.kubectl_json("get", "-n", RELEASE_NAMESPACE, "secret", f"{RELEASE}-tls")
    assert base64.b64decode(secret["data"]["ca.crt"]).strip() in bundle


def test_a_deployment_in_a_labelled_namespace_runs_podinit_as_pid_1(
    cluster: Cluster, release: str, labelled: str
) -> None:
    image = cluster.images["app"].reference
    cluster.cp.kubectl("create", "deployment", "web", "-n", labelled, f"--image={image}")
    cluster.cp.kubectl(
        "rollout", "status", "-n", labelled, "deployment/web", "--timeout=90s", timeout=100
    )
    pod = cluster.cp.kubectl_json("get", "pods", "-n", labelled, "-l", "app=web")["items"][0]
    assert _status(pod)["containers"] == {"app": "injected"}
    [init] = [v for v in pod["spec"]["volumes"] if v["name"] == "podinit"]
    assert ("image" in init) == mounts_image_volumes(cluster), init
    assert ("emptyDir" in init) != mounts_image_volumes(cluster), init
    # the image's shell-form ENTRYPOINT, read from the registry, now runs under podinit
    argv = workloads.pid1(cluster, labelled, pod["metadata"]["name"])
    assert argv[:4] == ["/podinit/podinit", "--", "/bin/sh", "-c"], argv
    assert "/bin/app" in argv[4]


def test_orphans_are_reaped_under_podinit(cluster: Cluster, release: str, labelled: str) -> None:
    pod = workloads.app_pod("orphans", labelled, cluster, env={"APP_ORPHANS": "5"})
    workloads.create_ready(cluster, pod)
    time.sleep(1.5)  # the orphans live 0.2 s
    assert "app: left 5 orphans" in workloads.logs(cluster, labelled, "orphans")
    assert workloads.zombies(cluster, labelled, "orphans") == 0


def test_delete_returns_after_the_apps_own_shutdown_only_when_wrapped(
    cluster: Cluster, release: str, labelled: str, namespace: str
) -> None:
    wrapped = workloads.app_pod("stop", labelled, cluster, grace=GRACE)
    plain = workloads.app_pod("stop", namespace, cluster, grace=GRACE)
    assert _status(workloads.create_ready(cluster, wrapped))["containers"]["app"] == "injected"
    assert STATUS not in workloads.create_ready(cluster, plain)["metadata"].get("annotations", {})
    wrapped_seconds = workloads.timed_delete(cluster, labelled, "stop")
    plain_seconds = workloads.timed_delete(cluster, namespace, "stop")
    assert wrapped_seconds < PROMPT, f"wrapped pod took {wrapped_seconds:.1f}s to delete"
    assert plain_seconds >= GRACE, f"unwrapped pod took only {plain_seconds:.1f}s"
    # containerd's own record: the wrapped app exited on SIGTERM, the shell was SIGKILLed
    seen = cluster.runtime_log.pods()
    wrapped_app, plain_app = (seen[(ns, "stop")].containers["app"] for ns in (labelled, namespace))
    assert wrapped_app.exited is not None and not wrapped_app.killed
    assert plain_app.killed


def test_the_apps_exit_code_reaches_the_pod_status(
    cluster: Cluster, release: str, labelled: str
) -> None:
    pod = workloads.app_pod("exits", labelled, cluster, env={"APP_EXIT_CODE": "3"}, restart="Never")
    cluster.cp.apply(pod)

    def terminated() -> dict[str, Any] | None:
        stored = cluster.cp.kubectl_json("get", "-n", labelled, "pod/exits")
        statuses = stored["status"].get("containerStatuses") or [{}]
        state: dict[str, Any] | None = statuses[0].get("state", {}).get("terminated")
        return state

    state = cluster.cp.wait_for("the app container to terminate", terminated, 90)
    assert state["exitCode"] == 3
    stored = cluster.cp.kubectl_json("get", "-n", labelled, "pod/exits")
    assert _status(stored)["containers"]["app"] == "injected"


def test_a_pod_left_unwrapped_is_a_warning_event_on_its_replicaset(
    cluster: Cluster, release: str, labelled: str
) -> None:
    """Written by the chart's own service account, through its RBAC, from a webhook pod."""
    missing = f"{cluster.registry.host}/nowhere/missing:1"  # the registry has no such image
    cluster.cp.kubectl("create", "deployment", "lost", "-n", labelled, f"--image={missing}")

    def event() -> dict[str, Any] | None:
        events = cluster.cp.kubectl_json("get", "events.v1.events.k8s.io", "-n", labelled)
        return next((e for e in events["items"] if e.get("reason") == "PodinitNotWrapped"), None)

    found = cluster.cp.wait_for("a PodinitNotWrapped Event", event, 60)
    assert found["type"] == "Warning"
    assert found["regarding"]["kind"] == "ReplicaSet"
    assert found["regarding"]["name"].startswith("lost-")
    assert found["note"].startswith('container "missing": '), found["note"]
    assert "not found" in found["note"], found["note"]
    described = cluster.cp.kubectl("describe", "replicaset", "-n", labelled, "-l", "app=lost")
    assert "PodinitNotWrapped" in described.stdout
    cluster.cp.kubectl("delete", "deployment", "lost", "-n", labelled)


@pytest.mark.clusters("newest")  # the oldest mounts no image volume: `auto` is copy there
@pytest.mark.parametrize("mode", ["imageVolume", "copy"])
def test_both_injection_modes_start_the_app_under_podinit(
    cluster: Cluster, release: str, labelled: str, mode: str
) -> None:
    workloads.helm_install(cluster, values=workloads.chart_values(cluster, injectionMode=mode))
    pod = workloads.create_ready(cluster, workloads.app_pod("mode", labelled, cluster))
    init_containers = [c["name"] for c in pod["spec"].get("initContainers", [])]
    image_volumes = [v for v in pod["spec"]["volumes"] if "image" in v]
    if mode == "imageVolume":
        assert image_volumes and not init_containers
        assert image_volumes[0]["image"]["reference"] == cluster.images["init"].reference
    else:
        assert not image_volumes and len(init_containers) == 1
        # the copy container ran to its end before the app's container was created
        seen = cluster.runtime_log.pods()[(labelled, "mode")].containers
        copied = seen[init_containers[0]].exited
        assert copied is not None and copied < seen["app"].create_requested
    assert workloads.pid1(cluster, labelled, "mode")[0] == "/podinit/podinit"
    assert workloads.timed_delete(cluster, labelled, "mode") < PROMPT


def test_cluster_wide_mode_wraps_pods_of_unlabelled_namespaces(
    cluster: Cluster, release: str, namespace: str
) -> None:
    values = workloads.chart_values(cluster)
    workloads.helm_install(cluster, "--set", "mode=clusterWide", values=values)
    pod = workloads.create_ready(cluster, workloads.app_pod("wide", namespace, cluster))
    assert _status(pod)["containers"]["app"] == "injected"


def test_uninstall_leaves_running_pods_running_and_new_pods_unwrapped(
    cluster: Cluster, release: str, labelled: str
) -> None:
    before = workloads.create_ready(cluster, workloads.app_pod("before", labelled, cluster))
    assert _status(before)["containers"]["app"] == "injected"
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", timeout=180)
    after = workloads.create_ready(cluster, workloads.app_pod("after", labelled, cluster))
    assert STATUS not in after["metadata"].get("annotations", {})
    assert workloads.pid1(cluster, labelled, "after")[0] == "/bin/sh"
    still = cluster.cp.kubectl_json("get", "-n", labelled, "pod/before")
    assert still["status"]["phase"] == "Running"
    assert still["status"]["containerStatuses"][0]["restartCount"] == 0
    assert workloads.timed_delete(cluster, labelled, "before") < PROMPT
