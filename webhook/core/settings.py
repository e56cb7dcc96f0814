"""The settings the decision core needs; the server and the CLI build them from their own config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from webhook.core.images import ImageOverride
from webhook.core.known_inits import DEFAULT_KNOWN_INITS

# Room is left for the "-N" podinit appends when a pod already uses the name.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")


class InjectionMode(StrEnum):
    """How the init binary reaches the pod."""

    COPY = "copy"  # an emptyDir filled by a first initContainer running `podinit install`
    IMAGE_VOLUME = "imageVolume"  # the init image mounted as an `image` volume (Kubernetes >= 1.35)


@dataclass(frozen=True, slots=True)
class Resources:
    """Fixed `resources` for the copy container: quantities by resource name."""

    requests: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, str], ...] = ()

    def as_spec(self) -> dict[str, dict[str, str]]:
        parts = (("requests", self.requests), ("limits", self.limits))
        return {part: dict(values) for part, values in parts if values}


class LookupFailurePolicy(StrEnum):
    SKIP = "skip"  # admit the container unwrapped, with a warning
    DENY = "deny"  # reject the pod


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectSettings:
    init_image: str = "docker.io/podinit/init:0.1.0"
    init_image_pull_policy: str = "IfNotPresent"
    injection_mode: InjectionMode = InjectionMode.COPY
    mount_path: str = "/podinit"
    volume_name: str = "podinit"
    volume_size_limit: str = "8Mi"
    copy_container_name: str = "podinit-install"
    # None: mirror the smallest app container's (webhook/core/resources.py).
    copy_container_resources: Resources | None = None
    # None: the copy container names no uid and runs as the pod's (copy_container.py)
    run_as_user: int | None = None
    known_inits: tuple[str, ...] = DEFAULT_KNOWN_INITS
    inject_init_containers: bool = False
    skip_shared_process_namespace: bool = True
    on_lookup_failure: LookupFailurePolicy = LookupFailurePolicy.SKIP
    # Pin a container whose argv podinit read from a tag to the digest it read (provenance.py).
    pin_image_digests: bool = True
    default_architecture: str = "amd64"
    image_overrides: tuple[ImageOverride, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        """Settings that would make every mutated pod invalid are refused up front."""
        if not self.mount_path.startswith("/") or "$" in self.mount_path:
            raise ValueError(f"mount_path must be absolute and free of '$': {self.mount_path!r}")
        if self.run_as_user is not None and self.run_as_user <= 0:
            raise ValueError("run_as_user must be a non-zero uid (Pod Security 'restricted')")
        for name, value in (
            ("volume_name", self.volume_name),
            ("copy_container_name", self.copy_container_name),
        ):
            if not _LABEL.fullmatch(value):
                raise ValueError(
                    f"{name} must be a DNS-1123 label of at most 58 characters: {value!r}"
                )
        quantities = [("volume_size_limit", self.volume_size_limit)]
        if (fixed := self.copy_container_resources) is not None:
            quantities += [
                (f"copy_container_resources.{part}.{name}", value)
                for part, values in (("requests", fixed.requests), ("limits", fixed.limits))
                for name, value in values
            ]
        for name, value in quantities:
            if not _QUANTITY.fullmatch(value):
                raise ValueError(f"{name} must be a Kubernetes quantity such as 8Mi: {value!r}")
        if not self.init_image.strip():
            raise ValueError("init_image must name an image")

    @property
    def init_path(self) -> str:
        return f"{self.mount_path.rstrip('/')}/podinit"
