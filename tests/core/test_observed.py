"""What a running pod shows (core/observed.py): wrapped, skipped, failed, slipped, unselected."""

from __future__ import annotations

from typing import Any

from tests.core.helpers import SETTINGS, container, mutated, pod
from webhook.core import InjectionMode, InjectSettings, LookupFailure, observe, prepare

STATUS = "podinit.dev/status"


def states(running: dict[str, Any], *, selected: bool = True) -> dict[str, tuple[str, str]]:
    plan = prepare(running, SETTINGS)
    mutation = plan.decide({"example/nolookup:1": LookupFailure("registry said 404")})
    return {
        o.container: (str(o.state), o.reason) for o in observe(plan, mutation, selected=selected)
    }


def test_a_pod_the_webhook_wrapped_is_wrapped_and_its_init_container_is_skipped() -> None:
    running = mutated(
        pod(
            container("app", command=["sh", "-c", "app"]),
            container("proxy", command=["/sbin/tini", "--", "proxy"]),
        )
    )
    assert states(running) == {
        "app": ("wrapped", ""),
        "proxy": ("skipped", "already runs an init (tini)"),
    }


def test_a_pod_without_status_the_webhook_is_sent_slipped_through_with_what_it_would_do() -> None:
    running = pod(
        container("app", command=["sh", "-c", "app"]),
        container("proxy", command=["/sbin/tini", "--", "proxy"]),
        container("lookup", image="example/nolookup:1"),
    )
    assert states(running) == {
        "app": ("slipped", "would be injected"),
        "proxy": ("slipped", "would be skipped: already runs an init (tini)"),
        "lookup": ("slipped", "would fail: registry said 404"),
    }


def test_the_same_pod_in_a_namespace_the_webhook_is_not_sent_is_unselected() -> None:
    running = pod(container("app", command=["sh", "-c", "app"]))
    assert states(running, selected=False) == {"app": ("unselected", "would be injected")}


def test_opted_out_and_mirror_pods_carry_no_status_and_are_skipped_not_slipped() -> None:
    opted_out = pod(container(command=["app"]), annotations={"podinit.dev/inject": "false"})
    mirror = pod(container(command=["app"]), annotations={"kubernetes.io/config.mirror": "x"})
    assert states(opted_out) == {"*": ("skipped", "opted out by podinit.dev/inject")}
    assert states(mirror) == {
        "*": ("skipped", "mirror pod (static pods cannot be changed through the API)")
    }


def test_a_host_pid_or_windows_pod_is_skipped_whether_or_not_the_webhook_saw_it() -> None:
    host_pid = pod(container(command=["app"]), hostPID=True)
    windows = pod(container(command=["app"]), os={"name": "windows"})
    reason = "hostPID: the container shares the node's PID namespace"
    assert states(host_pid) == {"*": ("skipped", reason)}
    assert states(mutated(host_pid)) == {"*": ("skipped", reason)}
    assert states(windows) == {"*": ("skipped", "Windows pod")}


def test_a_container_the_webhook_could_not_wrap_is_failed_with_its_recorded_reason() -> None:
    running = mutated(
        pod(container("app", image="example/nolookup:1")),
        {"example/nolookup:1": LookupFailure("registry lookup of example/nolookup:1 timed out")},
    )
    assert states(running) == {"app": ("failed", "registry lookup of example/nolookup:1 timed out")}


def test_a_bad_option_annotation_fails_the_pod_or_would_if_the_webhook_never_saw_it() -> None:
    bad = pod(container(command=["app"]), annotations={"podinit.dev/grace": "soon"})
    reason = "bad annotation podinit.dev/grace: 'soon' is not a number of seconds (e.g. 5 or 2.5)"
    assert states(mutated(bad)) == {"*": ("failed", reason)}
    assert states(bad) == {"*": ("slipped", f"would fail: {reason}")}


def test_a_container_the_status_leaves_out_and_that_does_not_run_podinit_is_failed() -> None:
    running = mutated(pod(container("app", command=["sh", "-c", "app"])))
    running["spec"]["containers"].append(container("late", command=["sh", "-c", "late"]))
    assert states(running) == {
        "app": ("wrapped", ""),
        "late": ("failed", "does not run podinit; not in podinit.dev/status"),
    }


def test_a_status_that_claims_injected_for_an_unwrapped_container_is_not_believed() -> None:
    running = pod(
        container("app", command=["sh", "-c", "app"]),
        annotations={STATUS: '{"containers":{"app":"injected"}}'},
    )
    assert states(running) == {
        "app": ("failed", "does not run podinit; podinit.dev/status says 'injected'")
    }


def test_a_pod_being_deleted_is_terminating_not_slipped_and_its_wrapped_containers_stay_wrapped() -> (  # noqa: E501
    None
):
    leaving = pod(container("app", command=["sh", "-c", "app"]))
    leaving["metadata"]["deletionTimestamp"] = "2026-12-07T03:00:00Z"
    assert states(leaving) == {"app": ("terminating", "being deleted; slipped: would be injected")}
    wrapped = mutated(pod(container("app", command=["sh", "-c", "app"])))
    wrapped["metadata"]["deletionTimestamp"] = "2026-12-07T03:00:00Z"
    assert states(wrapped) == {"app": ("wrapped", "")}


def test_a_pod_wrapped_in_image_volume_mode_is_wrapped_to_a_reader_in_copy_mode() -> None:
    image_mode = InjectSettings(injection_mode=InjectionMode.IMAGE_VOLUME)
    running = mutated(pod(container("app", command=["sh", "-c", "app"])), settings=image_mode)
    assert states(running) == {"app": ("wrapped", "")}
