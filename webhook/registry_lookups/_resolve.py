"""The resolver built from Config, and many images resolved at once into what the core takes
(a config or a failure per image)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from webhook.config import Config
from webhook.core import ImageResult, LookupFailure
from webhook.registry import ImageResolver, Platform, PullSecrets, RegistryError, ResolverSettings
from webhook.registry_lookups._registry_ca import registry_ca_bundle


def make_resolver(config: Config) -> ImageResolver:
    ca_file = config.registry_ca_file
    ca = registry_ca_bundle(ca_file) if ca_file else None
    return ImageResolver(
        ResolverSettings(
            default_platform=Platform(
                os=config.default_platform_os, architecture=config.default_architecture
            ),
            mirrors=config.registry_mirrors,
            insecure=frozenset(config.insecure_registries),
            ca_bundle=ca,
            default_timeout=config.lookup_budget,
            tag_ttl=config.tag_ttl_seconds,
            negative_ttl=config.negative_ttl_seconds,
            max_entries=config.cache_entries,
        )
    )


async def resolve_all(
    resolver: ImageResolver,
    images: Iterable[str],
    *,
    architecture: str,
    pull_secrets: PullSecrets,
    budget: float,
) -> dict[str, ImageResult]:
    """Every image resolved concurrently within `budget` seconds; a registry error becomes that
    image's LookupFailure. Cache hits are answered without awaiting anything."""
    platform = Platform(os=resolver.settings.default_platform.os, architecture=architecture)
    results: dict[str, ImageResult] = {}
    misses: list[str] = []
    for image in sorted(images):
        hit = resolver.cached(image, platform=platform, pull_secrets=pull_secrets)
        if hit is None:
            misses.append(image)
        else:
            results[image] = hit

    async def one(image: str) -> ImageResult:
        try:
            return await resolver.resolve(
                image, platform=platform, pull_secrets=pull_secrets, deadline=deadline
            )
        except RegistryError as error:
            return LookupFailure(error.message)

    if misses:
        deadline = asyncio.get_running_loop().time() + budget
        found = await asyncio.gather(*(one(image) for image in misses))
        results.update(zip(misses, found, strict=True))
    return results
