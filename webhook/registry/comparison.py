"""Do an index's platforms agree on ENTRYPOINT/CMD? The fetches that tell.

Knowing whether platforms disagree needs every platform's config: one manifest and one blob
request each. The resolver fetches them concurrently with the chosen platform's (so it adds no
latency in the common case), caps how many, and waits at most `compare_grace` for stragglers;
an incomplete comparison is kept only for tag_ttl and then retried. The result is cached per
index digest (resolver.py), so this cost is paid once per image version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from .platforms import Argv, Platform, platform_of, runnable_entries
from .store import CachedConfig
from .wire import Descriptor, Index

Siblings = dict[Platform, asyncio.Task[CachedConfig]]


def start(
    index: Index,
    chosen: Descriptor,
    *,
    limit: int,
    fetch: Callable[[str], Coroutine[Any, Any, CachedConfig]],
) -> Siblings:
    """Tasks fetching the config of up to `limit` other platforms of `index`."""
    mine = platform_of(chosen)
    tasks: Siblings = {}
    loop = asyncio.get_running_loop()
    for entry in runnable_entries(index.manifests):
        other = platform_of(entry)
        if other == mine or other in tasks or entry.digest == chosen.digest:
            continue
        if len(tasks) >= limit:
            break
        task = loop.create_task(fetch(entry.digest))
        task.add_done_callback(_retrieve)
        tasks[other] = task
    return tasks


async def finish(
    chosen: Descriptor, config: CachedConfig, tasks: Siblings, *, grace: float
) -> tuple[dict[Platform, Argv], bool]:
    """Each platform's argv as far as known within `grace` seconds, and whether all are."""
    if tasks:
        await asyncio.wait(tasks.values(), timeout=grace)
    configs: dict[Platform, Argv] = {
        platform: task.result().argv
        for platform, task in tasks.items()
        if task.done() and not task.cancelled() and task.exception() is None
    }
    complete = len(configs) == len(tasks)
    configs[platform_of(chosen)] = config.argv
    return configs, complete


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Comparison fetches are best effort: their failures are expected and not worth a log.
    if not task.cancelled():
        task.exception()
