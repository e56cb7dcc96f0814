"""`auto` holds for the nodes (issue 19 D7): a kubelet 1.34 + containerd 1.7 node joined to the
1.37 control plane next to the 1.37 + containerd 2.4 node (e2e.node.oldnode), with the chart
installed from the built images in its default mode, `auto`.

With only the new node the webhook mounts the init as an image volume; once the old node has
joined (containerd 1.7 has no image volumes, kubelet 1.34 has them off) new pods get copy mode
within the webhook's node refresh (30 s), and the journey runs on the old node: PID 1 is
podinit, orphans are reaped, the app's exit code reaches the pod status, `kubectl delete pod`
returns at once. An image-volume pod sent to the old node shows what `auto` prevents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.node.kubelet import NODE_NAME
from e2e.node.oldnode import OldNode
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE
from e2e.tools import ToolsMissing, find_node_tools, oldest_release
from tests.unavailable import found

INIT = "/podinit/podinit"
PROMPT = 5.0  # seconds: the node's own teardown of a pod that exits at once (see the journey)
REFRESH = 30.0  # webhook/server/nodes.py REFRESH_SECONDS


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[str]:
    found(lambda: find_node_tools(oldest_release()), ToolsMissing)  # before installing
    yield workloads.helm_install(cluster, values=workloads.chart_values(cluster))
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, check=False)


@pytest.fixture(scope="module")
def labelled(cluster: Cluster, release: str) -> Iterator[str]:
    name = workloads.fresh_namespace(cluster, prefix="old-node")
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


def injection(cluster: Cluster, namespace: str) -> str:
    """How the webhook wraps a pod now: a server-side dry run, nothing stored."""
    pod = workloads.app_pod("probe", namespace, cluster)
    done = cluster.cp.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod)
    )
    volumes = json.loads(done.stdout)["spec"].get("volumes") or []
    [ours] = [v for v in volumes if v["name"] == "podinit"]
    return "imageVolume" if "image" in ours else "copy" if "emptyDir" in ours else str(ours)


def wait_for_injection(cluster: Cluster, namespace: str, mode: str) -> float:
    """Seconds until new pods get `mode`."""
    started = time.monotonic()
    cluster.cp.wait_for(
        f"new pods in {mode} mode",
        lambda: injection(cluster, namespace) == mode,
        timeout=REFRESH + 30,
        interval=1,
    )
    return time.monotonic() - started


def on(node: str, pod: dict[str, Any]) -> dict[str, Any]:
    pod["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return pod


def test_new_pods_get_copy_mode_while_a_node_without_image_volumes_is_joined_and_the_journey_runs_there(  # noqa: E501
    cluster: Cluster, labelled: str
) -> None:
    cp = cluster.cp
    assert injection(cluster, labelled) == "imageVolume"  # the 1.37 + containerd 2.4 node only
    with OldNode.join(cluster) as old:
        info = old.node()["status"]["nodeInfo"]  # type: ignore[index]
        assert (info["kubeletVersion"], info["containerRuntimeVersion"]) == (
            old.tools.release.kube_version,
            f"containerd://{old.tools.release.containerd_version.removeprefix('v')}",
        )
        switched = wait_for_injection(cluster, labelled, "copy")
        assert switched <= REFRESH + 5, switched
        # the journey on the old node, in copy mode
        stop = workloads.create_ready(
            cluster, on(old.name, workloads.app_pod("stop", labelled, cluster))
        )
        assert stop["spec"]["nodeName"] == old.name
        assert workloads.pid1(cluster, labelled, "stop")[:2] == [INIT, "--"]
        orphans = on(
            old.name, workloads.app_pod("orphans", labelled, cluster, env={"APP_ORPHANS": "5"})
        )
        workloads.create_ready(cluster, orphans)
        time.sleep(1)  # the orphans' sleep 0.2 are over: reaped, or zombies
        assert workloads.zombies(cluster, labelled, "orphans") == 0
        exits = on(
            old.name,
            workloads.app_pod(
                "exits", labelled, cluster, env={"APP_EXIT_CODE": "3"}, restart="Never"
            ),
        )
        cp.apply(exits)
        state = cp.wait_for(
            "the app's exit", lambda: _terminated(cluster, labelled, "exits"), timeout=90
        )
        assert state["exitCode"] == 3
        seconds = workloads.timed_delete(cluster, labelled, "stop")
        assert seconds < PROMPT, f"wrapped pod on the old node took {seconds:.1f}s to delete"
        # what auto prevents: the init as an image volume starts on the new node only
        ready = _image_volumes_start_on_the_new_node_only(cluster, labelled, NODE_NAME, old.name)
        assert ready == (True, False)
    # the old node gone, new pods go back to image volumes
    wait_for_injection(cluster, labelled, "imageVolume")


def _terminated(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    pod = cluster.cp.kubectl_json("get", "pod", name, "-n", namespace)
    for status in pod["status"].get("containerStatuses") or []:
        terminated = status.get("state", {}).get("terminated")
        if terminated:
            return dict(terminated)
    return None


def _image_volume_pod(cluster: Cluster, namespace: str, name: str, node: str) -> dict[str, Any]:
    """The app with the init image mounted by hand as an image volume (not sent to the
    webhook), on `node`."""
    init = cluster.images["init"].reference
    pod = on(node, workloads.app_pod(name, namespace, cluster))
    pod["metadata"]["annotations"] = {"podinit.dev/inject": "false"}
    pod["spec"]["volumes"] = [{"name": "tools", "image": {"reference": init}}]
    container = pod["spec"]["containers"][0]
    container["command"] = [INIT, "--", "/bin/app"]
    container["volumeMounts"] = [{"name": "tools", "mountPath": "/podinit", "readOnly": True}]
    return pod


def _ready(cluster: Cluster, namespace: str, name: str) -> bool:
    stored = cluster.cp.kubectl_json("get", "pod", name, "-n", namespace)
    conditions = stored["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _image_volumes_start_on_the_new_node_only(
    cluster: Cluster, namespace: str, new: str, old: str
) -> tuple[bool, bool]:
    """(Ready on the new node within 60 s, Ready on the old node by then)."""
    cluster.cp.apply(
        _image_volume_pod(cluster, namespace, "iv-new", new),
        _image_volume_pod(cluster, namespace, "iv-old", old),
    )
    started = time.monotonic()
    on_new = bool(
        cluster.cp.wait_for(
            "the image-volume pod Ready on the new node",
            lambda: _ready(cluster, namespace, "iv-new"),
            timeout=60,
        )
    )
    time.sleep(max(0.0, 20 - (time.monotonic() - started)))  # the old node had 20 s too
    return on_new, _ready(cluster, namespace, "iv-old")
