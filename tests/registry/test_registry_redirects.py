"""Where a tenant's image may make a lookup connect. The redirects come from the real
docker-registry (distribution's redirect storage middleware, as S3-backed registries send
them); the targets are stand-ins that count what reaches them. Nothing is configured but the
registry itself (insecureRegistries), as a tenant's `evil.example/x` would be."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import BlobStore, FaultServer, TcpListener, running, start_or_skip

from e2e.pki import CertAuthority
from e2e.registry import Pushed, Pusher, Registry
from webhook.core.images import ImageConfig
from webhook.registry import (
    AddressDenied,
    ImageResolver,
    RegistryError,
    RegistryUnavailable,
    ResolverSettings,
)
from webhook.registry.network import parse_networks


def resolve(image: str, **settings: object) -> ImageConfig | RegistryError:
    async def main() -> ImageConfig | RegistryError:
        async with ImageResolver(ResolverSettings(**settings)) as resolver:  # type: ignore[arg-type]
            try:
                return await resolver.resolve(image, timeout=10)
            except RegistryError as error:
                return error

    return asyncio.run(main())


def redirecting(directory: Path, target: str) -> tuple[Registry, Pushed]:
    """A plain-HTTP docker-registry whose blob GETs answer 307 to `target` + the blob's path."""
    registry = start_or_skip(directory, redirect_blobs_to=target)
    with Pusher(registry) as pusher:
        pushed = pusher.image("app/redirected", "1", entrypoint=["/app"], cmd=None)
    return registry, pushed


@pytest.fixture
def listener() -> Iterator[TcpListener]:
    server = TcpListener()
    with running(server):
        yield server


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_redirect_to_a_loopback_port_not_configured_is_refused_without_connecting(
    tmp_path: Path, listener: TcpListener, scheme: str
) -> None:
    registry, _ = redirecting(tmp_path, f"{scheme}://{listener.host}")
    try:
        result = resolve(f"{registry.host}/app/redirected:1", insecure=frozenset({registry.host}))
    finally:
        registry.stop()
    assert isinstance(result, RegistryError)
    assert listener.host not in str(result)  # the tenant is not told where it pointed
    assert listener.accepted == 0


@pytest.mark.parametrize(
    ("target", "message", "detail"),
    [
        ("http://169.254.169.254", "redirected to plain HTTP", "redirect to http://169.254"),
        ("https://169.254.169.254", "cannot connect to the server", "in registryDeniedNetworks"),
    ],
)
def test_a_redirect_to_the_cloud_metadata_address_is_refused(
    tmp_path: Path, target: str, message: str, detail: str
) -> None:
    registry, _ = redirecting(tmp_path, target)
    try:
        result = resolve(f"{registry.host}/app/redirected:1", insecure=frozenset({registry.host}))
    finally:
        registry.stop()
    assert isinstance(result, RegistryError)
    assert message in str(result) and "169.254" not in str(result)
    assert detail in result.detail


def test_a_redirect_to_configured_blob_storage_is_followed_without_the_registrys_credentials(
    tmp_path: Path, pki: CertAuthority
) -> None:
    """The S3 case: a TLS registry with basic auth (vouched for by registryCaFile) sends the
    blob to plain-HTTP storage the operator listed; the storage gets no Authorization."""
    store = BlobStore(tmp_path / "registry" / "data")
    with running(store):
        registry = start_or_skip(
            tmp_path / "registry",
            ca=pki,
            users={"alice": "pw"},
            redirect_blobs_to=f"http://{store.host}",
        )
        try:
            with registry.pusher("alice") as pusher:
                pusher.image("team/app", "1", entrypoint=["/app"], cmd=None)

            async def main() -> ImageConfig:
                settings = ResolverSettings(
                    insecure=frozenset({store.host}), ca_bundle=str(pki.cert)
                )
                secret = b'{"auths": {"%s": {"auth": "YWxpY2U6cHc="}}}' % registry.host.encode()
                async with ImageResolver(settings) as resolver:
                    return await resolver.resolve(
                        f"{registry.host}/team/app:1", pull_secrets=[secret], timeout=10
                    )

            config = asyncio.run(main())
        finally:
            registry.stop()
    assert config.entrypoint == ("/app",)
    assert len(store.requests) == 1
    assert store.requests[0][1] is None


