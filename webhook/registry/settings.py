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
    # What a tenant (who names the image, so the registry and all it points at) may cost:
    # docs/threat-model.md. Webhook/config.py's registry* settings default to these.
    request_timeout: float = 5.0  # one HTTP exchange, body, token fetch and redirects included
    max_redirects: int = 3
    connections_per_host: int = 8  # requests in flight per host:port
    lookups_per_admission: int = 8  # cache misses of one resolve_all call looked up at once
    lookups_per_namespace: int = 32  # fetches started for one tenant and still running
    backoff_ceiling: float = 60.0  # a failing host is retried after negative_ttl, doubling to this
    # Addresses never connected to unless a host is named by `insecure` or `mirrors`, the
    # address is in `allowed_networks`, or `ca_bundle` vouches for the peer's certificate.
    denied_networks: tuple[str, ...] = (
        *("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"),
        *("169.254.0.0/16", "fe80::/10"),
        *("100.100.100.200/32", "fd00:ec2::254/128"),
    )
    allowed_networks: tuple[str, ...] = ()


@dataclass
class ResolverStats:
    """Counters for the server's metrics; they only ever increase."""

    lookups: Counter[str] = field(default_factory=Counter)  # by result: "ok" or error label
    cache_hits: int = 0  # answered from cache without waiting on the registry
    negative_hits: int = 0  # answered by a remembered failure
    joined: int = 0  # waited on a fetch another caller had started (single flight)
    fetches: int = 0  # fetch sequences started (each may make several HTTP requests)
    http_requests: Counter[str] = field(default_factory=Counter)  # by HTTP method
    tenant_waits: int = 0  # lookups that waited for their tenant's share of fetches


__all__ = ["PullSecrets", "ResolverSettings", "ResolverStats"]
