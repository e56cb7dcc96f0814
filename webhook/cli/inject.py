"""`podinit inject -f`: mutate the pods in manifests offline, with the webhook's core."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import jsonpatch
import yaml

from webhook.core import (
    ImageConfig,
    ImageResult,
    InjectSettings,
    InvalidPod,
    prepare,
)
from webhook.manifests import describe, pod_templates

# (images, architecture) -> what was found for each; the CLI's only way to reach a registry.
Lookup = Callable[[set[str], str], dict[str, ImageResult]]


class InputError(Exception):
    """A manifest cannot be read; the message names the file and document."""


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    number: int  # 1-based within its source
    body: Any


def read_documents(target: str, stdin: TextIO) -> Iterator[Document]:
    for source, text in _sources(target, stdin):
        number = 0
        try:
            for number, body in enumerate(yaml.safe_load_all(text), start=1):
                if body is not None:
                    yield Document(source, number, body)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            raise InputError(f"{source}: document {number + 1}{where}: not valid YAML") from error


def _sources(target: str, stdin: TextIO) -> Iterator[tuple[str, str]]:
    if target == "-":
        yield "<stdin>", stdin.read()
        return
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
    else:
        files = [path]
    for file in files:
        try:
            yield str(file), file.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{file}: cannot read: {error}") from error


def read_image_configs(path: Path) -> dict[str, ImageResult]:
    """`IMAGE: {entrypoint: [...], cmd: [...]}` as written by hand or by `podinit scan`."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"{path}: cannot read image configs: {error}") from error
    if not isinstance(data, dict):
        raise InputError(f"{path}: image configs must be a mapping of IMAGE: {{entrypoint, cmd}}")
    configs: dict[str, ImageResult] = {}
    for image, entry in data.items():
        entry = entry or {}
        lists = (
            {key: entry.get(key) or [] for key in ("entrypoint", "cmd")}
            if isinstance(entry, dict)
            else {}
        )
        if not lists or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists.values()
        ):
            raise InputError(f"{path}: {image}: entrypoint and cmd must be lists of strings")
        configs[str(image)] = ImageConfig(
            entrypoint=tuple(lists["entrypoint"]), cmd=tuple(lists["cmd"])
        )
    return configs


def inject_document(doc: Document, settings: InjectSettings, lookup: Lookup) -> list[str]:
    """Mutate every pod in `doc.body` in place; returns one explanation line per container."""
    lines: list[str] = []
    for owner, pod in pod_templates(doc.body):
        label = describe(owner)
        try:
            plan = prepare(pod, settings)
            found = lookup(set(plan.images), plan.architecture) if plan.images else {}
            mutation = plan.decide(found)
        except InvalidPod as error:
            raise InputError(f"{doc.source}: document {doc.number} ({label}): {error}") from error
        jsonpatch.apply_patch(pod, mutation.patch, in_place=True)
        if mutation.pod_reason:
            lines.append(f"{label}: not wrapped: {mutation.pod_reason}")
        for d in mutation.decisions:
            lines.append(
                f"{label} container {d.container}: {d.outcome}"
                + (f": {d.reason}" if d.reason else "")
            )
    return lines


def write_documents(bodies: list[Any], output: str, out: TextIO) -> None:
    if output == "json":
        single = (
            bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": bodies}
        )
        out.write(json.dumps(single, indent=2, default=str) + "\n")  # YAML dates, as kubectl
    else:
        yaml.safe_dump_all(bodies, out, sort_keys=False, explicit_start=len(bodies) > 1)


def run(
    target: str, settings: InjectSettings, lookup: Lookup, *, output: str, explain: bool
) -> int:
    bodies: list[Any] = []
    for doc in read_documents(target, sys.stdin):
        lines = inject_document(doc, settings, lookup)
        if explain:
            for line in lines:
                print(line, file=sys.stderr)
        bodies.append(doc.body)
    write_documents(bodies, output, sys.stdout)
    return 0