def test_an_unconfigured_loopback_port_reads_the_same_open_closed_or_tls_and_is_not_dialled(
    listener: TcpListener, closed_port_host: str, basic_registry: Registry
) -> None:
    """The port-scan oracle through plain image references: a silent open port, a closed one
    and a TLS registry (the kubelet's case: a certificate nobody configured) all answer
    "cannot connect", and the open port is never even connected to."""
    answers = {}
    for host in (listener.host, closed_port_host, basic_registry.host):
        result = resolve(f"{host}/app:1")
        assert isinstance(result, AddressDenied), (host, result)
        answers[host] = str(result).replace(host, "HOST")
    assert set(answers.values()) == {"cannot connect to registry HOST"}
    assert listener.accepted == 0


def test_a_denied_network_is_reachable_when_the_operator_allows_it(
    closed_port_host: str,
) -> None:
    result = resolve(f"{closed_port_host}/app:1", allowed_networks=("127.0.0.1/32",))
    assert type(result) is RegistryUnavailable  # dialled: refused by the peer, not by policy


def test_a_registry_named_by_a_name_that_resolves_to_loopback_is_refused(
    listener: TcpListener,
) -> None:
    port = listener.host.rpartition(":")[2]
    result = resolve(f"localhost:{port}/app:1")
    assert isinstance(result, AddressDenied)
    assert "localhost (127.0.0.1) is in registryDeniedNetworks" in result.detail
    assert listener.accepted == 0


def test_a_token_realm_on_a_loopback_port_not_configured_is_refused_without_connecting(
    listener: TcpListener,
) -> None:
    """The registry's challenge names the realm: a tenant's registry can name any port."""
    registry = FaultServer(redirect_to=listener.host)
    with running(registry):
        result = resolve(f"{registry.host}/httpsrealm/app:1", insecure=frozenset({registry.host}))
    assert isinstance(result, AddressDenied)
    assert str(result) == f"cannot connect to the token service of {registry.host}"
    assert listener.accepted == 0


def test_the_clusters_ranges_are_denied_as_last_read_and_the_operators_exceptions_still_hold(
    listener: TcpListener, closed_port_host: str
) -> None:
    """The server hands the resolver the cluster's Service and Pod ranges as it reads them
    (webhook/server/cluster_networks.py); here loopback stands for them, undenied otherwise."""
    open_port = listener.host
    carved = closed_port_host.rpartition(":")[0] + "/32"

    async def main() -> list[object]:
        settings = ResolverSettings(denied_networks=(), negative_ttl=0.01, backoff_ceiling=0.01)
        async with ImageResolver(settings) as resolver:
            results: list[object] = []

            async def attempt(image: str) -> None:
                await asyncio.sleep(0.05)  # past the remembered failure of the last attempt
                try:
                    results.append(await resolver.resolve(image, timeout=2))
                except RegistryError as error:
                    results.append(error)

            resolver.deny_cluster_networks(["127.0.0.0/8"])
            await attempt(f"{open_port}/app:1")
            resolver.deny_cluster_networks([])  # the range is gone from the cluster
            await attempt(f"{closed_port_host}/app:2")
            resolver.deny_cluster_networks(["127.0.0.0/8", "::1/128"])
            resolver.network.allowed = parse_networks([carved], "registryAllowedNetworks")
            await attempt(f"{closed_port_host}/app:3")
            return results

    denied, reopened, allowed = asyncio.run(main())
    assert isinstance(denied, AddressDenied), denied
    assert "is in the cluster's Service or Pod ranges" in denied.detail
    assert listener.accepted == 0
    assert type(reopened) is RegistryUnavailable  # dialled: refused by the peer, not by policy
    assert type(allowed) is RegistryUnavailable
