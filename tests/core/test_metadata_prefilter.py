"""The pod watch reads a pod's spec only when its metadata says it may be unwrapped
(`may_be_unwrapped`): every pod `observe` calls failed or slipped must pass that test, or the
gauge and the reconciler would never see it."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings

from tests.core.helpers import container, mutated, pod
from tests.core.strategies import lookups, pods
from tests.scale import examples
from webhook.core import (
    UNWRAPPED,
    ImageLookup,
    InjectionMode,
    InjectSettings,
    may_be_unwrapped,
    mutate,
    observe,
    prepare,
)

MODES = [InjectSettings(), InjectSettings(injection_mode=InjectionMode.IMAGE_VOLUME)]


def unwrapped(running: dict[str, Any], lookup: ImageLookup, settings: InjectSettings) -> bool:
    plan = prepare(running, settings)
    seen = observe(plan, plan.decide(lookup), selected=True)
    return any(o.state in UNWRAPPED for o in seen)


@pytest.mark.parametrize("mode", MODES, ids=["copy", "image-volume"])
@given(original=pods(), lookup=lookups)
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_pod_the_webhook_left_unwrapped_or_never_saw_passes_the_metadata_test(
    mode: InjectSettings, original: dict[str, Any], lookup: ImageLookup
) -> None:
    admitted = jsonpatch.apply_patch(copy.deepcopy(original), mutate(original, mode, lookup).patch)
    for running in (original, admitted):
        if unwrapped(running, lookup, mode):
            assert may_be_unwrapped(running["metadata"])


def test_a_pod_as_the_webhook_wrapped_it_needs_no_second_look() -> None:
    admitted = mutated(pod(container(command=["app"])))
    assert not may_be_unwrapped(admitted["metadata"])


def test_a_pod_without_a_status_needs_a_look() -> None:
    assert may_be_unwrapped(pod(container(command=["app"]))["metadata"])


def test_a_pod_whose_status_records_a_failure_needs_a_look() -> None:
    failed = mutated(pod(container(image="example/unknown:1")))  # no image config: failed
    assert "failed" in failed["metadata"]["annotations"]["podinit.dev/status"]
    assert may_be_unwrapped(failed["metadata"])


def test_a_pod_whose_spec_changed_after_admission_needs_a_look() -> None:
    """An image changed while the webhook was not reached: the apiserver counts spec changes
    in metadata.generation."""
    admitted = mutated(pod(container(command=["app"])))
    admitted["metadata"]["generation"] = 2
    assert may_be_unwrapped(admitted["metadata"])


@pytest.mark.parametrize(
    "annotations",
    [{"podinit.dev/inject": "false"}, {"kubernetes.io/config.mirror": "abc"}],
    ids=["opted-out", "mirror"],
)
def test_opted_out_and_mirror_pods_never_need_a_look(annotations: dict[str, str]) -> None:
    left_alone = pod(container(command=["app"]), annotations=annotations)
    assert not may_be_unwrapped(left_alone["metadata"])


def test_a_pod_being_deleted_never_needs_a_look() -> None:
    leaving = pod(container(command=["app"]))
    leaving["metadata"]["deletionTimestamp"] = "2026-12-07T06:00:00Z"
    assert not may_be_unwrapped(leaving["metadata"])
