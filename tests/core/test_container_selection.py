"""Which containers get wrapped: regular ones and native sidecars, not those that have an init."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.helpers import INIT, SETTINGS, container, images, mutate, mutated, outcomes, pod
from webhook.core import InjectSettings, InvalidPod, prepare


@pytest.mark.parametrize(
    "argv0",
    [
        "tini",
        "/sbin/tini",
        "/usr/bin/tini-static-amd64",
        "dumb-init",
        "catatonit",
        "/sbin/docker-init",
        "s6-svscan",
        "runsvdir",
        "/usr/bin/supervisord",
        "/lib/systemd/systemd",
        "/sbin/init",
        "/init",
    ],
)
def test_a_command_that_starts_a_known_init_is_left_alone(argv0: str) -> None:
    mutation = mutate(pod(container(command=[argv0, "--", "app"])), SETTINGS, {})
    name = argv0.rsplit("/", 1)[-1]
    assert outcomes(mutation) == {"app": f"skipped: already runs an init ({name})"}


def test_an_image_whose_entrypoint_is_tini_is_left_alone() -> None:
    mutation = mutate(pod(container()), SETTINGS, images(app=(["/usr/bin/tini", "--"], ["app"])))
    assert outcomes(mutation) == {"app": "skipped: already runs an init (tini)"}


def test_the_known_init_list_is_configurable() -> None:
    settings = InjectSettings(known_inits=("my-supervisor",))
    mutation = mutate(
        pod(container(command=["my-supervisor"]), container("b", command=["tini"])), settings, {}
    )
    assert outcomes(mutation) == {
        "app": "skipped: already runs an init (my-supervisor)",
        "b": "injected",
    }


def test_native_sidecars_are_wrapped_and_ordinary_init_containers_are_not() -> None:
    sidecar = container("proxy", command=["envoy"], restartPolicy="Always")
    migrate = container("migrate", command=["migrate", "up"])
    result = mutated(pod(container(command=["app"]), initContainers=[migrate, sidecar]))
    inits = {c["name"]: c for c in result["spec"]["initContainers"]}
    assert result["spec"]["initContainers"][0]["name"] == "podinit-install"
    assert inits["proxy"]["command"] == [INIT, "--", "envoy"]
    assert inits["migrate"]["command"] == ["migrate", "up"]


@pytest.mark.parametrize(
    "settings, annotations",
    [
        (InjectSettings(inject_init_containers=True), {}),
        (SETTINGS, {"podinit.dev/inject-init-containers": "true"}),
    ],
    ids=["setting", "annotation"],
)
def test_ordinary_init_containers_are_wrapped_when_asked(
    settings: InjectSettings, annotations: dict[str, str]
) -> None:
    migrate = container("migrate", command=["migrate", "up"])
    result = mutated(
        pod(container(command=["app"]), initContainers=[migrate], annotations=annotations),
        settings=settings,
    )
    names = [c["name"] for c in result["spec"]["initContainers"]]
    assert names == ["podinit-install", "migrate"]
    assert result["spec"]["initContainers"][1]["command"] == [INIT, "--", "migrate", "up"]


def test_containers_named_in_the_skip_annotation_are_left_alone() -> None:
    annotations = {"podinit.dev/skip-containers": " b , c"}
    mutation = mutate(
        pod(container(command=["a"]), container("b", command=["b"]), annotations=annotations),
        SETTINGS,
        {},
    )
    assert outcomes(mutation) == {
        "app": "injected",
        "b": "skipped: opted out by podinit.dev/skip-containers",
    }


def test_names_in_the_skip_annotation_are_separated_by_commas_alone() -> None:
    annotations = {"podinit.dev/skip-containers": "b,c"}
    three = pod(*(container(name, command=[name]) for name in "abc"), annotations=annotations)
    skipped = "skipped: opted out by podinit.dev/skip-containers"
    assert outcomes(mutate(three, SETTINGS, {})) == {"a": "injected", "b": skipped, "c": skipped}


def test_a_container_without_command_or_image_config_is_admitted_unwrapped_with_a_warning() -> None:
    mutation = mutate(pod(container(), container("b", command=["b"])), SETTINGS, {})
    assert outcomes(mutation) == {
        "app": "failed: no image config for example/app:1",
        "b": "injected",
    }
    assert mutation.warnings == ("podinit: app not wrapped: no image config for example/app:1",)
    assert mutation.denied is None


def test_a_container_without_an_image_is_reported_not_raised() -> None:
    mutation = mutate(pod({"name": "app"}), SETTINGS, {})
    assert outcomes(mutation) == {"app": "failed: container has no image"}


@pytest.mark.parametrize(
    ("left_alone", "annotations"),
    [
        (container("b", args=["--port", 8080]), {"podinit.dev/skip-containers": "b"}),
        (container("b", command="sh -c run"), {"podinit.dev/skip-containers": "b"}),
    ],
)
def test_a_container_left_alone_may_have_an_unreadable_command_without_failing_the_pod(
    left_alone: dict[str, Any], annotations: dict[str, str]
) -> None:
    original = pod(container("a", command=["/a"]), left_alone, annotations=annotations)
    assert outcomes(mutate(original, SETTINGS, {})) == {
        "a": "injected",
        "b": "skipped: opted out by podinit.dev/skip-containers",
    }


def test_an_ordinary_init_container_may_have_an_unreadable_command_without_failing_the_pod() -> (
    None
):
    original = pod(container("a", command=["/a"]), initContainers=[container("setup", command="x")])
    assert outcomes(mutate(original, SETTINGS, {})) == {"a": "injected"}


def test_a_container_podinit_must_wrap_with_an_unreadable_args_makes_the_pod_invalid() -> None:
    with pytest.raises(InvalidPod, match=r"^/spec/containers/0/args: must be a list of strings$"):
        mutate(pod(container("a", command=["/a"], args=["--port", 8080])), SETTINGS, {})


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ([{"name": ["A"], "value": "1"}], "/spec/containers/0/env/0/name: must be a string"),
        ([["A", "1"]], "/spec/containers/0/env/0: must be a mapping"),
        ({"A": "1"}, "/spec/containers/0/env: must be a list, not dict"),
    ],
)
def test_an_unreadable_env_is_found_by_prepare_when_podinit_would_add_to_it(
    env: object, where: str
) -> None:
    """`decide` reads no more than `prepare` checked (fuzzing found it reading env itself)."""
    bad = pod(container("a", command=["/a"], env=env), annotations={"podinit.dev/grace": "5"})
    with pytest.raises(InvalidPod, match=f"^{where}$"):
        prepare(bad, SETTINGS)
    # Without PODINIT_* variables to add, env is not podinit's business.
    assert mutated(pod(container("a", command=["/a"], env=env)))["spec"]["containers"][0][
        "command"
    ][:1] == [INIT]


@pytest.mark.parametrize("values", [[["arm64"]], 5, [{"a": 1}], [1]])
def test_unreadable_affinity_values_are_found_by_prepare_whatever_their_label(
    values: object,
) -> None:
    """The architecture, read after `prepare`, must not meet what `prepare` did not check."""
    term = {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": values}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": []}, term]}}}  # fmt: skip
    where = (
        "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"
        "/nodeSelectorTerms/1/matchExpressions/0/values: must be a list of strings"
    )
    with pytest.raises(InvalidPod, match=f"^{where}$"):
        prepare(pod(container("a"), affinity=affinity), SETTINGS)


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"volumes": {"data": {}}}, "/spec/volumes: must be a list, not dict"),
        ({"volumes": ["data"]}, "/spec/volumes/0: must be a mapping"),
    ],
)
def test_a_pod_whose_volumes_cannot_be_read_is_refused_naming_them(
    spec: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidPod, match=f"^{where}"):
        mutate(pod(container("a", command=["/a"]), **spec), SETTINGS, {})


@pytest.mark.parametrize("field", ["volumeMounts", "volumeDevices"])
def test_a_container_whose_mounts_cannot_be_read_is_refused_naming_them(field: str) -> None:
    bad = container("a", command=["/a"], **{field: {"mountPath": "/data"}})
    with pytest.raises(InvalidPod, match=f"^/spec/containers/0/{field}: must be a list, not dict$"):
        mutate(pod(bad), SETTINGS, {})


@pytest.mark.parametrize("image", ["", None, 7])
def test_a_container_without_a_usable_image_is_named_as_having_none(image: object) -> None:
    """Its argv must come from the image (no command), and there is no image to read."""
    mutation = mutate(
        pod(container("a", image=image), container("b", command=["/b"])), SETTINGS, {}
    )
    assert outcomes(mutation) == {"a": "failed: container has no image", "b": "injected"}


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        (
            {"securityContext": "restricted", "containers": [{"name": "a", "command": ["/a"]}]},
            "/spec/securityContext: must be a mapping, not str",
        ),
        (
            {"containers": [{"name": "a", "image": "x", "securityContext": ["windows"]}]},
            "/spec/containers/0/securityContext: must be a mapping, not list",
        ),
    ],
)
def test_a_security_context_that_cannot_be_read_is_refused_naming_it(
    spec: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidPod, match=f"^{where}$"):
        prepare({"metadata": {"name": "p"}, "spec": {"containers": [], **spec}}, SETTINGS)


@pytest.mark.parametrize("name", ["", None, 5])
def test_a_container_without_a_name_is_refused_naming_it(name: object) -> None:
    nameless = {"image": "x", "command": ["/a"], "name": name}
    with pytest.raises(InvalidPod, match=r"^/spec/containers/1/name: must be a non-empty string$"):
        prepare(pod(container("a", command=["/a"]), nameless), SETTINGS)


@pytest.mark.parametrize(
    ("annotations", "where"),
    [
        ("inject", "/metadata/annotations: must be a mapping, not str"),
        ({"podinit.dev/grace": 5}, "/metadata/annotations/podinit.dev/grace: must be a string"),
    ],
)
def test_annotations_that_cannot_be_read_are_refused_naming_them(
    annotations: object, where: str
) -> None:
    unreadable = pod(container("a", command=["/a"]))
    unreadable["metadata"]["annotations"] = annotations
    with pytest.raises(InvalidPod, match=f"^{where}$"):
        prepare(unreadable, SETTINGS)


@pytest.mark.parametrize("nothing", [{}, None])
def test_an_empty_review_object_is_refused_as_an_empty_pod(nothing: object) -> None:
    with pytest.raises(InvalidPod, match=r"^pod: is empty$"):
        prepare(nothing, SETTINGS)


@pytest.mark.parametrize(
    ("part", "value", "where"),
    [
        ("metadata", ["web"], "/metadata: must be a mapping, not list"),
        ("spec", "containers", "/spec: must be a mapping, not str"),
        ("spec", {"initContainers": {"a": {}}}, "/spec/initContainers: must be a list, not dict"),
    ],
)
def test_a_pod_whose_metadata_or_spec_cannot_be_read_is_refused_naming_it(
    part: str, value: object, where: str
) -> None:
    unreadable = pod(container("a", command=["/a"]))
    unreadable[part] = value
    with pytest.raises(InvalidPod, match=f"^{where}$"):
        prepare(unreadable, SETTINGS)


def test_an_init_container_left_alone_for_its_unreadable_command_is_still_named_in_errors() -> None:
    setup = container("setup", command="x", securityContext="privileged")
    with pytest.raises(
        InvalidPod, match=r"^/spec/initContainers/0/securityContext: must be a mapping, not str$"
    ):
        prepare(pod(container("a", command=["/a"]), initContainers=[setup]), SETTINGS)
