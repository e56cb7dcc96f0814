"""Wire formats of the distribution API: media types, TypedDicts, and strict parsing.

Parsing validates shape by hand (no pydantic): a registry is untrusted input, and every
deviation must become a BadResponse rather than a KeyError deep in the resolver.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import orjson

from .errors import BadResponse
from .reference import is_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# Sent on every manifest request; without it registries fall back to schema1 or 404.
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)


class PlatformJSON(TypedDict):
    architecture: str
    os: str
    variant: NotRequired[str]


class DescriptorJSON(TypedDict):
    mediaType: str
    digest: str
    size: int
    platform: NotRequired[PlatformJSON]


class ManifestJSON(TypedDict):
    """Docker v2 schema2 and OCI image manifests (the parts we read)."""

    schemaVersion: int
    mediaType: NotRequired[str]
    config: DescriptorJSON
    layers: list[DescriptorJSON]


class IndexJSON(TypedDict):
    """Docker manifest lists and OCI image indexes."""

    schemaVersion: int
    mediaType: NotRequired[str]
    manifests: list[DescriptorJSON]


class ContainerConfigJSON(TypedDict, total=False):
    Entrypoint: list[str] | None
    Cmd: list[str] | None


class ImageConfigJSON(TypedDict, total=False):
    architecture: str
    os: str
    config: ContainerConfigJSON


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    os: str = ""
    architecture: str = ""
    variant: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
    config: Descriptor


@dataclass(frozen=True, slots=True)
class Index:
    manifests: tuple[Descriptor, ...]


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def verify_digest(body: bytes, digest: str, what: str) -> None:
    """Content addressing is only safe if we check it; a mismatch is the registry's fault."""
    algorithm, _, _ = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise BadResponse(f"{what} uses unsupported digest algorithm {algorithm[:16]!r}")
    actual = algorithm + ":" + hashlib.new(algorithm, body).hexdigest()
    if actual != digest:
        raise BadResponse(f"{what} does not match its digest")


def _load(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadResponse(f"{what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadResponse(f"{what} is not a JSON object")
    return data


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise BadResponse(f"{what} has a malformed descriptor")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(digest, str) or not is_digest(digest):
        raise BadResponse(f"{what} has a descriptor without a valid digest")
    if not isinstance(media_type, str) or not isinstance(size, int) or size < 0:
        raise BadResponse(f"{what} has a malformed descriptor")
    platform = raw.get("platform")
    if not isinstance(platform, dict):
        return Descriptor(media_type, digest, size)

    def text(name: str) -> str:
        value = platform.get(name)
        return value if isinstance(value, str) else ""

    return Descriptor(media_type, digest, size, text("os"), text("architecture"), text("variant"))


def parse_manifest(body: bytes, content_type: str | None) -> Manifest | Index:
    """A manifest or index; its kind comes from the body's mediaType, else Content-Type,
    else its shape (OCI allows omitting mediaType)."""
    data = _load(body, "manifest")
    if data.get("schemaVersion") == 1:
        raise BadResponse("image uses the obsolete schema1 manifest format")
    media_type = data.get("mediaType") or (content_type or "").split(";")[0].strip()
    if media_type not in MANIFEST_TYPES:
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    if media_type in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise BadResponse("image index has no manifest list")
        return Index(tuple(_descriptor(entry, "image index") for entry in entries))
    if "config" not in data:
        raise BadResponse("manifest has no config descriptor")
    return Manifest(_descriptor(data["config"], "manifest"))


def _argv(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadResponse(f"image config {name} is not a list of strings")
    return tuple(value)


def parse_image_config(body: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(entrypoint, cmd) from an image config blob; absent or null fields are empty."""
    data = _load(body, "image config")
    config = data.get("config")
    if config is None:
        config = {}  # images built FROM scratch without any config section
    if not isinstance(config, dict):
        raise BadResponse("image config 'config' is not an object")
    return _argv(config.get("Entrypoint"), "Entrypoint"), _argv(config.get("Cmd"), "Cmd")
