"""Image references: parsing, validation and Docker Hub normalisation.

Grammar follows github.com/distribution/reference (what kubelet/containerd accept), so a
reference we reject would also fail to pull.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference, shorten

# Docker Hub has three spellings; the API lives on registry-1.docker.io.
DOCKER_HUB = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[a-fA-F0-9:]+\])"
    r"(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
# Only algorithms we can verify: a digest we cannot check would poison a content-addressed cache.
_DIGEST = re.compile(r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_MAX_NAME = 255


def normalize_host(host: str) -> str:
    """Canonical registry host: lower case, Docker Hub aliases folded onto its API host."""
    host = host.strip().lower()
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def is_digest(value: str) -> bool:
    return _DIGEST.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed, normalised reference. Exactly one of tag/digest drives the lookup."""

    registry: str  # host[:port], normalised (Docker Hub -> registry-1.docker.io)
    repository: str  # e.g. "library/nginx"
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes in /v2/<repo>/manifests/<reference>: the digest wins over the tag,
        as in containerd (`nginx:1.25@sha256:…` pulls the digest)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(image: str) -> ImageReference:
    """Parse `image` as written in a pod spec; raise InvalidReference with a short reason."""
    shown = shorten(image)
    if not image or image != image.strip():
        raise InvalidReference(f"invalid image reference {shown!r}: empty or padded")
    rest, digest = image, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not is_digest(digest):
            raise InvalidReference(f"invalid image reference {shown!r}: bad digest")
    # A ':' after the last '/' is a tag; one before it belongs to host:port.
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid image reference {shown!r}: bad tag")
    registry, path = _split_domain(rest, shown)
    if not path:
        raise InvalidReference(f"invalid image reference {shown!r}: no repository")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise InvalidReference(f"invalid image reference {shown!r}: bad repository name")
    if len(path) > _MAX_NAME:
        raise InvalidReference(f"invalid image reference {shown!r}: name too long")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)


def _split_domain(name: str, shown: str) -> tuple[str, str]:
    # Same rule as distribution/reference: the first component is a host only if it
    # looks like one (has '.' or ':', is localhost, or has upper case).
    first, sep, remainder = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise InvalidReference(f"invalid image reference {shown!r}: bad registry host")
        return normalize_host(first), remainder
    return DOCKER_HUB, name


__all__ = ["DOCKER_HUB", "ImageReference", "is_digest", "normalize_host", "parse_reference"]
