"""The webhook process gone: the chart's failurePolicy Ignore lets pods through, unwrapped.

Its own module (and its own server and release): it stops the server, which the other
scenarios share.
"""

from __future__ import annotations

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
