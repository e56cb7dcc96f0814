"""Single flight: concurrent lookups of one uncached image make one registry fetch sequence."""

from __future__ import annotations

import asyncio

from registry_harness import PlainImages, TokenSetup, docker_config

from e2e.pki import CertAuthority
from e2e.registry import CountingTransport
from webhook.core.images import ImageConfig
from webhook.registry import ImageResolver, ResolverSettings
from webhook.registry.client import make_transport

N = 1000


def resolve_concurrently(
    image: str,
    *,
    insecure: frozenset[str],
    pki: CertAuthority | None = None,
    pull_secrets: list[bytes] | None = None,
) -> tuple[list[ImageConfig], CountingTransport, ImageResolver]:
    async def main() -> tuple[list[ImageConfig], CountingTransport, ImageResolver]:
        transport = CountingTransport(make_transport(ca_bundle=str(pki.cert) if pki else None))
        settings = ResolverSettings(insecure=insecure)
        async with ImageResolver(settings, transport=transport) as resolver:
            results = await asyncio.gather(
                *(
                    resolver.resolve(image, pull_secrets=pull_secrets or (), timeout=30)
                    for _ in range(N)
                )
            )
            return results, transport, resolver

    return asyncio.run(main())


def test_a_thousand_concurrent_lookups_make_one_manifest_and_one_config_fetch(
    plain: PlainImages,
) -> None:
    host = plain.registry.host
    results, transport, resolver = resolve_concurrently(
        f"{host}/app/single:1.0", insecure=frozenset({host})
    )
    assert set(results) == {ImageConfig(entrypoint=("/app",), cmd=("--serve",))}
    assert transport.count("manifests", status=None) == 1
    assert transport.count("blobs", status=None) == 1
    assert (resolver.stats.fetches, resolver.stats.joined) == (1, N - 1)


def test_a_thousand_concurrent_lookups_of_an_index_fetch_each_object_once(
    plain: PlainImages,
) -> None:
    host = plain.registry.host
    results, transport, _ = resolve_concurrently(
        f"{host}/app/multi:1.0", insecure=frozenset({host})
    )
    assert {r.entrypoint for r in results} == {("/amd64-entry",)}
    # the index, then amd64 and arm64 (compared for the note); never the attestation
    assert transport.count("manifests", status=None) == 3
    assert transport.count("blobs", status=None) == 2


def test_a_thousand_concurrent_authenticated_lookups_fetch_one_token_and_one_manifest(
    token_registry: TokenSetup, pki: CertAuthority
) -> None:
    host = token_registry.registry.host
    token_host = f"127.0.0.1:{token_registry.server.port}"
    before = len(token_registry.server.requests)
    results, transport, _ = resolve_concurrently(
        f"{host}/team/secret:1.0",
        insecure=frozenset({token_host}),
        pki=pki,
        pull_secrets=[docker_config(host)],
    )
    assert {r.entrypoint for r in results} == {("/secret",)}
    assert len(token_registry.server.requests) - before == 1
    # one anonymous attempt answered 401 with the challenge, then the real fetch
    assert transport.count("manifests", status=200) == 1
    assert transport.count("manifests", status=None) == 2
    assert transport.count("blobs", status=None) == 1
