"""Where `podinit inject` gets image configs: --image-config first, then (unless --offline) the
registry, with the same resolver and credentials handling as the webhook."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import TracebackType

from webhook.config import Config, read_setting_file
from webhook.core import ImageResult, LookupFailure
from webhook.lookups import make_resolver, resolve_all
from webhook.registry import ImageResolver


def docker_config(config: Config) -> bytes | None:
    """The configured dockerconfigjson, else the user's own Docker config if there is one."""
    if config.docker_config_file is not None:
        return read_setting_file(config.docker_config_file, "docker_config_file")
    home = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    path = home / "config.json"
    return path.read_bytes() if path.is_file() else None


class OfflineLookup:
    def __init__(self, known: dict[str, ImageResult]) -> None:
        self.known = known

    def __call__(self, images: set[str], architecture: str) -> dict[str, ImageResult]:
        missing = LookupFailure("not in --image-config (offline)")
        return {image: self.known.get(image, missing) for image in images}


class RegistryLookup:
    """A synchronous face on the async resolver; one event loop for the whole CLI run."""

    def __init__(self, config: Config, known: dict[str, ImageResult]) -> None:
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
        return make_resolver(config)  # its HTTP client belongs to this loop

    def __call__(self, images: set[str], architecture: str) -> dict[str, ImageResult]:
        unknown = images - self.known.keys()
        found = self.runner.run(self._resolve(unknown, architecture)) if unknown else {}
        return {**{i: self.known[i] for i in images & self.known.keys()}, **found}

    async def _resolve(self, images: set[str], architecture: str) -> dict[str, ImageResult]:
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
