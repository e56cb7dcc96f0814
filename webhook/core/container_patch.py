"""One container's part of the patch: the init put in front of its argv (or taken out again),
its mount of the init's volume, its PODINIT_* env, and its image pinned to the digest its argv
was read from."""

from __future__ import annotations

from webhook.core.argv import Wrap, shield
from webhook.core.images import ImageConfig, ImageSource
from webhook.core.layout import Layout
from webhook.core.patch import PatchOp, extend, remove, replace
from webhook.core.podview import ContainerSlot, mappings
from webhook.core.provenance import Source, pinned
from webhook.core.settings import InjectSettings


def unwrap_ops(slot: ContainerSlot, stale: Source) -> list[PatchOp]:
    """A container whose argv came from another image than it runs now, and that cannot be
    wrapped again (its image could not be read, or already runs an init): podinit's argv is
    taken out, so it runs its own image's ENTRYPOINT/CMD, unwrapped."""
    ops = [remove(f"{slot.pointer}/command")]
    if stale.cmd and "args" in slot.body:
        ops.append(remove(f"{slot.pointer}/args"))
    return ops


def wrap_ops(
    slot: ContainerSlot,
    wrap: Wrap,
    *,
    layout: Layout,
    env: tuple[tuple[str, str], ...],
    env_names: frozenset[str],
    re_read: bool,
) -> list[PatchOp]:
    """`wrap` applied to the container: the init in front of its argv, its volume mounted,
    its PODINIT_* env (`env_names`: those the container defines itself). `re_read`: `slot` is
    the container as it was before an earlier pass wrote an argv now re-read."""
    base = slot.pointer
    command_items, new_args = wrap.command_items, wrap.new_args
    added = [(name, value) for name, value in env if name not in env_names]
    # Before the command grows: the strings are replaced at the indices they have now.
    ops = _shield_ops(slot, frozenset(name for name, _ in added))
    ops += extend(f"{base}/command", slot.command, command_items, at=0)
    if new_args is not None:
        ops += extend(f"{base}/args", slot.args, new_args, at=None)
    ops += mount_ops(slot, layout)
    wanted = [{"name": name, "value": value} for name, value in added]
    ops += extend(f"{base}/env", slot.body.get("env"), wanted, at=None)
    if re_read and slot.args is None and new_args is None and "args" in slot.body:
        ops.append(remove(f"{base}/args"))  # the old image's CMD; the new one has none
    return ops


def argv_source(
    slot: ContainerSlot, source: ImageSource, image: ImageConfig | None, settings: InjectSettings
) -> Source:
    """Where the argv podinit writes now comes from: the image, pinned to the digest it was
    read from when it was looked up by tag."""
    written = slot.body.get("image")
    assert isinstance(written, str), "a container without command has an image (image_source)"
    digest = image.digest if image is not None and isinstance(source, str) else None
    return Source(
        pinned(written, digest if settings.pin_image_digests else None), slot.args is None
    )


def pin_ops(slot: ContainerSlot, image: str) -> list[PatchOp]:
    return [] if slot.body.get("image") == image else [replace(f"{slot.pointer}/image", image)]


def mount_ops(slot: ContainerSlot, layout: Layout) -> list[PatchOp]:
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
