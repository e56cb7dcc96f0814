"""The decision core: pod + settings + image configs in, JSON Patch + reasons out. No I/O.

`prepare` reads the pod once and returns a `Plan`: `Decided` when the pod's fate needs no
image config (left alone, or a bad option annotation), else `Pending`, whose `decide` takes the
configs of `plan.images`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from webhook.core import annotations as ann
from webhook.core.argv import is_wrapped, plan_wrap
from webhook.core.container_patch import argv_source, mount_ops, pin_ops, unwrap_ops, wrap_ops
from webhook.core.copy_container import copy_container_first
from webhook.core.decisions import Decision, Mutation, Outcome
from webhook.core.eligibility import architecture, candidates, pod_skip, silent_skip
from webhook.core.images import (
    ImageLookup,
    ImageSource,
    LookupFailure,
    image_source,
    looked_up,
)
from webhook.core.known_inits import runs_init
from webhook.core.layout import Layout, previous_status, volume_spec
from webhook.core.patch import PatchOp, extend, set_key
from webhook.core.podview import ContainerSlot, PodView
from webhook.core.provenance import (
    FROM_IMAGE,
    Source,
    recorded_sources,
    stale,
    unwrapped,
)
from webhook.core.settings import InjectSettings, LookupFailurePolicy


class _Candidate(NamedTuple):
    slot: ContainerSlot  # as it was before podinit wrote its argv, when that is re-read
    skip: str | None  # opted out
    wrapped: bool  # already runs behind our init
    source: ImageSource = None  # where its ENTRYPOINT/CMD comes from, when it needs them
    # The env names it defines, read only when there are PODINIT_* variables to add to it.
    env_names: frozenset[str] = frozenset()
    # Where an earlier pass read its argv from (provenance.py): kept when `wrapped`, the stale
    # source when the argv is re-read from the image it runs now.
    read_from: Source | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Read:
    view: PodView
    settings: InjectSettings

    @property
    def architecture(self) -> str:
        """The CPU architecture to look `images` up for."""
        return architecture(self.view, self.settings)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided(_Read):
    """A pod decided by `prepare` alone: nothing to look up."""

    mutation: Mutation
    images: frozenset[str] = frozenset()

    def decide(self, images: ImageLookup) -> Mutation:
        return self.mutation


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending(_Read):
    """A pod whose containers are decided once the image configs of `images` are known."""

    layout: Layout
    env: tuple[tuple[str, str], ...]
    candidates: tuple[_Candidate, ...]
    images: frozenset[str]  # whose ENTRYPOINT/CMD `decide` needs

    def decide(self, images: ImageLookup) -> Mutation:
        """Decide per container and build the patch. Raises nothing: `prepare` checked what
        this reads (tests/server/test_fuzz_mutate.py)."""
        return _decide(self, images)


# Callers: `plan = prepare(pod, settings)`, fetch `plan.images` for `plan.architecture`, then
# `plan.decide(found)`.
Plan = Decided | Pending


def prepare(pod: object, settings: InjectSettings) -> Plan:
    """Read and check the pod: everything `decide` and `architecture` will read. Raises only
    `InvalidPod`."""
    view = PodView.of(pod)
    if reason := silent_skip(view):
        return Decided(view=view, settings=settings, mutation=Mutation([], pod_reason=reason))
    if reason := pod_skip(view, settings):
        mutation = Mutation(_status_ops(view, {"skipped": reason}), pod_reason=reason)
        return Decided(view=view, settings=settings, mutation=mutation)
    try:
        env = ann.init_env(view.annotations)
    except ann.BadOption as error:
        reason = f"bad annotation {error}"
        mutation = Mutation(
            _status_ops(view, {"failed": reason}),
            pod_reason=reason,
            warnings=(f"podinit: pod not wrapped: {reason}",),
        )
        return Decided(view=view, settings=settings, mutation=mutation)
    layout = Layout.of(view, settings)
    sources = recorded_sources(previous_status(view)) if ann.STATUS in view.annotations else {}
    found = tuple(
        _candidate(
            slot, skip, layout, settings, adds_env=bool(env), read_from=sources.get(slot.name)
        )
        for slot, skip in candidates(view, settings, ours=layout.ours)
    )
    return Pending(
        view=view,
        settings=settings,
        layout=layout,
        env=tuple(env),
        candidates=found,
        images=frozenset(c.source for c in found if isinstance(c.source, str)),
    )


def _candidate(
    slot: ContainerSlot,
    skip: str | None,
    layout: Layout,
    settings: InjectSettings,
    *,
    adds_env: bool,
    read_from: Source | None,
) -> _Candidate:
    """What `decide` needs of one container, checked here: `decide` raises nothing."""
    if skip is not None:
        return _Candidate(slot, skip, False)
    if is_wrapped(slot.checked(), layout.init_path):
        if not stale(slot, read_from, layout.init_path):
            return _Candidate(slot, None, True, read_from=read_from)
        assert read_from is not None
        slot = unwrapped(slot, read_from)
    else:
        read_from = None
    return _Candidate(
        slot,
        None,
        False,
        image_source(slot, settings.image_overrides),
        slot.env_names() if adds_env else frozenset(),
        read_from,
    )


def mutate(pod: object, settings: InjectSettings, images: ImageLookup) -> Mutation:
    """`prepare` and `decide` in one call, for callers that have the image configs at hand."""
    return prepare(pod, settings).decide(images)


def _decide(plan: Pending, images: ImageLookup) -> Mutation:
    settings, view, layout = plan.settings, plan.view, plan.layout
    decisions: list[Decision] = []
    ops: list[PatchOp] = []
    notes: list[str] = []
    read: dict[str, Source] = {}
    for candidate in plan.candidates:
        one = _decide_container(plan, candidate, images)
        decisions.append(one.decision)
        ops += one.ops
        notes += one.notes
        if one.read_from is not None:
            read[candidate.slot.name] = one.read_from
        if candidate.read_from is not None and one.decision.outcome is not Outcome.INJECTED:
            ops += unwrap_ops(candidate.slot, candidate.read_from)
    denied = next(
        (
            f"container {d.container}: {d.reason}"
            for d in decisions
            if d.code == "lookup-failed" and settings.on_lookup_failure is LookupFailurePolicy.DENY
        ),
        None,
    )

    injected = any(d.outcome is Outcome.INJECTED for d in decisions)
    if injected:
        ops += _pod_ops(view, layout, settings)
    status: dict[str, Any] = {
        "containers": {d.container: d.summary for d in decisions},
        **(layout.record() if injected else {}),
        **({"notes": notes} if notes else {}),
        **({FROM_IMAGE: {n: s.as_status() for n, s in read.items()}} if read else {}),
    }
    ops += _status_ops(view, status)
    return Mutation(
        patch=ops,
        decisions=tuple(decisions),
        warnings=tuple(
            f"podinit: {d.container} not wrapped: {d.reason}"
            for d in decisions
            if d.outcome is Outcome.FAILED
        ),
        denied=denied,
    )


class _Decided(NamedTuple):
    """One container's decision and what it adds to the patch and the status."""

    decision: Decision
    ops: list[PatchOp]
    notes: list[str]
    read_from: Source | None = None


