"""`podinit inject -f`: mutate the pods in manifests offline, with the webhook's core."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import jsonpatch
import yaml

from webhook.cli import kubeyaml
from webhook.core import (
    ImageConfig,
    ImageOverride,
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


def read_documents(targets: list[str], stdin: BinaryIO) -> Iterator[Document]:
    for source, text in _sources(targets, stdin):
        number = 0
        try:
            for number, body in enumerate(kubeyaml.load_all(text), start=1):
                if body is not None:
                    yield Document(source, number, body)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error)
            raise InputError(
                f"{source}: document {number + 1}{where}: not valid YAML: {problem}"
            ) from error


def _sources(targets: list[str], stdin: BinaryIO) -> Iterator[tuple[str, str]]:
    for target in targets:
        if not target:
            raise InputError("-f: an empty file name")
        if target == "-":
            yield "<stdin>", _decode("<stdin>", stdin.read())
            continue
        path = Path(target)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
        else:
            files = [path]
        for file in files:
            yield str(file), _read(file)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from error
    return _decode(str(path), data)


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{source}: not UTF-8 (byte {error.start})") from None


def read_image_configs(path: Path) -> tuple[ImageOverride, ...]:
    """`IMAGE: {entrypoint: [...], cmd: [...]}` as written by hand or by `podinit scan`. A key
    is matched as an `imageOverrides` key is (`find_override`: fnmatch on the image as written
    in the pod, the first matching key in file order), so `registry.local/app:*` works here too."""
    try:
        data = kubeyaml.load(_read(path)) or {}
    except yaml.YAMLError as error:
        raise InputError(f"{path}: cannot read image configs: {error}") from error
    if not isinstance(data, dict):
        raise InputError(f"{path}: image configs must be a mapping of IMAGE: {{entrypoint, cmd}}")
    configs: list[ImageOverride] = []
    for image, entry in data.items():
        entry = entry or {}
        unknown = sorted(str(k) for k in entry) if isinstance(entry, dict) else []
        unknown = [key for key in unknown if key not in ("entrypoint", "cmd")]
        if unknown:
            raise InputError(f"{path}: {image}: unknown keys {unknown}: only entrypoint and cmd")
        lists = (
            {key: entry.get(key) or [] for key in ("entrypoint", "cmd")}
            if isinstance(entry, dict)
            else {}
        )
        if not lists or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists.values()
        ):
            raise InputError(f"{path}: {image}: entrypoint and cmd must be lists of strings")
        config = ImageConfig(entrypoint=tuple(lists["entrypoint"]), cmd=tuple(lists["cmd"]))
        configs.append(ImageOverride(pattern=str(image), config=config))
    return tuple(configs)


def inject_document(doc: Document, settings: InjectSettings, lookup: Lookup) -> list[str]:
    """Mutate every pod in `doc.body` in place; returns one explanation line per container.
    A pod the webhook would deny (`onLookupFailure: deny`) is an error here too."""
    lines: list[str] = []
    for owner, pod in pod_templates(doc.body):
        label = describe(owner)
        try:
            plan = prepare(pod, settings)
            found = lookup(set(plan.images), plan.architecture) if plan.images else {}
            mutation = plan.decide(found)
        except InvalidPod as error:
            raise InputError(f"{doc.source}: document {doc.number} ({label}): {error}") from error
        if mutation.denied:
            raise InputError(
                f"{doc.source}: document {doc.number} ({label}): the webhook would deny it "
                f"(onLookupFailure: deny): {mutation.denied}"
            )
        jsonpatch.apply_patch(pod, mutation.patch, in_place=True)
        if mutation.pod_reason:
            lines.append(f"{label}: not wrapped: {mutation.pod_reason}")
        lines += [f"{label} container {d.container}: {d.summary}" for d in mutation.decisions]
    return lines


def write_documents(bodies: list[Any], output: str, out: TextIO) -> None:
    if output == "json":
        single = (
            bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": bodies}
        )
        out.write(json.dumps(single, indent=2, default=str) + "\n")
    else:
        kubeyaml.dump_all(bodies, out)


def run(
    targets: list[str], settings: InjectSettings, lookup: Lookup, *, output: str, explain: bool
) -> int:
    bodies: list[Any] = []
    for doc in read_documents(targets, sys.stdin.buffer):
        lines = inject_document(doc, settings, lookup)
        if explain:
            for line in lines:
                print(line, file=sys.stderr)
        bodies.append(doc.body)
    write_documents(bodies, output, sys.stdout)
    return 0
