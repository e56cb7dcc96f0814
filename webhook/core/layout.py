"""Where the init lives in a pod: the names of its volume, mount path and copy container, chosen
once per pod, the mode that put them there, and the volume itself (the copy container:
copy_container.py).

A pod podinit already mutated is recognised whatever mode put the init there and whatever mode
the reader is set to: first from the status annotation (its names are reused when the volume
they name is still an emptyDir or an image volume), else from the pod itself (a copy container
running `podinit install` into an emptyDir, or an image volume whose mount holds the init a
container runs), so a second pass, a pod re-created from `kubectl get -o yaml` or one written
by `inject` in the other mode lands on the same names and never gets a second volume, mount or
copy container.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import annotations as ann
from webhook.core.patch import free_name
from webhook.core.podview import ContainerSlot, PodView, mappings
from webhook.core.settings import InjectionMode, InjectSettings

INSTALL = "install"  # podinit's subcommand the copy container runs


@dataclass(frozen=True, slots=True)
class Layout:
    volume: str
    mount_path: str
    copy_container: str
    volume_exists: bool
    copy_exists: bool
    # The mode of the volume the pod has, else the settings' mode: what the pod needs to run.
    mode: InjectionMode = InjectionMode.COPY
    # "container: note" lines an earlier pass wrote; kept for the containers it wrapped.
    previous_notes: tuple[str, ...] = ()

    @property
    def init_path(self) -> str:
        return f"{self.mount_path.rstrip('/')}/podinit"

    @property
    def ours(self) -> frozenset[str]:
        """Containers podinit added to this pod earlier."""
        return frozenset({self.copy_container}) if self.copy_exists else frozenset()

    def record(self) -> dict[str, str]:
        """What the status annotation keeps, so a second pass lands on the same names."""
        if self.mode is InjectionMode.IMAGE_VOLUME:
            return {"volume": self.volume, "mountPath": self.mount_path}
        return {
            "volume": self.volume,
            "mountPath": self.mount_path,
            "copyContainer": self.copy_container,
        }

    @classmethod
    def of(cls, pod: PodView, settings: InjectSettings) -> Layout:
        taken = pod.mount_paths()  # also checks every container's mounts, which decide reads
        status = previous_status(pod)
        recorded = _recorded(status, pod, settings)
        if recorded is None:
            recorded = _found_in_spec(pod, settings)
        if recorded is not None:
            notes = status.get("notes") if recorded.from_status else None
            return cls(
                volume=recorded.volume,
                mount_path=recorded.mount_path,
                copy_container=recorded.copy_container,
                volume_exists=True,
                copy_exists=recorded.copy_container in pod.container_names(),
                mode=recorded.mode,
                previous_notes=tuple(
                    n for n in (notes if isinstance(notes, list) else []) if isinstance(n, str)
                ),
            )
        return cls(
            volume=free_name(settings.volume_name, pod.volume_names()),
            mount_path=free_name(settings.mount_path, taken),
            copy_container=free_name(settings.copy_container_name, pod.container_names()),
            volume_exists=False,
            copy_exists=False,
            mode=settings.injection_mode,
        )


@dataclass(frozen=True, slots=True)
class _Existing:
    """podinit's volume as a pod already has it."""

    volume: str
    mount_path: str
    copy_container: str
    mode: InjectionMode
    from_status: bool


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


def _recorded(
    status: Mapping[str, Any], pod: PodView, settings: InjectSettings
) -> _Existing | None:
    """The names an earlier pass recorded, if they are sound and the volume is still there."""
    keys = ("volume", "mountPath", "copyContainer")
    names: dict[str, str] = {k: status[k] for k in keys if isinstance(status.get(k), str)}
    if any(k in status and not names.get(k) for k in keys):
        return None
    mount = names.get("mountPath", "")
    if "volume" not in names or not mount.startswith("/") or "$" in mount:
        return None
    mode = _mode(_volume(pod, names["volume"]))
    if mode is None:
        return None
    copy = names.get("copyContainer")
    if copy is None and mode is InjectionMode.COPY:  # recorded by a pass in imageVolume mode
        copy = _copy_container_of(pod, names["volume"]) or settings.copy_container_name
    return _Existing(
        names["volume"], mount, copy or settings.copy_container_name, mode, from_status=True
    )


def _found_in_spec(pod: PodView, settings: InjectSettings) -> _Existing | None:
    """podinit's volume recognised from the pod alone (its status annotation lost or unsound):
    an emptyDir a copy container installs the init into, or an image volume whose mount holds
    the init a container runs."""
    for volume in pod.volumes():
        name = volume.get("name")
        mode = _mode(volume)
        if not isinstance(name, str) or mode is None:
            continue
        mounts = _mounts_of(pod, name)
        if mode is InjectionMode.COPY:
            if (copy := _copy_container_of(pod, name)) is None:
                continue
            paths = [path for slot, path in mounts if slot.name != copy]
            path = paths[0] if paths else free_name(settings.mount_path, pod.mount_paths())
            return _Existing(name, path, copy, mode, from_status=False)
        for slot, path in mounts:
            if _runs(slot, f"{path.rstrip('/')}/podinit"):
                return _Existing(name, path, settings.copy_container_name, mode, from_status=False)
    return None


def _mode(volume: Mapping[str, Any] | None) -> InjectionMode | None:
    """The mode that makes `volume` podinit's, if it can be: an emptyDir or an image volume."""
    if not isinstance(volume, Mapping):
        return None
    if isinstance(volume.get("image"), Mapping):
        return InjectionMode.IMAGE_VOLUME
    if isinstance(volume.get("emptyDir"), Mapping):
        return InjectionMode.COPY
    return None


def _volume(pod: PodView, name: str) -> Mapping[str, Any] | None:
    return next((v for v in pod.volumes() if v.get("name") == name), None)


def _mounts_of(pod: PodView, volume: str) -> list[tuple[ContainerSlot, str]]:
    """(container, mountPath) of every mount of `volume`."""
    found: list[tuple[ContainerSlot, str]] = []
    for slot in pod.slots:
        for mount in mappings(slot.body.get("volumeMounts"), f"{slot.pointer}/volumeMounts"):
            path = mount.get("mountPath")
            if mount.get("name") == volume and isinstance(path, str) and path.startswith("/"):
                found.append((slot, path))
    return found


def _copy_container_of(pod: PodView, volume: str) -> str | None:
    """The initContainer that runs `podinit install DIR/podinit` with `volume` mounted at DIR."""
    for slot, path in _mounts_of(pod, volume):
        command = slot.command or []
        if (
            slot.field == "initContainers"
            and len(command) == 3
            and posixpath.basename(command[0]) == "podinit"
            and command[1] == INSTALL
            and posixpath.dirname(command[2]) == path.rstrip("/")
        ):
            return slot.name
    return None


def _runs(slot: ContainerSlot, init_path: str) -> bool:
    """`init_path` is in the container's command or args."""
    return init_path in (slot.command or []) or init_path in (slot.args or [])


def volume_spec(layout: Layout, settings: InjectSettings) -> dict[str, Any]:
    if layout.mode is InjectionMode.IMAGE_VOLUME:
        source = {"reference": settings.init_image, "pullPolicy": settings.init_image_pull_policy}
        return {"name": layout.volume, "image": source}
    return {"name": layout.volume, "emptyDir": {"sizeLimit": settings.volume_size_limit}}
