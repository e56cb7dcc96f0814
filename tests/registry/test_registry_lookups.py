"""Lookups against real docker-registry instances: formats, platforms, auth, caching."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from registry_harness import PASSWORD, USER, PlainImages, TokenSetup, docker_config

from e2e.pki import CertAuthority
from e2e.registry import CountingTransport, Registry
from webhook.core.images import ImageConfig
from webhook.registry import (
    AuthError,
    ImageResolver,
    NotFoundError,
    Platform,
    RegistryUnavailable,
    ResolverSettings,
)
from webhook.registry.client import make_transport

T = TypeVar("T")
ARM64 = Platform.parse("linux/arm64")


def run(
    body: Callable[[ImageResolver, CountingTransport], Awaitable[T]],
    *,
    pki: CertAuthority | None = None,
    insecure: tuple[str, ...] = (),
    **settings: Any,
) -> T:
    """Run `body` with a fresh resolver (empty caches) over a counting real transport."""

    async def main() -> T:
        transport = CountingTransport(make_transport(ca_bundle=str(pki.cert) if pki else None))
        config = ResolverSettings(insecure=frozenset(insecure), **settings)
        async with ImageResolver(config, transport=transport) as resolver:
            return await body(resolver, transport)

    return asyncio.run(main())


def token_host(setup: TokenSetup) -> str:
    return f"127.0.0.1:{setup.server.port}"


# -- formats and platforms ---------------------------------------------------------------------


def test_a_single_platform_oci_image_gives_its_entrypoint_and_cmd(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        return await resolver.resolve(f"{host}/app/single:1.0", timeout=10)

    assert run(body, insecure=(host,)) == ImageConfig(entrypoint=("/app",), cmd=("--serve",))


def test_a_docker_schema2_image_with_tini_as_entrypoint_keeps_the_tini_argv(
    plain: PlainImages,
) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        return await resolver.resolve(f"{host}/app/tini", timeout=10)

    result = run(body, insecure=(host,))
    assert result.entrypoint == ("/usr/bin/tini", "--")
    assert result.cmd == ("nginx", "-g", "daemon off;")


def test_a_multi_arch_index_resolves_per_platform_and_notes_the_disagreement(
    plain: PlainImages,
) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> list[ImageConfig]:
        image = f"{host}/app/multi:1.0"
        return [
            await resolver.resolve(image, timeout=10),
            await resolver.resolve(image, platform=ARM64, timeout=10),
        ]

    amd, arm = run(body, insecure=(host,))
    assert (amd.entrypoint, arm.entrypoint) == (("/amd64-entry",), ("/arm64-entry",))
    assert amd.note is not None and "linux/arm64" in amd.note
    assert arm.note is not None and "linux/amd64" in arm.note


def test_the_default_platform_comes_from_settings(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        return await resolver.resolve(f"{host}/app/multi:1.0", timeout=10)

    assert run(body, insecure=(host,), default_platform=ARM64).entrypoint == ("/arm64-entry",)


def test_a_manifest_list_whose_platforms_agree_has_no_note(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        return await resolver.resolve(f"{host}/app/same:1.0", platform=ARM64, timeout=10)

    assert run(body, insecure=(host,)) == ImageConfig(entrypoint=("/same",))


def test_an_index_without_the_wanted_platform_is_not_found_naming_what_it_has(
    plain: PlainImages,
) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        await resolver.resolve(f"{host}/app/multi:1.0", platform=Platform.parse("linux/s390x"))

    with pytest.raises(NotFoundError, match=r"no linux/s390x image \(has linux/amd64"):
        run(body, insecure=(host,))


def test_a_digest_reference_resolves_and_a_platform_digest_skips_the_index(
    plain: PlainImages,
) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> list[ImageConfig]:
        return [
            await resolver.resolve(f"{host}/app/multi@{plain.multi.digest}", timeout=10),
            await resolver.resolve(f"{host}/app/multi@{plain.arm64.digest}", timeout=10),
        ]

    by_index, by_platform_digest = run(body, insecure=(host,))
    assert by_index.entrypoint == ("/amd64-entry",)
    assert by_platform_digest == ImageConfig(entrypoint=("/arm64-entry",), cmd=("run",))


@pytest.mark.parametrize(
    "image", ["app/single:nope", "app/nothing:1.0", "app/single@sha256:" + "0" * 64]
)
def test_a_missing_tag_repository_or_digest_is_not_found(plain: PlainImages, image: str) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        await resolver.resolve(f"{host}/{image}", timeout=10)

    with pytest.raises(NotFoundError):
        run(body, insecure=(host,))


def test_a_mirror_serves_docker_hub_names(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, transport: CountingTransport) -> ImageConfig:
        result = await resolver.resolve("nginx:1.25", timeout=10)
        assert all(path.startswith("/v2/library/nginx/") for _, path, _ in transport.seen)
        return result

    result = run(body, insecure=(host,), mirrors={"docker.io": host})
    assert result.entrypoint == ("/docker-entrypoint.sh",)


# -- TLS and basic auth ------------------------------------------------------------------------


def test_a_private_image_behind_basic_auth_resolves_with_its_pull_secret(
    basic_registry: Registry, pki: CertAuthority
) -> None:
    host = basic_registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        secrets = [docker_config("other.example.com"), docker_config(host)]
        return await resolver.resolve(f"{host}/private/app:1.0", pull_secrets=secrets, timeout=10)

    assert run(body, pki=pki) == ImageConfig(entrypoint=("/private",), cmd=("--secret",))


def test_a_private_image_without_credentials_is_an_auth_error(
    basic_registry: Registry, pki: CertAuthority
) -> None:
    host = basic_registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        await resolver.resolve(f"{host}/private/app:1.0", timeout=10)

    with pytest.raises(AuthError, match="requires credentials"):
        run(body, pki=pki)


def test_a_wrong_password_is_an_auth_error_that_does_not_leak_it(
    basic_registry: Registry, pki: CertAuthority
) -> None:
    host = basic_registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        secrets = [docker_config(host, password="not-the-password")]
        await resolver.resolve(f"{host}/private/app:1.0", pull_secrets=secrets, timeout=10)

    with pytest.raises(AuthError, match="refused the credentials") as caught:
        run(body, pki=pki)
    assert "not-the-password" not in repr(caught.value)


def test_a_registry_whose_certificate_is_not_trusted_is_unavailable(
    basic_registry: Registry,
) -> None:
    host = basic_registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        await resolver.resolve(f"{host}/private/app:1.0", pull_secrets=[docker_config(host)])

    with pytest.raises(RegistryUnavailable, match=r"^cannot connect to registry ") as raised:
        run(body)
    assert "TLS certificate not trusted" in raised.value.detail  # for the operator's log


# -- bearer tokens from a real token server ----------------------------------------------------


def test_a_public_image_behind_token_auth_resolves_anonymously(
    token_registry: TokenSetup, pki: CertAuthority
) -> None:
    host = token_registry.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        return await resolver.resolve(f"{host}/public/tool:1.0", timeout=10)

    assert run(body, pki=pki, insecure=(token_host(token_registry),)).entrypoint == ("/tool",)


def test_a_private_image_behind_token_auth_needs_credentials_for_its_token(
    token_registry: TokenSetup, pki: CertAuthority
) -> None:
    host = token_registry.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        with pytest.raises(AuthError):
            await resolver.resolve(f"{host}/team/secret:1.0", timeout=10)
        with pytest.raises(AuthError, match=r"token service .* refused credentials"):
            bad = [docker_config(host, password="wrong")]
            await resolver.resolve(f"{host}/team/secret:1.0", pull_secrets=bad, timeout=10)
        good = [docker_config(host)]
        return await resolver.resolve(f"{host}/team/secret:1.0", pull_secrets=good, timeout=10)

    result = run(body, pki=pki, insecure=(token_host(token_registry),))
    assert result == ImageConfig(entrypoint=("/secret",), cmd=("x",))


def test_a_bearer_token_is_reused_for_the_same_repository_and_credential(
    token_registry: TokenSetup, pki: CertAuthority
) -> None:
    host = token_registry.registry.host
    realm_path = "/token"

    async def body(resolver: ImageResolver, transport: CountingTransport) -> int:
        await resolver.resolve(f"{host}/public/tool:1.0", timeout=10)
        await resolver.resolve(f"{host}/public/tool:2.0", timeout=10)
        return sum(1 for _, path, _ in transport.seen if path == realm_path)

    assert run(body, pki=pki, insecure=(token_host(token_registry),)) == 1


def test_a_token_realm_over_plain_http_is_refused_unless_allowed(
    token_registry: TokenSetup, pki: CertAuthority
) -> None:
    host = token_registry.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        await resolver.resolve(f"{host}/public/tool:1.0", timeout=10)

    with pytest.raises(AuthError, match="not https"):
        run(body, pki=pki)


# -- caching -----------------------------------------------------------------------------------


def test_a_second_lookup_is_answered_from_cache_without_any_request(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, transport: CountingTransport) -> None:
        first = await resolver.resolve(f"{host}/app/multi:1.0", timeout=10)
        requests = len(transport.seen)
        assert await resolver.resolve(f"{host}/app/multi:1.0", timeout=10) == first
        assert len(transport.seen) == requests
        assert resolver.stats.cache_hits == 1
        assert resolver.stats.lookups["ok"] == 2

    run(body, insecure=(host,))


def test_an_expired_tag_is_revalidated_with_one_head_request(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, transport: CountingTransport) -> None:
        await resolver.resolve(f"{host}/app/single:1.0", timeout=10)
        before = len(transport.seen)
        await resolver.resolve(f"{host}/app/single:1.0", timeout=10)
        assert [m for m, _, _ in transport.seen[before:]] == ["HEAD"]

    run(body, insecure=(host,), tag_ttl=0)


def test_a_digest_reference_is_never_re_resolved(plain: PlainImages) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, transport: CountingTransport) -> None:
        image = f"{host}/app/single@{plain.single.digest}"
        await resolver.resolve(image, timeout=10)
        before = len(transport.seen)
        await resolver.resolve(image, timeout=10)
        assert len(transport.seen) == before

    run(body, insecure=(host,), tag_ttl=0)


def test_a_private_result_is_never_served_to_a_request_without_that_credential(
    basic_registry: Registry, pki: CertAuthority
) -> None:
    host = basic_registry.host
    image = f"{host}/private/app:1.0"

    async def body(resolver: ImageResolver, transport: CountingTransport) -> None:
        owner = [docker_config(host)]
        assert (await resolver.resolve(image, pull_secrets=owner, timeout=10)).entrypoint
        with pytest.raises(AuthError):
            await resolver.resolve(image, timeout=10)
        with pytest.raises(AuthError):
            await resolver.resolve(
                image, pull_secrets=[docker_config(host, password="guess")], timeout=10
            )
        # Same credential from another tenant's secret: authorised, so a cache hit.
        before = len(transport.seen)
        same = [docker_config(host, user=USER, password=PASSWORD)]
        assert (await resolver.resolve(image, pull_secrets=same, timeout=10)).entrypoint
        assert len(transport.seen) == before

    run(body, pki=pki)


def test_a_result_fetched_anonymously_is_shared_with_requests_that_carry_credentials(
    plain: PlainImages,
) -> None:
    host = plain.registry.host

    async def body(resolver: ImageResolver, transport: CountingTransport) -> None:
        await resolver.resolve(f"{host}/app/single:1.0", timeout=10)
        before = len(transport.seen)
        await resolver.resolve(
            f"{host}/app/single:1.0", pull_secrets=[docker_config(host)], timeout=10
        )
        assert len(transport.seen) == before

    run(body, insecure=(host,))


def test_the_synchronous_cache_probe_answers_a_repeated_hit_until_the_tag_goes_stale(
    plain: PlainImages,
) -> None:
    host = plain.registry.host
    image = f"{host}/app/single:1.0"

    async def body(resolver: ImageResolver, transport: CountingTransport) -> None:
        assert resolver.cached(image) is None
        first = await resolver.resolve(image, timeout=10)
        assert resolver.cached(image) == first
        assert resolver.cached(image) == first
        await asyncio.sleep(0.3)
        assert resolver.cached(image) is None  # stale: the caller must revalidate
        before = len(transport.seen)
        assert await resolver.resolve(image, timeout=10) == first
        assert [m for m, _, _ in transport.seen[before:]] == ["HEAD"]
        assert resolver.cached(image) == first
        assert resolver.stats.cache_hits == 3

    run(body, insecure=(host,), tag_ttl=0.2)


def test_the_synchronous_cache_probe_never_gives_a_private_answer_to_other_credentials(
    basic_registry: Registry, pki: CertAuthority
) -> None:
    host = basic_registry.host
    image = f"{host}/private/app:1.0"

    async def body(resolver: ImageResolver, _: CountingTransport) -> None:
        owner = [docker_config(host)]
        found = await resolver.resolve(image, pull_secrets=owner, timeout=10)
        assert resolver.cached(image, pull_secrets=owner) == found
        assert resolver.cached(image) is None
        assert resolver.cached(image, pull_secrets=[docker_config(host, password="guess")]) is None
        # Payloads with the same credential: the same answer (the cache is scoped by it).
        same = [docker_config(host, user=USER, password=PASSWORD)]
        assert resolver.cached(image, pull_secrets=same) == found
        parsed = [json.loads(docker_config(host))]  # a mapping, as a caller may hold it
        assert resolver.cached(image, pull_secrets=parsed) == found
        assert resolver.cached(image, pull_secrets=parsed) == found

    run(body, pki=pki)


def test_settings_are_plain_frozen_data() -> None:
    settings = ResolverSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tag_ttl = 1  # type: ignore[misc]


def test_the_ca_bundle_may_be_given_as_pem_text_with_the_default_transport(
    basic_registry: Registry, pki: CertAuthority
) -> None:
    host = basic_registry.host

    async def main() -> ImageConfig:
        settings = ResolverSettings(ca_bundle=pki.cert.read_text())
        async with ImageResolver(settings) as resolver:
            return await resolver.resolve(
                f"{host}/private/app:1.0", pull_secrets=[docker_config(host)], timeout=10
            )

    assert asyncio.run(main()).entrypoint == ("/private",)


def test_an_identity_token_is_exchanged_for_a_bearer_token_with_the_oauth2_grant(
    token_registry: TokenSetup, pki: CertAuthority
) -> None:
    host = token_registry.registry.host
    config = json.dumps(
        {
            "auths": {
                host: {
                    "username": "00000000-0000-0000-0000-000000000000",
                    "identitytoken": "refresh-alice",
                }
            }
        }
    ).encode()

    async def body(resolver: ImageResolver, _: CountingTransport) -> ImageConfig:
        return await resolver.resolve(f"{host}/team/secret:1.0", pull_secrets=[config], timeout=10)

    assert run(body, pki=pki, insecure=(token_host(token_registry),)).entrypoint == ("/secret",)


def test_a_tags_config_comes_with_the_digest_the_tag_pointed_at_fetched_cached_or_revalidated(
    plain: PlainImages,
) -> None:
    """What the webhook pins a container to (core/provenance.py): the manifest's digest for a
    single image, the index's for a multi-platform one, as the registry stores them."""
    host = plain.registry.host

    async def body(resolver: ImageResolver, _: CountingTransport) -> list[str | None]:
        found: list[str | None] = []
        for image in (f"{host}/app/single:1.0", f"{host}/app/multi:1.0"):
            found.append((await resolver.resolve(image, platform=ARM64, timeout=10)).digest)
            found.append((await resolver.resolve(image, platform=ARM64, timeout=10)).digest)
            cached = resolver.cached(image, platform=ARM64)
            found.append(cached.digest if cached is not None else "no cache hit")
        return found

    single, multi = plain.single.digest, plain.multi.digest
    assert run(body, insecure=(host,)) == [single] * 3 + [multi] * 3
    revalidated = run(body, insecure=(host,), tag_ttl=0)
    assert revalidated[:2] + revalidated[3:5] == [single, single, multi, multi]
