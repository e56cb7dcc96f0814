"""Faults: every misbehaviour becomes the right RegistryError, within the caller's deadline.

Timing assertions are only "finished within the deadline plus generous slack"."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from registry_harness import FaultServer, PlainImages, slow_sibling_documents

from e2e.registry import CountingTransport, digest_of
from webhook.core.images import ImageConfig
from webhook.registry import (
    AuthError,
    BadResponse,
    DeadlineExceeded,
    ImageResolver,
    NotFoundError,
    RedirectRefused,
    RegistryError,
    RegistryUnavailable,
    ResolverSettings,
    TooLarge,
)
from webhook.registry.client import make_transport
from webhook.registry.errors import MAX_MESSAGE

SLACK = 3.0  # generous: CI machines stall


def resolve_once(
    image: str, *, host: str, timeout: float, insecure_extra: str = "", **settings: Any
) -> RegistryError:
    """Resolve `image` expecting failure; returns the error after checking the deadline held."""

    async def main() -> RegistryError:
        insecure = frozenset({host, insecure_extra} - {""})
        config = ResolverSettings(insecure=insecure, **settings)
        async with ImageResolver(config) as resolver:
            try:
                await resolver.resolve(image, timeout=timeout)
            except RegistryError as err:
                assert resolver.stats.lookups[err.result] == 1
                return err
        raise AssertionError("resolve unexpectedly succeeded")

    started = time.monotonic()
    error = asyncio.run(main())
    assert time.monotonic() - started < timeout + SLACK
    assert 0 < len(str(error)) <= MAX_MESSAGE
    return error


@pytest.mark.parametrize(
    ("repository", "expected", "message", "detail"),
    [
        ("hang/app", DeadlineExceeded, "took over 1s", ""),
        ("drip/app", DeadlineExceeded, "took over 1s", ""),
        ("err500/app", RegistryUnavailable, "registry {host} is unavailable", "HTTP 500"),
        ("garbage/app", BadResponse, "sent an invalid manifest garbage/app:1", "not valid JSON"),
        ("deny/app", AuthError, "requires credentials for manifest deny/app:1", "HTTP 401"),
        ("missing/app", NotFoundError, "manifest missing/app:1 not found on {host}", "HTTP 404"),
        ("baddigest/app", BadResponse, "sent an invalid image config", "match its digest"),
        ("err403/app", AuthError, "denied access for manifest err403/app:1", "HTTP 403"),
        ("err429/app", RegistryUnavailable, "registry {host} is unavailable", "HTTP 429"),
        ("err400/app", BadResponse, "sent an invalid answer for manifest", "HTTP 400"),
        ("big/app", TooLarge, "is too large", "Content-Length '1073741824'"),
        ("loop/app", RedirectRefused, "redirected too often", "more than 3 redirects"),
        ("badproto/app", RegistryUnavailable, "cannot connect to registry {host}", "Protocol"),
    ],
)
def test_each_registry_fault_raises_its_error_within_the_deadline_and_details_only_the_log(
    faults: FaultServer,
    repository: str,
    expected: type[RegistryError],
    message: str,
    detail: str,
) -> None:
    """The message (what the tenant sees) names the class; what the registry answered is
    in `detail` (what the operator's log gets)."""
    error = resolve_once(f"{faults.host}/{repository}:1", host=faults.host, timeout=1.0)
    assert type(error) is expected
    assert message.format(host=faults.host) in str(error)
    assert detail in error.detail
    assert "HTTP" not in str(error)


def test_a_registry_that_is_down_is_unavailable_within_the_deadline(closed_port_host: str) -> None:
    error = resolve_once(f"{closed_port_host}/app:1", host=closed_port_host, timeout=2.0)
    assert isinstance(error, RegistryUnavailable)
    assert "cannot connect" in str(error)


def test_a_shared_fetch_that_outlives_its_own_bound_is_a_deadline_error(
    faults: FaultServer,
) -> None:
    error = resolve_once(
        f"{faults.host}/hang/app:1", host=faults.host, timeout=5.0, fetch_timeout=0.5
    )
    assert isinstance(error, DeadlineExceeded)
    assert "did not answer within 0.5s" in str(error)


def test_a_failure_is_remembered_briefly_so_the_registry_is_not_hammered(
    faults: FaultServer,
) -> None:
    async def main() -> None:
        settings = ResolverSettings(insecure=frozenset({faults.host}), negative_ttl=30)
        async with ImageResolver(settings) as resolver:
            for _ in range(5):
                with pytest.raises(RegistryUnavailable):
                    await resolver.resolve(f"{faults.host}/err500/app:1", timeout=5)
            assert resolver.stats.negative_hits == 4

    asyncio.run(main())
    assert len(faults.requests) == 1


def test_a_failure_is_retried_once_the_negative_ttl_has_passed(faults: FaultServer) -> None:
    async def main() -> None:
        settings = ResolverSettings(insecure=frozenset({faults.host}), negative_ttl=0)
        async with ImageResolver(settings) as resolver:
            for _ in range(3):
                with pytest.raises(NotFoundError):
                    await resolver.resolve(f"{faults.host}/missing/app:1", timeout=5)

    asyncio.run(main())
    assert len(faults.requests) == 3


def test_an_absolute_deadline_in_the_past_fails_at_once_without_a_request(
    faults: FaultServer,
) -> None:
    async def main() -> None:
        settings = ResolverSettings(insecure=frozenset({faults.host}))
        async with ImageResolver(settings) as resolver:
            deadline = asyncio.get_running_loop().time() - 1
            with pytest.raises(DeadlineExceeded, match="no time left"):
                await resolver.resolve(f"{faults.host}/hang/app:1", deadline=deadline)

    asyncio.run(main())
    assert faults.requests == []


def test_many_waiters_on_a_hanging_registry_all_answer_within_their_deadline(
    faults: FaultServer,
) -> None:
    async def main() -> list[BaseException | Any]:
        settings = ResolverSettings(insecure=frozenset({faults.host}))
        async with ImageResolver(settings) as resolver:
            return await asyncio.gather(
                *(resolver.resolve(f"{faults.host}/hang/app:1", timeout=1.0) for _ in range(200)),
                return_exceptions=True,
            )

    started = time.monotonic()
    results = asyncio.run(main())
    assert time.monotonic() - started < 1.0 + SLACK
    assert all(isinstance(r, DeadlineExceeded) for r in results)
    assert len(faults.requests) == 1


def test_a_cancelled_waiter_does_not_cancel_the_fetch_the_others_share(
    plain: PlainImages,
) -> None:
    host = plain.registry.host

    async def main() -> None:
        transport = CountingTransport(make_transport())
        settings = ResolverSettings(insecure=frozenset({host}))
        async with ImageResolver(settings, transport=transport) as resolver:
            image = f"{host}/app/single:1.0"
            first = asyncio.create_task(resolver.resolve(image, timeout=10))
            second = asyncio.create_task(resolver.resolve(image, timeout=10))
            await asyncio.sleep(0)
            first.cancel()
            result = await second
            assert first.cancelled()
            assert result.entrypoint == ("/app",)
            assert resolver.stats.fetches == 1

    asyncio.run(main())


def test_a_platform_that_never_arrives_delays_the_answer_by_the_grace_at_most(
    faults: FaultServer,
) -> None:
    async def main() -> ImageConfig:
        settings = ResolverSettings(insecure=frozenset({faults.host}), compare_grace=0.2)
        async with ImageResolver(settings) as resolver:
            return await resolver.resolve(f"{faults.host}/slowsibling/app:1", timeout=5)

    started = time.monotonic()
    assert asyncio.run(main()) == ImageConfig(entrypoint=("/fast",))
    assert time.monotonic() - started < 0.2 + SLACK


def test_a_deadline_during_the_platform_comparison_still_gets_the_config_without_a_note(
    faults: FaultServer,
) -> None:
    async def main() -> ImageConfig:
        settings = ResolverSettings(insecure=frozenset({faults.host}), compare_grace=30)
        async with ImageResolver(settings) as resolver:
            return await resolver.resolve(f"{faults.host}/slowsibling/app:1", timeout=1.0)

    started = time.monotonic()
    assert asyncio.run(main()) == ImageConfig(entrypoint=("/fast",))
    assert time.monotonic() - started < 1.0 + SLACK


def test_an_answer_whose_platform_comparison_is_incomplete_is_not_remembered(
    faults: FaultServer,
) -> None:
    """Even for a digest reference (cached for good), the missing platform is retried once
    the incomplete comparison expires; the synchronous probe must not outlive it."""
    image = f"{faults.host}/slowsibling/app@{digest_of(slow_sibling_documents()[2])}"

    async def main() -> None:
        settings = ResolverSettings(
            insecure=frozenset({faults.host}), compare_grace=0.1, tag_ttl=0.5
        )
        async with ImageResolver(settings) as resolver:
            assert await resolver.resolve(image, timeout=5) == ImageConfig(entrypoint=("/fast",))
            assert resolver.cached(image) == ImageConfig(entrypoint=("/fast",))
            await asyncio.sleep(0.7)
            assert resolver.cached(image) is None  # the comparison is due for a retry

    asyncio.run(main())


def test_a_token_service_that_is_down_is_named_in_the_error_but_not_its_address(
    faults: FaultServer,
) -> None:
    error = resolve_once(
        f"{faults.host}/badrealm/app:1",
        host=faults.host,
        timeout=2.0,
        insecure_extra=faults.dead_realm,
    )
    assert isinstance(error, RegistryUnavailable)
    assert str(error) == f"cannot connect to the token service of {faults.host}"
    assert faults.dead_realm in error.detail


@pytest.mark.parametrize(
    ("repository", "expected", "message", "detail"),
    [
        ("norealm/app", AuthError, "sent a bearer challenge without a realm", ""),
        ("token503/app", RegistryUnavailable, "token service of {host} is unavailable", "503"),
        ("token404/app", BadResponse, "token service of {host} sent an invalid answer", "404"),
        ("tokenbig/app", TooLarge, "token service of {host} is too large", "Content-Length"),
        ("tokenjunk/app", BadResponse, "token service of {host} sent an invalid answer", "JSON"),
        ("tokenempty/app", BadResponse, "of {host} sent an invalid answer", "no usable token"),
    ],
)
def test_each_token_service_fault_raises_its_error_naming_the_registry(
    faults: FaultServer,
    repository: str,
    expected: type[RegistryError],
    message: str,
    detail: str,
) -> None:
    error = resolve_once(f"{faults.host}/{repository}:1", host=faults.host, timeout=3.0)
    assert isinstance(error, expected)
    assert message.format(host=faults.host) in str(error)
    assert detail in error.detail
