"""What the reconciler (webhook/server/reconcile.py) keeps between passes: its rate limits, the
workloads waiting for a replacement, and its counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from webhook.server.unwrapped import Owner, UnwrappedPod


class Bucket:
    """Tokens per minute, at most one minute's worth saved up (so a burst stays bounded)."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self.clock = per_minute / 60.0, max(per_minute, 1.0), clock
        self.tokens, self.at = 1.0, clock()

    def ready(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    """A workload one of whose pods was evicted, until a new pod of it is Ready and decided."""

    owner: Owner
    namespace: str
    before: frozenset[str]  # uids of its pods at the eviction: any other is a new one
    deadline: float  # monotonic
    pod: UnwrappedPod  # the evicted one, for Events


@dataclass(slots=True)
class ReconcileCounts:
    evicted: int = 0
    refused: int = 0  # by a PodDisruptionBudget
    failed: int = 0  # any other refusal (the log says why)
    reported: int = 0  # bare, Job or single-pod workload pods, never deleted
    would_evict: int = 0  # dry run
    stalled: int = 0
    not_serving: int = 0  # evictions held back: the webhook was not reached
