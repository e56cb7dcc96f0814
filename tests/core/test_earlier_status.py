"""What an earlier pass left in the pod: its status annotation is trusted only as far as the pod
still bears it out. A status from an older version, one edited by hand, or one naming what
the pod no longer has never makes a pod invalid, never raises anything but InvalidPod, and
never moves podinit to a path the kubelet cannot run.

Several of these were found by mutation testing (docs/mutation.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.core.helpers import INIT, SETTINGS, container, images, mutate, mutated, pod, status
from tests.core.test_other_mutators import (
    copy_containers,
    inits_run,
    moves_command_into_args,
    problems,
)
from webhook.core import ImageConfig, InjectionMode, InjectSettings, prepare

STATUS = "podinit.dev/status"
IMAGE_VOLUME = InjectSettings(injection_mode=InjectionMode.IMAGE_VOLUME)
OUR_VOLUME = {"name": "podinit", "emptyDir": {"sizeLimit": "8Mi"}}


def _with_status(recorded: object, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    text = recorded if isinstance(recorded, str) else json.dumps(recorded)
    return pod(*(containers or [container(command=["app"])]), annotations={STATUS: text}, **spec)


# ------------------------------------------------------------------------- names reused


def test_a_copy_container_renamed_for_a_clash_is_recognised_on_the_next_pass() -> None:
    """The pod has its own `podinit-install`: podinit's is `podinit-install-1`, and a second
    pass neither wraps it nor adds a third."""
    theirs = container("podinit-install", command=["/their/install"])
    first = mutated(pod(container(command=["app"]), initContainers=[theirs]))
    assert copy_containers(first) == ["podinit-install-1"]
    assert mutate(first, SETTINGS, {}).patch == []
    del first["metadata"]["annotations"]  # the status lost: found from the spec alone
    again = mutated(first)
    assert copy_containers(again) == ["podinit-install-1"]
    assert [c["name"] for c in again["spec"]["initContainers"]] == [
        "podinit-install-1",
        "podinit-install",
    ]
    assert status(again)["copyContainer"] == "podinit-install-1"


def test_an_image_volume_status_on_a_copy_mode_pod_finds_its_renamed_copy_container() -> None:
    """An image-volume pass records no copy container; the pod's emptyDir shows which it is."""
    theirs = container("podinit-install", command=["/their/install"])
    first = mutated(pod(container(command=["app"]), initContainers=[theirs]))
    recorded = status(first)
    del recorded["copyContainer"]
    first["metadata"]["annotations"][STATUS] = json.dumps(recorded, separators=(",", ":"))
    again = mutated(first)
    assert copy_containers(again) == ["podinit-install-1"]
    assert again["spec"]["initContainers"] == first["spec"]["initContainers"]
    assert status(again)["copyContainer"] == "podinit-install-1"


def test_a_status_naming_a_volume_the_pod_no_longer_has_gets_the_volume_back() -> None:
    recorded = {"volume": "gone", "mountPath": "/gone", "copyContainer": "podinit-install"}
    result = mutated(_with_status(recorded))
    assert problems(result) == []
    assert result["spec"]["volumes"] == [OUR_VOLUME]
    assert result["spec"]["containers"][0]["command"] == [INIT, "--", "app"]
    assert copy_containers(result) == ["podinit-install"]


def test_a_status_naming_a_volume_that_is_not_an_empty_dir_is_not_taken_for_podinits() -> None:
    recorded = {"volume": "conf", "mountPath": "/conf", "copyContainer": "podinit-install"}
    original = _with_status(recorded, volumes=[{"name": "conf", "configMap": {"name": "c"}}])
    result = mutated(original)
    assert problems(result) == []
    assert [v["name"] for v in result["spec"]["volumes"]] == ["conf", "podinit"]
    assert result["spec"]["containers"][0]["command"] == [INIT, "--", "app"]


def test_the_recorded_mount_path_is_kept_when_the_volume_is_still_there() -> None:
    recorded = {"volume": "pi", "mountPath": "/opt/pi/", "copyContainer": "pi-copy"}
    original = _with_status(recorded, volumes=[{"name": "pi", "emptyDir": {}}])
    result = mutated(original)
    assert result["spec"]["containers"][0]["command"] == ["/opt/pi/podinit", "--", "app"]
    assert result["spec"]["volumes"] == [{"name": "pi", "emptyDir": {}}]
    assert copy_containers(result) == ["pi-copy"]


# ------------------------------------------------------------------------- statuses not trusted


