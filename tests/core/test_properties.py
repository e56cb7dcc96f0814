"""Properties that hold for every pod: the patch applies, is idempotent, and keeps each argv."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings

from e2e.ocispec import container_env, expand
from tests.core.strategies import DIGEST, lookups, pods
from tests.scale import examples
from webhook.core import ImageLookup, InjectionMode, InjectSettings, mutate
from webhook.core.images import ImageConfig

MODES = [InjectSettings(), InjectSettings(injection_mode=InjectionMode.IMAGE_VOLUME)]
SCHEMA_VERSIONS = ["1.30.0", "1.33.0", "1.37.0"]


def apply(pod: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    return jsonpatch.apply_patch(copy.deepcopy(pod), ops)  # type: ignore[no-any-return]


def kubelet_runs(container: dict[str, Any], lookup: ImageLookup) -> list[str]:
    """The argv the runtime starts for `container`, worked out without podinit's code.

    The kubelet expands `$(VAR)` in `command` and `args` with the container's env (an undefined
    reference stays as written, `$$` is `$`: e2e.ocispec.expand), never in the image's
    ENTRYPOINT/CMD. containerd then fills in from the image: an empty list is unset, no
    `command` takes the ENTRYPOINT (`ENTRYPOINT [""]`: none) and, when `args` is unset too,
    the CMD; a `command` drops the CMD even without `args`.
    """
    env = container_env(container)
    command = [expand(s, env) for s in container.get("command") or []]
    args = [expand(s, env) for s in container.get("args") or []]
    if command:
        return command + args
    image = lookup[unpinned(container["image"])]
    assert isinstance(image, ImageConfig)
    entrypoint = [] if image.entrypoint == ("",) else list(image.entrypoint)
    return entrypoint + (args or list(image.cmd))


def unpinned(image: str) -> str:
    """The image as the pod named it, before podinit pinned it to `@DIGEST`."""
    return image.removesuffix(f"@{DIGEST}")


@pytest.mark.parametrize("mode", MODES, ids=["copy", "image-volume"])
@given(pod=pods(), lookup=lookups)
@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_every_patch_applies_and_a_second_pass_changes_nothing(
    mode: InjectSettings, pod: dict[str, Any], lookup: ImageLookup
) -> None:
    first = mutate(pod, mode, lookup)
    result = apply(pod, first.patch)
    assert mutate(result, mode, lookup).patch == []


@pytest.mark.parametrize("mode", MODES, ids=["copy", "image-volume"])
@given(pod=pods(), lookup=lookups)
@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
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
        assert init_path.endswith("/podinit") and new["command"][1] == "--"
        assert kubelet_runs(new, lookup) == [init_path, "--", *kubelet_runs(old, lookup)]
        for key in ("volumeMounts", "env"):
            assert new.get(key, [])[: len(old.get(key, []))] == old.get(key, [])
        if new["image"] != old["image"]:  # pinned to the digest its argv was read from
            read = lookup[old["image"]]
            assert isinstance(read, ImageConfig) and not old.get("command")
            assert new["image"] == f"{old['image']}@{read.digest}"
        untouched = {"command", "args", "volumeMounts", "env", "image"}
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
@settings(max_examples=examples(25), suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_mutated_pods_validate_against_the_kubernetes_schema(
    version: str, pod: dict[str, Any], lookup: ImageLookup
) -> None:
    mode = MODES[1] if version >= "1.33" else MODES[0]
    kubernetes_validate.validate(pod, version, strict=True)
    result = apply(pod, mutate(pod, mode, lookup).patch)
    kubernetes_validate.validate(result, version, strict=True)


def test_the_init_options_env_does_not_change_what_the_app_is_given() -> None:
    """PODINIT_GRACE is defined for the init; the pod's own reference to it stays literal."""
    container = {
        "name": "a",
        "image": "x",
        "command": ["echo", "$(PODINIT_GRACE)", "$$(PODINIT_GRACE)", "$(PODINIT_GRACE"],
        "args": ["x$(PODINIT_GRACE)y", "$(A)"],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {"podinit.dev/grace": "5"}},
        "spec": {"containers": [container]},
    }
    new = apply(pod, mutate(pod, InjectSettings(), {}).patch)["spec"]["containers"][0]
    assert kubelet_runs(new, {}) == ["/podinit/podinit", "--", *kubelet_runs(container, {})]
