"""What a running pod shows: is each container wrapped, and if not, why not.

`podinit scan` asks this of every pod it reads. A container is `wrapped` when its spec runs
behind podinit's init, whatever else is true. Otherwise the status annotation the webhook wrote
says why (`skipped`, `failed`); a pod without one was never decided by the webhook: `slipped`
when the webhook configuration sends such pods (the webhook was down, timed out, or the pod is
older than the installation), `unselected` when it does not. Pods podinit leaves alone as a
whole (opted out, mirror, hostPID, Windows, ...) are `skipped` either way: reaching the webhook
would have changed nothing, and opted-out and mirror pods never get an annotation. A pod being
deleted is `terminating` where it would be failed or slipped: right after a rollout restart
the old pods linger for their grace period, and nothing is left to fix in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from webhook.core import annotations as ann
from webhook.core.decisions import Decision, Mutation, Outcome
from webhook.core.eligibility import pod_skip, silent_skip, silent_skip_annotations
from webhook.core.layout import previous_status
from webhook.core.mutate import Decided, Plan

WHOLE_POD = "*"  # the container name of a row about the whole pod


class State(StrEnum):
    WRAPPED = "wrapped"  # runs behind podinit's init (its spec says so)
    SKIPPED = "skipped"  # left alone on purpose
    FAILED = "failed"  # the webhook decided about the pod and could not wrap the container
    SLIPPED = "slipped"  # no status although the webhook configuration sends the pod
    UNSELECTED = "unselected"  # no status; the webhook configuration does not send the pod
    TERMINATING = "terminating"  # would be failed or slipped, but the pod is being deleted


# What `podinit scan --fail-on-unwrapped` fails on: containers that should run the init, do
# not, and nobody decided so.
UNWRAPPED = frozenset({State.FAILED, State.SLIPPED})


class Observation(NamedTuple):
    container: str  # WHOLE_POD for a row about the pod as a whole
    state: State
    reason: str = ""


def observe(plan: Plan, mutation: Mutation, *, selected: bool) -> tuple[Observation, ...]:
    """The state of each container of a running pod. `plan` and `mutation` are the core's
    answer for the pod as it runs now (`prepare`, then `plan.decide`); `selected` says whether
    the webhook configuration sends the pod to the webhook."""
    seen = _observe(plan, mutation, selected=selected)
    if plan.view.metadata.get("deletionTimestamp") is None:
        return seen
    return tuple(
        Observation(o.container, State.TERMINATING, f"being deleted; {o.state}: {o.reason}")
        if o.state in UNWRAPPED
        else o
        for o in seen
    )


def may_be_unwrapped(metadata: Mapping[str, Any]) -> bool:
    """Whether `observe` could call a pod with this metadata failed or slipped: False only for
    pods it never would, so a watch of pods' metadata reads the spec of the others alone. A
    pod as the webhook left it (its status written, its spec not changed since: generation 1)
    is unwrapped only where that status records a failure; opted-out and mirror pods are
    skipped, deleted ones terminating."""
    if metadata.get("deletionTimestamp") is not None:
        return False
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, Mapping) or silent_skip_annotations(annotations):
        return False
    status = annotations.get(ann.STATUS)
    if not isinstance(status, str):
        return True
    changed = metadata.get("generation", 1) != 1
    return changed or Outcome.FAILED in status


def _observe(plan: Plan, mutation: Mutation, *, selected: bool) -> tuple[Observation, ...]:
    view = plan.view
    unseen = State.SLIPPED if selected else State.UNSELECTED
    if isinstance(plan, Decided):
        reason = mutation.pod_reason or ""
        if silent_skip(view) or pod_skip(view, plan.settings):
            return (Observation(WHOLE_POD, State.SKIPPED, reason),)
        if ann.STATUS not in view.annotations:  # a bad option annotation
            return (Observation(WHOLE_POD, unseen, f"would fail: {reason}"),)
        recorded = previous_status(view).get("failed")
        return (Observation(WHOLE_POD, State.FAILED, _text(recorded) or reason),)
    if ann.STATUS not in view.annotations:
        return tuple(
            Observation(d.container, State.WRAPPED)
            if d.code == "already-wrapped"
            else Observation(d.container, unseen, _would(d))
            for d in mutation.decisions
        )
    status = previous_status(view)
    for key, state in (("skipped", State.SKIPPED), ("failed", State.FAILED)):
        if key in status:  # the webhook left the whole pod alone then (other settings)
            return (Observation(WHOLE_POD, state, _text(status[key])),)
    entries = status.get("containers")
    recorded = entries if isinstance(entries, dict) else {}
    return tuple(_seen(d, _text(recorded.get(d.container))) for d in mutation.decisions)


def _seen(decision: Decision, entry: str) -> Observation:
    """A container of a pod the webhook decided about: its record `entry` ("" if none)."""
    name = decision.container
    if decision.code == "already-wrapped":
        return Observation(name, State.WRAPPED)
    if decision.code == "re-read":  # its image changed since podinit read its argv
        return Observation(name, State.FAILED, "runs podinit with another image's argv")
    for outcome, state in ((Outcome.SKIPPED, State.SKIPPED), (Outcome.FAILED, State.FAILED)):
        if entry == outcome or entry.startswith(f"{outcome}: "):
            return Observation(name, state, entry.removeprefix(outcome).removeprefix(": "))
    if decision.outcome is Outcome.SKIPPED:
        return Observation(name, State.SKIPPED, decision.reason)
    if decision.outcome is Outcome.FAILED:
        return Observation(name, State.FAILED, decision.reason)
    recorded = f"podinit.dev/status says {entry!r}" if entry else "not in podinit.dev/status"
    return Observation(name, State.FAILED, f"does not run podinit; {recorded}")


def _would(decision: Decision) -> str:
    """What the webhook would answer now, for a pod it never saw."""
    if decision.outcome is Outcome.INJECTED:
        return "would be injected"
    if decision.outcome is Outcome.SKIPPED:
        return f"would be skipped: {decision.reason}"
    return f"would fail: {decision.reason}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