def _decide_container(plan: Pending, candidate: _Candidate, images: ImageLookup) -> _Decided:
    settings, layout, slot = plan.settings, plan.layout, candidate.slot
    if candidate.skip is not None:
        return _Decided(Decision(slot.name, Outcome.SKIPPED, candidate.skip, "opted-out"), [], [])
    if candidate.wrapped:
        notes = [n for n in layout.previous_notes if n.startswith(f"{slot.name}: ")]
        decision = Decision(slot.name, Outcome.INJECTED, code="already-wrapped")
        return _Decided(decision, mount_ops(slot, layout), notes, candidate.read_from)
    image = looked_up(candidate.source, images)
    if isinstance(image, LookupFailure):
        return _Decided(Decision(slot.name, Outcome.FAILED, image.reason, "lookup-failed"), [], [])
    notes = [f"{slot.name}: {image.note}"] if image is not None and image.note else []
    wrap = plan_wrap(slot, image, layout.init_path)
    if not wrap.original:
        reason = "image has no ENTRYPOINT or CMD"
        return _Decided(Decision(slot.name, Outcome.FAILED, reason, "no-argv"), [], notes)
    if init := runs_init(wrap.original, settings.known_inits):
        return _Decided(Decision(slot.name, Outcome.SKIPPED, init, "has-init"), [], notes)
    re_read = candidate.read_from is not None
    ops = wrap_ops(
        slot, wrap, layout=layout, env=plan.env, env_names=candidate.env_names, re_read=re_read
    )
    source = None
    if slot.command is None:  # the argv came from the image
        source = argv_source(slot, candidate.source, image, settings)
        ops += pin_ops(slot, source.image)
    if candidate.read_from is None:
        return _Decided(Decision(slot.name, Outcome.INJECTED, code="wrapped"), ops, notes, source)
    assert source is not None  # a re-read container has no command of its own
    notes.append(f"{slot.name}: argv re-read from {source.image}")
    return _Decided(Decision(slot.name, Outcome.INJECTED, code="re-read"), ops, notes, source)


def _pod_ops(view: PodView, layout: Layout, settings: InjectSettings) -> list[PatchOp]:
    """The volume, then the copy container, which goes last because it shifts indices."""
    ops: list[PatchOp] = []
    if not layout.volume_exists:
        ops += extend(
            "/spec/volumes", view.spec.get("volumes"), [volume_spec(layout, settings)], at=None
        )
    return ops + copy_container_first(view, layout, settings)


def _status_ops(view: PodView, status: dict[str, Any]) -> list[PatchOp]:
    text = json.dumps(status, separators=(",", ":"))  # the format since the first release
    if view.annotations.get(ann.STATUS) == text:
        return []
    annotations = view.metadata.get("annotations")
    ops: list[PatchOp] = []
    if not isinstance(view.raw.get("metadata"), dict):  # absent, or null in hand-written YAML
        ops.append({"op": "add", "path": "/metadata", "value": {}})
    ops.append(set_key("/metadata/annotations", annotations, ann.STATUS, text))
    return ops
