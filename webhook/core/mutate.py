"""The decision core: pod + settings + image configs in, JSON Patch + reasons out. No I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from webhook.core import annotations as ann
from webhook.core.argv import is_wrapped, needs_image, plan_wrap, running_init
from webhook.core.eligibility import architecture, candidates, pod_skip, silent_skip
from webhook.core.images import ImageConfig, ImageLookup, LookupFailure, find_override
from webhook.core.layout import Layout, copy_container_spec, volume_spec
from webhook.core.patch import PatchOp, extend, move, set_key
from webhook.core.podview import ContainerSlot, PodView, mappings
from webhook.core.resources import copy_cpu_limit
from webhook.core.settings import InjectionMode, InjectSettings, LookupFailurePolicy

WARNING_LIMIT = 120  # kubectl shows admission warnings; the apiserver caps their length


class Outcome(StrEnum):
    INJECTED = "injected"
    SKIPPED = "skipped"  # deliberately left alone (already has an init, opted out, ...)
    FAILED = "failed"  # should have been wrapped but could not be (no image config, ...)


class Decision(NamedTuple):
    container: str
    outcome: Outcome
    reason: str = ""
    code: str = ""  # a short, fixed label for metrics: wrapped, has-init, lookup-failed, ...


@dataclass(frozen=True, slots=True)
class Mutation:
    patch: list[PatchOp]
    decisions: tuple[Decision, ...] = ()
    pod_reason: str | None = None  # why the whole pod was left alone
    warnings: tuple[str, ...] = ()
    denied: str | None = None  # set only with onLookupFailure: deny


class _Candidate(NamedTuple):
    slot: ContainerSlot
    skip: str | None  # opted out
    wrapped: bool  # already runs behind our init
    # The env names it defines, read only when there are PODINIT_* variables to add to it.
    env_names: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One pod read once: what `decide` needs and which image configs to fetch before it.

    Callers: `plan = prepare(pod, settings)`, fetch `plan.images` for `plan.architecture`,
    then `plan.decide(found)`.
    """

    view: PodView
    settings: InjectSettings
    early: Mutation | None = None  # the whole pod is decided already (skipped, bad option)
    layout: Layout | None = None
    env: tuple[tuple[str, str], ...] = ()
    candidates: tuple[_Candidate, ...] = ()
    images: frozenset[str] = frozenset()  # whose ENTRYPOINT/CMD `decide` needs

    @property
    def architecture(self) -> str:
        return architecture(self.view, self.settings)

    def decide(self, images: ImageLookup) -> Mutation:
        """Decide per container and build the patch. Raises nothing: `prepare` checked what
        this reads (tests/server/test_fuzz_mutate.py)."""
        if self.early is not None:
            return self.early
        assert self.layout is not None
        return _decide(self, self.layout, images)


def prepare(pod: object, settings: InjectSettings) -> Plan:
    """Read and check the pod: everything `decide` and `architecture` will read. Raises only
    `InvalidPod`."""
    view = PodView.of(pod)
    if reason := silent_skip(view):
        return Plan(view=view, settings=settings, early=Mutation(patch=[], pod_reason=reason))
    if reason := pod_skip(view, settings):
        early = Mutation(patch=_status_ops(view, {"skipped": reason}), pod_reason=reason)
        return Plan(view=view, settings=settings, early=early)
    try:
        env = ann.init_env(view.annotations)
    except ann.BadOption as error:
        reason = f"bad annotation {error}"
        early = Mutation(
            patch=_status_ops(view, {"failed": reason}),
            pod_reason=reason,
            warnings=(_warning(f"podinit: pod not wrapped: {reason}"),),
        )
        return Plan(view=view, settings=settings, early=early)
    layout = Layout.of(view, settings)
    found = tuple(
        _candidate(slot, skip, layout, bool(env))
        for slot, skip in candidates(view, settings, ours=layout.ours)
    )
    images = frozenset(
        image
        for c in found
        if c.skip is None
        and not c.wrapped
        and needs_image(c.slot)
        and isinstance(image := c.slot.body.get("image"), str)
        and image
        and find_override(image, settings.image_overrides) is None
    )
    return Plan(
        view=view, settings=settings, layout=layout, env=tuple(env), candidates=found, images=images
    )


def _candidate(slot: ContainerSlot, skip: str | None, layout: Layout, adds_env: bool) -> _Candidate:
    """What `decide` needs of one container, checked here: `decide` raises nothing."""
    if skip is not None:
        return _Candidate(slot, skip, False)
    if is_wrapped(slot.checked(), layout.init_path):
        return _Candidate(slot, None, True)
    return _Candidate(slot, None, False, slot.env_names() if adds_env else frozenset())


