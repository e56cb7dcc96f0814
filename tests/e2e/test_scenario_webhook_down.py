"""The webhook process gone: the chart's failurePolicy Ignore lets pods through, unwrapped;
with Fail, nothing is admitted unwrapped and controllers retry.

Its own module (and its own server and release): it stops the server, which the other
scenarios share.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.audit import PodAdmission
from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    assert_injected_once,
    assert_untouched,
    container,
    create,
    deployment,
    pod,
    running_podinit,
    wait_for_default_account,
)

SLEEP = ["sh", "-c", "sleep 3600"]
FAILED_OPEN = "failed-open.mutation.webhook.admission.k8s.io/"
DEAD_URL = "https://127.0.0.1:9/mutate"  # nothing listens: every call fails at once


def test_with_the_webhook_process_stopped_pods_are_still_created_unwrapped(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
    wait_for_default_account(cp, namespace)
    with running_podinit(cp, tmp_path) as podinit:
        assert podinit.webhook_configuration()["failurePolicy"] == "Ignore"
        stored, _ = create(cp, pod(namespace, "before", container("app", SLEEP)))
        assert_injected_once(stored, {"app"})  # the release does call this server

        podinit.server.process.terminate()
        podinit.server.process.wait(timeout=30)

        after = pod(namespace, "after", container("app", SLEEP))
        stored, stderr = create(cp, after)
        assert_untouched(stored, {"app": SLEEP})
        assert "podinit" not in stderr, stderr
        web = deployment(namespace, "web", container("app", SLEEP))
        cp.apply(web)
        for stored in cp.wait_for_pods(namespace, "app=web", 2):
            assert_untouched(stored, {"app": SLEEP})

        # the apiserver did call the configuration, failed, and let the pods through
        def failed_open() -> list[PodAdmission]:
            found = [
                a
                for a in cp.pod_admissions(namespace)
                if any(key.startswith(FAILED_OPEN) for key in a.annotations)
            ]
            return found if len(found) >= 3 else []

        assert len(cp.wait_for("3 pods admitted failing open", failed_open, timeout=30)) == 3


def test_with_failure_policy_fail_nothing_is_admitted_unwrapped_and_the_replicaset_retries(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Issue 20's fail-closed mode: while no replica answers, a pod is refused (not created
    unwrapped) and a ReplicaSet's creates fail; once it answers, the ReplicaSet's retries
    create its pods, wrapped."""
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
    wait_for_default_account(cp, namespace)
    with running_podinit(cp, tmp_path, url=DEAD_URL) as podinit:
        podinit.upgrade("optIn", "--set", "webhook.failurePolicy=Fail")
        assert podinit.webhook_configuration()["failurePolicy"] == "Fail"
        manifest = json.dumps(pod(namespace, "refused", container("app", SLEEP)))
        refused = cp.kubectl("create", "-f", "-", input=manifest, check=False)
        assert refused.returncode != 0 and "podinit" in refused.stderr, refused.stderr
        cp.apply(deployment(namespace, "web", container("app", SLEEP)))

        def failed_creates() -> bool:
            listed = cp.kubectl_json("get", "events", "-n", namespace)["items"]
            return any(e.get("reason") == "FailedCreate" for e in listed)

        cp.wait_for("the ReplicaSet's refused creates", failed_creates, timeout=60)
        assert cp.kubectl_json("get", "pods", "-n", namespace)["items"] == []

        podinit.url = None  # the configuration calls the server again
        podinit.upgrade("optIn", "--set", "webhook.failurePolicy=Fail")
        for stored in cp.wait_for_pods(namespace, "app=web", 2, timeout=120):
            assert_injected_once(stored, {"app"})
