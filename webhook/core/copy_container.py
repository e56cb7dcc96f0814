"""The copy container: the first initContainer, which copies the init into the pod's volume.

Whatever runs /podinit/podinit must start after it, so it is inserted at `initContainers/0`,
and moved back there on a later pass when another webhook has put its own init container or
sidecar in front of it. It runs as Pod Security 'restricted' allows, whatever the pod's level.
"""

from __future__ import annotations

from typing import Any

from webhook.core.layout import INSTALL, Layout
from webhook.core.patch import PatchOp, extend, move
from webhook.core.podview import PodView, mappings
from webhook.core.resources import copy_resources
from webhook.core.settings import InjectionMode, InjectSettings

COPY_TARGET = "/target"  # where the copy container mounts the volume
# The ServiceAccount admission plugin mounts the API token into every container that has no
# mount at this path. The copy container needs no API access, and a token added after our
# patch would change the pod and make the apiserver call the webhook a second time.
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
INIT_IN_IMAGE = "/podinit"  # the static binary at the root of the FROM-scratch init image


def restricted_security_context(run_as_user: int) -> dict[str, Any]:
    """What Pod Security 'restricted' requires of a container, and a read-only root: the copy
    writes only to the volume."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def copy_container_spec(
    layout: Layout, settings: InjectSettings, *, resources: dict[str, Any]
) -> dict[str, Any]:
    """``resources``: see webhook.core.resources ({}: none of its own)."""
    return {
        "name": layout.copy_container,
        "image": settings.init_image,
        "imagePullPolicy": settings.init_image_pull_policy,
        "command": [INIT_IN_IMAGE, INSTALL, f"{COPY_TARGET}/podinit"],
        "volumeMounts": [
            {"name": layout.volume, "mountPath": COPY_TARGET},
            {"name": layout.volume, "mountPath": TOKEN_PATH, "readOnly": True},
        ],
        **({"resources": resources} if resources else {}),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_security_context(settings.run_as_user),
    }


def copy_container_first(view: PodView, layout: Layout, settings: InjectSettings) -> list[PatchOp]:
    """The copy container added at `initContainers/0`, or moved back there. These operations go
    after every other one of the patch: they shift the indices of the initContainers."""
    if layout.mode is InjectionMode.COPY and not layout.copy_exists:
        apps = mappings(view.spec.get("containers"), "/spec/containers")
        resources = copy_resources(apps, settings.copy_container_resources)
        copy = copy_container_spec(layout, settings, resources=resources)
        return extend("/spec/initContainers", view.spec.get("initContainers"), [copy], at=0)
    if layout.copy_exists:
        # Another webhook may have put its init container or sidecar before ours since the
        # last pass.
        index = next(
            s.position
            for s in view.slots
            if s.field == "initContainers" and s.name == layout.copy_container
        )
        if index:
            return [move(f"/spec/initContainers/{index}", "/spec/initContainers/0")]
    return []
