"""The resolver built from Config, and many images resolved at once into what the core takes
(a config or a failure per image)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from webhook.config import Config, ConfigError
from webhook.core import ImageResult, LookupFailure
from webhook.registry import ImageResolver, Platform, PullSecrets, RegistryError, ResolverSettings
from webhook.registry_lookups._registry_ca import registry_ca_bundle


def make_resolver(config: Config) -> ImageResolver:
    ca_file = config.registry_ca_file
    ca = registry_ca_bundle(ca_file) if ca_file else None
    settings = ResolverSettings(
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
        denied_networks=tuple(config.registry_denied_networks),
        allowed_networks=tuple(config.registry_allowed_networks),
        connections_per_host=config.registry_connections_per_host,
        lookups_per_admission=config.registry_lookups_per_admission,
        lookups_per_namespace=config.registry_lookups_per_namespace,
    )
    try:
        return ImageResolver(settings)
    except ValueError as error:  # a network that is not a CIDR; the message names the setting
        raise ConfigError(str(error)) from error


async def resolve_all(
    resolver: ImageResolver,
    images: Iterable[str],
    *,
    architecture: str,
    pull_secrets: PullSecrets,
    budget: float,
    namespace: str = "",
) -> dict[str, ImageResult]:
    """Every image resolved within `budget` seconds; a registry error becomes that image's
    LookupFailure. Cache hits are answered without awaiting anything. Misses are looked up
    `lookups_per_admission` at a time (one pod naming a hundred images waits for its own
    lookups, not everyone else's), and count against `namespace`'s share of fetches."""
    platform = Platform(os=resolver.settings.default_platform.os, architecture=architecture)
    results: dict[str, ImageResult] = {}
    misses: list[str] = []
    for image in sorted(images):
        hit = resolver.cached(image, platform=platform, pull_secrets=pull_secrets)
        if hit is None:
            misses.append(image)
        else:
            results[image] = hit
    if not misses:
        return results
    deadline = asyncio.get_running_loop().time() + budget
    turns = asyncio.Semaphore(resolver.settings.lookups_per_admission)

    async def one(image: str) -> ImageResult:
        try:
            async with asyncio.timeout_at(deadline), turns:
                return await resolver.resolve(
                    image,
                    platform=platform,
                    pull_secrets=pull_secrets,
                    deadline=deadline,
                    tenant=namespace,
                )
        except RegistryError as error:
            return LookupFailure(error.message)
        except TimeoutError:  # still waiting for a turn at the deadline
            return LookupFailure(f"registry lookup of {_short(image)} took over {budget:.3g}s")

    found = await asyncio.gather(*(one(image) for image in misses))
    results.update(zip(misses, found, strict=True))
    return results


def _short(image: str) -> str:
    return image if len(image) <= 48 else image[:47] + "…"
