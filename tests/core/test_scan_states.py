"""What `podinit scan` says of a running pod whose spec or annotations changed after admission,
or that the webhook decided under other settings: the status recorded at admission is what the
webhook did, and each row names its container.

Found by mutation testing (docs/mutation.md); the plainer cases: test_observed.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.core.helpers import SETTINGS, container, images, mutated, pod
from webhook.core import InjectSettings, LookupFailure, observe, prepare

STATUS = "podinit.dev/status"
NOLOOKUP = {"example/nolookup:1": LookupFailure("registry said 404")}


def states(
    running: dict[str, Any], settings: InjectSettings = SETTINGS, *, selected: bool = True
) -> dict[str, tuple[str, str]]:
    plan = prepare(running, settings)
    observed = observe(plan, plan.decide(NOLOOKUP), selected=selected)
    return {o.container: (str(o.state), o.reason) for o in observed}


def test_a_wrapped_pod_that_lost_its_status_is_wrapped_and_a_new_container_slipped() -> None:
    running = mutated(pod(container("app", command=["app"])))
    del running["metadata"]["annotations"]
    running["spec"]["containers"].append(container("late", command=["late"]))
    assert states(running) == {"app": ("wrapped", ""), "late": ("slipped", "would be injected")}


def test_containers_added_after_admission_are_skipped_or_failed_for_what_they_are_now() -> None:
    running = mutated(pod(container("app", command=["app"])))
    running["spec"]["containers"] += [
        container("proxy", command=["/sbin/tini", "--", "proxy"]),
        container("lookup", image="example/nolookup:1"),
    ]
    assert states(running) == {
        "app": ("wrapped", ""),
        "proxy": ("skipped", "already runs an init (tini)"),
        "lookup": ("failed", "registry said 404"),
    }


def test_a_shared_pid_pod_is_skipped_whether_or_not_the_webhook_saw_it() -> None:
    shared = pod(container(command=["app"]), shareProcessNamespace=True)
    reason = "shareProcessNamespace: the pause container is PID 1 and reaps"
    assert states(shared) == {"*": ("skipped", reason)}
    assert states(mutated(shared)) == {"*": ("skipped", reason)}


def test_a_pod_left_alone_under_other_settings_shows_what_the_webhook_did_then() -> None:
    """Admitted while shared PID namespaces were skipped; scanned with a setting that would
    wrap it: nothing was wrong at admission, so the pod is skipped, not failed."""
    shared = mutated(pod(container(command=["app"]), shareProcessNamespace=True))
    wraps_shared = InjectSettings(skip_shared_process_namespace=False)
    reason = "shareProcessNamespace: the pause container is PID 1 and reaps"
    assert states(shared, wraps_shared) == {"*": ("skipped", reason)}


def test_a_pod_failed_for_an_option_since_corrected_is_failed_with_the_recorded_reason() -> None:
    bad = mutated(pod(container(command=["app"]), annotations={"podinit.dev/grace": "soon"}))
    recorded = json.loads(bad["metadata"]["annotations"][STATUS])["failed"]
    bad["metadata"]["annotations"]["podinit.dev/grace"] = "5"  # annotations can be edited
    assert states(bad) == {"*": ("failed", recorded)}
    bad["metadata"]["annotations"]["podinit.dev/grace"] = "later"  # ... and edited wrong again
    assert states(bad) == {"*": ("failed", recorded)}


def test_a_bad_option_with_a_status_lacking_the_failure_shows_todays_reason() -> None:
    running = pod(
        container(command=["app"]),
        annotations={"podinit.dev/grace": "soon", STATUS: '{"containers":{"app":"injected"}}'},
    )
    reason = "bad annotation podinit.dev/grace: 'soon' is not a number of seconds (e.g. 5 or 2.5)"
    assert states(running) == {"*": ("failed", reason)}


def test_a_status_whose_containers_entry_is_not_a_map_is_read_as_naming_none() -> None:
    running = pod(
        container("app", command=["app"]),
        annotations={STATUS: '{"containers":["app"]}'},
    )
    assert states(running) == {"app": ("failed", "does not run podinit; not in podinit.dev/status")}


def test_a_container_running_another_images_argv_is_named() -> None:
    wrapped = mutated(pod(container()), images(app=(["/app"], [])))
    wrapped["spec"]["containers"][0]["image"] = "example/app:2"
    plan = prepare(wrapped, SETTINGS)
    new = {"example/app:2": images(app=(["/app2"], []))["example/app:1"]}
    [seen] = observe(plan, plan.decide(new), selected=True)
    assert seen == ("app", "failed", "runs podinit with another image's argv")


def test_a_shared_pid_pod_wrapped_by_setting_with_a_bad_option_is_failed() -> None:
    wraps_shared = InjectSettings(skip_shared_process_namespace=False)
    bad = pod(
        container(command=["app"]),
        shareProcessNamespace=True,
        annotations={"podinit.dev/grace": "soon"},
    )
    reason = "bad annotation podinit.dev/grace: 'soon' is not a number of seconds (e.g. 5 or 2.5)"
    assert states(mutated(bad, settings=wraps_shared), wraps_shared) == {"*": ("failed", reason)}
