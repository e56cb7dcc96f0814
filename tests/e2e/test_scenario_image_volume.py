"""The server's default injection mode (`auto`) against this apiserver (1.35 or newer): the init
image mounted as an `image` volume, no copy container. The other scenarios pin `copy` (the
runc runner mounts emptyDir volumes only); this one checks that the default holds up in the
two places where it differs: Pod Security `restricted` and reinvocation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e.controlplane import ControlPlane
from e2e.testwebhook import TestWebhook
from tests.e2e.scenario_helpers import (
    INIT,
    RESTRICTED_SECURITY_CONTEXT,
    VOLUME,
    container,
    create,
    running_podinit,
    status,
    wait_for_default_account,
)

SLEEP = ["sh", "-c", "sleep 3600"]
INIT_IMAGE = "docker.io/podinit/init:0.1.0"  # the server's default initImage


def test_by_default_a_restricted_pod_gets_one_image_volume_and_a_container_added_later_is_wrapped_too(  # noqa: E501
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp = control_plane
    version = cp.kubectl_json("version")["serverVersion"]
    assert (int(version["major"]), int(version["minor"].rstrip("+"))) >= (1, 35), version
    cp.kubectl(
        "label", "namespace", namespace, "podinit.dev/inject=enabled",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )  # fmt: skip
    wait_for_default_account(cp, namespace)
    sidecar = container(
        "sidecar", ["sh", "-c", "sleep 7200"], securityContext=RESTRICTED_SECURITY_CONTEXT
    )

    def add_sidecar(request: dict[str, Any]) -> list[dict[str, Any]] | None:
        if any(c["name"] == "sidecar" for c in request["object"]["spec"]["containers"]):
            return None
        return [{"op": "add", "path": "/spec/containers/-", "value": sidecar}]

    second = f"zz-podinit-scn-second-{namespace}"  # called after ours (ordered by name)
    with (
        running_podinit(cp, tmp_path, env={"PODINIT_INJECTION_MODE": "auto"}) as podinit,
        TestWebhook(cp.ca, add_sidecar, name=second) as hook,
    ):
        cp.apply(
            hook.configuration(
                second,
                namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            )
        )
        try:
            app = container("app", SLEEP, securityContext=RESTRICTED_SECURITY_CONTEXT)
            manifest = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "app", "namespace": namespace},
                "spec": {"containers": [app]},
            }
            stored, stderr = create(cp, manifest)
        finally:
            cp.kubectl("delete", "mutatingwebhookconfiguration", second, check=False)
        assert [e["pod"] for e in podinit.logged_admissions(namespace)] == ["app", "app"]

    assert "PodSecurity" not in stderr and "would violate" not in stderr, stderr
    spec = stored["spec"]
    ours = [v for v in spec["volumes"] if v["name"].startswith(VOLUME)]
    assert ours == [
        {"name": VOLUME, "image": {"reference": INIT_IMAGE, "pullPolicy": "IfNotPresent"}}
    ], spec["volumes"]
    assert not spec.get("initContainers"), spec.get("initContainers")  # no copy container
    assert [c["name"] for c in spec["containers"]] == ["app", "sidecar"]
    for c, argv in zip(spec["containers"], (SLEEP, ["sh", "-c", "sleep 7200"]), strict=True):
        assert c["command"] == [INIT, "--", *argv], c
        mounts = [m for m in c["volumeMounts"] if m["name"] == VOLUME]
        assert mounts == [{"name": VOLUME, "mountPath": "/podinit", "readOnly": True}], c
    assert (status(stored) or {})["containers"] == {"app": "injected", "sidecar": "injected"}
