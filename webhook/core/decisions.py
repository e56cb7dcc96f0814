"""What the core answers: a decision per container, and the patch and warnings of the pod."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from webhook.core.patch import PatchOp


class Outcome(StrEnum):
    INJECTED = "injected"
    SKIPPED = "skipped"  # deliberately left alone (already has an init, opted out, ...)
    FAILED = "failed"  # should have been wrapped but could not be (no image config, ...)


class Decision(NamedTuple):
    container: str
    outcome: Outcome
    reason: str = ""
    code: str = ""  # a short, fixed label for metrics: wrapped, has-init, lookup-failed, ...

    @property
    def summary(self) -> str:
        """`outcome: reason`, or the outcome alone: the status annotation, `inject --explain`
        and `scan` all show it so."""
        return f"{self.outcome}: {self.reason}" if self.reason else str(self.outcome)


@dataclass(frozen=True, slots=True)
class Mutation:
    patch: list[PatchOp]
    decisions: tuple[Decision, ...] = ()
    pod_reason: str | None = None  # why the whole pod was left alone
    warnings: tuple[str, ...] = ()  # full length: the server caps them (review.respond)
    denied: str | None = None  # set only with onLookupFailure: deny
