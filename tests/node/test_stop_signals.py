"""Stop signals other than SIGTERM, on the real node: an image's STOPSIGNAL (nginx's SIGQUIT)
and a container's ``lifecycle.stopSignal`` (KEP-4960; the node runs its apiserver and kubelet
with ContainerStopSignals on, e2e.node.cluster.NODE_FEATURE_GATES).

containerd sends that signal to the container's PID 1. The apps here ignore SIGTERM and leave
on their stop signal only (APP_STOP_SIGNAL, e2e/images/testapps/app.sh), behind a shell-form
ENTRYPOINT: unwrapped, `/bin/sh -c` is PID 1, has no handler, and the kernel drops the signal,
so the pod waits out its grace period; under podinit the signal reaches the app.

The image's STOPSIGNAL and the rewrite annotation are tested on the oldest cluster too
(containerd 1.7 sends an image's STOPSIGNAL as 2.4 does, but reports no stop signal to the
kubelet); ``lifecycle.stopSignal`` on the newest only: the oldest's runtime reports none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.node.runtimelog import ContainerTimes
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE

GRACE = 10  # seconds: long enough to tell a grace-period stop from a prompt one
# The node's own teardown of a pod whose app exits at once takes 1.2-2.3 s here (as in
# test_user_journey); podinit's drain of an app that ignored the signal would take 5 s more.
PROMPT = 5.0
DRAIN = 5  # podinit's default --grace: how long it gives what is left after its child exits


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[str]:
    yield workloads.helm_install(cluster, values=workloads.chart_values(cluster))
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


@pytest.fixture
def labelled(cluster: Cluster) -> Iterator[str]:
    name = workloads.fresh_namespace(cluster, prefix="stop")
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


def injected(pod: dict[str, Any]) -> bool:
    status = json.loads(pod["metadata"].get("annotations", {}).get("podinit.dev/status", "{}"))
    return bool(status.get("containers", {}).get("app") == "injected")


def reported_stop_signal(pod: dict[str, Any]) -> str | None:
    """The stop signal the kubelet reports for the app container (ContainerStopSignals)."""
    [status] = pod["status"]["containerStatuses"]
    signal: str | None = status.get("stopSignal")
    return signal


def reported(cluster: Cluster, signal: str) -> str | None:
    """What the kubelet reports: the runtime tells it the signal (CRI ContainerStatus),
    which containerd 1.7 does not (measured on the oldest cluster: no stopSignal at all)."""
    return None if cluster.node_tools.containerd_v1 else signal


def run_both(
    cluster: Cluster, wrapped: dict[str, Any], plain: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create the pod in the labelled and in the unlabelled namespace, both Ready."""
    created = workloads.create_ready(cluster, wrapped), workloads.create_ready(cluster, plain)
    assert injected(created[0]), created[0]["metadata"].get("annotations")
    assert not injected(created[1])
    return created


def where(pod: dict[str, Any]) -> tuple[str, str]:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]


def delete_both(cluster: Cluster, *pods: dict[str, Any]) -> list[float]:
    """Seconds each `kubectl delete pod` took, the deletions running side by side (one
    grace period in all, not one per pod)."""
    with ThreadPoolExecutor(len(pods)) as pool:
        running = [pool.submit(workloads.timed_delete, cluster, *where(p)) for p in pods]
        return [r.result() for r in running]


def as_seen(cluster: Cluster, *pods: dict[str, Any]) -> list[ContainerTimes]:
    """containerd's record of each pod's app container."""
    seen = cluster.runtime_log.pods()
    return [seen[where(p)].containers["app"] for p in pods]


