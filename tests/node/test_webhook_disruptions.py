"""No pod slips through while the webhook's own pods are replaced: a steady stream of pod
creations (10/s) in an opted-in namespace during `kubectl rollout restart` of the webhook,
and during a SIGKILL of one replica's server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from e2e.node import disruption, workloads
from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE

RATE = 10  # pod creations a second
STREAM_SECONDS = 30  # covers a rolling restart of 2 replicas with their shutdown delay


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[None]:
    workloads.helm_install(cluster, values=workloads.chart_values(cluster))
    yield
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


def _restarts(cluster: Cluster) -> int:
    pods = cluster.cp.kubectl_json(
        "get", "pods", "-n", RELEASE_NAMESPACE, "-l", "app.kubernetes.io/component=webhook"
    )["items"]
    return sum(p["status"]["containerStatuses"][0]["restartCount"] for p in pods)


def test_a_rolling_restart_of_the_webhook_lets_no_pod_through_unwrapped(
    cluster: Cluster, release: None, measured: Callable[[str], None]
) -> None:
    namespace = workloads.fresh_namespace(cluster, prefix="stream")
    result = disruption.stream_pods(
        cluster,
        namespace,
        rate=RATE,
        seconds=STREAM_SECONDS,
        during=disruption.rollout_restart(cluster),
    )
    cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false")
    measured(f"rolling restart: {result.created} pods, {len(result.unwrapped)} unwrapped")
    assert result.created >= RATE * STREAM_SECONDS * 0.8, result.errors[:3]
    assert result.unwrapped == []


def test_a_killed_replica_lets_few_pods_through_and_is_reported(
    cluster: Cluster, release: None, measured: Callable[[str], None]
) -> None:
    """SIGKILL cannot be drained: admissions in flight on that replica, and those sent to
    it before the endpoint is withdrawn, fail open. The number is reported, not zero."""
    namespace = workloads.fresh_namespace(cluster, prefix="stream")
    restarts = _restarts(cluster)
    result = disruption.stream_pods(
        cluster, namespace, rate=RATE, seconds=15, during=disruption.kill_one_replica(cluster)
    )
    assert _restarts(cluster) == restarts + 1, "the replica's server was killed and restarted"
    cluster.cp.kubectl("delete", "namespace", namespace, "--wait=false")
    measured(f"SIGKILL of one replica: {result.created} pods, {len(result.unwrapped)} unwrapped")
    assert result.created >= RATE * 15 * 0.8, result.errors[:3]
    # one replica stays up: at most the admissions of the few seconds until kube-proxy
    # and the apiserver stop using the dead one
    assert len(result.unwrapped) <= RATE * 5
