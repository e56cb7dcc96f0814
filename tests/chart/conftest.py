"""Fixtures for the chart tests: helm (built by `make e2e-tools`) and rendering.

Without helm the tests skip, naming `make e2e-tools`, unless ``CI`` is set: there they fail.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.chart import generate  # noqa: E402
from tests.unavailable import unavailable  # noqa: E402

Objects = list[dict[str, Any]]

# The chart's modes as the tests name them: helm --set arguments.
MODES: dict[str, list[str]] = {
    "optIn-selfManaged": [],
    "clusterWide-selfManaged": ["mode=clusterWide"],
    "optIn-certManager": ["certificates.mode=certManager"],
    "clusterWide-existingSecret": [
        "mode=clusterWide",
        "certificates.mode=existingSecret",
        "certificates.existingSecret.name=podinit-serving",
        "certificates.existingSecret.caBundle=Q0EK",
        "config.pullSecretLookups=false",
    ],
    "everything-on": [
        "certificates.mode=certManager",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboard.enabled=true",
        "networkPolicy.enabled=true",
        "networkPolicy.egress[0].ports[0].port=443",
    ],
    "url-only": [
        "server.enabled=false",
        "webhook.url=https://127.0.0.1:8443/mutate",
        "webhook.caBundle=Q0EK",
    ],
}


@pytest.fixture(scope="session")
def helm() -> str:
    try:
        path = generate.find_helm()
    except FileNotFoundError as error:
        unavailable(str(error))
        raise
    return path


Render = Callable[..., Objects]


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """helm template with --set arguments (tests included unless skip_tests)."""
    cache: dict[tuple[Any, ...], Objects] = {}

    def run(sets: Iterable[str] = (), **kwargs: Any) -> Objects:
        key = (tuple(sets), tuple(sorted(kwargs.items())))
        if key not in cache:
            kwargs.setdefault("skip_tests", False)
            cache[key] = generate.helm_template(helm, sets, **kwargs)
        return cache[key]

    return run


def render_error(helm: str, *sets: str) -> str:
    """helm template that must fail: its stderr."""
    argv = [helm, "template", "podinit", str(generate.CHART), "--kube-version", "1.37.0"]
    for item in sets:
        argv += ["--set", item]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode != 0, f"helm template {' '.join(sets)} did not fail"
    return result.stderr


def one(objs: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def pod_spec(objs: Objects) -> dict[str, Any]:
    """The webhook Deployment's pod spec."""
    spec: dict[str, Any] = one(objs, "Deployment")["spec"]["template"]["spec"]
    return spec


def kinds(objs: Objects) -> set[str]:
    return {o["kind"] for o in objs}
