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


def test_each_decision_carries_the_short_code_metrics_count_it_by() -> None:
    lookup = {
        **images(app=(["/app"], []), tini=(["tini", "--"], []), empty=([], [])),
        "example/gone:1": LookupFailure("registry said 404"),
    }
    original = pod(
        container("skipped", command=["/s"]),
        container("wrapped", command=["/w"]),
        container("init", "example/tini:1"),
        container("empty", "example/empty:1"),
        container("failed", "example/gone:1"),
        container("read", "example/app:1"),
        annotations={SKIP: "skipped"},
    )
    codes = {d.container: d.code for d in mutate(original, SETTINGS, lookup).decisions}
    assert codes == {
        "skipped": "opted-out",
        "wrapped": "wrapped",
        "init": "has-init",
        "empty": "no-argv",
        "failed": "lookup-failed",
        "read": "wrapped",
    }
    again = mutated(original, lookup)
    again["spec"]["containers"][5]["image"] = "example/app:2"
    lookup["example/app:2"] = ImageConfig(entrypoint=("/app2",))
    codes = {d.container: d.code for d in mutate(again, SETTINGS, lookup).decisions}
    assert codes["wrapped"] == "already-wrapped"
    assert codes["read"] == "re-read"


def test_a_container_unwrapped_for_a_new_image_leaves_the_others_patch_alone() -> None:
    """The first container is new to the pod, the second's new image cannot be read."""
    first = mutated(pod(container("app")), images(app=(["/app"], [])))
    first["spec"]["containers"][0]["image"] = "example/app:2"
    first["spec"]["containers"].insert(0, container("web", command=["/web"]))
    result = mutated(first, {"example/app:2": LookupFailure("registry said 404")})
    web, app = result["spec"]["containers"]
    assert web["command"] == [INIT, "--", "/web"]
    assert "command" not in app
    assert status(result)["containers"] == {"web": "injected", "app": "failed: registry said 404"}
