"""ImageResolver: image reference -> ImageConfig, with caching, single flight and deadlines.

Caching (see store.py for scopes; all LRU-bounded, keys never contain secrets):
- manifests, indexes and configs by digest: content-addressed, kept until evicted;
- a tag's digest for `tag_ttl`, then revalidated with a HEAD (free on Docker Hub's rate
  limit); digest references are never re-resolved;
- failures for `negative_ttl`, so a broken registry is not hammered;
- one fetch per (credential scope, reference, platform) at a time (single flight).

Bounds on what a tenant (who names the image) may cost are in client.py (per request, host
and redirect), network.py (where to connect) and here: each fetch is bounded by
`fetch_timeout`, and a tenant's fetches still running by `lookups_per_namespace`.
Failures are logged once per fetch with their `detail`, for the operator; callers get the
short message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import cast

import httpx

from webhook.core.images import ImageConfig

from . import comparison
from .auth import Challenge, RegistryAuth, TokenCache
from .backoff import Backoff
from .cache import LRU, SingleFlight
from .client import Bounds, Endpoint, RegistryClient, make_transport, policy_for
from .credentials import Credential, Keyring
from .errors import BadResponse, DeadlineExceeded, NotFoundError, RegistryError, shorten
from .fairness import Shares
from .platforms import (
    Platform,
    disagreement_note,
    platform_of,
    runnable_entries,
    select_manifest,
)
from .reference import ImageReference, normalize_host, parse_reference
from .settings import PullSecrets, ResolverSettings, ResolverStats
from .store import Cached, CachedConfig, Comparison, ScopedStore
from .wire import Descriptor, Index, Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Lookup:
    """Everything one resolution needs, fixed before any I/O."""

    ref: ImageReference
    endpoint: Endpoint
    platform: Platform
    scopes: tuple[str, ...]  # cache scopes this caller may read: its fingerprint, then ""
    auth: RegistryAuth

    @property
    def flight_key(self) -> tuple[str, str, Platform]:
        return (self.scopes[0], str(self.ref), self.platform)

    @property
    def store_scope(self) -> str:
        # Whatever was fetched after the credential was presented is private to it.
        return self.scopes[0] if self.auth.used_credential else ""


_NO_KEYRING = Keyring()

_COMPARE = "compare:"  # object key prefix for an index's Comparison


class ImageResolver:
    """The façade the server uses. Create once per process; `await aclose()` at shutdown."""

    def __init__(
        self,
        settings: ResolverSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = s = settings or ResolverSettings()
        self.stats = ResolverStats()
        self._fingerprint_key = os.urandom(32)
        insecure = frozenset(normalize_host(h) for h in s.insecure)
        mirrors = {normalize_host(k): normalize_host(v) for k, v in s.mirrors.items()}
        network = policy_for(s, insecure=insecure, mirrors=mirrors)
        self._http = httpx.AsyncClient(
            transport=transport or make_transport(ca_bundle=s.ca_bundle, network=network),
            timeout=httpx.Timeout(s.request_timeout, pool=s.fetch_timeout),
            follow_redirects=False,  # the client follows them itself, checked
            event_hooks={"request": [self._count_request]},
        )
        # Failing hosts and token services, backed off from negative_ttl up to the ceiling.
        self._backoff = Backoff(
            base=s.negative_ttl, ceiling=max(s.negative_ttl, s.backoff_ceiling),
            max_entries=s.max_entries,
        )  # fmt: skip
        bounds = Bounds(
            request_timeout=s.request_timeout,
            max_redirects=s.max_redirects,
            connections_per_host=s.connections_per_host,
        )
        self._client = RegistryClient(
            http=self._http, insecure=insecure, mirrors=mirrors, bounds=bounds,
            backoff=self._backoff,
        )  # fmt: skip
        self._tenants: Shares[str] = Shares(per_key=s.lookups_per_namespace)
        self._tokens = TokenCache(max_entries=s.max_entries)
        # Which auth scheme/realm each host uses; bounded since hosts come from pod specs.
        self._challenges: LRU[str, Challenge] = LRU(max_entries=s.max_entries)
        # Memos; they hold secrets in memory only, like the pull-secret payloads themselves.
        self._keyrings: LRU[tuple[bytes | str, ...], Keyring] = LRU(max_entries=1024)
        self._fingerprints: LRU[Credential, str] = LRU(max_entries=1024)
        self._store = ScopedStore(max_entries=s.max_entries, tag_ttl=s.tag_ttl)
        self._failures: LRU[tuple[str, str, Platform], RegistryError] = LRU(
            max_entries=s.max_entries
        )
        # Results known before their platform comparison finished, by flight key.
        self._partial: dict[tuple[str, str, Platform], ImageConfig] = {}
        self._flights: SingleFlight[tuple[str, str, Platform], ImageConfig] = SingleFlight()
        # What `cached` answered, by (image, platform, keyring), until the answer's tag goes
        # stale: a repeated hit is one probe instead of a reference parse and a cache walk.
        # The keyring stands for the caller's credentials, so no answer crosses them.
        self._answers: LRU[tuple[str, Platform, Keyring], tuple[ImageConfig, float]] = LRU(
            max_entries=s.max_entries
        )
        self._clock = time.monotonic

    async def _count_request(self, request: httpx.Request) -> None:
        self.stats.http_requests[request.method] += 1

    async def __aenter__(self) -> ImageResolver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop in-flight fetches and close connections."""
        self._flights.cancel_all()
        await self._http.aclose()

    async def resolve(
        self,
        image: str,
        *,
        platform: Platform | None = None,
        pull_secrets: PullSecrets = (),
        timeout: float | None = None,
        deadline: float | None = None,
        tenant: str = "",
    ) -> ImageConfig:
        """ENTRYPOINT/CMD of `image` for `platform`; raises a RegistryError subclass.

        Returns or raises within `timeout` seconds (default settings.default_timeout) or by
        `deadline` (event-loop time), whichever is first, whatever the registry does.
        A `tenant` (the pod's namespace) starts at most `lookups_per_namespace` fetches that
        are still running; "" is no tenant (the CLI), unlimited.
        """
        loop = asyncio.get_running_loop()
        budget = self.settings.default_timeout if timeout is None else timeout
        if deadline is not None:
            budget = min(budget, deadline - loop.time())
        try:
            result = await self._resolve(image, platform, pull_secrets, budget, tenant)
        except RegistryError as err:
            self.stats.lookups[err.result] += 1
            raise
        self.stats.lookups["ok"] += 1
        return result

    def cached(
        self, image: str, *, platform: Platform | None = None, pull_secrets: PullSecrets = ()
    ) -> ImageConfig | None:
        """The answer `resolve` would give from cache alone, without awaiting anything; None
        on a miss (or a reference `resolve` would reject). The admission hot path asks this
        first so that cache hits cost no task or timeout scope."""
        keyring, reusable = self._keyring(pull_secrets)
        platform = (platform or self.settings.default_platform).normalized()
        key = (image, platform, keyring)
        answer = self._answers.get(key)
        if answer is None or answer[1] <= self._clock():
            try:
                lookup = self._prepare(image, platform, keyring)
            except RegistryError:
                return None
            answer = self._from_cache(lookup)
            if answer is None:
                return None
            # Not with a keyring built afresh for this call: it would never hit again.
            if reusable and answer[1] > self._clock():
                self._answers.put(key, answer)
        self.stats.cache_hits += 1
        self.stats.lookups["ok"] += 1
        return answer[0]

    async def _resolve(
        self,
        image: str,
        platform: Platform | None,
        pull_secrets: PullSecrets,
        budget: float,
        tenant: str,
    ) -> ImageConfig:
        lookup = self._prepare(image, platform, pull_secrets)
        cached = self._from_cache(lookup)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached[0]
        failure = self._failures.get(lookup.flight_key)
        if failure is not None:
            self.stats.negative_hits += 1
            raise failure.again()
        if budget <= 0:
            raise DeadlineExceeded(f"no time left to look up {shorten(image)}")
        try:
            async with asyncio.timeout(budget):
                task = await self._flight(lookup, tenant)
                return await asyncio.shield(task)
        except TimeoutError:
            # Our config may be known while the platform comparison still runs: better an
            # answer without the note than none.
            partial = self._partial.get(lookup.flight_key)
            if partial is not None:
                return partial
            raise DeadlineExceeded(
                f"registry lookup of {shorten(image)} took over {budget:.3g}s"
            ) from None

    async def _flight(self, lookup: _Lookup, tenant: str) -> asyncio.Task[ImageConfig]:
        """The fetch for `lookup`: joined if running, else started once `tenant` has a share
        free (held until the fetch ends, which may be after this caller gave up)."""
        key = lookup.flight_key
        held = bool(tenant) and not self._flights.running(key)
        if held:
            if self._tenants.busy(tenant) >= self._tenants.per_key:
                self.stats.tenant_waits += 1
            await self._tenants.acquire(tenant)
        task, started = self._flights.start(key, lambda: self._fetch(lookup))
        if started:
            self.stats.fetches += 1
            if held:
                task.add_done_callback(lambda _: self._tenants.release(tenant))
        else:
            self.stats.joined += 1
            if held:  # someone else started it while we waited
                self._tenants.release(tenant)
        return task

    def _prepare(self, image: str, platform: Platform | None, pull_secrets: PullSecrets) -> _Lookup:
        ref = parse_reference(image)
        endpoint = self._client.endpoint(ref.registry)
        keyring, _ = self._keyring(pull_secrets)
        # Credentials belong to the host we actually contact: Docker Hub's are not sent
        # to a mirror, the mirror's own are.
        credential = keyring.lookup(endpoint.host, ref.repository)
        fingerprint = ""
        if credential is not None:
            fingerprint = self._fingerprints.get(credential) or ""
            if not fingerprint:
                fingerprint = credential.fingerprint(self._fingerprint_key)
                self._fingerprints.put(credential, fingerprint)
        auth = RegistryAuth(
            host=endpoint.host,
            repository=ref.repository,
            credential=credential,
            fingerprint=fingerprint,
            tokens=self._tokens,
            challenges=self._challenges,
            realm_allowed=self._client.realm_allowed,
            backoff=self._backoff,
        )
        scopes = (fingerprint, "") if fingerprint else ("",)
        return _Lookup(
            ref, endpoint, (platform or self.settings.default_platform).normalized(), scopes, auth
        )

    def _keyring(self, pull_secrets: PullSecrets) -> tuple[Keyring, bool]:
        """Parsed pull secrets, and whether the same object comes back for the same secrets.
        Memoised because the same Secrets arrive with every admission of a workload and
        parsing JSON per lookup would dominate cache-hit latency."""
        if isinstance(pull_secrets, Keyring):
            return pull_secrets, True
        payloads = tuple(pull_secrets)
        if not payloads:
            return _NO_KEYRING, True
        if not all(isinstance(p, bytes | str) for p in payloads):
            return Keyring.from_payloads(payloads), False  # mappings are not hashable
        key = cast(tuple[bytes | str, ...], payloads)
        keyring = self._keyrings.get(key)
        if keyring is None:
            keyring = Keyring.from_payloads(key)
            self._keyrings.put(key, keyring)
        return keyring, True

    # -- cache walk ------------------------------------------------------------------------

    def _get(self, lookup: _Lookup, key: str) -> Cached | None:
        return self._store.get(lookup.scopes, lookup.endpoint.host, lookup.ref.repository, key)

    def _put(self, lookup: _Lookup, key: str, obj: Cached, ttl: float | None = None) -> None:
        self._store.put(
            lookup.store_scope, lookup.endpoint.host, lookup.ref.repository, key, obj, ttl=ttl
        )

    def _tag_digest(self, lookup: _Lookup) -> tuple[str, float] | None:
        """(digest, fresh until) of the reference, as last resolved; a digest is for good."""
        if lookup.ref.digest:
            return lookup.ref.digest, math.inf
        return self._store.tag(
            lookup.scopes, lookup.endpoint.host, lookup.ref.repository, lookup.ref.tag or ""
        )

    def _from_cache(self, lookup: _Lookup) -> tuple[ImageConfig, float] | None:
        """The answer from cache alone and until when it may be remembered: its tag's
        freshness, or not at all while its platform comparison is incomplete."""
        tag = self._tag_digest(lookup)
        if tag is None or tag[1] <= self._clock():
            return None
        until = tag[1]
        top = self._get(lookup, tag[0])
        note = None
        if isinstance(top, Index):
            child = select_manifest(top.manifests, lookup.platform)
            if child is None:
                return None
            if self.settings.compare_platforms > 0:
                compared = self._get(lookup, _COMPARE + tag[0])
                if not isinstance(compared, Comparison):
                    return None
                note = disagreement_note(platform_of(child), dict(compared.configs))
                if not compared.complete:
                    until = -math.inf  # the comparison is retried after tag_ttl
            top = self._get(lookup, child.digest)
        if not isinstance(top, Manifest):
            return None
        config = self._get(lookup, top.config.digest)
        if not isinstance(config, CachedConfig):
            return None
        config_of = ImageConfig(config.entrypoint, config.cmd, note=note, digest=tag[0])
        return config_of, until

    # -- fetching (runs once per flight key, in its own task) ----------------------------------

    async def _fetch(self, lookup: _Lookup) -> ImageConfig:
        error: RegistryError
        try:
            async with asyncio.timeout(self.settings.fetch_timeout):
                return await self._walk(lookup)
        except TimeoutError:
            error = DeadlineExceeded(
                f"registry {lookup.endpoint.host} did not answer within "
                f"{self.settings.fetch_timeout:.3g}s"
            )
        except RegistryError as err:
            error = err
        except Exception:
            # A bug must not become a 500 for the admission; the server skips the container.
            log.exception("unexpected error resolving an image from %s", lookup.endpoint.host)
            error = RegistryError("internal error while looking up the image")
        # The whole story for the operator (the tenant's warning says only the class).
        log.info(
            "registry lookup of %s failed: %s (%s)",
            shorten(str(lookup.ref), 200),
            error.message,
            error.detail or "no detail",
            extra={"registry": lookup.endpoint.host, "result": error.result},
        )
        self._failures.put(lookup.flight_key, error, ttl=self.settings.negative_ttl)
        raise error

    async def _walk(self, lookup: _Lookup) -> ImageConfig:
        top_digest = await self._top_digest(lookup)
        top = self._get(lookup, top_digest)
        if not isinstance(top, Manifest | Index):
            _, top = await self._client.get_manifest(
                lookup.endpoint, lookup.ref.repository, top_digest, auth=lookup.auth
            )
            self._put(lookup, top_digest, top)
        if isinstance(top, Manifest):
            config = await self._config_of(lookup, top)
            return ImageConfig(config.entrypoint, config.cmd, digest=top_digest)
        child = select_manifest(top.manifests, lookup.platform)
        if child is None:
            have = sorted({str(platform_of(e)) for e in runnable_entries(top.manifests)})
            raise NotFoundError(
                f"{shorten(lookup.ref.repository, 40)} has no {lookup.platform} image "
                f"(has {shorten(', '.join(have) or 'none', 40)})"
            )
        siblings = self._start_comparison(lookup, top_digest, top, child)
        try:
            config = await self._image_config(lookup, child.digest)
            self._partial[lookup.flight_key] = ImageConfig(
                config.entrypoint, config.cmd, digest=top_digest
            )
            note = await self._finish_comparison(lookup, top_digest, child, config, siblings)
        finally:
            self._partial.pop(lookup.flight_key, None)
            for task in siblings.values():
                task.cancel()
        return ImageConfig(config.entrypoint, config.cmd, note=note, digest=top_digest)

    async def _top_digest(self, lookup: _Lookup) -> str:
        """The digest the reference points at now (tags: cached for tag_ttl, then HEAD)."""
        ref, client = lookup.ref, self._client
        if ref.digest:
            return ref.digest
        known = self._tag_digest(lookup)
        if known is not None and known[1] > self._clock():
            return known[0]
        tag = ref.tag or "latest"
        if known is not None and self._get(lookup, known[0]) is not None:
            try:
                current = await client.head_manifest(
                    lookup.endpoint, ref.repository, tag, auth=lookup.auth
                )
            except BadResponse:
                current = None  # registries that mishandle HEAD still answer GET
            if current is not None:
                self._remember_tag(lookup, current)
                return current
        digest, manifest = await client.get_manifest(
            lookup.endpoint, ref.repository, tag, auth=lookup.auth
        )
        self._put(lookup, digest, manifest)
        self._remember_tag(lookup, digest)
        return digest

    def _remember_tag(self, lookup: _Lookup, digest: str) -> None:
        self._store.remember_tag(
            lookup.store_scope,
            lookup.endpoint.host,
            lookup.ref.repository,
            lookup.ref.tag or "",
            digest,
        )

    async def _image_config(self, lookup: _Lookup, manifest_digest: str) -> CachedConfig:
        manifest = self._get(lookup, manifest_digest)
        if not isinstance(manifest, Manifest):
            _, fetched = await self._client.get_manifest(
                lookup.endpoint, lookup.ref.repository, manifest_digest, auth=lookup.auth
            )
            if not isinstance(fetched, Manifest):
                raise BadResponse("image index points at another index; not supported")
            manifest = fetched
            self._put(lookup, manifest_digest, manifest)
        return await self._config_of(lookup, manifest)

    async def _config_of(self, lookup: _Lookup, manifest: Manifest) -> CachedConfig:
        digest = manifest.config.digest
        config = self._get(lookup, digest)
        if isinstance(config, CachedConfig):
            return config
        entrypoint, cmd = await self._client.get_config(
            lookup.endpoint, lookup.ref.repository, digest, auth=lookup.auth
        )
        config = CachedConfig(entrypoint, cmd)
        self._put(lookup, digest, config)
        return config

    # -- platform comparison (comparison.py), its result cached per index digest ---------------

    def _start_comparison(
        self, lookup: _Lookup, index_digest: str, index: Index, chosen: Descriptor
    ) -> comparison.Siblings:
        limit = self.settings.compare_platforms
        if limit <= 0 or isinstance(self._get(lookup, _COMPARE + index_digest), Comparison):
            return {}
        return comparison.start(
            index, chosen, limit=limit, fetch=lambda digest: self._image_config(lookup, digest)
        )

    async def _finish_comparison(
        self,
        lookup: _Lookup,
        index_digest: str,
        chosen: Descriptor,
        config: CachedConfig,
        tasks: comparison.Siblings,
    ) -> str | None:
        if self.settings.compare_platforms <= 0:
            return None
        mine = platform_of(chosen)
        known = self._get(lookup, _COMPARE + index_digest)
        if isinstance(known, Comparison):
            return disagreement_note(mine, dict(known.configs))
        configs, complete = await comparison.finish(
            chosen, config, tasks, grace=self.settings.compare_grace
        )
        ttl = None if complete else self.settings.tag_ttl
        self._put(lookup, _COMPARE + index_digest, Comparison(configs, complete), ttl=ttl)
        return disagreement_note(mine, configs)


__all__ = ["ImageResolver"]
