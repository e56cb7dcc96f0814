"""The copy container changes nothing the apiserver judges: each pod is created twice, in a
namespace podinit wraps and in one it does not, under the same LimitRange or ResourceQuota,
and the apiserver's own verdicts must agree: admitted or refused, the QoS class it computes,
and the usage it charges to the quota. The unwrapped pod's verdict is the expected value.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    COPY_CONTAINER,
    Podinit,
    container,
    delete_namespace,
    new_namespace,
    pod,
    unique,
)

SLEEP = ["sh", "-c", "sleep 3600"]


def both_ways(
    cp: ControlPlane, policy: dict[str, Any] | None, *containers: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod created where podinit wraps it and where it does not, each namespace holding
    `policy` (a LimitRange or ResourceQuota): {'created': bool, 'error', 'qos', 'pod'} each."""
    results = []
    for labels in ({"podinit.dev/inject": "enabled"}, {}):
        namespace = new_namespace(cp, "e2e-res", **labels)
        try:
            if policy is not None:
                cp.apply({**policy, "metadata": {**policy["metadata"], "namespace": namespace}})
            results.append(_create(cp, pod(namespace, unique("p"), *containers)))
            if policy is not None and policy["kind"] == "ResourceQuota":
                results[-1]["used"] = _quota_used(cp, namespace, policy["metadata"]["name"])
        finally:
            delete_namespace(cp, namespace)
    wrapped, plain = results
    return wrapped, plain


def _create(cp: ControlPlane, manifest: dict[str, Any]) -> dict[str, Any]:
    done = cp.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(manifest), check=False)
    if done.returncode != 0:
        return {"created": False, "error": done.stderr.strip()}
    stored = json.loads(done.stdout)
    return {"created": True, "qos": stored["status"].get("qosClass"), "pod": stored}


def _quota_used(cp: ControlPlane, namespace: str, name: str) -> dict[str, str]:
    """What the quota charges: written by the ResourceQuota admission plugin as it admits."""
    quota = cp.kubectl_json("get", "resourcequota", name, "-n", namespace)
    return {k: v for k, v in quota["status"]["used"].items() if k != "pods"}


def has_copy_container(result: dict[str, Any]) -> bool:
    inits = result["pod"]["spec"].get("initContainers") or []
    return [c["name"] for c in inits][:1] == [COPY_CONTAINER]


def limit_range(limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits"},
        "spec": {"limits": [limits]},
    }


def app(resources: dict[str, Any] | None = None, name: str = "app") -> dict[str, Any]:
    return container(name, SLEEP, **({} if resources is None else {"resources": resources}))


LIMIT_RANGES = {
    "max-limit-request-ratio": (
        {"type": "Container", "maxLimitRequestRatio": {"cpu": "10"}},
        {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}},
    ),
    "min": (
        {"type": "Container", "min": {"memory": "32Mi", "cpu": "50m"}},
        {"requests": {"memory": "64Mi", "cpu": "100m"}},
    ),
    "max": (
        {"type": "Container", "max": {"memory": "1Gi", "cpu": "1"}},
        {"limits": {"memory": "512Mi", "cpu": "500m"}},
    ),
    "defaults": (
        {
            "type": "Container",
            "default": {"memory": "256Mi", "cpu": "200m"},
            "defaultRequest": {"memory": "128Mi", "cpu": "100m"},
        },
        None,
    ),
    "pod-max": (
        {"type": "Pod", "max": {"memory": "1Gi", "cpu": "1"}},
        {"limits": {"memory": "512Mi", "cpu": "500m"}},
    ),
}


@pytest.mark.parametrize("name", sorted(LIMIT_RANGES))
def test_a_limit_range_the_unwrapped_pod_satisfies_admits_the_wrapped_pod_with_the_same_qos(
    control_plane: ControlPlane, podinit: Podinit, name: str
) -> None:
    limits, resources = LIMIT_RANGES[name]
    wrapped, plain = both_ways(
        control_plane, limit_range(limits), app(resources), app(resources, "worker")
    )
    assert plain["created"], plain
    assert wrapped["created"], wrapped["error"]
    assert has_copy_container(wrapped)
    assert wrapped["qos"] == plain["qos"]


@pytest.mark.parametrize(
    "resources",
    [
        {
            "requests": {"cpu": "500m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        {"requests": {"cpu": "100m"}},
        None,
    ],
    ids=["guaranteed", "burstable", "best-effort"],
)
def test_the_wrapped_pod_keeps_the_qos_class_the_apiserver_gives_the_unwrapped_one(
    control_plane: ControlPlane, podinit: Podinit, resources: dict[str, Any] | None
) -> None:
    wrapped, plain = both_ways(control_plane, None, app(resources), app(resources, "worker"))
    assert has_copy_container(wrapped)
    assert wrapped["qos"] == plain["qos"]
    assert plain["qos"] in {"Guaranteed", "Burstable", "BestEffort"}


def test_a_resource_quota_charges_the_wrapped_pod_what_it_charges_the_unwrapped_one(
    control_plane: ControlPlane, podinit: Podinit
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute"},
        "spec": {
            "hard": {
                "requests.cpu": "4",
                "requests.memory": "4Gi",
                "limits.cpu": "8",
                "limits.memory": "8Gi",
                "pods": "10",
            }
        },
    }
    small = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    large = {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    wrapped, plain = both_ways(control_plane, quota, app(small), app(large, "worker"))
    assert wrapped["created"], wrapped["error"]
    assert has_copy_container(wrapped)
    assert wrapped["used"] == plain["used"]


def test_the_stored_copy_container_mirrors_the_smallest_app_container(
    control_plane: ControlPlane, podinit: Podinit
) -> None:
    """What the other tests rely on, read from the stored pod."""
    small = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
    large = {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    wrapped, _ = both_ways(control_plane, None, app(large), app(small, "worker"))
    copy = wrapped["pod"]["spec"]["initContainers"][0]
    assert copy["resources"] == small
