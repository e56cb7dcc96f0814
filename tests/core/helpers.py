"""Small builders for pods and a helper that applies a mutation, shared by the core tests."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from webhook.core import ImageConfig, ImageLookup, InjectSettings, Mutation, mutate

SETTINGS = InjectSettings()
INIT = SETTINGS.init_path


def container(name: str = "app", image: str = "example/app:1", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def pod(
    *containers: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web", "namespace": "default"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": list(containers) or [container()], **spec},
    }


def images(**configs: tuple[list[str], list[str]]) -> dict[str, ImageConfig]:
    """`images(app=(entrypoint, cmd))` keyed as `example/<name>:1`."""
    return {
        f"example/{name}:1": ImageConfig(entrypoint=tuple(ep), cmd=tuple(cmd))
        for name, (ep, cmd) in configs.items()
    }


def apply(original: dict[str, Any], mutation: Mutation) -> dict[str, Any]:
    return jsonpatch.apply_patch(copy.deepcopy(original), mutation.patch)  # type: ignore[no-any-return]


def mutated(
    original: dict[str, Any], lookup: ImageLookup | None = None, settings: InjectSettings = SETTINGS
) -> dict[str, Any]:
    return apply(original, mutate(original, settings, lookup or {}))


def status(result: dict[str, Any]) -> dict[str, Any]:
    return json.loads(result["metadata"]["annotations"]["podinit.dev/status"])  # type: ignore[no-any-return]


def outcomes(mutation: Mutation) -> dict[str, str]:
    return {d.container: d.summary for d in mutation.decisions}
