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
from webhook.core.argv import is_wrapped, plan_wrap, shield
from webhook.core.copy_container import copy_container_first
from webhook.core.decisions import Decision, Mutation, Outcome
from webhook.core.eligibility import architecture, candidates, pod_skip, silent_skip
from webhook.core.images import ImageLookup, ImageSource, LookupFailure, image_source, looked_up
from webhook.core.known_inits import runs_init
from webhook.core.layout import Layout, volume_spec
from webhook.core.patch import PatchOp, extend, replace, set_key
from webhook.core.podview import ContainerSlot, PodView, mappings
from webhook.core.settings import InjectSettings, LookupFailurePolicy


class _Candidate(NamedTuple):
    slot: ContainerSlot
    skip: str | None  # opted out
    wrapped: bool  # already runs behind our init
    source: ImageSource = None  # where its ENTRYPOINT/CMD comes from, when it needs them
    # The env names it defines, read only when there are PODINIT_* variables to add to it.
    env_names: frozenset[str] = frozenset()


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
    found = tuple(
        _candidate(slot, skip, layout, settings, adds_env=bool(env))
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
) -> _Candidate:
    """What `decide` needs of one container, checked here: `decide` raises nothing."""
    if skip is not None:
        return _Candidate(slot, skip, False)
    if is_wrapped(slot.checked(), layout.init_path):
        return _Candidate(slot, None, True)
    return _Candidate(
        slot,
        None,
        False,
        image_source(slot, settings.image_overrides),
        slot.env_names() if adds_env else frozenset(),
    )


def mutate(pod: object, settings: InjectSettings, images: ImageLookup) -> Mutation:
    """`prepare` and `decide` in one call, for callers that have the image configs at hand."""
    return prepare(pod, settings).decide(images)


def _decide(plan: Pending, images: ImageLookup) -> Mutation:
    settings, view, layout = plan.settings, plan.view, plan.layout
    decisions: list[Decision] = []
    ops: list[PatchOp] = []
    notes: list[str] = []
    denied: str | None = None
    for candidate in plan.candidates:
        slot = candidate.slot
        if candidate.skip is not None:
            decisions.append(Decision(slot.name, Outcome.SKIPPED, candidate.skip, "opted-out"))
            continue
        if candidate.wrapped:
            decisions.append(Decision(slot.name, Outcome.INJECTED, code="already-wrapped"))
            notes += [n for n in layout.previous_notes if n.startswith(f"{slot.name}: ")]
            ops += _mount_ops(slot, layout)
            continue
        image = looked_up(candidate.source, images)
        if isinstance(image, LookupFailure):
            decisions.append(Decision(slot.name, Outcome.FAILED, image.reason, "lookup-failed"))
            if settings.on_lookup_failure is LookupFailurePolicy.DENY:
                denied = denied or f"container {slot.name}: {image.reason}"
            continue
        if image is not None and image.note:
            notes.append(f"{slot.name}: {image.note}")
        wrap = plan_wrap(slot, image, layout.init_path)
        if not wrap.original:
            decisions.append(
                Decision(slot.name, Outcome.FAILED, "image has no ENTRYPOINT or CMD", "no-argv")
            )
            continue
        if reason := runs_init(wrap.original, settings.known_inits):
            decisions.append(Decision(slot.name, Outcome.SKIPPED, reason, "has-init"))
            continue
        ops += _wrap_ops(candidate, wrap.command_items, wrap.new_args, layout, plan.env)
        decisions.append(Decision(slot.name, Outcome.INJECTED, code="wrapped"))

    injected = any(d.outcome is Outcome.INJECTED for d in decisions)
    if injected:
        ops += _pod_ops(view, layout, settings)
    status: dict[str, Any] = {
        "containers": {d.container: d.summary for d in decisions},
        **(layout.record() if injected else {}),
        **({"notes": notes} if notes else {}),
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


def _wrap_ops(
    candidate: _Candidate,
    command_items: list[str],
    new_args: list[str] | None,
    layout: Layout,
    env: tuple[tuple[str, str], ...],
) -> list[PatchOp]:
    slot = candidate.slot
    base = slot.pointer
    added = [(name, value) for name, value in env if name not in candidate.env_names]
    # Before the command grows: the strings are replaced at the indices they have now.
    ops = _shield_ops(slot, frozenset(name for name, _ in added))
    ops += extend(f"{base}/command", slot.command, command_items, at=0)
    if new_args is not None:
        ops += extend(f"{base}/args", slot.args, new_args, at=None)
    ops += _mount_ops(slot, layout)
    wanted = [{"name": name, "value": value} for name, value in added]
    ops += extend(f"{base}/env", slot.body.get("env"), wanted, at=None)
    return ops


def _mount_ops(slot: ContainerSlot, layout: Layout) -> list[PatchOp]:
    """The volume mounted at the init's path, unless the container mounts something there
    already (a pod re-created from its own wrapped spec): a path mounted twice is invalid."""
    mounts = slot.body.get("volumeMounts")
    if any(m.get("mountPath") == layout.mount_path for m in mappings(mounts, slot.pointer)):
        return []
    mount = {"name": layout.volume, "mountPath": layout.mount_path, "readOnly": True}
    return extend(f"{slot.pointer}/volumeMounts", mounts, [mount], at=None)


def _shield_ops(slot: ContainerSlot, names: frozenset[str]) -> list[PatchOp]:
    """The pod's own command and args strings that refer to a variable podinit now defines,
    escaped so that they reach the app as before (argv.shield)."""
    if not names:
        return []
    ops: list[PatchOp] = []
    for field, strings in (("command", slot.command), ("args", slot.args)):
        for index, text in enumerate(strings or []):
            if (shielded := shield(text, names)) != text:
                ops.append(replace(f"{slot.pointer}/{field}/{index}", shielded))
    return ops


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