@pytest.mark.parametrize(
    "recorded",
    [
        {"volume": "podinit", "mountPath": "podinit"},
        {"volume": "podinit", "mountPath": "/$(HOME)"},
        {"volume": "podinit", "mountPath": ""},
        {"volume": "podinit", "mountPath": "/podinit", "copyContainer": ""},
        {"volume": "podinit", "mountPath": "/podinit", "copyContainer": 5},
        {"volume": "podinit", "mountPath": ["/podinit"]},
        {"volume": "podinit"},
        {"volume": ["podinit"], "mountPath": "/elsewhere"},
        {"mountPath": "/elsewhere"},
    ],
    ids=[
        "relative-path",
        "dollar-path",
        "empty-path",
        "empty-copy-name",
        "copy-name-not-a-string",
        "path-not-a-string",
        "no-path",
        "volume-not-a-string",
        "no-volume",
    ],
)
def test_an_unsound_status_is_ignored_and_the_pod_is_wrapped_as_if_it_had_none(
    recorded: dict[str, Any],
) -> None:
    """The pod has podinit's volume (an emptyDir named podinit) but no copy container: the
    status alone would make it podinit's; unsound, the volume is the pod's own."""
    original = _with_status(recorded, volumes=[{"name": "podinit", "emptyDir": {}}])
    result = mutated(original)
    assert problems(result) == []
    assert [v["name"] for v in result["spec"]["volumes"]] == ["podinit", "podinit-1"]
    assert result["spec"]["containers"][0]["command"] == [INIT, "--", "app"]
    assert status(result)["volume"] == "podinit-1"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        '{"notes": "a: not a list"}',
        '{"notes": [1, null, {"a": 1}]}',
        '{"fromImage": ["app"]}',
        '{"fromImage": {"app": "example/app:1"}}',
        '{"fromImage": {"app": {"image": 5, "cmd": true}}}',
        '{"fromImage": {"app": {"image": "example/old:1", "cmd": "yes"}}}',
        '{"containers": 5, "volume": null}',
    ],
)
def test_a_malformed_status_is_read_as_none_without_raising(text: str) -> None:
    """`prepare` promises to raise only InvalidPod, and a status is no reason for even that."""
    original = _with_status(text, container(), volumes=[{"name": "podinit", "emptyDir": {}}])
    plan = prepare(original, SETTINGS)
    result = mutated(original, images(app=(["/app"], [])))
    assert result["spec"]["containers"][0]["command"] == [INIT, "--", "/app"]
    assert status(result)["containers"] == {"app": "injected"}
    assert plan.images == {"example/app:1"}


def test_only_notes_that_are_strings_naming_a_wrapped_container_are_kept() -> None:
    lookup = images(app=(["/app"], []))
    first = mutated(pod(container(), container("web", command=["/web"])), lookup)
    recorded = status(first)
    recorded["notes"] = ["app: arm64 differs", 7, "web: kept too", "gone: dropped", None]
    first["metadata"]["annotations"][STATUS] = json.dumps(recorded)
    again = status(mutated(first))
    assert again["notes"] == ["app: arm64 differs", "web: kept too"]


# ------------------------------------------------------------------------- found from the spec


def test_an_image_volume_of_the_pods_own_is_not_taken_for_podinits() -> None:
    """Without a status, an image volume is podinit's only when a container runs the init
    from where it is mounted."""
    tools = {"name": "tools", "image": {"reference": "example/tools:1"}}
    mounted = container(
        command=["app"], args=["--x"], volumeMounts=[{"name": "tools", "mountPath": "/tools"}]
    )
    result = mutated(pod(mounted, volumes=[tools]), settings=IMAGE_VOLUME)
    assert problems(result) == []
    assert [v["name"] for v in result["spec"]["volumes"]] == ["tools", "podinit"]
    assert result["spec"]["containers"][0]["command"] == [INIT, "--", "app"]


def test_an_image_volume_pod_whose_command_was_moved_into_args_is_known_without_status() -> None:
    """vault-env's rewrite after podinit, then the status lost: the init runs from args."""
    wrapped = mutated(pod(container(command=["app"])), settings=IMAGE_VOLUME)
    moved = moves_command_into_args(wrapped)
    del moved["metadata"]["annotations"]
    result = mutated(moved, settings=IMAGE_VOLUME)
    assert result["spec"]["volumes"] == wrapped["spec"]["volumes"]
    assert result["spec"]["containers"][0]["args"] == [INIT, "--", "app"]
    assert inits_run(result["spec"]["containers"][0]) == 1
    assert status(result)["containers"] == {"app": "injected"}


def test_a_wrapped_pod_with_other_mounts_that_lost_its_status_keeps_its_mount_path() -> None:
    data = {"name": "data", "mountPath": "/data"}
    app = container(command=["app"], volumeMounts=[data])
    wrapped = mutated(pod(app, volumes=[{"name": "data", "emptyDir": {}}]))
    del wrapped["metadata"]["annotations"]
    result = mutated(wrapped)
    assert result["spec"] == wrapped["spec"]
    assert status(result)["containers"] == {"app": "injected"}
    assert status(result)["volume"] == "podinit"
    assert status(result)["mountPath"] == "/podinit"


def test_an_init_container_installing_podinit_outside_its_volume_is_not_podinits() -> None:
    """A user's own `podinit install` into a path its emptyDir does not hold: the volume is
    not podinit's, and podinit adds its own."""
    setup = container(
        "setup",
        command=["/podinit", "install", "/opt/podinit"],
        volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
    )
    app = container(command=["app"], volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])
    original = pod(app, initContainers=[setup], volumes=[{"name": "scratch", "emptyDir": {}}])
    result = mutated(original)
    assert problems(result) == []
    assert [v["name"] for v in result["spec"]["volumes"]] == ["scratch", "podinit"]
    assert copy_containers(result) == ["podinit-install", "setup"]
    assert result["spec"]["containers"][0]["command"] == [INIT, "--", "app"]


