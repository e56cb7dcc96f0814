"""The version matrix: every test in this directory runs once per Kubernetes release of
e2e/versions.env (``KUBE_MATRIX`` and ``KUBE_VERSION``: 1.34, 1.35, 1.36 and 1.37), against
that release's own kube-apiserver and the kubectl built from the same release.

One control plane per release per module (``versioned``), started when the first test of that
release needs it and stopped before the next release's starts: pytest groups the tests of a
module-scoped parameter. Older releases run etcd and kube-apiserver only (no controllers:
pods are created directly, ``ControlPlane.create_namespace`` makes each namespace's
``default`` ServiceAccount); KUBE_VERSION's has its controller manager too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.controlplane import ControlPlane
from e2e.pki import CertAuthority
from e2e.registry import Registry
from e2e.tools import ToolsMissing, find_tools, matrix_versions, minor_of
from tests.e2e.scenario_helpers import Podinit, delete_namespace, running_podinit, unique
from tests.registry.registry_harness import start_basic_auth_registry
from tests.unavailable import found

RELEASES = matrix_versions()
INJECT = {"podinit.dev/inject": "enabled"}
PRIVATE_IMAGE = "team/api"  # in the private registry: ENTRYPOINT ["/api"], CMD ["--listen=:8080"]


@pytest.fixture(scope="module", params=RELEASES, ids=[f"v1.{minor_of(v)}" for v in RELEASES])
def release(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def versioned(release: str, request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    """This release's control plane; its logs are kept when a test of the session failed."""
    tools = found(lambda: find_tools(release), ToolsMissing)
    cp = ControlPlane.start(tools)
    cp.create_namespace("kube-system")  # its `default` ServiceAccount: pods are created there
    try:
        yield cp
    finally:
        cp.stop(keep_logs=request.session.testsfailed > 0)


@pytest.fixture(scope="module")
def registry_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return CertAuthority(tmp_path_factory.mktemp("registry-pki"), "registry")


@pytest.fixture(scope="module")
def private_registry(
    tmp_path_factory: pytest.TempPathFactory, registry_ca: CertAuthority
) -> Iterator[Registry]:
    """A TLS registry with basic auth holding PRIVATE_IMAGE:1.0 (for the pull-secret reads)."""
    registry, pusher = start_basic_auth_registry(
        tmp_path_factory.mktemp("private-registry"), registry_ca
    )
    pusher.image(PRIVATE_IMAGE, "1.0", entrypoint=["/api"], cmd=["--listen=:8080"])
    pusher.close()
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def podinit(
    versioned: ControlPlane,
    registry_ca: CertAuthority,
    private_registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Podinit]:
    """`podinit serve` with the default injection mode, `auto` (decided from this apiserver),
    trusting the private registry, and the chart (opt-in mode) pointing at it."""
    env = {"PODINIT_INJECTION_MODE": "auto", "PODINIT_REGISTRY_CA_FILE": str(registry_ca.cert)}
    tmp: Path = tmp_path_factory.mktemp("podinit")
    with running_podinit(versioned, tmp, env=env) as running:
        yield running


@pytest.fixture
def opted_in(versioned: ControlPlane) -> Iterator[str]:
    """A fresh namespace labelled for injection, deleted (without waiting) afterwards."""
    name = unique("matrix-in")
    versioned.create_namespace(name, INJECT)
    yield name
    delete_namespace(versioned, name)


@pytest.fixture
def plain(versioned: ControlPlane) -> Iterator[str]:
    """A fresh namespace without the label."""
    name = unique("matrix-plain")
    versioned.create_namespace(name)
    yield name
    delete_namespace(versioned, name)
