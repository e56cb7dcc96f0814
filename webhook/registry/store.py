"""What has been fetched, and under whose authority.

Objects (manifests, indexes, configs, platform comparisons) are keyed by
(scope, host, repository, digest); tags by (scope, host, repository, tag) -> digest.
`scope` is "" for what was fetched without presenting any credential — anyone may read
it — and a credential's keyed fingerprint otherwise, readable only by callers holding the
same credential. Including host and repository means "this principal could read this
digest here", not merely "these bytes exist somewhere".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .cache import LRU
from .platforms import Argv, Platform
from .wire import Index, Manifest


@dataclass(frozen=True, slots=True)
class CachedConfig:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]

    @property
    def argv(self) -> Argv:
        return (self.entrypoint, self.cmd)


@dataclass(frozen=True, slots=True)
class Comparison:
    """ENTRYPOINT/CMD per platform of one index, for the disagreement note."""

    configs: Mapping[Platform, Argv]
    complete: bool = True  # False: some platforms could not be read; retried after tag_ttl


Cached = Manifest | Index | CachedConfig | Comparison
_Key = tuple[str, str, str, str]


class ScopedStore:
    def __init__(
        self, *, max_entries: int, tag_ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._objects: LRU[_Key, Cached] = LRU(max_entries=max_entries, clock=clock)
        self._tags: LRU[_Key, tuple[str, float]] = LRU(max_entries=max_entries, clock=clock)
        self._tag_ttl = tag_ttl
        self._clock = clock

    def get(self, scopes: Sequence[str], host: str, repository: str, key: str) -> Cached | None:
        """The first object stored under any of `scopes` (the caller's own first)."""
        for scope in scopes:
            found = self._objects.get((scope, host, repository, key))
            if found is not None:
                return found
        return None

    def put(
        self,
        scope: str,
        host: str,
        repository: str,
        key: str,
        obj: Cached,
        *,
        ttl: float | None = None,
    ) -> None:
        self._objects.put((scope, host, repository, key), obj, ttl=ttl)

    def tag(
        self, scopes: Sequence[str], host: str, repository: str, tag: str
    ) -> tuple[str, float] | None:
        """(digest, fresh until) as last resolved: the first fresh entry of `scopes` (the
        caller's own first), else the first stale one, kept for revalidation."""
        stale = None
        for scope in scopes:
            hit = self._tags.get((scope, host, repository, tag))
            if hit is not None and hit[1] > self._clock():
                return hit
            stale = stale or hit
        return stale

    def remember_tag(self, scope: str, host: str, repository: str, tag: str, digest: str) -> None:
        self._tags.put((scope, host, repository, tag), (digest, self._clock() + self._tag_ttl))


__all__ = ["Cached", "CachedConfig", "Comparison", "ScopedStore"]
