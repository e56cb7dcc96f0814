"""What users do on the node, for the tests and the cluster benchmark: install the chart
from the pushed images, run the shell-form app, time `kubectl delete pod`."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import yaml

from e2e.node.cluster import Cluster

RELEASE = "podinit"
RELEASE_NAMESPACE = "podinit"
CHART = "charts/podinit"
REGISTRY_CA_CONFIGMAP = "registry-ca"
REGISTRY_CA_DIR = "/etc/podinit/registry-ca"


def chart_values(cluster: Cluster, **config: Any) -> dict[str, Any]:
    """The chart's defaults but for where the images are and how to trust their registry
    (config.registryCaFile from a ConfigMap); ``config`` adds server settings."""
    webhook, init = cluster.images["webhook"], cluster.images["init"]
    return {
        "image": {"repository": webhook.reference.rsplit(":", 1)[0]},
        "config": {
            "initImage": init.reference,
            "registryCaFile": f"{REGISTRY_CA_DIR}/ca.crt",
            **config,
        },
        "extraVolumes": [{"name": "registry-ca", "configMap": {"name": REGISTRY_CA_CONFIGMAP}}],
        "extraVolumeMounts": [
            {"name": "registry-ca", "mountPath": REGISTRY_CA_DIR, "readOnly": True}
        ],
    }


def helm_install(cluster: Cluster, *args: str, values: dict[str, Any], major: int = 3) -> str:
    """``helm upgrade --install`` of the repo's chart with Helm ``major`` (3 or 4), waiting
    for it; returns helm's output."""
    cp = cluster.cp
    cp.kubectl("create", "namespace", RELEASE_NAMESPACE, check=False)
    ca = cluster.cp.ca.cert_pem.decode()
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": REGISTRY_CA_CONFIGMAP, "namespace": RELEASE_NAMESPACE},
        "data": {"ca.crt": ca},
    }
    cp.apply(configmap)
    argv = ["upgrade", "--install", RELEASE, CHART, "-n", RELEASE_NAMESPACE, "-f", "-"]
    # Helm 4's bare --wait is its "watcher" strategy (kstatus): the Deployment's rollout done
    result = cp.helm(
        *argv,
        "--wait",
        "--timeout",
        "180s",
        *args,
        input=yaml.safe_dump(values),
        timeout=240,
        major=major,
    )
    # --wait returns once the new replicas are ready; the old ones still answer during their
    # shutdown delay, with the old settings. Tests want the new settings only.
    cp.wait_for("only the new webhook replicas", lambda: _only_current_replicas(cluster), 120)
    return result.stdout


def _only_current_replicas(cluster: Cluster) -> bool:
    deployment = cluster.cp.kubectl_json("get", "-n", RELEASE_NAMESPACE, "deployment", RELEASE)
    selector = ",".join(
        f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items()
    )
    pods = cluster.cp.kubectl_json("get", "pods", "-n", RELEASE_NAMESPACE, "-l", selector)["items"]
    return len(pods) == deployment["spec"]["replicas"] and not any(
        p["metadata"].get("deletionTimestamp") for p in pods
    )


def app_pod(
    name: str,
    namespace: str,
    cluster: Cluster,
    *,
    grace: int = 30,
    env: dict[str, str] | None = None,
    restart: str = "Always",
    image: str = "app",
) -> dict[str, Any]:
    """A pod of a shell-form test image (``app``, or ``app-quit`` whose STOPSIGNAL is
    SIGQUIT), without `command` (the webhook reads the image)."""
    container: dict[str, Any] = {"name": "app", "image": cluster.images[image].reference}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": grace,
            "restartPolicy": restart,
            "containers": [container],
        },
    }


def create_ready(cluster: Cluster, pod: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    """Create the pod and wait for it Ready; returns it as stored."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    cluster.cp.apply(pod)
    cluster.cp.kubectl(
        "wait",
        "-n",
        namespace,
        f"pod/{name}",
        "--for=condition=Ready",
        f"--timeout={timeout}s",
        timeout=timeout + 10,
    )
    stored: dict[str, Any] = cluster.cp.kubectl_json("get", "-n", namespace, f"pod/{name}")
    return stored


def timed_delete(cluster: Cluster, namespace: str, name: str) -> float:
    """Seconds ``kubectl delete pod`` takes (it returns once the pod is gone)."""
    started = time.monotonic()
    cluster.cp.kubectl("delete", "-n", namespace, f"pod/{name}", "--wait=true", timeout=180)
    return time.monotonic() - started


def pid1(cluster: Cluster, namespace: str, name: str) -> list[str]:
    """The argv of PID 1 in the pod's first container (via kubectl exec)."""
    out = cluster.cp.kubectl("exec", "-n", namespace, name, "--", "cat", "/proc/1/cmdline")
    return out.stdout.rstrip("\0").split("\0")


def zombies(cluster: Cluster, namespace: str, name: str) -> int:
    """Processes in state Z in the container's PID namespace."""
    script = "for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done 2>/dev/null | grep -c Z"
    out = cluster.cp.kubectl("exec", "-n", namespace, name, "--", "sh", "-c", script, check=False)
    return int(out.stdout.strip() or 0)


def logs(cluster: Cluster, namespace: str, name: str) -> str:
    try:
        return cluster.cp.kubectl("logs", "-n", namespace, name).stdout
    except subprocess.CalledProcessError as e:
        return f"(no logs: {e.stderr})"


def fresh_namespace(cluster: Cluster, *, prefix: str, labelled: bool = True) -> str:
    """A new namespace (opted in to injection unless told otherwise) whose default
    ServiceAccount exists, so that pods can be created in it at once."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.cp.kubectl("create", "namespace", name)
    if labelled:
        cluster.cp.kubectl("label", "namespace", name, "podinit.dev/inject=enabled")
    cluster.cp.wait_for(
        "the namespace's ServiceAccount",
        lambda: cluster.cp.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
    )
    return name


WEBHOOK_PODS = "app.kubernetes.io/component=webhook"


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wrapped(pod: dict[str, Any]) -> bool:
    """Every container runs under podinit."""
    return all(
        (c.get("command") or [""])[0] == "/podinit/podinit" for c in pod["spec"]["containers"]
    )


def scale_webhook(cluster: Cluster, replicas: int) -> None:
    """The webhook's Deployment at `replicas`, waiting until exactly that many serve."""
    cp = cluster.cp
    cp.kubectl("scale", "-n", RELEASE_NAMESPACE, f"deployment/{RELEASE}", f"--replicas={replicas}")

    def scaled() -> bool:
        pods = cp.kubectl_json("get", "pods", "-n", RELEASE_NAMESPACE, "-l", WEBHOOK_PODS)["items"]
        live = [p for p in pods if ready(p) and not p["metadata"].get("deletionTimestamp")]
        return len(pods) == replicas and len(live) == replicas

    cp.wait_for(f"{replicas} webhook replicas", scaled, timeout=180)


def workload(
    kind: str, name: str, namespace: str, pod_spec: dict[str, Any], *, replicas: int = 1
) -> dict[str, Any]:
    """An apps/v1 Deployment, StatefulSet or DaemonSet of `pod_spec`, its pods labelled
    app=`name` (a DaemonSet has a pod per node, whatever `replicas`)."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}


def disruption_budget(namespace: str, name: str, **rule: int) -> dict[str, Any]:
    """A PodDisruptionBudget over the pods labelled app=`name`; `rule`: minAvailable or
    maxUnavailable."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**rule, "selector": {"matchLabels": {"app": name}}},
    }
