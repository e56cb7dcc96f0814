"""A bounded LRU with optional per-entry expiry, and asyncio single flight.

Both are deliberately tiny and unaware of registries: the resolver decides keys and TTLs.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Least-recently-used map; entries may carry an expiry (monotonic seconds)."""

    def __init__(self, *, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._data: OrderedDict[K, tuple[V, float | None]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Store `value`; with `ttl` it expires after that many seconds, else only by LRU."""
        expires = None if ttl is None else self._clock() + ttl
        self._data[key] = (value, expires)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


class SingleFlight(Generic[K, V]):
    """Concurrent `run(key, fn)` calls share one execution of `fn` per key.

    The work runs in its own task; callers await it through `asyncio.shield`, so a caller
    that is cancelled (or whose deadline passes) never cancels the work for the others.
    The work must bound its own duration: nobody else will stop it.
    """

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def running(self, key: K) -> bool:
        return key in self._tasks

    def start(self, key: K, fn: Callable[[], Awaitable[V]]) -> tuple[asyncio.Task[V], bool]:
        """The task for `key`, and whether this call started it (i.e. did the fetch)."""
        task = self._tasks.get(key)
        if task is not None:
            return task, False

        async def work() -> V:
            return await fn()

        task = asyncio.get_running_loop().create_task(work())
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._finished(key, t))
        return task, True

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        # Mark the exception retrieved: if every waiter gave up, asyncio would log it.
        if not task.cancelled():
            task.exception()

    def cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    async def run(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        task, _ = self.start(key, fn)
        return await asyncio.shield(task)


__all__ = ["LRU", "SingleFlight"]