def test_a_copy_container_mount_written_with_a_trailing_slash_is_still_podinits() -> None:
    """As re-created from YAML someone tidied by hand, with the status lost."""
    wrapped = mutated(pod(container(command=["app"])))
    del wrapped["metadata"]["annotations"]
    copy = wrapped["spec"]["initContainers"][0]
    copy["volumeMounts"] = [dict(copy["volumeMounts"][0], mountPath="/target/")]
    result = mutated(wrapped)
    assert result["spec"] == wrapped["spec"]
    assert status(result)["containers"] == {"app": "injected"}
    assert status(result)["copyContainer"] == "podinit-install"


@pytest.mark.parametrize(
    "first",
    [{"name": "conf", "configMap": {"name": "c"}}, {"name": "cache", "emptyDir": {}}],
    ids=["config-map", "empty-dir-of-its-own"],
)
def test_podinits_volume_is_found_behind_the_pods_own_volumes_when_the_status_is_lost(
    first: dict[str, Any],
) -> None:
    wrapped = mutated(pod(container(command=["app"])))
    wrapped["spec"]["volumes"].insert(0, first)
    del wrapped["metadata"]["annotations"]
    result = mutated(wrapped)
    assert result["spec"] == wrapped["spec"]
    assert status(result)["containers"] == {"app": "injected"}


def test_a_podinit_the_pod_runs_from_a_config_map_is_an_init_of_its_own() -> None:
    """Not an emptyDir nor an image volume: not podinit's volume, so not podinit's init."""
    app = container(
        command=["/tools/podinit", "--", "app"],
        volumeMounts=[{"name": "tools", "mountPath": "/tools"}],
    )
    original = pod(app, volumes=[{"name": "tools", "configMap": {"name": "tools"}}])
    result = mutated(original)
    assert result["spec"] == original["spec"]
    assert status(result)["containers"] == {"app": "skipped: already runs an init (podinit)"}


def test_a_copy_mode_pod_whose_wrapped_containers_were_all_replaced_reuses_volume_and_copy() -> (
    None
):
    """Status lost and no container mounts the volume but the copy container: the new one is
    wrapped from the same volume, mounted at the first free path."""
    wrapped = mutated(pod(container(command=["app"])))
    del wrapped["metadata"]["annotations"]
    wrapped["spec"]["containers"] = [
        container("web", command=["web"], volumeMounts=[{"name": "v", "mountPath": "/podinit"}])
    ]
    wrapped["spec"]["volumes"].append({"name": "v", "emptyDir": {}})
    result = mutated(wrapped)
    web = result["spec"]["containers"][0]
    assert web["command"] == ["/podinit-1/podinit", "--", "web"]
    assert web["volumeMounts"][-1] == {
        "name": "podinit",
        "mountPath": "/podinit-1",
        "readOnly": True,
    }
    assert result["spec"]["initContainers"] == wrapped["spec"]["initContainers"]
    assert problems(result) == []


def test_the_notes_of_a_status_podinit_cannot_trust_are_not_carried_forward() -> None:
    lookup = {"example/app:1": ImageConfig(entrypoint=("/app",), note="arm64 differs")}
    wrapped = mutated(pod(container()), lookup)
    recorded = status(wrapped)
    recorded["mountPath"] = "podinit"  # relative: unsound, the pod itself is read instead
    wrapped["metadata"]["annotations"][STATUS] = json.dumps(recorded)
    again = status(mutated(wrapped))
    assert again["containers"] == {"app": "injected"}
    assert "notes" not in again


def test_an_image_volume_pod_with_an_untrusted_status_is_recorded_anew_from_its_spec() -> None:
    lookup = {"example/app:1": ImageConfig(entrypoint=("/app",), note="arm64 differs")}
    wrapped = mutated(pod(container()), lookup, IMAGE_VOLUME)
    recorded = status(wrapped)
    recorded["mountPath"] = "$(HOME)"  # unsound: the pod itself is read instead
    wrapped["metadata"]["annotations"][STATUS] = json.dumps(recorded)
    result = mutated(wrapped, settings=IMAGE_VOLUME)
    assert result["spec"] == wrapped["spec"]
    assert status(result) == {
        "containers": {"app": "injected"},
        "volume": "podinit",
        "mountPath": "/podinit",
        "fromImage": {"app": {"image": "example/app:1", "cmd": True}},
    }


def test_an_image_volume_mount_written_with_a_trailing_slash_is_still_podinits() -> None:
    wrapped = mutated(pod(container(command=["app"])), settings=IMAGE_VOLUME)
    del wrapped["metadata"]["annotations"]
    wrapped["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = "/podinit/"
    result = mutated(wrapped, settings=IMAGE_VOLUME)
    assert result["spec"] == wrapped["spec"]
    assert status(result)["containers"] == {"app": "injected"}
    assert status(result)["mountPath"] == "/podinit/"
