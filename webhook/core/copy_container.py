"""The copy container: the first initContainer, which copies the init into the pod's volume.

Whatever runs /podinit/podinit must start after it, so it is inserted at `initContainers/0`,
and moved back there on a later pass when another webhook has put its own init container or
sidecar in front of it. It runs as Pod Security 'restricted' allows, whatever the pod's level,
under the uid the pod or the platform gives it: OpenShift's restricted-v2 sets the pod's uid
from the namespace's range and refuses a container that asks for any other
(docs/configuration.md#uid-ranges-openshift).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.layout import INSTALL, Layout
from webhook.core.patch import PatchOp, extend, move
from webhook.core.podview import PodView, mapping, mappings
from webhook.core.resources import copy_resources
from webhook.core.settings import InjectionMode, InjectSettings

COPY_TARGET = "/target"  # where the copy container mounts the volume
# The ServiceAccount admission plugin mounts the API token into every container that has no
# mount at this path. The copy container needs no API access, and a token added after our
# patch would change the pod and make the apiserver call the webhook a second time.
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
INIT_IN_IMAGE = "/podinit"  # the static binary at the root of the FROM-scratch init image
# The init image's numeric USER (Dockerfile): what the copy container runs as when neither the
# pod nor the settings name a uid, and what satisfies runAsNonRoot there.
INIT_IMAGE_USER = 65532


def restricted_security_context(run_as_user: int | None) -> dict[str, Any]:
    """What Pod Security 'restricted' requires of a container, and a read-only root: the copy
    writes only to the volume. No uid of its own unless ``run_as_user`` names one."""
    uid = {} if run_as_user is None else {"runAsUser": run_as_user, "runAsGroup": run_as_user}
    return {
        "runAsNonRoot": True,
        **uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def copy_container_uid(pod_security: Mapping[str, Any], settings: InjectSettings) -> int | None:
    """The copy container's own runAsUser: the one the settings name, else none, so that it
    runs as the pod's uid or the image's USER. A pod that says runAsUser 0 would make
    runAsNonRoot refuse to start it: that pod gets the image's uid spelled out."""
    if settings.run_as_user is not None:
        return settings.run_as_user
    pod_uid = pod_security.get("runAsUser")
    if type(pod_uid) is int and pod_uid == 0:
        return INIT_IMAGE_USER
    return None


def copy_container_spec(
    layout: Layout,
    settings: InjectSettings,
    *,
    resources: dict[str, Any],
    run_as_user: int | None = None,
) -> dict[str, Any]:
    """``resources``: see webhook.core.resources ({}: none of its own); ``run_as_user``: see
    copy_container_uid."""
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
        "securityContext": restricted_security_context(run_as_user),
    }


def copy_container_first(view: PodView, layout: Layout, settings: InjectSettings) -> list[PatchOp]:
    """The copy container added at `initContainers/0`, or moved back there. These operations go
    after every other one of the patch: they shift the indices of the initContainers."""
    if layout.mode is InjectionMode.COPY and not layout.copy_exists:
        apps = mappings(view.spec.get("containers"), "/spec/containers")
        resources = copy_resources(apps, settings.copy_container_resources)
        security = mapping(view.spec.get("securityContext"), "/spec/securityContext")
        uid = copy_container_uid(security, settings)
        copy = copy_container_spec(layout, settings, resources=resources, run_as_user=uid)
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
