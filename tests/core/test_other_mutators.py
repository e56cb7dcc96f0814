"""Exactly one init, whatever else mutates the pod: other webhooks that rewrite the command, add
containers, or a pod re-created from its own wrapped spec, in either injection mode.

The same cases on the real apiserver with real second mutators:
tests/e2e/test_scenario_other_mutators.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.helpers import apply, container, images, mutated, pod, status
from tests.core.strategies import lookups, pods
from tests.scale import examples
from webhook.core import ImageLookup, InjectionMode, InjectSettings, mutate

COPY = InjectSettings()
IMAGE_VOLUME = InjectSettings(injection_mode=InjectionMode.IMAGE_VOLUME)
INIT = "/podinit/podinit"
VAULT_ENV = "/vault/vault-env"
WRAPPER = "/wrapper"

Pod = dict[str, Any]


# --------------------------------------------------------------------------- other mutators


def moves_command_into_args(original: Pod) -> Pod:
    """bank-vaults' vault-env: `command: [vault-env]`, the original command first in args."""
    result = copy.deepcopy(original)
    for c in result["spec"]["containers"]:
        command = c.get("command") or []
        if command and command[0] != VAULT_ENV:
            c["command"] = [VAULT_ENV]
            c["args"] = command + (c.get("args") or [])
    return result


def prepends_a_wrapper(original: Pod) -> Pod:
    result = copy.deepcopy(original)
    for c in result["spec"]["containers"]:
        command = c.get("command") or []
        if command and command[0] != WRAPPER:
            c["command"] = [WRAPPER, *command]
    return result


def adds_a_sidecar_and_an_init_container(original: Pod) -> Pod:
    """A service mesh: its own init container first, a proxy container last."""
    result = copy.deepcopy(original)
    spec = result["spec"]
    if any(c["name"] == "mesh-proxy" for c in spec["containers"]):
        return result
    spec["initContainers"] = [
        {"name": "mesh-init", "image": "mesh/init:1", "command": ["iptables-setup"]},
        *spec.get("initContainers", []),
    ]
    spec["containers"].append({"name": "mesh-proxy", "image": "mesh/proxy:1", "command": ["p"]})
    return result


def recreated_with_another_command(original: Pod) -> Pod:
    """`kubectl get -o yaml`, the first container's command edited, `kubectl create -f`."""
    result = copy.deepcopy(original)
    result["spec"]["containers"][0]["command"] = ["new-app", "--serve"]
    return result


def podinit(settings: InjectSettings, lookup: ImageLookup) -> Callable[[Pod], Pod]:
    def run(original: Pod) -> Pod:
        return apply(original, mutate(original, settings, lookup))

    return run


# --------------------------------------------------------------------------- what is valid


def problems(result: Pod) -> list[str]:
    """What the apiserver's pod validation would refuse, of what a mutation can break: names
    of volumes and containers unique, a mount path once per container, mounts of volumes the
    pod has."""
    spec = result["spec"]
    found: list[str] = []
    volumes = [v["name"] for v in spec.get("volumes", [])]
    if len(volumes) != len(set(volumes)):
        found.append(f"volume names repeat: {volumes}")
    every = [*spec.get("initContainers", []), *spec["containers"]]
    names = [c["name"] for c in every]
    if len(names) != len(set(names)):
        found.append(f"container names repeat: {names}")
    for c in every:
        paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
        if len(paths) != len(set(paths)):
            found.append(f"{c['name']}: a mount path repeats: {paths}")
        found += [
            f"{c['name']}: mounts a volume the pod lacks: {m['name']}"
            for m in c.get("volumeMounts", [])
            if m["name"] not in volumes
        ]
    return found


def inits_run(c: dict[str, Any]) -> int:
    """How many podinits the container's argv starts, in any mount path."""
    argv = (c.get("command") or []) + (c.get("args") or [])
    return sum(1 for item, after in pairwise(argv) if item.endswith("/podinit") and after == "--")


def copy_containers(result: Pod) -> list[str]:
    return [
        c["name"]
        for c in result["spec"].get("initContainers", [])
        if (c.get("command") or [])[1:2] == ["install"]
    ]


# --------------------------------------------------------------------------- the cases


def app_pod() -> Pod:
    return pod(container(command=["app", "--port=80"]))


@pytest.mark.parametrize("mode", [COPY, IMAGE_VOLUME], ids=["copy", "image-volume"])
def test_a_command_moved_into_args_after_podinit_is_recognised_as_wrapped(
    mode: InjectSettings,
) -> None:
    moved = moves_command_into_args(mutated(app_pod(), settings=mode))
    assert moved["spec"]["containers"][0]["args"][:2] == [INIT, "--"]
    assert mutate(moved, mode, {}).patch == []


@pytest.mark.parametrize("mode", [COPY, IMAGE_VOLUME], ids=["copy", "image-volume"])
def test_a_wrapper_put_in_front_of_podinit_leaves_it_wrapped_once(mode: InjectSettings) -> None:
    wrapped = prepends_a_wrapper(mutated(app_pod(), settings=mode))
    assert mutate(wrapped, mode, {}).patch == []
    assert status(wrapped)["containers"] == {"app": "injected"}


def test_podinit_after_a_command_rewriting_webhook_wraps_its_wrapper_once() -> None:
    result = mutated(moves_command_into_args(app_pod()))
    app = result["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", VAULT_ENV]
    assert app["args"] == ["app", "--port=80"]
    assert mutate(moves_command_into_args(result), COPY, {}).patch == []


