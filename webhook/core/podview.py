"""Checked, read-only access to the raw pod dict the apiserver sends (no model round trip)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Literal, NamedTuple

from webhook.core.errors import InvalidPod

ContainerField = Literal["containers", "initContainers"]


class ContainerSlot(NamedTuple):
    """One container of the pod and where it sits.

    Per-container values of the core are NamedTuples: immutable like frozen dataclasses, and
    three times cheaper to create, which counts on the admission path.
    """

    field: ContainerField
    position: int  # in spec.<field>
    body: Mapping[str, Any]
    name: str
    pointer: str  # JSON pointer of the container, e.g. /spec/containers/0
    # None when absent or empty: Kubernetes treats both as unset.
    command: list[str] | None
    args: list[str] | None
    # Set when command or args is not a list of strings; raised only where podinit must read
    # them (`checked`), so a container it leaves alone cannot fail the whole pod.
    invalid: InvalidPod | None = None

    @classmethod
    def of(cls, field: ContainerField, index: int, body: Mapping[str, Any]) -> ContainerSlot:
        pointer = f"/spec/{field}/{index}"
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidPod(f"{pointer}/name", "must be a non-empty string")
        try:
            command = strings(body.get("command"), f"{pointer}/command")
            args = strings(body.get("args"), f"{pointer}/args")
        except InvalidPod as error:
            return cls(field, index, body, name, pointer, None, None, error)
        return cls(field, index, body, name, pointer, command, args)

    def checked(self) -> ContainerSlot:
        """This slot; InvalidPod when its command or args cannot be read."""
        if self.invalid is not None:
            raise InvalidPod(self.invalid.where, self.invalid.problem)
        return self

    def env_names(self) -> frozenset[str]:
        """The names the container's `env` defines; InvalidPod when it cannot be read."""
        where = f"{self.pointer}/env"
        names: set[str] = set()
        for index, var in enumerate(mappings(self.body.get("env"), where)):
            name = var.get("name")
            if not isinstance(name, str):
                raise InvalidPod(f"{where}/{index}/name", "must be a string")
            names.add(name)
        return frozenset(names)

    @property
    def is_sidecar(self) -> bool:
        return self.field == "initContainers" and self.body.get("restartPolicy") == "Always"


def strings(value: object, where: str) -> list[str] | None:
    """A list of strings; absent or empty is None (Kubernetes treats both as unset)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(map(isinstance, value, repeat(str))):
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
                slots.append(ContainerSlot.of(field, index, body))
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
            for field, key in (("volumeMounts", "mountPath"), ("volumeDevices", "devicePath")):
                items = slot.body.get(field)
                if items is not None:
                    for item in mappings(items, f"{slot.pointer}/{field}"):
                        path = item.get(key)
                        if isinstance(path, str):
                            paths.add(path)
        return paths
