"""One container's fate never decides another's: each is wrapped, skipped or failed on its own,
and each keeps its entry (and its notes) in the status, on the first pass and every later one.

Several of these were found by mutation testing (docs/mutation.md): the core's other tests
mostly use one container per pod, where stopping early and going on look the same.
"""

from __future__ import annotations

import pytest

from tests.core.helpers import (
    INIT,
    SETTINGS,
    container,
    images,
    mutate,
    mutated,
    outcomes,
    pod,
    status,
)
from webhook.core import ImageConfig, LookupFailure

SKIP = "podinit.dev/skip-containers"


def _commands(result: dict[str, object]) -> dict[str, object]:
    spec = result["spec"]
    assert isinstance(spec, dict)
    return {c["name"]: c.get("command") for c in spec["containers"]}


def test_skipping_one_container_leaves_the_others_wrapped() -> None:
    original = pod(
        container("a", command=["/a"]),
        container("b", command=["/b"]),
        container("c", command=["/c"]),
        annotations={SKIP: "a"},
    )
    result = mutated(original)
    assert _commands(result) == {"a": ["/a"], "b": [INIT, "--", "/b"], "c": [INIT, "--", "/c"]}
    assert status(result)["containers"] == {
        "a": f"skipped: opted out by {SKIP}",
        "b": "injected",
        "c": "injected",
    }


def test_an_image_without_entrypoint_or_cmd_does_not_stop_the_containers_after_it() -> None:
    lookup = images(empty=([], []), app=(["/app"], []))
    original = pod(container("a", "example/empty:1"), container("b", "example/app:1"))
    result = mutated(original, lookup)
    assert _commands(result) == {"a": None, "b": [INIT, "--", "/app"]}
    assert status(result)["containers"] == {
        "a": "failed: image has no ENTRYPOINT or CMD",
        "b": "injected",
    }


@pytest.mark.parametrize(
    ("lookup", "reason"),
    [
        ({"example/app:1": LookupFailure("registry timed out")}, "registry timed out"),
        (images(app=([], [])), "image has no ENTRYPOINT or CMD"),
        ({}, "no image config for example/app:1"),
    ],
    ids=["lookup-failed", "no-argv", "no-config"],
)
def test_a_container_that_could_not_be_wrapped_is_named_in_the_status_and_the_warning(
    lookup: dict[str, ImageConfig | LookupFailure], reason: str
) -> None:
    original = pod(container("web"), container("side", command=["/side"]))
    mutation = mutate(original, SETTINGS, lookup)
    assert outcomes(mutation) == {"web": f"failed: {reason}", "side": "injected"}
    assert status(mutated(original, lookup))["containers"] == {
        "web": f"failed: {reason}",
        "side": "injected",
    }
    assert mutation.warnings == (f"podinit: web not wrapped: {reason}",)


def test_an_image_that_already_runs_an_init_does_not_stop_the_containers_after_it() -> None:
    lookup = images(tini=(["tini", "--"], ["app"]), app=(["/app"], []))
    original = pod(container("a", "example/tini:1"), container("b", "example/app:1"))
    result = mutated(original, lookup)
    assert _commands(result) == {"a": None, "b": [INIT, "--", "/app"]}
    assert status(result)["containers"] == {
        "a": "skipped: already runs an init (tini)",
        "b": "injected",
    }


def test_the_notes_of_every_container_are_kept_on_the_first_pass_and_the_next() -> None:
    lookup = {
        "example/a:1": ImageConfig(entrypoint=("/a",), note="arm64 ENTRYPOINT differs"),
        "example/b:1": ImageConfig(entrypoint=("/b",), note="arm64 CMD differs"),
        "example/c:1": ImageConfig(entrypoint=("/c",)),
    }
    original = pod(
        container("a", "example/a:1"), container("b", "example/b:1"), container("c", "example/c:1")
    )
    first = mutated(original, lookup)
    notes = ["a: arm64 ENTRYPOINT differs", "b: arm64 CMD differs"]
    assert status(first)["notes"] == notes
    # A second pass needs no image config (every container is wrapped) and changes nothing.
    assert mutate(first, SETTINGS, {}).patch == []
    # A new container added to the wrapped pod: the earlier notes stay beside the new decision.
    first["spec"]["containers"].append(container("d", command=["/d"]))
    again = mutated(first)
    assert status(again)["notes"] == notes
    assert status(again)["containers"]["d"] == "injected"
