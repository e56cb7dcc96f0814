"""Checked, read-only access to the raw pod dict the apiserver sends (no model round trip)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from webhook.core.errors import InvalidPod

ContainerField = Literal["containers", "initContainers"]


@dataclass(frozen=True, slots=True)
class ContainerSlot:
    """One container of the pod and where it sits."""

    field: ContainerField
    index: int
    body: Mapping[str, Any]
    name: str

    @property
    def pointer(self) -> str:
        return f"/spec/{self.field}/{self.index}"

    @property
    def is_sidecar(self) -> bool:
        return self.field == "initContainers" and self.body.get("restartPolicy") == "Always"

    def strings(self, key: str) -> list[str] | None:
        """`command`/`args`: None when absent or empty (Kubernetes treats both as unset)."""
        value = self.body.get(key)
        if value is None:
            return None
        where = f"{self.pointer}/{key}"
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidPod(where, "must be a list of strings")
        return value or None


def mapping(value: object, where: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON decoding gives: skip the slower ABC check
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidPod(where, f"must be a mapping, not {type(value).__name__}")
    return value


def mappings(value: object, where: str) -> list[Mapping[str, Any]]:
    """A list of mappings (volumes, mounts, env, containers); absent is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPod(where, f"must be a list, not {type(value).__name__}")
    for index, item in enumerate(value):
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InvalidPod(f"{where}/{index}", "must be a mapping")
    return value


def string_map(value: object, where: str) -> Mapping[str, str]:
    result = mapping(value, where)
    for key, item in result.items():
        if not isinstance(item, str):
            raise InvalidPod(f"{where}/{key}", "must be a string")
    return result


@dataclass(frozen=True, slots=True)
class PodView:
    raw: Mapping[str, Any]
    metadata: Mapping[str, Any]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    slots: tuple[ContainerSlot, ...]

    @classmethod
    def of(cls, pod: object) -> PodView:
        raw = mapping(pod, "pod")
        if not raw:
            raise InvalidPod("pod", "is empty")
        metadata = mapping(raw.get("metadata"), "/metadata")
        annotations = string_map(metadata.get("annotations"), "/metadata/annotations")
        spec = mapping(raw.get("spec"), "/spec")
        slots: list[ContainerSlot] = []
        field: ContainerField
        for field in ("initContainers", "containers"):
            for index, body in enumerate(mappings(spec.get(field), f"/spec/{field}")):
                name = body.get("name")
                if not isinstance(name, str) or not name:
                    raise InvalidPod(f"/spec/{field}/{index}/name", "must be a non-empty string")
                slots.append(ContainerSlot(field, index, body, name))
        return cls(raw, metadata, annotations, spec, tuple(slots))

    def volumes(self) -> list[Mapping[str, Any]]:
        return mappings(self.spec.get("volumes"), "/spec/volumes")

    def volume_names(self) -> set[str]:
        return {v["name"] for v in self.volumes() if isinstance(v.get("name"), str)}

    def container_names(self) -> set[str]:
        return {slot.name for slot in self.slots}

    def mount_paths(self) -> set[str]:
        """Paths any container already uses: mounts and raw block devices alike."""
        paths: set[str] = set()
        for slot in self.slots:
            mounts = mappings(slot.body.get("volumeMounts"), f"{slot.pointer}/volumeMounts")
            paths.update(m["mountPath"] for m in mounts if isinstance(m.get("mountPath"), str))
            devices = mappings(slot.body.get("volumeDevices"), f"{slot.pointer}/volumeDevices")
            paths.update(d["devicePath"] for d in devices if isinstance(d.get("devicePath"), str))
        return paths
