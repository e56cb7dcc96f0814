"""The resolver's settings and the counters it keeps for metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .credentials import Keyring
from .platforms import Platform

# Pull secrets as the caller has them: a ready Keyring, or dockerconfigjson payloads in
# priority order (the pod's imagePullSecrets, or its ServiceAccount's, then a mounted file).
PullSecrets = Keyring | Iterable[bytes | str | Mapping[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolverSettings:
    default_platform: Platform = field(default_factory=Platform)  # linux/amd64
    mirrors: Mapping[str, str] = field(default_factory=dict)  # registry host -> mirror host
    insecure: frozenset[str] = frozenset()  # hosts (host[:port]) reached over plain HTTP
    ca_bundle: str | None = None  # extra trusted CAs: PEM text or a PEM file's path
    default_timeout: float = 5.0  # per resolve() call, when the caller gives none
    # Bound on one shared fetch, whoever still waits for it: it outlives impatient callers
    # so the next admission finds the result cached, but never runs away.
    fetch_timeout: float = 10.0
    tag_ttl: float = 300.0  # a tag's digest is trusted this long, then revalidated (HEAD)
    negative_ttl: float = 10.0  # failures are remembered this long
    max_entries: int = 10_000  # per cache (objects, tags, failures, tokens)
    # Platform disagreement: fetch up to this many other platforms' configs alongside the
    # chosen one, and wait at most `compare_grace` s for them after ours arrived; 0 = off.
    compare_platforms: int = 8
    compare_grace: float = 0.5


@dataclass
class ResolverStats:
    """Counters for the server's metrics; they only ever increase."""

    lookups: Counter[str] = field(default_factory=Counter)  # by result: "ok" or error label
    cache_hits: int = 0  # answered from cache without waiting on the registry
    negative_hits: int = 0  # answered by a remembered failure
    joined: int = 0  # waited on a fetch another caller had started (single flight)
    fetches: int = 0  # fetch sequences started (each may make several HTTP requests)
    http_requests: Counter[str] = field(default_factory=Counter)  # by HTTP method


__all__ = ["PullSecrets", "ResolverSettings", "ResolverStats"]
