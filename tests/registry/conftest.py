"""Session fixtures: real docker-registry instances with images pushed by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import (
    PASSWORD,
    USER,
    FaultServer,
    PlainImages,
    TokenSetup,
    start_basic_auth_registry,
    start_or_skip,
)

from e2e.pki import CertAuthority
from e2e.processes import free_port
from e2e.registry import Pusher, Registry
from e2e.registrytoken import TokenIssuer, TokenServer


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return CertAuthority(tmp_path_factory.mktemp("pki"), "registry")


@pytest.fixture(scope="session")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlainImages]:
    """Plain-HTTP, anonymous registry."""
    registry = start_or_skip(tmp_path_factory.mktemp("plain-registry"))
    pusher = Pusher(registry)
    try:
        single = pusher.image("app/single", "1.0", entrypoint=["/app"], cmd=["--serve"])
        tini = pusher.image(
            "app/tini",
            "latest",
            entrypoint=["/usr/bin/tini", "--"],
            cmd=["nginx", "-g", "daemon off;"],
            docker=True,
        )
        amd = pusher.image("app/multi", None, entrypoint=["/amd64-entry"], cmd=["run"])
        arm = pusher.image(
            "app/multi", None, entrypoint=["/arm64-entry"], cmd=["run"], arch="arm64", variant="v8"
        )
        attestation = pusher.image("app/multi", None, entrypoint=None, cmd=None, arch="unknown")
        multi = pusher.index(
            "app/multi",
            "1.0",
            [
                (amd, {"os": "linux", "architecture": "amd64"}),
                (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                (attestation, {"os": "unknown", "architecture": "unknown"}),
            ],
        )
        same_amd = pusher.image("app/same", None, entrypoint=["/same"], cmd=None, docker=True)
        same_arm = pusher.image(
            "app/same", None, entrypoint=["/same"], cmd=None, arch="arm64", docker=True
        )
        same = pusher.index(
            "app/same",
            "1.0",
            [
                (same_amd, {"os": "linux", "architecture": "amd64"}),
                (same_arm, {"os": "linux", "architecture": "arm64"}),
            ],
            docker=True,
        )
        # For the mirror test: what Docker Hub would call `nginx:1.25`.
        pusher.image(
            "library/nginx",
            "1.25",
            entrypoint=["/docker-entrypoint.sh"],
            cmd=["nginx", "-g", "daemon off;"],
        )
        yield PlainImages(registry, single, tini, multi, same, arm)
    finally:
        pusher.close()
        registry.stop()


@pytest.fixture(scope="session")
def basic_registry(
    tmp_path_factory: pytest.TempPathFactory, pki: CertAuthority
) -> Iterator[Registry]:
    """TLS (private CA) + htpasswd basic auth, holding private/app:1.0."""
    registry, pusher = start_basic_auth_registry(tmp_path_factory.mktemp("basic-registry"), pki)
    try:
        pusher.image("private/app", "1.0", entrypoint=["/private"], cmd=["--secret"])
        yield registry
    finally:
        pusher.close()
        registry.stop()


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, pki: CertAuthority
) -> Iterator[TokenSetup]:
    """TLS + token auth, with a real JWT token server on loopback (a real Bearer challenge)."""
    issuer = TokenIssuer(tmp_path_factory.mktemp("token-signer"))
    server = TokenServer(issuer, users={USER: PASSWORD}, refresh_tokens={"refresh-alice": USER})
    server.start()
    registry = start_or_skip(
        tmp_path_factory.mktemp("token-registry"), ca=pki, auth=issuer.auth(server.realm)
    )
    pusher = registry.pusher(bearer=issuer)
    try:
        pusher.image("public/tool", "1.0", entrypoint=["/tool"], cmd=None)
        pusher.image("public/tool", "2.0", entrypoint=["/tool2"], cmd=None)
        pusher.image("team/secret", "1.0", entrypoint=["/secret"], cmd=["x"])
        yield TokenSetup(registry, server)
    finally:
        pusher.close()
        registry.stop()
        server.stop()


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    server = FaultServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port_host() -> str:
    """host:port on loopback where nothing listens (bound and released)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def ca_path(pki: CertAuthority) -> Path:
    return pki.cert
