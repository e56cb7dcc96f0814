"""Which ranges the server denies registry lookups, from what the API lists (the lists
themselves are read from a real apiserver in tests/e2e/test_cluster_networks.py)."""

from __future__ import annotations

from typing import Any

from webhook.server.cluster_networks import cluster_ranges

KUBERNETES = {
    "metadata": {"name": "kubernetes"},
    "spec": {"cidrs": ["10.96.0.0/12", "fd00:10:96::/112"]},
}


def node(*pod_cidrs: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "n"},
        "spec": {"podCIDR": pod_cidrs[0] if pod_cidrs else None, "podCIDRs": list(pod_cidrs)},
    }


def test_a_dual_stack_clusters_service_and_pod_ranges_are_all_denied_each_once() -> None:
    nodes = [
        node("10.244.0.0/24", "fd00:10:244::/64"),
        node("10.244.1.0/24"),
        node("10.244.0.0/24"),
    ]
    assert cluster_ranges([KUBERNETES], nodes) == (
        "10.96.0.0/12",
        "10.244.0.0/24",
        "10.244.1.0/24",
        "fd00:10:96::/112",
        "fd00:10:244::/64",
    )


def test_a_service_cidr_an_administrator_added_is_denied_too() -> None:
    extra = {"metadata": {"name": "extra"}, "spec": {"cidrs": ["172.20.0.0/16"]}}
    assert cluster_ranges([KUBERNETES, extra], []) == (
        "10.96.0.0/12",
        "172.20.0.0/16",
        "fd00:10:96::/112",
    )


def test_nodes_without_pod_ranges_add_nothing() -> None:
    """Network plugins with pools of their own leave spec.podCIDRs unset."""
    bare = {"metadata": {"name": "n"}, "spec": {}}
    assert cluster_ranges([], [bare, {"metadata": {}}, node()]) == ()


def test_what_is_not_a_network_is_left_out_and_the_rest_kept() -> None:
    odd = [
        {"spec": {"cidrs": ["not-a-cidr", 7, None, "10.1.0.0/16"]}},
        {"spec": {"cidrs": "10.2.0.0/16"}},  # not a list
        {"spec": None},
        "not an object",
    ]
    assert cluster_ranges(odd, [node("10.3.0.1/24")]) == ("10.1.0.0/16", "10.3.0.0/24")
