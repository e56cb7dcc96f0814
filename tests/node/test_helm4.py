"""The chart's journey with Helm 4 on the real node: install, `helm test`, upgrade, uninstall
(tests/chart/test_chart_on_apiserver.py covers what needs no node, with both Helms).

Helm 4 changes what `--wait` means (kstatus's "watcher": every object Current, a Deployment
once its rollout is done) and applies server-side. The tests run in file order and share
one release, on the newest cluster and on the oldest supported one (every Kubernetes program
1.34, containerd 1.7).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE

HELM4 = 4
PROMPT = 5.0  # seconds: a wrapped app's delete, as in test_user_journey

pytestmark = pytest.mark.clusters("newest", "oldest")


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[str]:
    yield workloads.helm_install(cluster, values=workloads.chart_values(cluster), major=HELM4)
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, check=False, major=HELM4)


@pytest.fixture
def labelled(cluster: Cluster) -> Iterator[str]:
    name = workloads.fresh_namespace(cluster, prefix="helm4")
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_helm_4_install_waits_for_the_ready_replicas_and_its_helm_test_passes(
    cluster: Cluster, release: str
) -> None:
    assert re.search(r"^STATUS: deployed$", release, re.M), release
    # nothing but Helm's --wait waited for a fresh release's replicas (workloads.helm_install)
    deployment = cluster.cp.kubectl_json("get", "-n", RELEASE_NAMESPACE, "deployment", RELEASE)
    assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
    metadata = cluster.cp.helm("get", "metadata", RELEASE, "-n", RELEASE_NAMESPACE, major=HELM4)
    assert "APPLY_METHOD: server-side apply" in metadata.stdout, metadata.stdout
    test = cluster.cp.helm(
        "test", RELEASE, "-n", RELEASE_NAMESPACE, "--timeout", "90s", major=HELM4, timeout=120
    )
    assert re.search(r"^Phase:\s+Succeeded$", test.stdout, re.M), test.stdout


def test_a_pod_is_wrapped_after_a_helm_4_upgrade_to_copy_mode(
    cluster: Cluster, release: str, labelled: str
) -> None:
    values = workloads.chart_values(cluster, injectionMode="copy")
    workloads.helm_install(cluster, values=values, major=HELM4)
    pod = workloads.create_ready(cluster, workloads.app_pod("app", labelled, cluster))
    init_containers = [c["name"] for c in pod["spec"].get("initContainers", [])]
    assert len(init_containers) == 1, init_containers  # the copy container
    assert workloads.pid1(cluster, labelled, "app")[0] == "/podinit/podinit"
    assert workloads.timed_delete(cluster, labelled, "app") < PROMPT


def test_helm_4_uninstall_removes_the_webhook_and_new_pods_are_left_alone(
    cluster: Cluster, release: str, labelled: str
) -> None:
    cluster.cp.helm(
        "uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", major=HELM4, timeout=180
    )
    gone = cluster.cp.kubectl("get", "mutatingwebhookconfiguration", RELEASE, check=False)
    assert gone.returncode != 0, gone.stdout
    left = cluster.cp.kubectl("get", "deployment,service", "-n", RELEASE_NAMESPACE)
    assert "No resources found" in left.stderr, left.stdout
    after = workloads.create_ready(cluster, workloads.app_pod("after", labelled, cluster))
    assert "podinit.dev/status" not in after["metadata"].get("annotations", {})
