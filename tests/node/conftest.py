"""A real one-node cluster for the session: images built from the Dockerfile, containerd,
kubelet, kube-proxy (e2e.node). Needs root and ``make e2e-tools``; otherwise the tests skip
naming what is missing, or fail when ``CI`` is set.

Every test runs on the newest release's cluster (Kubernetes 1.37, containerd 2.4). A module
or test marked ``@pytest.mark.clusters("newest", "oldest")`` runs on the oldest supported
one too (every program 1.34, containerd 1.7): its id ends in the minor, ``[1.34]``. Only one
cluster runs at a time (one node per machine); pytest runs every test of one cluster, then
stops it and starts the next."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Generator, Iterator

import pytest

from e2e.images.buildah import BuildError
from e2e.node import cleanup
from e2e.node.cluster import Cluster
from e2e.tools import (
    ClusterRelease,
    ToolsMissing,
    cluster_releases,
)
from tests.unavailable import unavailable

_PACKAGES = {
    "buildah": "buildah",
    "mmdebstrap": "mmdebstrap",
    "iptables": "iptables",
    "musl-gcc": "musl-tools",
    "docker-registry": "docker-registry",
}


_RELEASES = cluster_releases()
_BY_AGE = {"newest": _RELEASES[0], "oldest": _RELEASES[-1]}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", 'clusters(*names): the clusters a node test runs on ("newest", "oldest")'
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cluster" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("clusters")
    names = marker.args if marker else ("newest",)
    if unknown := set(names) - set(_BY_AGE):
        raise pytest.UsageError(
            f"clusters({', '.join(map(repr, unknown))}): not one of {list(_BY_AGE)}"
        )
    releases = [_BY_AGE[name] for name in names]
    # session scope: pytest groups the tests by cluster, so each starts once
    metafunc.parametrize(
        "cluster", releases, ids=[r.name for r in releases], indirect=True, scope="session"
    )


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    release: ClusterRelease = request.param
    if os.geteuid() != 0:
        unavailable("the node needs root (network, mounts, cgroups)")
    for tool, package in _PACKAGES.items():
        if shutil.which(tool) is None:
            unavailable(f"needs {tool} (Debian package {package})")
    if not os.path.isfile("/usr/lib/cni/bridge"):
        unavailable("needs the CNI plugins (Debian package containernetworking-plugins)")
    try:
        started = Cluster.start(release=release)  # looks its tools up before anything else
    except ToolsMissing as e:
        unavailable(str(e))
    except BuildError as e:
        pytest.fail(f"building the images failed: {e}", pytrace=False)
    try:
        yield started
    finally:
        started.stop(keep_logs=request.session.testsfailed > 0)
    # `make cluster-down` relies on the same teardown: it must leave nothing behind
    assert cleanup.leftovers(started.state) == []


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace, not selected for injection, deleted afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    name = f"n-{slug[:40].strip('-')}-{uuid.uuid4().hex[:5]}"
    cluster.cp.kubectl("create", "namespace", name)
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def measured(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Prints a measurement past pytest's capture, so a passing run's log keeps it too."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n[measured] {line}")

    return say


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and isinstance(cluster, Cluster):
        report.sections.append(("node", f"logs: {cluster.cp.logdir}\n{cluster.cp.log_tails(15)}"))
    return report
