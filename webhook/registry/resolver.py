"""ImageResolver: image reference -> ImageConfig, with caching, single flight and deadlines.

Caching (walk.py reads the cache, then fetches what it lacks; store.py has the scopes; all
LRU-bounded, keys never contain secrets):
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
import os
import time
from collections.abc import Iterable
from typing import cast

import httpx

from webhook.core.images import ImageConfig

from .auth import Challenge, RegistryAuth, TokenCache
from .backoff import Backoff
from .cache import LRU, SingleFlight
from .client import Bounds, RegistryClient, make_transport, policy_for
from .credentials import Credential, Keyring
from .errors import DeadlineExceeded, RegistryError, shorten
from .fairness import Shares
from .network import parse_networks
from .platforms import Platform
from .reference import normalize_host, parse_reference
from .settings import PullSecrets, ResolverSettings, ResolverStats
from .store import ScopedStore
from .walk import FlightKey, Lookup, Walk

log = logging.getLogger(__name__)


_NO_KEYRING = Keyring()


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
        self.network = network = policy_for(s, insecure=insecure, mirrors=mirrors)
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
        self._failures: LRU[FlightKey, RegistryError] = LRU(max_entries=s.max_entries)
        self._flights: SingleFlight[FlightKey, ImageConfig] = SingleFlight()
        # What `cached` answered, by (image, platform, keyring), until the answer's tag goes
        # stale: a repeated hit is one probe instead of a reference parse and a cache walk.
        # The keyring stands for the caller's credentials, so no answer crosses them.
        self._answers: LRU[tuple[str, Platform, Keyring], tuple[ImageConfig, float]] = LRU(
            max_entries=s.max_entries
        )
        self._clock = time.monotonic
        self._walk = Walk(client=self._client, store=self._store, settings=s, clock=self._clock)

    async def _count_request(self, request: httpx.Request) -> None:
        self.stats.http_requests[request.method] += 1

    async def __aenter__(self) -> ImageResolver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def deny_cluster_networks(self, ranges: Iterable[str]) -> None:
        """Deny connections into `ranges` too (the cluster's Service and Pod ranges, as the
        server reads them), in place of those given before."""
        self.network.cluster = parse_networks(ranges, "the cluster's ranges")

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
            answer = self._walk.from_cache(lookup)
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
        cached = self._walk.from_cache(lookup)
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
            partial = self._walk.partial.get(lookup.flight_key)
            if partial is not None:
                return partial
            raise DeadlineExceeded(
                f"registry lookup of {shorten(image)} took over {budget:.3g}s"
            ) from None

    async def _flight(self, lookup: Lookup, tenant: str) -> asyncio.Task[ImageConfig]:
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

    def _prepare(self, image: str, platform: Platform | None, pull_secrets: PullSecrets) -> Lookup:
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
        return Lookup(
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

    # -- fetching (runs once per flight key, in its own task) ----------------------------------

    async def _fetch(self, lookup: Lookup) -> ImageConfig:
        error: RegistryError
        try:
            async with asyncio.timeout(self.settings.fetch_timeout):
                return await self._walk.walk(lookup)
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


__all__ = ["ImageResolver"]
