"""What runs is what was read: an argv podinit read from an image is pinned to that image's
digest and recorded, and re-read when the container's image changes (a template written by
`podinit inject` after `kubectl set image`). On the real node: tests/node."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.core.helpers import apply, container, images, mutated, outcomes, pod, status
from webhook.core import (
    ImageConfig,
    ImageOverride,
    InjectSettings,
    LookupFailure,
    LookupFailurePolicy,
    mutate,
    observe,
    prepare,
)

INIT = "/podinit/podinit"
DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
APP_1 = {"example/app:1": ImageConfig(("/bin/app",), ("--v1",), digest=DIGEST_1)}
APP_2 = {"example/app:2": ImageConfig(("/bin/app2",), ("--v2",), digest=DIGEST_2)}


def app_pod(**fields: Any) -> dict[str, Any]:
    return pod(container(**fields))


def test_an_argv_read_by_tag_pins_the_container_to_the_digest_it_was_read_from() -> None:
    result = mutated(app_pod(), APP_1)
    app = result["spec"]["containers"][0]
    assert app["image"] == f"example/app:1@{DIGEST_1}"
    assert app["command"] == [INIT, "--", "/bin/app"]
    assert app["args"] == ["--v1"]
    assert status(result)["fromImage"] == {
        "app": {"image": f"example/app:1@{DIGEST_1}", "cmd": True}
    }


def test_without_pinning_the_image_stays_as_written_and_is_still_recorded() -> None:
    result = mutated(app_pod(), APP_1, InjectSettings(pin_image_digests=False))
    assert result["spec"]["containers"][0]["image"] == "example/app:1"
    assert status(result)["fromImage"] == {"app": {"image": "example/app:1", "cmd": True}}


def test_a_container_with_its_own_command_is_neither_pinned_nor_recorded() -> None:
    result = mutated(app_pod(command=["run"]), APP_1)
    assert result["spec"]["containers"][0]["image"] == "example/app:1"
    assert "fromImage" not in status(result)


def test_an_image_named_by_digest_is_kept_as_written() -> None:
    image = f"example/app@{DIGEST_1}"
    result = mutated(app_pod(image=image), {image: ImageConfig(("/bin/app",), digest=DIGEST_1)})
    assert result["spec"]["containers"][0]["image"] == image


def test_an_override_is_not_pinned_since_nothing_was_read() -> None:
    override = ImageOverride("example/*", ImageConfig(("/bin/app",)))
    result = mutated(app_pod(), {}, InjectSettings(image_overrides=(override,)))
    assert result["spec"]["containers"][0]["image"] == "example/app:1"
    assert status(result)["fromImage"] == {"app": {"image": "example/app:1", "cmd": True}}


def set_image(wrapped: dict[str, Any], image: str) -> dict[str, Any]:
    """`kubectl set image`: only the image field changes."""
    wrapped["spec"]["containers"][0]["image"] = image
    return wrapped


def test_after_set_image_the_argv_is_re_read_from_the_new_image_and_pinned_to_it() -> None:
    bumped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    mutation = mutate(bumped, InjectSettings(), APP_2)
    result = mutated(bumped, APP_2)
    app = result["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/bin/app2"]
    assert app["args"] == ["--v2"]
    assert app["image"] == f"example/app:2@{DIGEST_2}"
    assert [m["mountPath"] for m in app["volumeMounts"]] == ["/podinit"]
    assert outcomes(mutation) == {"app": "injected"}
    assert status(result)["notes"] == [f"app: argv re-read from example/app:2@{DIGEST_2}"]
    assert mutate(result, InjectSettings(), APP_2).patch == []


def test_the_users_own_args_survive_a_re_read() -> None:
    bumped = set_image(mutated(app_pod(args=["--port=80"]), APP_1), "example/app:2")
    app = mutated(bumped, APP_2)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/bin/app2"]
    assert app["args"] == ["--port=80"]


def test_a_new_image_without_cmd_drops_the_old_images_cmd() -> None:
    bumped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    no_cmd = {"example/app:2": ImageConfig(("/bin/app2",), digest=DIGEST_2)}
    app = mutated(bumped, no_cmd)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/bin/app2"]
    assert "args" not in app


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ({"example/app:2": LookupFailure("registry said 404")}, "failed: registry said 404"),
        (
            {"example/app:2": ImageConfig(("/sbin/tini", "--", "app2"), digest=DIGEST_2)},
            "skipped: already runs an init (tini)",
        ),
    ],
    ids=["lookup-failed", "now-has-an-init"],
)
def test_a_container_whose_new_image_cannot_be_wrapped_runs_that_images_own_argv(
    found: dict[str, Any], expected: str
) -> None:
    bumped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    mutation = mutate(bumped, InjectSettings(), found)
    result = mutated(bumped, found)
    app = result["spec"]["containers"][0]
    assert "command" not in app and "args" not in app  # the image's ENTRYPOINT/CMD run
    assert outcomes(mutation) == {"app": expected}


def test_a_refused_re_read_is_denied_under_on_lookup_failure_deny() -> None:
    bumped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    deny = InjectSettings(on_lookup_failure=LookupFailurePolicy.DENY)
    mutation = mutate(bumped, deny, {"example/app:2": LookupFailure("registry said 404")})
    assert mutation.denied == "container app: registry said 404"


def test_the_same_digest_under_another_name_is_the_same_image() -> None:
    wrapped = mutated(app_pod(), APP_1)
    mirrored = set_image(wrapped, f"mirror.local/app:1@{DIGEST_1}")
    assert mutate(mirrored, InjectSettings(), {}).patch == []


def test_a_container_another_webhook_wrapped_again_is_not_rewritten() -> None:
    wrapped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    app = wrapped["spec"]["containers"][0]
    app["command"] = ["/wrapper", *app["command"]]
    assert mutate(wrapped, InjectSettings(), APP_2).patch == []


def test_scan_calls_a_container_running_another_images_argv_failed() -> None:
    bumped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    plan = prepare(bumped, InjectSettings())
    [seen] = observe(plan, plan.decide(APP_2), selected=True)
    assert (seen.state, seen.reason) == ("failed", "runs podinit with another image's argv")


def test_only_the_container_whose_image_changed_is_re_read() -> None:
    two = pod(container(), container("web", image="example/web:1"))
    configs = {**APP_1, **images(web=(["/bin/web"], []))}
    wrapped = mutated(two, configs)
    wrapped["spec"]["containers"][1]["image"] = "example/app:2"
    result = mutated(wrapped, {**configs, **APP_2})
    app, web = result["spec"]["containers"]
    assert app == wrapped["spec"]["containers"][0]
    assert web["command"] == [INIT, "--", "/bin/app2"]


def test_a_container_whose_new_image_cannot_be_read_keeps_the_users_own_args() -> None:
    """podinit wrote the command only (the user had args): unwrapping takes out just that."""
    bumped = set_image(mutated(app_pod(args=["--port=80"]), APP_1), "example/app:2")
    failed = {"example/app:2": LookupFailure("registry said 404")}
    app = mutated(bumped, failed)["spec"]["containers"][0]
    assert "command" not in app
    assert app["args"] == ["--port=80"]


@pytest.mark.parametrize(
    "entry",
    [{"image": 5, "cmd": True}, {"image": None, "cmd": False}, {"cmd": True}, "example/app:1"],
)
def test_a_tampered_from_image_entry_is_not_taken_for_where_the_argv_came_from(
    entry: object,
) -> None:
    """Without a sound record, the wrapped container is kept as it is, not re-read."""
    wrapped = mutated(app_pod(), APP_1)
    recorded = status(wrapped)
    recorded["fromImage"]["app"] = entry
    wrapped["metadata"]["annotations"]["podinit.dev/status"] = json.dumps(recorded)
    wrapped = set_image(wrapped, "example/app:2")
    plan = prepare(wrapped, InjectSettings())
    assert plan.images == frozenset()
    mutation = plan.decide({})
    assert outcomes(mutation) == {"app": "injected"}
    assert apply(wrapped, mutation)["spec"] == wrapped["spec"]


def test_a_re_read_is_recorded_so_the_next_image_change_is_re_read_too() -> None:
    bumped = set_image(mutated(app_pod(), APP_1), "example/app:2")
    result = mutated(bumped, APP_2)
    assert status(result)["fromImage"] == {
        "app": {"image": f"example/app:2@{DIGEST_2}", "cmd": True}
    }
    app_3 = {"example/app:3": ImageConfig(("/bin/app3",), ("--v3",))}
    app = mutated(set_image(result, "example/app:3"), app_3)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/bin/app3"]
    assert app["args"] == ["--v3"]


def test_an_override_that_names_a_digest_is_still_not_pinned() -> None:
    """The override's argv was written by an admin for a pattern of images, not read from the
    tag the container names: pinning it to a digest would pin to a guess."""
    override = ImageOverride("example/*", ImageConfig(("/bin/app",), digest=DIGEST_1))
    result = mutated(app_pod(), {}, InjectSettings(image_overrides=(override,)))
    assert result["spec"]["containers"][0]["image"] == "example/app:1"


@pytest.mark.parametrize(
    ("image", "settings"),
    [
        ("example/app:1", InjectSettings(pin_image_digests=False)),
        (f"example/app@{DIGEST_1}", InjectSettings()),
    ],
    ids=["not-pinning", "named-by-digest"],
)
def test_an_image_podinit_does_not_pin_is_not_in_the_patch(
    image: str, settings: InjectSettings
) -> None:
    """The patch holds only what changes: no `replace` of the image by itself."""
    found = {image: ImageConfig(("/bin/app",), digest=DIGEST_1)}
    patch = mutate(app_pod(image=image), settings, found).patch
    assert not [op for op in patch if op["path"].endswith("/image")]
