"""The settings the decision core needs; the server and the CLI build them from their own config."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from webhook.core.images import ImageOverride

# argv[0] basenames (fnmatch patterns) that already are an init or a process supervisor.
DEFAULT_KNOWN_INITS: tuple[str, ...] = (
    "tini",
    "tini-static*",
    "dumb-init",
    "catatonit",
    "docker-init",
    "podinit",
    "s6-svscan",
    "s6-linux-init*",
    "runsvdir",
    "runit",
    "supervisord",
    "systemd",
    "init",
    "pid1",
)


class InjectionMode(StrEnum):
    """How the init binary reaches the pod."""

    COPY = "copy"  # an emptyDir filled by a first initContainer running `podinit install`
    IMAGE_VOLUME = "imageVolume"  # the init image mounted as an `image` volume (Kubernetes >= 1.35)


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
    copy_cpu: str = "10m"
    copy_memory: str = "16Mi"
    run_as_user: int = 65532
    known_inits: tuple[str, ...] = DEFAULT_KNOWN_INITS
    inject_init_containers: bool = False
    skip_shared_process_namespace: bool = True
    on_lookup_failure: LookupFailurePolicy = LookupFailurePolicy.SKIP
    default_architecture: str = "amd64"
    image_overrides: tuple[ImageOverride, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.mount_path.startswith("/") or "$" in self.mount_path:
            raise ValueError(f"mount_path must be absolute and free of '$': {self.mount_path!r}")
        if self.run_as_user <= 0:
            raise ValueError("run_as_user must be a non-zero uid (Pod Security 'restricted')")

    @property
    def init_path(self) -> str:
        return f"{self.mount_path.rstrip('/')}/podinit"
