"""A seeded structural mutator of AdmissionReviews: keys dropped, values of the wrong type, odd
strings, deep nesting, and a few broken bodies. Deterministic for a given `random.Random`."""

from __future__ import annotations

import copy
import functools
import pathlib
import random
from collections.abc import Callable
from typing import Any

import orjson
import yaml

Path = tuple[str | int, ...]

ODD_STRINGS = (
    "",
    " ",
    "$(",
    "$$",
    "$(A)",
    "~1/~0",
    "/",
    "..",
    "\x00",
    "é\u202e\U0001f600",
    "podinit",
    "/podinit/podinit",
    "--",
    "Always",
    "windows",
    "true",
    "false",
    "-1",
    "1e999",
    "sha256:" + "0" * 64,
    "registry.fuzz:5000/app:1",
    "a" * 300,
    "{}",
    "null",
)
MAX_DEPTH = 12  # the deepest position of the seeds (an affinity's values)
SCALARS: tuple[object, ...] = (None, True, False, 0, -1, 2**63, 1.5, 1e300, "", "x")


SEED_PODS = pathlib.Path(__file__).with_name("fuzz_seed_pods.yaml")


@functools.cache
def _seed_pods() -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(SEED_PODS.read_text()))


def seeds() -> list[dict[str, Any]]:
    """AdmissionReviews of realistic pods that touch every part of the pod podinit reads
    (fuzz_seed_pods.yaml, beside this file); fresh copies, free to mutate."""
    return [
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": f"fuzz-{index}",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "default",
                "operation": "CREATE",
                "object": copy.deepcopy(pod),
            },
        }
        for index, pod in enumerate(_seed_pods())
    ]


def paths(value: object, prefix: Path = ()) -> list[Path]:
    """Every position in the document, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def _nested(rng: random.Random, inner: object) -> object:
    value = inner
    for _ in range(rng.choice((2, 10, 60, 200))):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def _replacement(rng: random.Random, old: object) -> object:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.choice(SCALARS)
    if kind == 1:
        return rng.choice(ODD_STRINGS)
    if kind == 2:
        return [rng.choice((*SCALARS, [], {}, ["x"]))]
    if kind == 3:
        return {rng.choice(ODD_STRINGS): rng.choice(SCALARS)}
    if kind == 4:
        return _nested(rng, old if rng.random() < 0.5 else "x")
    if kind == 5:
        return [] if rng.random() < 0.5 else {}
    return [old, old] if not isinstance(old, list) else [*old, *old]  # duplicates


def mutate_once(rng: random.Random, doc: dict[str, Any]) -> None:
    """One structural change at a random position of `doc`, in place."""
    # Not inside what an earlier deep-nesting change built: it would draw most of the picks.
    candidates = [p for p in paths(doc)[1:] if len(p) <= MAX_DEPTH]
    if not candidates:
        return
    path = rng.choice(candidates)
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if rng.random() < 0.25:
        del parent[last]  # a dropped key, or a list item gone
    elif isinstance(parent, dict) and rng.random() < 0.1:
        parent[rng.choice(ODD_STRINGS)] = parent.pop(last)  # a renamed key
    else:
        parent[last] = _replacement(rng, parent[last])


def _raw(rng: random.Random, body: bytes) -> bytes:
    """A body broken below the JSON level."""
    breakers: list[Callable[[], bytes]] = [
        lambda: body[: rng.randrange(len(body))],
        lambda: b"[" * 5000 + b"]" * 5000,
        lambda: body.replace(b'"', b"'", 1),
        lambda: body + b" trailing",
        lambda: b"\xff\xfe" + body,
    ]
    return rng.choice(breakers)()


def cases(seed: int, count: int) -> list[bytes]:
    """`count` request bodies: each seed mutated one to four times, some broken as bytes."""
    rng = random.Random(seed)
    originals = seeds()
    bodies: list[bytes] = []
    for _ in range(count):
        doc = copy.deepcopy(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            mutate_once(rng, doc)
        try:
            body = orjson.dumps(doc)
        except orjson.JSONEncodeError:  # nested beyond orjson's own limit: send it as text
            body = repr(doc).encode()
        bodies.append(_raw(rng, body) if rng.random() < 0.03 else body)
    return bodies
