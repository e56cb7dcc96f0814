"""Where `podinit inject` gets image configs: --image-config first, then (unless --offline) the
registry, with the same resolver and credentials handling as the webhook."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from webhook.config import Config, read_setting_file
from webhook.core import ImageConfig, ImageOverride, ImageResult, LookupFailure, find_override

if TYPE_CHECKING:  # the resolver brings httpx: imported only by a run that reads a registry
    from webhook.registry import ImageResolver


def docker_config(config: Config) -> bytes | None:
    """The configured dockerconfigjson, else the user's own Docker config if there is one."""
    if config.docker_config_file is not None:
        return read_setting_file(config.docker_config_file, "docker_config_file")
    home = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    path = home / "config.json"
    return path.read_bytes() if path.is_file() else None


def from_image_config(images: set[str], known: tuple[ImageOverride, ...]) -> dict[str, ImageConfig]:
    """The images --image-config has an entry for, by the rule of `imageOverrides`."""
    found = {image: find_override(image, known) for image in images}
    return {image: config for image, config in found.items() if config is not None}


class OfflineLookup:
    def __init__(self, known: tuple[ImageOverride, ...], *, image_config: bool) -> None:
        self.known = known
        self.missing = LookupFailure(
            "not in --image-config (offline)"
            if image_config
            else "needs the image's ENTRYPOINT/CMD: pass --image-config or give the container "
            "a command (offline)"
        )

    def __call__(self, images: set[str], architecture: str) -> dict[str, ImageResult]:
        return {**dict.fromkeys(images, self.missing), **from_image_config(images, self.known)}


class RegistryLookup:
    """A synchronous face on the async resolver; one event loop for the whole CLI run."""

    def __init__(self, config: Config, known: tuple[ImageOverride, ...]) -> None:
        self.known = known
        self.budget = config.lookup_budget
        self.credentials = [c for c in (docker_config(config),) if c]
        self.runner = asyncio.Runner()
        try:
            self.resolver = self.runner.run(self._make(config))
        except BaseException:  # a bad registryCaFile: leave no event loop behind
            self.runner.close()
            raise

    @staticmethod
    async def _make(config: Config) -> ImageResolver:
        from webhook.registry_lookups import make_resolver

        return make_resolver(config)  # its HTTP client belongs to this loop

    def __call__(self, images: set[str], architecture: str) -> dict[str, ImageResult]:
        given: dict[str, ImageResult] = dict(from_image_config(images, self.known))
        unknown = images - given.keys()
        found = self.runner.run(self._resolve(unknown, architecture)) if unknown else {}
        return {**given, **found}

    async def _resolve(self, images: set[str], architecture: str) -> dict[str, ImageResult]:
        from webhook.registry_lookups import resolve_all

        return await resolve_all(
            self.resolver,
            images,
            architecture=architecture,
            pull_secrets=self.credentials,
            budget=self.budget,
        )

    def __enter__(self) -> RegistryLookup:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.runner.run(self.resolver.aclose())
        self.runner.close()