@pytest.mark.parametrize("mode", [COPY, IMAGE_VOLUME], ids=["copy", "image-volume"])
def test_a_wrapped_pod_recreated_with_another_command_is_wrapped_again_without_a_second_mount(
    mode: InjectSettings,
) -> None:
    edited = recreated_with_another_command(mutated(app_pod(), settings=mode))
    result = mutated(edited, settings=mode)
    app = result["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "new-app", "--serve"]
    assert [m["mountPath"] for m in app["volumeMounts"]] == ["/podinit"]
    assert problems(result) == []
    assert result["spec"]["volumes"] == edited["spec"]["volumes"]
    assert copy_containers(result) == copy_containers(edited)


def test_a_mesh_adding_its_init_container_and_proxy_keeps_the_copy_container_first() -> None:
    meshed = adds_a_sidecar_and_an_init_container(mutated(app_pod()))
    result = mutated(meshed)
    init_names = [c["name"] for c in result["spec"]["initContainers"]]
    assert init_names == ["podinit-install", "mesh-init"]
    proxy = result["spec"]["containers"][1]
    assert proxy["command"] == [INIT, "--", "p"]
    assert [v["name"] for v in result["spec"]["volumes"]] == ["podinit"]
    assert problems(result) == []


@pytest.mark.parametrize(
    ("written_by", "read_by"),
    [(COPY, IMAGE_VOLUME), (IMAGE_VOLUME, COPY)],
    ids=["copy-read-in-image-volume-mode", "image-volume-read-in-copy-mode"],
)
def test_a_pod_wrapped_in_one_mode_is_wrapped_in_the_other_and_keeps_its_status(
    written_by: InjectSettings, read_by: InjectSettings
) -> None:
    wrapped = mutated(pod(container(), container("web")), images(app=(["app"], [])), written_by)
    assert mutate(wrapped, read_by, {}).patch == []


def test_a_sidecar_added_to_a_copy_mode_pod_is_wrapped_from_the_same_volume_in_image_mode() -> None:
    wrapped = mutated(app_pod())
    wrapped["spec"]["containers"].append(container("late", command=["late"]))
    result = mutated(wrapped, settings=IMAGE_VOLUME)
    assert result["spec"]["containers"][1]["command"] == [INIT, "--", "late"]
    assert [v["name"] for v in result["spec"]["volumes"]] == ["podinit"]
    assert "emptyDir" in result["spec"]["volumes"][0]
    assert status(result)["copyContainer"] == "podinit-install"


def test_a_copy_mode_pod_whose_copy_container_was_dropped_gets_it_back_in_image_mode() -> None:
    wrapped = mutated(app_pod())
    del wrapped["spec"]["initContainers"]
    result = mutated(wrapped, settings=IMAGE_VOLUME)
    assert copy_containers(result) == ["podinit-install"]


@pytest.mark.parametrize("mode", [COPY, IMAGE_VOLUME], ids=["copy", "image-volume"])
def test_a_wrapped_pod_that_lost_its_status_annotation_is_recognised_from_its_spec(
    mode: InjectSettings,
) -> None:
    wrapped = mutated(
        pod(container(command=["app"]), container("web", command=["web"])), None, mode
    )
    del wrapped["metadata"]["annotations"]
    result = mutated(wrapped, settings=mode)
    assert result["spec"]["volumes"] == wrapped["spec"]["volumes"]
    assert [inits_run(c) for c in result["spec"]["containers"]] == [1, 1]
    assert status(result)["containers"] == {"app": "injected", "web": "injected"}


def test_a_wrapped_container_without_the_mount_gets_it() -> None:
    wrapped = mutated(pod(container(command=["app"]), container("web", command=["web"])))
    del wrapped["spec"]["containers"][1]["volumeMounts"]
    result = mutated(wrapped)
    assert result["spec"]["containers"][1]["volumeMounts"] == [
        {"name": "podinit", "mountPath": "/podinit", "readOnly": True}
    ]


# --------------------------------------------------------------------------- interleavings

MUTATORS = {
    "moves-command-into-args": moves_command_into_args,
    "prepends-a-wrapper": prepends_a_wrapper,
    "adds-a-sidecar-and-an-init-container": adds_a_sidecar_and_an_init_container,
    "recreated-with-another-command": recreated_with_another_command,
    "podinit-copy": None,
    "podinit-image-volume": None,
}


@given(
    original=pods(),
    lookup=lookups,
    steps=st.lists(st.sampled_from(sorted(MUTATORS)), min_size=1, max_size=6),
    last=st.sampled_from([COPY, IMAGE_VOLUME]),
)
@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_any_interleaving_with_other_mutators_gives_a_valid_pod_with_one_podinit_per_container(
    original: Pod, lookup: ImageLookup, steps: list[str], last: InjectSettings
) -> None:
    result = original
    for step in steps:
        mode = COPY if step == "podinit-copy" else IMAGE_VOLUME
        result = (MUTATORS[step] or podinit(mode, lookup))(result)
    mutation = mutate(result, last, lookup)
    result = apply(result, mutation)  # podinit last: the apiserver's reinvocation
    trace = json.dumps(result["spec"], indent=1)
    assert problems(result) == [], trace
    kubernetes_validate.validate(result, "1.37.0", strict=True)
    every = [*result["spec"].get("initContainers", []), *result["spec"]["containers"]]
    assert all(inits_run(c) <= 1 for c in every), trace
    injected = {d.container for d in mutation.decisions if d.outcome == "injected"}
    assert all(inits_run(c) == 1 for c in every if c["name"] in injected), trace
    assert len(copy_containers(result)) <= 1, trace
    assert mutate(result, last, lookup).patch == []