@pytest.mark.clusters("newest", "oldest")
def test_the_images_stopsignal_reaches_the_app_under_podinit_without_any_annotation(
    cluster: Cluster, release: str, labelled: str, namespace: str
) -> None:
    wrapped, plain = (
        workloads.app_pod("app", ns, cluster, grace=GRACE, image="app-quit")
        for ns in (labelled, namespace)
    )
    for pod in run_both(cluster, wrapped, plain):
        assert reported_stop_signal(pod) == reported(cluster, "SIGQUIT")  # from the image
    wrapped_seconds, plain_seconds = delete_both(cluster, wrapped, plain)
    assert wrapped_seconds < PROMPT, f"wrapped pod took {wrapped_seconds:.1f}s to delete"
    assert plain_seconds >= GRACE, f"unwrapped pod took only {plain_seconds:.1f}s"
    wrapped_app, plain_app = as_seen(cluster, wrapped, plain)
    assert (wrapped_app.stop_signal, plain_app.stop_signal) == ("quit", "quit")
    # the app's own clean exit on SIGQUIT, passed on by its entrypoint shell and podinit
    assert (wrapped_app.killed, wrapped_app.exit_status) == (False, 0)
    assert plain_app.killed


def test_a_containers_lifecycle_stop_signal_reaches_the_app_under_podinit(
    cluster: Cluster, release: str, labelled: str, namespace: str
) -> None:
    """postgres-style: SIGINT, chosen by the pod (the field needs spec.os.name)."""
    pods = [
        workloads.app_pod("app", ns, cluster, grace=GRACE, env={"APP_STOP_SIGNAL": "INT"})
        for ns in (labelled, namespace)
    ]
    for pod in pods:
        pod["spec"]["os"] = {"name": "linux"}
        pod["spec"]["containers"][0]["lifecycle"] = {"stopSignal": "SIGINT"}
    wrapped, plain = run_both(cluster, *pods)
    for pod in (wrapped, plain):
        # kept by the apiserver (dropped while its gate is off), passed on by the kubelet
        assert pod["spec"]["containers"][0]["lifecycle"] == {"stopSignal": "SIGINT"}
        assert reported_stop_signal(pod) == "SIGINT"
    wrapped_seconds, plain_seconds = delete_both(cluster, wrapped, plain)
    assert wrapped_seconds < PROMPT, f"wrapped pod took {wrapped_seconds:.1f}s to delete"
    assert plain_seconds >= GRACE, f"unwrapped pod took only {plain_seconds:.1f}s"
    wrapped_app, plain_app = as_seen(cluster, wrapped, plain)
    assert (wrapped_app.stop_signal, plain_app.stop_signal) == ("interrupt", "interrupt")
    # busybox's shell, waiting for its foreground app, dies of the SIGINT once the app has
    # left (measured outside the node: status -2); podinit reports that as 128 + 2
    assert (wrapped_app.killed, wrapped_app.exit_status) == (False, 130)
    assert plain_app.killed


@pytest.mark.clusters("newest", "oldest")
def test_an_image_without_stopsignal_needs_the_rewrite_annotation_for_an_app_that_wants_sigquit(
    cluster: Cluster, release: str, labelled: str
) -> None:
    """README's advice for an nginx built on an image that does not say STOPSIGNAL: the
    runtime sends SIGTERM, which the app ignores, unless podinit rewrites it."""
    pods = [
        workloads.app_pod(name, labelled, cluster, grace=GRACE, env={"APP_STOP_SIGNAL": "QUIT"})
        for name in ("app", "rewritten")
    ]
    pods[1]["metadata"]["annotations"] = {"podinit.dev/rewrite": "TERM:QUIT"}
    for pod in pods:
        created = workloads.create_ready(cluster, pod)
        assert injected(created)
        assert reported_stop_signal(created) == reported(cluster, "SIGTERM")
    as_is, rewritten = delete_both(cluster, *pods)
    assert rewritten < PROMPT, f"rewritten pod took {rewritten:.1f}s to delete"
    # as it is, SIGTERM kills the app's shell and not the app: podinit's drain SIGKILLs it
    assert as_is >= DRAIN, f"pod without the rewrite took only {as_is:.1f}s"
    as_is_app, rewritten_app = as_seen(cluster, *pods)
    assert (as_is_app.stop_signal, rewritten_app.stop_signal) == ("terminated", "terminated")
    assert as_is_app.exit_status == 128 + 15  # its shell died of SIGTERM
    assert rewritten_app.exit_status == 0  # the app left on SIGQUIT, its shell passed that on
