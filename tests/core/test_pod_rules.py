"""Pods podinit leaves alone, and the reason it records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.core.helpers import SETTINGS, container, mutate, mutated, pod, status
from webhook.core import InjectSettings, Mutation

WINDOWS_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}
                    ]
                }
            ]
        }
    }
}


def test_the_pod_opt_out_annotation_leaves_the_pod_without_any_patch() -> None:
    mutation = mutate(
        pod(container(command=["app"]), annotations={"podinit.dev/inject": "false"}), SETTINGS, {}
    )
    assert mutation.patch == []
    assert mutation.pod_reason == "opted out by podinit.dev/inject"


def test_mirror_pods_get_no_patch_because_the_kubelet_owns_them() -> None:
    annotations = {"kubernetes.io/config.mirror": "abc"}
    mutation = mutate(pod(container(command=["app"]), annotations=annotations), SETTINGS, {})
    assert mutation.patch == []
    assert mutation.pod_reason is not None and "mirror" in mutation.pod_reason


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"os": {"name": "windows"}}, "Windows pod"),
        ({"nodeSelector": {"kubernetes.io/os": "windows"}}, "Windows pod"),
        ({"affinity": WINDOWS_AFFINITY}, "Windows pod"),
        (
            {"securityContext": {"windowsOptions": {"runAsUserName": "ContainerUser"}}},
            "Windows pod",
        ),
        ({"hostPID": True}, "hostPID: the container shares the node's PID namespace"),
        (
            {"shareProcessNamespace": True},
            "shareProcessNamespace: the pause container is PID 1 and reaps",
        ),
    ],
    ids=["os-name", "node-selector", "node-affinity", "windows-options", "host-pid", "shared-pid"],
)
def test_pods_that_must_not_be_wrapped_only_get_a_status_saying_why(
    spec: dict[str, Any], reason: str
) -> None:
    original = pod(container(command=["app"]), **spec)
    result = mutated(original)
    assert status(result) == {"skipped": reason}
    assert result["spec"] == original["spec"]


def test_a_container_level_windows_option_marks_the_pod_as_windows() -> None:
    app = container(command=["app"], securityContext={"windowsOptions": {"hostProcess": False}})
    assert status(mutated(pod(app))) == {"skipped": "Windows pod"}


def test_affinity_that_also_allows_linux_nodes_is_not_windows() -> None:
    affinity: Any = WINDOWS_AFFINITY
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    linux = {
        "matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]
    }
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [*terms, linux]}
        }
    }
    result = mutated(pod(container(command=["app"]), affinity=affinity))
    assert status(result)["containers"] == {"app": "injected"}


def test_shared_process_namespace_pods_are_wrapped_when_the_setting_allows_it() -> None:
    settings = InjectSettings(skip_shared_process_namespace=False)
    result = mutated(pod(container(command=["app"]), shareProcessNamespace=True), settings=settings)
    assert status(result)["containers"] == {"app": "injected"}


ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=[]), min_size=1, max_size=30)


def _status_texts(mutation: Mutation) -> list[str]:
    """The status annotation's text, set alone or with the whole annotations map."""
    texts = []
    for op in mutation.patch:
        if op["path"].endswith("podinit.dev~1status"):
            texts.append(op["value"])
        elif op["path"] == "/metadata/annotations":
            texts.append(op["value"]["podinit.dev/status"])
    return texts


@given(ANY_TEXT, ANY_TEXT)
@example("5\x7f", "app:1\x7f")  # DEL: ASCII, yet escaped by json.dumps
@example("5 sécondes", "régistry/app:1")
@example("\ud800", "app:\ud800")  # a lone surrogate, as json.loads gives for "\\ud800"
def test_the_status_annotation_is_compact_ascii_json_whatever_the_text_it_records(
    option: str, image: str
) -> None:
    """The format since the first release (json.dumps: ASCII, \\u escapes, DEL included), so a
    pod written by one version and reinvoked on another gets no needless rewrite. Option
    values reach the status quoted, images verbatim; lone surrogates included."""
    with_option = pod(container(command=["app"]), annotations={"podinit.dev/grace": option})
    with_image = pod(container(image=image))  # no command, no image config: a failure naming it
    texts = _status_texts(mutate(with_option, SETTINGS, {}))
    texts += _status_texts(mutate(with_image, SETTINGS, {}))
    assert texts
    for text in texts:
        assert text == json.dumps(json.loads(text), separators=(",", ":"))
