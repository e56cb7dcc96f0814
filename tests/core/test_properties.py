"""Properties that hold for every pod: the patch applies, is idempotent, and keeps each argv."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings

from tests.core.strategies import lookups, pods
from webhook.core import ImageLookup, InjectionMode, InjectSettings, mutate
from webhook.core.argv import escape
from webhook.core.images import ImageConfig

MODES = [InjectSettings(), InjectSettings(injection_mode=InjectionMode.IMAGE_VOLUME)]
SCHEMA_VERSIONS = ["1.30.0", "1.33.0", "1.37.0"]


def apply(pod: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    return jsonpatch.apply_patch(copy.deepcopy(pod), ops)  # type: ignore[no-any-return]


def original_argv(container: dict[str, Any], lookup: ImageLookup) -> list[str]:
    command, args = container.get("command") or None, container.get("args") or None
    if command is not None:
        return command + (args or [])
    image = lookup[container["image"]]
    assert isinstance(image, ImageConfig)
    entrypoint = () if image.entrypoint == ("",) else image.entrypoint  # `ENTRYPOINT [""]`: none
    return escape(entrypoint) + (args if args is not None else escape(image.cmd))


@pytest.mark.parametrize("mode", MODES, ids=["copy", "image-volume"])
@given(pod=pods(), lookup=lookups)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_every_patch_applies_and_a_second_pass_changes_nothing(
    mode: InjectSettings, pod: dict[str, Any], lookup: ImageLookup
) -> None:
    first = mutate(pod, mode, lookup)
    result = apply(pod, first.patch)
    assert mutate(result, mode, lookup).patch == []


@pytest.mark.parametrize("mode", MODES, ids=["copy", "image-volume"])
@given(pod=pods(), lookup=lookups)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_wrapped_containers_run_their_original_argv_and_nothing_else_changes(
    mode: InjectSettings, pod: dict[str, Any], lookup: ImageLookup
) -> None:
    mutation = mutate(pod, mode, lookup)
    result = apply(pod, mutation.patch)
    injected = {d.container for d in mutation.decisions if d.outcome == "injected"}
    before = {
        c["name"]: c for f in ("initContainers", "containers") for c in pod["spec"].get(f, [])
    }
    after = {
        c["name"]: c for f in ("initContainers", "containers") for c in result["spec"].get(f, [])
    }
    for name, old in before.items():
        new = after[name]
        if name not in injected:
            assert new == old
            continue
        init_path = new["command"][0]
        assert new["command"][:2] == [init_path, "--"]
        assert new["command"][2:] + (new.get("args") or []) == original_argv(old, lookup)
        for key in ("volumeMounts", "env"):
            assert new.get(key, [])[: len(old.get(key, []))] == old.get(key, [])
        untouched = {"command", "args", "volumeMounts", "env"}
        assert {k: v for k, v in new.items() if k not in untouched} == {
            k: v for k, v in old.items() if k not in untouched
        }
    assert result["spec"].get("volumes", [])[: len(pod["spec"].get("volumes", []))] == pod[
        "spec"
    ].get("volumes", [])
    added = set(after) - set(before)
    assert added <= ({"podinit-install", "podinit-install-1"} if injected else set())
    annotations = dict(result["metadata"].get("annotations", {}))
    annotations.pop("podinit.dev/status", None)
    assert annotations == pod["metadata"].get("annotations", {})


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@given(pod=pods(), lookup=lookups)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_mutated_pods_validate_against_the_kubernetes_schema(
    version: str, pod: dict[str, Any], lookup: ImageLookup
) -> None:
    mode = MODES[1] if version >= "1.33" else MODES[0]
    kubernetes_validate.validate(pod, version, strict=True)
    result = apply(pod, mutate(pod, mode, lookup).patch)
    kubernetes_validate.validate(result, version, strict=True)
