"""JSON Patch (RFC 6902) operations that always apply to the pod they were computed from.

Arrays the pod already has are only ever extended (`add` at an index or at `-`), never replaced
(single strings of an argv may be, where one must be escaped: `replace` at its index), and
missing arrays or maps are created with a single `add` of the whole value.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# "from" is a Python keyword, hence the functional form.
PatchOp = TypedDict(
    "PatchOp", {"op": str, "path": str, "value": NotRequired[Any], "from": NotRequired[str]}
)


def pointer_token(key: str) -> str:
    """RFC 6901 escaping: `~` first, then `/`."""
    return key.replace("~", "~0").replace("/", "~1")


def add(path: str, value: Any) -> PatchOp:
    return {"op": "add", "path": path, "value": value}


def replace(path: str, value: Any) -> PatchOp:
    return {"op": "replace", "path": path, "value": value}


def remove(path: str) -> PatchOp:
    return {"op": "remove", "path": path}


def move(source: str, target: str) -> PatchOp:
    return {"op": "move", "from": source, "path": target}


def extend(
    path: str, existing: list[Any] | None, items: list[Any], *, at: int | None
) -> list[PatchOp]:
    """Insert `items` into the array at `path` (at index `at`, or at the end when None)."""
    if not items:
        return []
    if existing is None:
        return [add(path, items)]
    if at is None:
        return [add(f"{path}/-", item) for item in items]
    return [add(f"{path}/{at + offset}", item) for offset, item in enumerate(items)]


def set_key(map_path: str, existing: object, key: str, value: Any) -> PatchOp:
    """Set `key` in the map at `map_path`, creating the map when the pod has none."""
    if existing is None:
        return add(map_path, {key: value})
    return add(f"{map_path}/{pointer_token(key)}", value)


def free_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted-N` with the smallest N that nothing in the pod uses yet."""
    if wanted not in taken:
        return wanted
    suffix = 1
    while f"{wanted}-{suffix}" in taken:
        suffix += 1
    return f"{wanted}-{suffix}"
