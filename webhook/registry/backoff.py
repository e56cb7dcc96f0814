"""Failing hosts and token services remembered, with exponential backoff.

A failure per image is already remembered (the resolver's negative cache), but a tenant
names as many images as it likes on one broken host or token service, and each new image
would try it again: one more connect timeout, one more capped oversized body. Keyed by
origin, a failure answers every image there until its backoff ends; each consecutive
failure doubles the backoff up to a ceiling, and a success forgets the origin.

Only failures of the origin as a whole count (cannot connect, timed out, a token service's
unusable answer): never a 404, a 401 or one repository's oversized manifest, which a tenant
could otherwise use to shut a shared registry for everyone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .cache import LRU
from .errors import RegistryError


@dataclass(frozen=True, slots=True)
class _Failed:
    error: RegistryError
    streak: int  # consecutive failures
    until: float  # refused until then (monotonic)


class Backoff:
    def __init__(
        self,
        *,
        base: float,
        ceiling: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base, self.ceiling = base, ceiling
        self._failed: LRU[str, _Failed] = LRU(max_entries=max_entries, clock=clock)
        self._clock = clock

    def check(self, origin: str) -> RegistryError | None:
        """The error to raise instead of contacting `origin`, or None to go ahead."""
        failed = self._failed.get(origin)
        if failed is None or failed.until <= self._clock():
            return None
        error = failed.error.again()
        error.detail = f"backing off {origin} after {failed.streak} failures: {error.detail}"
        return error

    def failed(self, origin: str, error: RegistryError) -> None:
        if self.base <= 0:
            return
        previous = self._failed.get(origin)
        streak = 1 if previous is None else previous.streak + 1
        pause = min(self.ceiling, self.base * 2 ** (streak - 1))
        # The streak is kept a while past the pause, so a host failing again right after
        # it is tried again backs off longer; it is forgotten after a quiet ceiling.
        self._failed.put(
            origin, _Failed(error, streak, self._clock() + pause), ttl=pause + self.ceiling
        )

    def succeeded(self, origin: str) -> None:
        self._failed.pop(origin)


__all__ = ["Backoff"]
