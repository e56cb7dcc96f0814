"""Session fixtures for the end-to-end tests: a real control plane on loopback.

Without the tools (``make e2e-tools``; with ``ETCD_VERSION=debian`` in e2e/versions.env,
Debian's ``etcd-server``) the tests skip, naming what is missing and how to get it — unless
``CI`` is set, where they fail: CI may not skip them.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from e2e.controlplane import ControlPlane  # noqa: E402
from e2e.tools import Tools, ToolsMissing, find_tools  # noqa: E402
from tests.e2e.scenario_helpers import (  # noqa: E402
    Podinit,
    delete_namespace,
    new_namespace,
    running_podinit,
)
from tests.unavailable import found  # noqa: E402

_STARTED: list[ControlPlane] = []


@pytest.fixture(scope="session")
def e2e_tools() -> Tools:
    return found(find_tools, ToolsMissing)


@pytest.fixture(scope="session")
def control_plane(e2e_tools: Tools, request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager, shared by the session.

    Logs are kept (and their directory printed) when any test of the session failed.
    """
    cp = ControlPlane.start(e2e_tools)  # on a startup error the logs are kept and printed
    _STARTED.append(cp)
    try:
        yield cp
    finally:
        _STARTED.remove(cp)
        cp.stop(keep_logs=request.session.testsfailed > 0)


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    name = f"e2e-{slug[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def probe_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """An opted-in namespace where a reconciling server's dry-run probe pods are created, one
    per test module."""
    name = new_namespace(control_plane, "rec-probe", **{"podinit.dev/inject": "enabled"})
    yield name
    delete_namespace(control_plane, name)


@pytest.fixture(scope="module")
def podinit(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Podinit]:
    """`podinit serve` and the chart pointing at it (scenario_helpers.running_podinit), one
    per test module."""
    with running_podinit(control_plane, tmp_path_factory.mktemp("podinit")) as running:
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _STARTED:
        cp = _STARTED[-1]
        report.sections.append(("control plane", f"logs (kept): {cp.logdir}\n{cp.log_tails(20)}"))
    return report
