"""The pod-level parts of the patch: volume, copy container, mounts, env and the status."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest

from tests.core.helpers import INIT, SETTINGS, container, images, mutate, mutated, pod, status
from webhook.core import (
    ImageConfig,
    ImageOverride,
    InjectionMode,
    InjectSettings,
    InvalidPod,
    LookupFailure,
    LookupFailurePolicy,
)
from webhook.core.patch import set_key


def test_the_copy_container_goes_first_and_passes_pod_security_restricted() -> None:
    result = mutated(
        pod(container(command=["app"]), initContainers=[container("setup", command=["x"])])
    )
    copy = result["spec"]["initContainers"][0]
    assert copy["name"] == "podinit-install"
    assert copy["command"] == ["/podinit", "install", "/target/podinit"]
    # no uid of its own: it runs as the pod's, or the init image's USER (65532)
    assert copy["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert "resources" not in copy  # the app claims none (resources: test_resources.py)


RESTRICTED_BUT_UID = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize(
    "pod_security",
    [
        # OpenShift's restricted-v2 writes the namespace range's first uid and an fsGroup
        {"runAsUser": 1000680000, "fsGroup": 1000680000},
        {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 3000},
        {"runAsGroup": 0},
    ],
    ids=["openshift-range", "app-uid", "root-group-only"],
)
def test_the_copy_container_asks_for_no_uid_so_it_runs_as_the_one_the_pod_was_given(
    pod_security: dict[str, Any],
) -> None:
    result = mutated(pod(container(command=["app"]), securityContext=pod_security))
    assert result["spec"]["initContainers"][0]["securityContext"] == RESTRICTED_BUT_UID
    assert result["spec"]["securityContext"] == pod_security  # the pod's own is left as it was


def test_a_pod_that_runs_as_root_gets_a_copy_container_running_as_the_init_images_uid() -> None:
    # runAsNonRoot with the pod's uid 0 inherited: the kubelet would refuse to start it
    result = mutated(pod(container(command=["app"]), securityContext={"runAsUser": 0}))
    assert result["spec"]["initContainers"][0]["securityContext"] == {
        **RESTRICTED_BUT_UID,
        "runAsUser": 65532,
        "runAsGroup": 65532,
    }


def test_a_configured_run_as_user_is_the_copy_containers_uid_and_gid_whatever_the_pods() -> None:
    settings = InjectSettings(run_as_user=4242)
    for pod_security in ({}, {"runAsUser": 0}, {"runAsUser": 1000680000}):
        result = mutated(
            pod(container(command=["app"]), securityContext=pod_security), settings=settings
        )
        context = result["spec"]["initContainers"][0]["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (4242, 4242), pod_security


def test_wrapped_containers_mount_the_emptydir_read_only() -> None:
    result = mutated(
        pod(
            container(command=["app"], volumeMounts=[{"name": "data", "mountPath": "/data"}]),
            volumes=[{"name": "data", "emptyDir": {}}],
        )
    )
    assert result["spec"]["volumes"][-1] == {"name": "podinit", "emptyDir": {"sizeLimit": "8Mi"}}
    assert result["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "podinit", "mountPath": "/podinit", "readOnly": True},
    ]


def test_names_and_paths_that_the_pod_already_uses_are_avoided() -> None:
    theirs = container(
        "podinit-install",
        command=["x"],
        volumeMounts=[{"name": "podinit", "mountPath": "/podinit"}],
    )
    result = mutated(pod(theirs, volumes=[{"name": "podinit", "configMap": {"name": "cm"}}]))
    assert result["spec"]["initContainers"][0]["name"] == "podinit-install-1"
    assert result["spec"]["volumes"][1]["name"] == "podinit-1"
    assert result["spec"]["containers"][0]["command"][0] == "/podinit-1/podinit"
    assert status(result)["volume"] == "podinit-1"


def test_image_volume_mode_mounts_the_init_image_and_adds_no_copy_container() -> None:
    settings = InjectSettings(
        injection_mode=InjectionMode.IMAGE_VOLUME, init_image="reg.local/podinit:1"
    )
    result = mutated(pod(container(command=["app"])), settings=settings)
    assert "initContainers" not in result["spec"]
    assert result["spec"]["volumes"] == [
        {
            "name": "podinit",
            "image": {"reference": "reg.local/podinit:1", "pullPolicy": "IfNotPresent"},
        }
    ]


def test_option_annotations_become_podinit_env_without_overriding_env_the_pod_sets() -> None:
    annotations = {
        "podinit.dev/grace": "2.5",
        "podinit.dev/rewrite": "TERM:QUIT, SIGHUP:0",
        "podinit.dev/remap-exit": "143:0",
        "podinit.dev/verbose": "true",
        "podinit.dev/single-child": "no",  # a false flag sets nothing
        "podinit.dev/term-delay": "3",
    }
    app = container(command=["nginx"], env=[{"name": "PODINIT_GRACE", "value": "9"}])
    env = mutated(pod(app, annotations=annotations))["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "PODINIT_GRACE", "value": "9"},
        {"name": "PODINIT_TERM_DELAY", "value": "3"},
        {"name": "PODINIT_REWRITE", "value": "TERM:QUIT,SIGHUP:0"},
        {"name": "PODINIT_REMAP_EXIT", "value": "143:0"},
        {"name": "PODINIT_VERBOSE", "value": "1"},
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("podinit.dev/grace", "soon"),
        ("podinit.dev/rewrite", "TERM"),
        ("podinit.dev/rewrite", "TERM:NOPE"),
        ("podinit.dev/rewrite", "KILL:TERM"),
        ("podinit.dev/grace", "\u0661"),
        ("podinit.dev/remap-exit", "143:256"),
        ("podinit.dev/verbose", "loud"),
        ("podinit.dev/term-delay", "-1"),
    ],
)
def test_a_malformed_option_annotation_leaves_the_pod_unwrapped_with_a_warning_naming_it(
    key: str, value: str
) -> None:
    original = pod(container(command=["app"]), annotations={key: value})
    mutation = mutate(original, SETTINGS, {})
    assert mutation.warnings and key in mutation.warnings[0]
    assert status(mutated(original))["failed"].startswith(f"bad annotation {key}: {value!r}")


def test_the_status_annotation_key_is_json_pointer_escaped_into_an_existing_map() -> None:
    mutation = mutate(pod(container(command=["app"]), annotations={"a/b~c": "x"}), SETTINGS, {})
    assert mutation.patch[-1]["path"] == "/metadata/annotations/podinit.dev~1status"


def test_existing_arrays_are_extended_never_replaced() -> None:
    original = pod(
        container(
            command=["sh", "-c", "app"],
            env=[{"name": "A", "value": "1"}],
            volumeMounts=[{"name": "d", "mountPath": "/d"}],
        ),
        annotations={"podinit.dev/grace": "1"},
        volumes=[{"name": "d", "emptyDir": {}}],
        initContainers=[container("s", command=["s"])],
    )
    ops = mutate(original, SETTINGS, {}).patch
    assert all(op["op"] == "add" for op in ops)
    replaced = {
        "/spec/containers/0/command",
        "/spec/containers/0/env",
        "/spec/containers/0/volumeMounts",
        "/spec/volumes",
        "/spec/initContainers",
    }
    assert not replaced & {op["path"] for op in ops}


def test_lookup_failures_are_skipped_with_their_reason_or_deny_the_pod_when_configured() -> None:
    lookup = {"example/app:1": LookupFailure("registry timed out after 3.0s")}
    skip = mutate(pod(container()), SETTINGS, lookup)
    assert skip.denied is None and skip.warnings == (
        "podinit: app not wrapped: registry timed out after 3.0s",
    )
    deny = mutate(
        pod(container()), InjectSettings(on_lookup_failure=LookupFailurePolicy.DENY), lookup
    )
    assert deny.denied == "container app: registry timed out after 3.0s"


def test_an_override_supplies_the_image_config_without_a_lookup() -> None:
    settings = InjectSettings(
        image_overrides=(ImageOverride("example/*", ImageConfig(entrypoint=("/o",))),)
    )
    result = mutated(pod(container()), images(app=(["/registry"], [])), settings=settings)
    assert result["spec"]["containers"][0]["command"][2:] == ["/o"]


def test_platform_notes_from_the_image_land_in_the_status() -> None:
    lookup = {"example/app:1": ImageConfig(entrypoint=("/a",), note="arm64 ENTRYPOINT differs")}
    assert status(mutated(pod(container()), lookup))["notes"] == ["app: arm64 ENTRYPOINT differs"]


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ([], "pod"),
        ({"spec": {"containers": {}}}, "/spec/containers"),
        ({"spec": {"containers": [1]}}, "/spec/containers/0"),
        ({"spec": {"containers": [{"image": "x"}]}}, "/spec/containers/0/name"),
        ({"spec": {"containers": [{"name": "a", "command": "app"}]}}, "/spec/containers/0/command"),
        ({"metadata": {"annotations": {"a": 1}}, "spec": {}}, "/metadata/annotations/a"),
    ],
)
def test_malformed_pods_raise_invalid_pod_naming_the_field(bad: object, where: str) -> None:
    with pytest.raises(InvalidPod) as error:
        mutate(bad, SETTINGS, {})
    assert error.value.where == where


def test_a_sidecar_another_webhook_put_before_the_copy_container_is_moved_behind_it() -> None:
    first = mutated(pod(container(command=["app"])))
    proxy = container("proxy", command=["/proxy"], restartPolicy="Always")
    first["spec"]["initContainers"].insert(0, proxy)  # what a later webhook may do
    again = mutated(first)
    assert [c["name"] for c in again["spec"]["initContainers"]] == ["podinit-install", "proxy"]
    assert again["spec"]["initContainers"][1]["command"] == [INIT, "--", "/proxy"]
    assert mutate(again, SETTINGS, {}).patch == []


def test_paths_of_raw_block_devices_count_as_taken() -> None:
    device = {"name": "disk", "devicePath": "/podinit"}
    result = mutated(pod(container(command=["app"], volumeDevices=[device])))
    assert result["spec"]["containers"][0]["command"][0] == "/podinit-1/podinit"


def test_an_image_that_clears_its_entrypoint_runs_its_cmd_behind_the_init() -> None:
    app = mutated(pod(container()), images(app=([""], ["/app", "serve"])))["spec"]["containers"][0]
    assert app["command"] == [INIT, "--"]
    assert app["args"] == ["/app", "serve"]


def test_platform_notes_survive_a_second_pass() -> None:
    lookup = {"example/app:1": ImageConfig(entrypoint=("/a",), note="arm64 differs")}
    first = mutated(pod(container()), lookup)
    assert mutate(first, SETTINGS, {}).patch == []


def test_a_pod_with_null_metadata_gets_its_status_annotation() -> None:
    original = pod(container(command=["app"]))
    original["metadata"] = None
    assert status(mutated(original))["containers"] == {"app": "injected"}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("volume_name", "Podinit_Vol"),
        ("copy_container_name", "Copy!"),
        ("volume_size_limit", "lots"),
        ("init_image", " "),
    ],
)
def test_settings_that_would_make_every_mutated_pod_invalid_are_refused(
    setting: str, value: str
) -> None:
    with pytest.raises(ValueError, match=setting):
        InjectSettings(**{setting: value})


def test_a_name_the_pod_uses_with_its_first_numbers_too_gets_the_next_number() -> None:
    mounts = [
        {"name": "podinit", "mountPath": "/podinit"},
        {"name": "podinit-1", "mountPath": "/podinit-1"},
    ]
    theirs = container("podinit-install", command=["x"], volumeMounts=mounts)
    volumes = [{"name": n, "configMap": {"name": n}} for n in ("podinit", "podinit-1", "podinit-2")]
    result = mutated(pod(theirs, container("podinit-install-1", command=["y"]), volumes=volumes))
    assert result["spec"]["initContainers"][0]["name"] == "podinit-install-2"
    assert result["spec"]["volumes"][-1]["name"] == "podinit-3"
    assert result["spec"]["containers"][0]["command"][0] == "/podinit-2/podinit"


def test_a_map_key_with_a_slash_or_a_tilde_is_written_as_its_json_pointer_token() -> None:
    """RFC 6901: `~` is `~0`, `/` is `~1` (podinit's own status key has a slash)."""
    annotations = {"a": "1"}
    op = set_key("/metadata/annotations", annotations, "example.com/x~y", "v")
    assert op == {"op": "add", "path": "/metadata/annotations/example.com~1x~0y", "value": "v"}
    patched = jsonpatch.apply_patch({"metadata": {"annotations": annotations}}, [op])
    assert patched["metadata"]["annotations"] == {"a": "1", "example.com/x~y": "v"}
