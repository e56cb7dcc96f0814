"""Where pods live inside Kubernetes objects: a Pod itself, or a workload's pod template."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# kind -> path from the object to its pod template
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "PodTemplate": ("template",),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def describe(obj: dict[str, Any]) -> str:
    """`kind/name` (namespace) for messages."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    name = metadata.get("name") or metadata.get("generateName") or "<unnamed>"
    namespace = f" in {metadata['namespace']}" if metadata.get("namespace") else ""
    return f"{str(obj.get('kind', '?')).lower()}/{name}{namespace}"


def pod_templates(obj: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(owning object, pod or pod template) for every pod in `obj`, walking into Lists."""
    if not isinstance(obj, dict):
        return
    kind = obj.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        for item in obj["items"]:
            yield from pod_templates(item)
        return
    path = POD_TEMPLATE_PATHS.get(kind) if isinstance(kind, str) else None
    if path is None:
        return
    target: Any = obj
    for key in path:
        target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict):
        yield obj, target
