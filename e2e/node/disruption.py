"""Pods created while the webhook itself is disrupted: a steady, bounded stream of pod
creations in an opted-in namespace, and a count of those admitted unwrapped.

With failurePolicy Ignore an admission that fails (connection refused, reset, timeout)
creates the pod as it was sent: no `podinit.dev/status`. The pods never run (a node
selector no node has), so only admission is measured and the node stays idle.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE, workload

STATUS = "podinit.dev/status"


@dataclass
class StreamResult:
    created: int = 0
    unwrapped: list[str] = field(default_factory=list)  # names of pods without a status
    errors: list[str] = field(default_factory=list)  # creations the apiserver refused


def _pending_pod(name: str, namespace: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeSelector": {"podinit.dev/no-such-node": "true"},
            "containers": [{"name": "app", "image": image}],
        },
    }


def stream_pods(
    cluster: Cluster,
    namespace: str,
    *,
    rate: float,
    seconds: float,
    during: Callable[[], None],
) -> StreamResult:
    """Create ``rate`` pods a second for ``seconds``; ``during`` runs in a thread from the
    start (the disruption). Returns what the apiserver stored for each pod."""
    result = StreamResult()
    image = cluster.images["app"].reference
    disruption = threading.Thread(target=during, name="disruption")
    started = time.monotonic()
    disruption.start()
    index = 0
    while time.monotonic() - started < seconds:
        name = f"s{index:04d}"
        index += 1
        try:
            stored = cluster.cp.api(
                "POST", f"/api/v1/namespaces/{namespace}/pods", _pending_pod(name, namespace, image)
            )
        except OSError as e:
            result.errors.append(f"{name}: {e}")
        else:
            result.created += 1
            if STATUS not in (stored["metadata"].get("annotations") or {}):
                result.unwrapped.append(name)
        time.sleep(max(0.0, index / rate - (time.monotonic() - started)))
    disruption.join(timeout=300)  # a rollout waits at most 200 s (rollout_restart)
    return result


def rollout_restart(cluster: Cluster) -> Callable[[], None]:
    def restart() -> None:
        time.sleep(2)
        cluster.cp.kubectl("rollout", "restart", "-n", RELEASE_NAMESPACE, f"deployment/{RELEASE}")
        cluster.cp.kubectl(
            "rollout",
            "status",
            "-n",
            RELEASE_NAMESPACE,
            f"deployment/{RELEASE}",
            "--timeout=180s",
            timeout=200,
        )

    return restart


def kill_one_replica(cluster: Cluster) -> Callable[[], None]:
    """SIGKILL the server process of one webhook replica, from the node (its PID 1)."""

    def kill() -> None:
        time.sleep(2)
        pods = cluster.cp.kubectl_json(
            "get", "pods", "-n", RELEASE_NAMESPACE, "-l", "app.kubernetes.io/component=webhook"
        )["items"]
        kill_replica(cluster, pods[0]["metadata"]["name"])

    return kill


def kill_replica(cluster: Cluster, pod: str) -> None:
    """SIGKILL the server process (PID 1 of its container) of the webhook replica `pod`."""
    found = cluster.cp.kubectl_json("get", "pod", pod, "-n", RELEASE_NAMESPACE)
    container_id = found["status"]["containerStatuses"][0]["containerID"].split("//")[1]
    crictl = [str(cluster.node_tools.crictl), "--runtime-endpoint", cluster.containerd.endpoint]
    info = json.loads(
        subprocess.run([*crictl, "inspect", container_id], capture_output=True, check=True).stdout
    )
    subprocess.run(["kill", "-KILL", str(info["info"]["pid"])], check=True)


def stream_deployments(
    cluster: Cluster,
    namespace: str,
    template: dict[str, Any],
    *,
    count: int,
    rate: float,
    replicas: int,
    during: Callable[[], None],
) -> list[str]:
    """Create ``count`` Deployments of ``replicas`` pods of ``template`` (a pod spec), ``rate``
    a second, while ``during`` runs in a thread (the disruption); returns their names. Their
    ReplicaSets create the pods: with failurePolicy Fail a refused create is retried by the
    controller, with Ignore it is admitted as sent."""
    disruption = threading.Thread(target=during, name="disruption")
    started = time.monotonic()
    disruption.start()
    names = []
    for index in range(count):
        name = f"d{index:03d}"
        deployment = workload("Deployment", name, namespace, template, replicas=replicas)
        cluster.cp.api("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment)
        names.append(name)
        time.sleep(max(0.0, (index + 1) / rate - (time.monotonic() - started)))
    disruption.join(timeout=300)
    return names
