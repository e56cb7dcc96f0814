"""Shares between tenants: at most N holders per key (a host, a namespace) at once.

A tenant names hosts and images; without shares one pod naming 110 images on a slow host
takes all of the shared client's connections and every other tenant's lookups queue behind
it past their admission deadline. Entries exist only while held or awaited, so the map is
bounded by what is in flight, not by how many hosts or namespaces were ever seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class _Share:
    semaphore: asyncio.Semaphore
    users: int = field(default=0)  # holders and waiters


class Shares(Generic[K]):
    def __init__(self, *, per_key: int) -> None:
        if per_key < 1:
            raise ValueError("per_key must be at least 1")
        self.per_key = per_key
        self._shares: dict[K, _Share] = {}

    def __len__(self) -> int:
        return len(self._shares)

    def busy(self, key: K) -> int:
        """Holders and waiters of `key` (for tests and metrics)."""
        share = self._shares.get(key)
        return 0 if share is None else share.users

    async def acquire(self, key: K) -> None:
        share = self._shares.get(key)
        if share is None:
            share = self._shares[key] = _Share(asyncio.Semaphore(self.per_key))
        share.users += 1
        try:
            await share.semaphore.acquire()
        except BaseException:  # cancelled or timed out while waiting: not a holder
            self._leave(key, share)
            raise

    def release(self, key: K) -> None:
        share = self._shares[key]
        share.semaphore.release()
        self._leave(key, share)

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        await self.acquire(key)
        try:
            yield
        finally:
            self.release(key)

    def _leave(self, key: K, share: _Share) -> None:
        share.users -= 1
        if share.users == 0 and self._shares.get(key) is share:
            del self._shares[key]


__all__ = ["Shares"]
