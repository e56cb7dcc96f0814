"""What the decision core knows about an image: its ENTRYPOINT and CMD, or why they are missing."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an OCI image config that decide a container's argv."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # Set when the platforms of an index disagree on entrypoint/cmd; shown in the status annotation.
    note: str | None = None


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
