"""Quantities as Kubernetes writes them, and the copy container's resources: a mirror of the
smallest app container's, so the pod's QoS class, effective requests and LimitRange admission
stay as they were (the apiserver's own verdicts: tests/e2e/test_scenario_resources.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.core.helpers import container, mutated, pod
from webhook.core import InjectSettings
from webhook.core.resources import quantity
from webhook.core.settings import Resources


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        ("0.25", Decimal("0.25")),
        ("2000m", Decimal(2)),
        ("1e3m", Decimal(1)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("64Mi", Decimal(64 * 2**20)),
        (2, Decimal(2)),
    ],
)
def test_quantities_are_read_as_numbers(written: object, value: Decimal) -> None:
    assert quantity(written) == value


@pytest.mark.parametrize(
    "written", ["", "one", "1x", "m", "1.2.3", ".", None, True, ["1"], {"cpu": 1}]
)
def test_what_is_not_a_quantity_is_none(written: object) -> None:
    assert quantity(written) is None


def copy_resources_of(*containers: dict[str, Any], settings: InjectSettings | None = None) -> Any:
    result = mutated(pod(*containers), settings=settings or InjectSettings())
    [copy] = [c for c in result["spec"]["initContainers"] if c["name"] == "podinit-install"]
    return copy.get("resources")


def app(name: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    extra = {} if resources is None else {"resources": resources}
    return container(name, command=["app"], **extra)


def test_a_guaranteed_pods_copy_container_has_requests_equal_to_limits() -> None:
    big = {"cpu": "2", "memory": "1Gi"}
    small = {"cpu": "250m", "memory": "128Mi"}
    got = copy_resources_of(
        app("a", {"requests": big, "limits": big}), app("b", {"requests": small, "limits": small})
    )
    assert got == {"requests": small, "limits": small}


def test_a_best_effort_pods_copy_container_claims_nothing() -> None:
    assert copy_resources_of(app("a"), app("b", {})) is None


def test_the_copy_mirrors_the_container_with_the_smallest_memory_limit_then_request() -> None:
    capped = {"limits": {"memory": "256Mi"}}
    requested = {"requests": {"memory": "64Mi", "cpu": "100m"}}
    assert copy_resources_of(app("a", requested), app("b", capped)) == capped
    assert copy_resources_of(app("a", requested), app("b", {})) == requested


def test_a_zero_quantity_is_smaller_than_an_unset_one() -> None:
    zero = {"requests": {"memory": "0"}}
    assert copy_resources_of(app("a", {"requests": {"cpu": "1"}}), app("b", zero)) == zero


def test_only_cpu_memory_and_ephemeral_storage_are_mirrored() -> None:
    resources = {
        "requests": {"cpu": "1", "nvidia.com/gpu": "1", "ephemeral-storage": "1Gi"},
        "limits": {"nvidia.com/gpu": "1", "hugepages-2Mi": "64Mi", "memory": "1Gi"},
    }
    assert copy_resources_of(app("a", resources)) == {
        "requests": {"cpu": "1", "ephemeral-storage": "1Gi"},
        "limits": {"memory": "1Gi"},
    }


def test_a_container_with_only_gpus_gives_a_copy_without_resources() -> None:
    gpus = {"limits": {"nvidia.com/gpu": "1"}}
    assert copy_resources_of(app("a", gpus)) is None


def test_sidecars_and_init_containers_are_not_mirrored() -> None:
    sidecar = app("side", {"requests": {"memory": "1Mi"}}) | {"restartPolicy": "Always"}
    result = mutated(
        pod(app("a", {"requests": {"memory": "1Gi"}}), initContainers=[sidecar]),
        settings=InjectSettings(),
    )
    copy = result["spec"]["initContainers"][0]
    assert copy["name"] == "podinit-install"
    assert copy["resources"] == {"requests": {"memory": "1Gi"}}


def test_fixed_resources_replace_the_mirror() -> None:
    fixed = Resources(requests=(("cpu", "10m"), ("memory", "16Mi")), limits=(("memory", "16Mi"),))
    settings = InjectSettings(copy_container_resources=fixed)
    got = copy_resources_of(app("a", {"limits": {"cpu": "4"}}), settings=settings)
    assert got == {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}}


def test_fixed_resources_with_a_bad_quantity_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match=r"copy_container_resources\.limits\.memory"):
        InjectSettings(copy_container_resources=Resources(limits=(("memory", "16 MiB"),)))


def test_a_pod_with_no_app_container_but_a_sidecar_gets_a_copy_without_resources() -> None:
    """Not a valid pod, but `inject` may meet it in a manifest: no app container to mirror."""
    sidecar = app("proxy", {"limits": {"memory": "64Mi"}}) | {"restartPolicy": "Always"}
    original = pod(initContainers=[sidecar])
    original["spec"]["containers"] = []
    result = mutated(original)
    copy, proxy = result["spec"]["initContainers"]
    assert copy["name"] == "podinit-install" and "resources" not in copy
    assert proxy["command"] == ["/podinit/podinit", "--", "app"]