def mutate(pod: object, settings: InjectSettings, images: ImageLookup) -> Mutation:
    """`prepare` and `decide` in one call, for callers that have the image configs at hand."""
    return prepare(pod, settings).decide(images)


def _decide(plan: Plan, layout: Layout, images: ImageLookup) -> Mutation:
    settings, view = plan.settings, plan.view
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
            continue
        image = _image_config(slot, settings, images)
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
        if init := running_init(wrap.original, settings.known_inits):
            decisions.append(
                Decision(slot.name, Outcome.SKIPPED, f"already runs an init ({init})", "has-init")
            )
            continue
        ops += _wrap_ops(candidate, wrap.command_items, wrap.new_args, layout, plan.env)
        decisions.append(Decision(slot.name, Outcome.INJECTED, code="wrapped"))

    injected = any(d.outcome is Outcome.INJECTED for d in decisions)
    if injected:
        ops += _pod_ops(view, layout, settings)
    status: dict[str, Any] = {
        "containers": {d.container: _describe(d) for d in decisions},
        **(layout.record(settings) if injected else {}),
        **({"notes": notes} if notes else {}),
    }
    ops += _status_ops(view, status)
    failures = [d for d in decisions if d.outcome is Outcome.FAILED]
    return Mutation(
        patch=ops,
        decisions=tuple(decisions),
        warnings=tuple(
            _warning(f"podinit: {d.container} not wrapped: {d.reason}") for d in failures
        ),
        denied=denied,
    )


def _image_config(
    slot: ContainerSlot, settings: InjectSettings, images: ImageLookup
) -> ImageConfig | LookupFailure | None:
    """None when the container does not depend on its image (it has a `command`)."""
    if not needs_image(slot):
        return None
    image = slot.body.get("image")
    if not isinstance(image, str) or not image:
        return LookupFailure("container has no image")
    override = find_override(image, settings.image_overrides)
    if override is not None:
        return override
    return images.get(image) or LookupFailure(f"no image config for {image}")


def _wrap_ops(
    candidate: _Candidate,
    command_items: list[str],
    new_args: list[str] | None,
    layout: Layout,
    env: tuple[tuple[str, str], ...],
) -> list[PatchOp]:
    slot = candidate.slot
    base = slot.pointer
    ops = extend(f"{base}/command", slot.command, command_items, at=0)
    if new_args is not None:
        ops += extend(f"{base}/args", slot.args, new_args, at=None)
    mounts = slot.body.get("volumeMounts")
    mount = {"name": layout.volume, "mountPath": layout.mount_path, "readOnly": True}
    ops += extend(f"{base}/volumeMounts", mounts, [mount], at=None)
    if env:
        wanted = [
            {"name": name, "value": value} for name, value in env if name not in candidate.env_names
        ]
        ops += extend(f"{base}/env", slot.body.get("env"), wanted, at=None)
    return ops


def _pod_ops(view: PodView, layout: Layout, settings: InjectSettings) -> list[PatchOp]:
    """Volume and copy container; the copy container goes last because it shifts indices."""
    ops: list[PatchOp] = []
    if not layout.volume_exists:
        ops += extend(
            "/spec/volumes", view.spec.get("volumes"), [volume_spec(layout, settings)], at=None
        )
    if settings.injection_mode is InjectionMode.COPY and not layout.copy_exists:
        others = [*mappings(view.spec.get("containers"), "/spec/containers")]
        others += mappings(view.spec.get("initContainers"), "/spec/initContainers")
        cpu_limit = copy_cpu_limit(others, settings.copy_cpu)
        copy = copy_container_spec(layout, settings, cpu_limit=cpu_limit)
        ops += extend("/spec/initContainers", view.spec.get("initContainers"), [copy], at=0)
    elif layout.copy_exists:
        # Another webhook may have put its init container or sidecar before ours since the
        # last pass; whatever runs /podinit/podinit must start after the copy.
        index = next(
            s.position
            for s in view.slots
            if s.field == "initContainers" and s.name == layout.copy_container
        )
        if index:
            ops.append(move(f"/spec/initContainers/{index}", "/spec/initContainers/0"))
    return ops


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


def _describe(decision: Decision) -> str:
    return f"{decision.outcome}: {decision.reason}" if decision.reason else str(decision.outcome)


def _warning(text: str) -> str:
    return text if len(text) <= WARNING_LIMIT else text[: WARNING_LIMIT - 3] + "..."
