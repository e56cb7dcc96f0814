"""The walk from an image reference to its config: the cache read first (`from_cache`),
then what is missing fetched from the registry, each piece cached as it arrives (manifests,
indexes and configs by digest, a tag's digest for `tag_ttl`, an index's platform comparison).
ImageResolver (resolver.py) decides when to walk: single flight, deadlines, failures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from webhook.core.images import ImageConfig

from . import comparison
from .auth import RegistryAuth
from .client import Endpoint, RegistryClient
from .errors import BadResponse, NotFoundError, shorten
from .platforms import (
    Platform,
    disagreement_note,
    platform_of,
    runnable_entries,
    select_manifest,
)
from .reference import ImageReference
from .settings import ResolverSettings
from .store import Cached, CachedConfig, Comparison, ScopedStore
from .wire import Descriptor, Index, Manifest

COMPARE = "compare:"  # object key prefix for an index's Comparison
FlightKey = tuple[str, str, Platform]


@dataclass(frozen=True, slots=True)
class Lookup:
    """Everything one resolution needs, fixed before any I/O."""

    ref: ImageReference
    endpoint: Endpoint
    platform: Platform
    scopes: tuple[str, ...]  # cache scopes this caller may read: its fingerprint, then ""
    auth: RegistryAuth

    @property
    def flight_key(self) -> FlightKey:
        return (self.scopes[0], str(self.ref), self.platform)

    @property
    def store_scope(self) -> str:
        # Whatever was fetched after the credential was presented is private to it.
        return self.scopes[0] if self.auth.used_credential else ""


class Walk:
    def __init__(
        self,
        *,
        client: RegistryClient,
        store: ScopedStore,
        settings: ResolverSettings,
        clock: Callable[[], float],
    ) -> None:
        self.client, self.store, self.settings, self.clock = client, store, settings, clock
        # Results known before their platform comparison finished, by flight key.
        self.partial: dict[FlightKey, ImageConfig] = {}

    # -- cache walk ------------------------------------------------------------------------

    def get(self, lookup: Lookup, key: str) -> Cached | None:
        return self.store.get(lookup.scopes, lookup.endpoint.host, lookup.ref.repository, key)

    def put(self, lookup: Lookup, key: str, obj: Cached, ttl: float | None = None) -> None:
        self.store.put(
            lookup.store_scope, lookup.endpoint.host, lookup.ref.repository, key, obj, ttl=ttl
        )

    def tag_digest(self, lookup: Lookup) -> tuple[str, float] | None:
        """(digest, fresh until) of the reference, as last resolved; a digest is for good."""
        if lookup.ref.digest:
            return lookup.ref.digest, math.inf
        return self.store.tag(
            lookup.scopes, lookup.endpoint.host, lookup.ref.repository, lookup.ref.tag or ""
        )

    def from_cache(self, lookup: Lookup) -> tuple[ImageConfig, float] | None:
        """The answer from cache alone and until when it may be remembered: its tag's
        freshness, or not at all while its platform comparison is incomplete."""
        tag = self.tag_digest(lookup)
        if tag is None or tag[1] <= self.clock():
            return None
        until = tag[1]
        top = self.get(lookup, tag[0])
        note = None
        if isinstance(top, Index):
            child = select_manifest(top.manifests, lookup.platform)
            if child is None:
                return None
            if self.settings.compare_platforms > 0:
                compared = self.get(lookup, COMPARE + tag[0])
                if not isinstance(compared, Comparison):
                    return None
                note = disagreement_note(platform_of(child), dict(compared.configs))
                if not compared.complete:
                    until = -math.inf  # the comparison is retried after tag_ttl
            top = self.get(lookup, child.digest)
        if not isinstance(top, Manifest):
            return None
        config = self.get(lookup, top.config.digest)
        if not isinstance(config, CachedConfig):
            return None
        config_of = ImageConfig(config.entrypoint, config.cmd, note=note, digest=tag[0])
        return config_of, until

    async def walk(self, lookup: Lookup) -> ImageConfig:
        """Fetch what the cache lacks, from the tag down to the config (and its siblings'
        for the platform comparison), caching each piece."""
        top_digest = await self.top_digest(lookup)
        top = self.get(lookup, top_digest)
        if not isinstance(top, Manifest | Index):
            _, top = await self.client.get_manifest(
                lookup.endpoint, lookup.ref.repository, top_digest, auth=lookup.auth
            )
            self.put(lookup, top_digest, top)
        if isinstance(top, Manifest):
            config = await self.config_of(lookup, top)
            return ImageConfig(config.entrypoint, config.cmd, digest=top_digest)
        child = select_manifest(top.manifests, lookup.platform)
        if child is None:
            have = sorted({str(platform_of(e)) for e in runnable_entries(top.manifests)})
            raise NotFoundError(
                f"{shorten(lookup.ref.repository, 40)} has no {lookup.platform} image "
                f"(has {shorten(', '.join(have) or 'none', 40)})"
            )
        siblings = self.start_comparison(lookup, top_digest, top, child)
        try:
            config = await self.image_config(lookup, child.digest)
            self.partial[lookup.flight_key] = ImageConfig(
                config.entrypoint, config.cmd, digest=top_digest
            )
            note = await self.finish_comparison(lookup, top_digest, child, config, siblings)
        finally:
            self.partial.pop(lookup.flight_key, None)
            for task in siblings.values():
                task.cancel()
        return ImageConfig(config.entrypoint, config.cmd, note=note, digest=top_digest)

    async def top_digest(self, lookup: Lookup) -> str:
        """The digest the reference points at now (tags: cached for tag_ttl, then HEAD)."""
        ref, client = lookup.ref, self.client
        if ref.digest:
            return ref.digest
        known = self.tag_digest(lookup)
        if known is not None and known[1] > self.clock():
            return known[0]
        tag = ref.tag or "latest"
        if known is not None and self.get(lookup, known[0]) is not None:
            try:
                current = await client.head_manifest(
                    lookup.endpoint, ref.repository, tag, auth=lookup.auth
                )
            except BadResponse:
                current = None  # registries that mishandle HEAD still answer GET
            if current is not None:
                self.remember_tag(lookup, current)
                return current
        digest, manifest = await client.get_manifest(
            lookup.endpoint, ref.repository, tag, auth=lookup.auth
        )
        self.put(lookup, digest, manifest)
        self.remember_tag(lookup, digest)
        return digest

    def remember_tag(self, lookup: Lookup, digest: str) -> None:
        self.store.remember_tag(
            lookup.store_scope,
            lookup.endpoint.host,
            lookup.ref.repository,
            lookup.ref.tag or "",
            digest,
        )

    async def image_config(self, lookup: Lookup, manifest_digest: str) -> CachedConfig:
        manifest = self.get(lookup, manifest_digest)
        if not isinstance(manifest, Manifest):
            _, fetched = await self.client.get_manifest(
                lookup.endpoint, lookup.ref.repository, manifest_digest, auth=lookup.auth
            )
            if not isinstance(fetched, Manifest):
                raise BadResponse("image index points at another index; not supported")
            manifest = fetched
            self.put(lookup, manifest_digest, manifest)
        return await self.config_of(lookup, manifest)

    async def config_of(self, lookup: Lookup, manifest: Manifest) -> CachedConfig:
        digest = manifest.config.digest
        config = self.get(lookup, digest)
        if isinstance(config, CachedConfig):
            return config
        entrypoint, cmd = await self.client.get_config(
            lookup.endpoint, lookup.ref.repository, digest, auth=lookup.auth
        )
        config = CachedConfig(entrypoint, cmd)
        self.put(lookup, digest, config)
        return config

    # -- platform comparison (comparison.py), its result cached per index digest ---------------

    def start_comparison(
        self, lookup: Lookup, index_digest: str, index: Index, chosen: Descriptor
    ) -> comparison.Siblings:
        limit = self.settings.compare_platforms
        if limit <= 0 or isinstance(self.get(lookup, COMPARE + index_digest), Comparison):
            return {}
        return comparison.start(
            index, chosen, limit=limit, fetch=lambda digest: self.image_config(lookup, digest)
        )

    async def finish_comparison(
        self,
        lookup: Lookup,
        index_digest: str,
        chosen: Descriptor,
        config: CachedConfig,
        tasks: comparison.Siblings,
    ) -> str | None:
        if self.settings.compare_platforms <= 0:
            return None
        mine = platform_of(chosen)
        known = self.get(lookup, COMPARE + index_digest)
        if isinstance(known, Comparison):
            return disagreement_note(mine, dict(known.configs))
        configs, complete = await comparison.finish(
            chosen, config, tasks, grace=self.settings.compare_grace
        )
        ttl = None if complete else self.settings.tag_ttl
        self.put(lookup, COMPARE + index_digest, Comparison(configs, complete), ttl=ttl)
        return disagreement_note(mine, configs)
