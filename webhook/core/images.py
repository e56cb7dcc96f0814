"""What the decision core knows about an image: its ENTRYPOINT and CMD, or why they are missing;
and which containers need them, from an override or a lookup."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from webhook.core.podview import ContainerSlot


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an OCI image config that decide a container's argv."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # Set when the platforms of an index disagree on entrypoint/cmd; shown in the status annotation.
    note: str | None = None
    # The manifest or index digest a tag pointed at when the config was read (provenance.py);
    # not part of equality: two reads of one argv are the same config.
    digest: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LookupFailure:
    """The image config could not be had; `reason` is shown to the user as a warning."""

    reason: str


ImageResult = ImageConfig | LookupFailure
# Image reference, exactly as written in the pod spec -> what was found for it.
ImageLookup = Mapping[str, ImageResult]


@dataclass(frozen=True, slots=True)
class ImageOverride:
    """An admin-supplied config for images matching `pattern` (fnmatch), for air-gapped clusters."""

    pattern: str
    config: ImageConfig


def find_override(image: str, overrides: tuple[ImageOverride, ...]) -> ImageConfig | None:
    """The first override whose pattern matches `image`, or None."""
    for override in overrides:
        if fnmatch.fnmatchcase(image, override.pattern):
            return override.config
    return None


# Where a container's ENTRYPOINT/CMD comes from: None when it has a `command` (Kubernetes then
# ignores the image's), an override's config, a failure known without a lookup, or the image
# reference to look up. `prepare` collects the references into `plan.images`; `decide` reads
# the sources back, so the two cannot disagree.
ImageSource = ImageConfig | LookupFailure | str | None


def needs_image(slot: ContainerSlot) -> bool:
    """Only a container without `command` depends on the image's ENTRYPOINT."""
    return slot.command is None


def image_source(slot: ContainerSlot, overrides: tuple[ImageOverride, ...]) -> ImageSource:
    if not needs_image(slot):
        return None
    image = slot.body.get("image")
    if not isinstance(image, str) or not image:
        return LookupFailure("container has no image")
    override = find_override(image, overrides)
    return image if override is None else override


def looked_up(source: ImageSource, found: ImageLookup) -> ImageConfig | LookupFailure | None:
    """The config `source` stands for, given the lookups' results."""
    if isinstance(source, str):
        return found.get(source) or LookupFailure(f"no image config for {source}")
    return source
