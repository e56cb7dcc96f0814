"""What runs is what was read: which image each argv podinit wrote came from.

When a container has no `command`, podinit writes the image's ENTRYPOINT (and, when `args` was
unset, its CMD) into the spec. That argv belongs to one image: the webhook pins the container
to the digest it read it from (`app:1@sha256:...`, so a node that has an older `app:1` cannot
run it with the newer argv), and the status annotation records per container the image the
argv came from and whether podinit also wrote `args` (`fromImage`). A later pass whose
container runs another image (`kubectl set image` on a template `podinit inject` wrote, a pod
re-created with a new tag) re-reads the argv from the new image instead of keeping the old.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from webhook.core.argv import SEPARATOR
from webhook.core.podview import ContainerSlot

FROM_IMAGE = "fromImage"  # the status annotation's key


class Source(NamedTuple):
    """Where a container's argv came from: `image` as it ran then (pinned, when podinit
    pinned it), and whether podinit wrote `args` from the image's CMD too."""

    image: str
    cmd: bool

    def as_status(self) -> dict[str, Any]:
        return {"image": self.image, "cmd": self.cmd}


def pinned(image: str, digest: str | None) -> str:
    """`image@digest` when `image` names a tag and the digest is known, else `image`."""
    if digest is None or "@" in image:
        return image
    return f"{image}@{digest}"


def recorded_sources(status: Mapping[str, Any]) -> dict[str, Source]:
    """The `fromImage` entries of a status annotation; unsound ones are left out."""
    entries = status.get(FROM_IMAGE)
    if not isinstance(entries, Mapping):
        return {}
    found: dict[str, Source] = {}
    for name, entry in entries.items():
        if (
            isinstance(name, str)
            and isinstance(entry, Mapping)
            and isinstance(entry.get("image"), str)
            and isinstance(entry.get("cmd"), bool)
        ):
            found[name] = Source(entry["image"], entry["cmd"])
    return found


def stale(slot: ContainerSlot, source: Source | None, init_path: str) -> bool:
    """The container runs another image than its argv was read from, and its command is still
    the one podinit wrote (`INIT -- ENTRYPOINT...`, nothing put in front), so it can be
    written again."""
    if source is None or (slot.command or [])[:2] != [init_path, SEPARATOR]:
        return False
    image = slot.body.get("image")
    return isinstance(image, str) and not _same_image(image, source.image)


def unwrapped(slot: ContainerSlot, source: Source) -> ContainerSlot:
    """The container as it was before podinit wrote its argv: no command, and no args when
    podinit wrote those too."""
    return slot._replace(command=None, args=None if source.cmd else slot.args)


def _same_image(running: str, read: str) -> bool:
    """The same reference, or the same digest."""
    if running == read:
        return True
    digest = running.partition("@")[2]
    return bool(digest) and digest == read.partition("@")[2]
