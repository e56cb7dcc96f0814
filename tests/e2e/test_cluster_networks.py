"""Registry lookups never connect into the cluster's Service and Pod ranges, read from a real
apiserver: its ServiceCIDR (from --service-cluster-ip-range) and a node's spec.podCIDRs.

Nothing is dialled to show it (an address in those ranges would route off this machine): the
lookup is refused before any connection, which the server counts as `address_denied` and logs
with the range's reason, and the tenant reads the same "cannot connect" as for a closed port.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from e2e.components import SERVICE_CLUSTER_IP_RANGE
from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    Podinit,
    chart_account,
    container,
    create,
    delete_namespace,
    new_namespace,
    pod,
    running_podinit,
    unique,
)
from tests.e2e.test_reconcile import metrics

POD_RANGE = "10.244.77.0/24"  # the node's, made up for this test: no kubelet runs here
OPT_IN = {"podinit.dev/inject": "enabled"}


@pytest.fixture(scope="module")
def node_with_pod_range(control_plane: ControlPlane) -> Iterator[str]:
    """A Node object naming a Pod range (as the controller manager allocates one)."""
    name = unique("netnode")
    control_plane.apply(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "spec": {"podCIDR": POD_RANGE, "podCIDRs": [POD_RANGE]},
        }
    )
    yield name
    control_plane.kubectl("delete", "node", name, "--wait=false", check=False)


@contextmanager
def server_as_the_chart(
    cp: ControlPlane, tmp: Path, *, nodes: bool = True, mode: str = "copy"
) -> Iterator[Podinit]:
    """`podinit serve` with the chart's ServiceAccount and RBAC; `nodes=False` takes the right
    to list nodes away (a list that fails)."""
    release, release_namespace = unique("podinit-net"), unique("podinit-net-release")
    with chart_account(cp, release, release_namespace) as kubeconfig:
        if not nodes:
            unlisted = [
                {"op": "test", "path": "/rules/2/resources", "value": ["nodes"]},
                {"op": "remove", "path": "/rules/2"},
            ]
            cp.kubectl(
                "patch", "clusterrole", f"{release}-selection", "--type=json",
                "-p", json.dumps(unlisted),
            )  # fmt: skip
        env = {
            "PODINIT_KUBECONFIG": str(kubeconfig),
            "PODINIT_NAMESPACE": release_namespace,
            "PODINIT_WEBHOOK_CONFIGURATION": release,
            "PODINIT_INJECTION_MODE": mode,
        }
        with running_podinit(cp, tmp, env=env, release=release) as podinit:
            yield podinit


def denied_lookups(podinit: Podinit) -> float:
    return metrics(podinit.server).get(
        'podinit_registry_lookups_total{result="address_denied"}', 0.0
    )


def test_images_in_the_service_and_pod_ranges_are_refused_without_a_connection(
    control_plane: ControlPlane, node_with_pod_range: str, tmp_path: Path
) -> None:
    cp = control_plane
    cidrs = cp.kubectl_json("get", "servicecidrs")["items"]
    assert [c["spec"]["cidrs"] for c in cidrs] == [[SERVICE_CLUSTER_IP_RANGE]], cidrs
    service_address = ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE)[77]
    pod_address = ipaddress.ip_network(POD_RANGE)[9]
    with server_as_the_chart(cp, tmp_path) as podinit:
        read = [m for m in messages(podinit) if "denied the cluster's ranges" in m]
        assert read == [
            f"registry lookups are denied the cluster's ranges: {SERVICE_CLUSTER_IP_RANGE}, "
            f"{POD_RANGE}"
        ]
        namespace = new_namespace(cp, "netdeny", **OPT_IN)
        try:
            for number, address in enumerate((service_address, pod_address)):
                image = f"{address}:5000/team/app:1"
                before = denied_lookups(podinit)
                made, warnings = create(
                    cp, pod(namespace, f"p{number}", container("app", image=image))
                )
                [app] = made["spec"]["containers"]
                assert "command" not in app, "admitted unwrapped: its ENTRYPOINT is unknown"
                assert f"cannot connect to registry {address}:5000" in warnings
                assert denied_lookups(podinit) == before + 1
            reasons = [
                line["msg"]
                for line in podinit.server.logs()
                if "is in the cluster's Service or Pod ranges" in line.get("msg", "")
            ]
            assert any(str(service_address) in r for r in reasons), reasons
            assert any(str(pod_address) in r for r in reasons), reasons
        finally:
            delete_namespace(cp, namespace)


def messages(podinit: Podinit) -> list[str]:
    return [line.get("msg", "") for line in podinit.server.logs()]


def test_with_the_check_off_no_range_is_read_or_denied(
    control_plane: ControlPlane, node_with_pod_range: str, tmp_path: Path
) -> None:
    env = {"PODINIT_REGISTRY_DENY_CLUSTER_NETWORKS": "false"}
    with running_podinit(control_plane, tmp_path, env=env) as podinit:
        assert not [m for m in messages(podinit) if "cluster's ranges" in m]


def test_a_list_the_server_may_not_make_leaves_the_other_ranges_denied(
    control_plane: ControlPlane, node_with_pod_range: str, tmp_path: Path
) -> None:
    with server_as_the_chart(control_plane, tmp_path, nodes=False) as podinit:
        logged = messages(podinit)
        assert any(m.startswith("cannot list nodes (") for m in logged), logged
        read = [m for m in logged if "denied the cluster's ranges" in m]
        assert read == [
            f"registry lookups are denied the cluster's ranges: {SERVICE_CLUSTER_IP_RANGE}"
        ]


def test_in_auto_mode_the_pod_ranges_come_from_the_nodes_listed_for_image_volumes(
    control_plane: ControlPlane, node_with_pod_range: str, tmp_path: Path
) -> None:
    """auto mode lists the nodes anyway (can they mount image volumes?); the ranges are read
    from that list."""
    with server_as_the_chart(control_plane, tmp_path, mode="auto") as podinit:
        read = [m for m in messages(podinit) if "denied the cluster's ranges" in m]
        assert read == [
            f"registry lookups are denied the cluster's ranges: {SERVICE_CLUSTER_IP_RANGE}, "
            f"{POD_RANGE}"
        ]
