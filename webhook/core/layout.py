"""Where the init lives in a pod: the names of its volume, mount path and copy container, chosen
once per pod, and the volume itself (the copy container: copy_container.py).

A pod podinit already mutated records its choices in the status annotation; they are reused when
the volume they name is still there, so a second pass (reinvocation) lands on the same names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import annotations as ann
from webhook.core.patch import free_name
from webhook.core.podview import PodView
from webhook.core.settings import InjectionMode, InjectSettings


@dataclass(frozen=True, slots=True)
class Layout:
    volume: str
    mount_path: str
    copy_container: str
    volume_exists: bool
    copy_exists: bool
    # "container: note" lines an earlier pass wrote; kept for the containers it wrapped.
    previous_notes: tuple[str, ...] = ()

    @property
    def init_path(self) -> str:
        return f"{self.mount_path.rstrip('/')}/podinit"

    @property
    def ours(self) -> frozenset[str]:
        """Containers podinit added to this pod earlier."""
        return frozenset({self.copy_container}) if self.copy_exists else frozenset()

    def record(self, settings: InjectSettings) -> dict[str, str]:
        """What the status annotation keeps, so a second pass lands on the same names."""
        if settings.injection_mode is InjectionMode.IMAGE_VOLUME:
            return {"volume": self.volume, "mountPath": self.mount_path}
        return {
            "volume": self.volume,
            "mountPath": self.mount_path,
            "copyContainer": self.copy_container,
        }

    @classmethod
    def of(cls, pod: PodView, settings: InjectSettings) -> Layout:
        status = previous_status(pod)
        previous = _recorded(status) if status else None
        if previous and _is_ours(_volume(pod, previous["volume"]), settings):
            notes = status.get("notes")
            return cls(
                volume=previous["volume"],
                mount_path=previous["mountPath"],
                copy_container=previous.get("copyContainer", settings.copy_container_name),
                volume_exists=True,
                copy_exists=previous.get("copyContainer") in pod.container_names(),
                previous_notes=tuple(
                    n for n in (notes if isinstance(notes, list) else []) if isinstance(n, str)
                ),
            )
        return cls(
            volume=free_name(settings.volume_name, pod.volume_names()),
            mount_path=free_name(settings.mount_path, pod.mount_paths()),
            copy_container=free_name(settings.copy_container_name, pod.container_names()),
            volume_exists=False,
            copy_exists=False,
        )


def previous_status(pod: PodView) -> dict[str, Any]:
    """The status annotation an earlier pass wrote, parsed once; {} when absent or unsound."""
    text = pod.annotations.get(ann.STATUS)
    if not text:
        return {}
    try:
        status = json.loads(text)
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def _recorded(status: dict[str, Any]) -> dict[str, str] | None:
    """volume, mountPath (and copyContainer in copy mode) from an earlier pass, if sound."""
    keys = ("volume", "mountPath", "copyContainer")
    names: dict[str, str] = {k: status[k] for k in keys if isinstance(status.get(k), str)}
    if any(k in status and not names.get(k) for k in keys):
        return None
    mount = names.get("mountPath", "")
    if "volume" not in names or not mount.startswith("/") or "$" in mount:
        return None
    return names


def _volume(pod: PodView, name: str) -> Mapping[str, Any] | None:
    return next((v for v in pod.volumes() if v.get("name") == name), None)


def _is_ours(volume: Mapping[str, Any] | None, settings: InjectSettings) -> bool:
    if not isinstance(volume, Mapping):
        return False
    if settings.injection_mode is InjectionMode.IMAGE_VOLUME:
        return isinstance(volume.get("image"), Mapping)
    return isinstance(volume.get("emptyDir"), Mapping)


def volume_spec(layout: Layout, settings: InjectSettings) -> dict[str, Any]:
    if settings.injection_mode is InjectionMode.IMAGE_VOLUME:
        source = {"reference": settings.init_image, "pullPolicy": settings.init_image_pull_policy}
        return {"name": layout.volume, "image": source}
    return {"name": layout.volume, "emptyDir": {"sizeLimit": settings.volume_size_limit}}
