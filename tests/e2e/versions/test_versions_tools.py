"""The matrix's tools: each release's kube-apiserver and kubectl are the builds of that release
(e2e/tools.sh sets their version with ldflags, as Kubernetes' own build does), taken from the
tools cache and never from PATH, and kubectl's supported skew is what decides the pairing."""

from __future__ import annotations

import json
import subprocess

import pytest

from e2e.tools import (
    ToolsMissing,
    find_tools,
    kubectl_within_skew,
    matrix_versions,
    minor_of,
    tools_cache,
)
from tests.e2e.versions.conftest import RELEASES
from tests.unavailable import found


def test_the_matrix_is_every_minor_from_1_34_to_1_37_once() -> None:
    assert [minor_of(v) for v in matrix_versions()] == [34, 35, 36, 37]


@pytest.mark.parametrize(
    ("client", "server", "supported"),
    [
        ("v1.37.2", "v1.37.2", True),
        ("v1.37.2", "v1.36.3", True),
        ("v1.35.4", "v1.36.3", True),
        ("v1.37.2", "v1.35.4", False),  # two minors: outside kubectl's skew
        ("v1.32.0", "v1.37.2", False),  # the kubectl this machine has on PATH
    ],
)
def test_kubectl_is_used_within_one_minor_of_the_apiserver(
    client: str, server: str, supported: bool
) -> None:
    assert kubectl_within_skew(client, server) is supported


@pytest.mark.parametrize("release", RELEASES)
def test_each_releases_apiserver_and_kubectl_are_built_at_that_release(release: str) -> None:
    tools = found(lambda: find_tools(release), ToolsMissing)
    for binary in (tools.kubectl, tools.kube_apiserver):
        assert binary.is_relative_to(tools_cache()), binary  # not PATH's
    client = subprocess.run(
        [tools.kubectl, "version", "--client", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert json.loads(client.stdout)["clientVersion"]["gitVersion"] == release
    server = subprocess.run(
        [tools.kube_apiserver, "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert server.stdout.split() == ["Kubernetes", release]
