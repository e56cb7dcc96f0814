"""Helm 4 renders the chart exactly as Helm 3 does, in every mode the tests name (the
apiserver tests install, upgrade and uninstall it with both: test_chart_on_apiserver.py)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from e2e.tools import ToolsMissing, find_helm
from scripts.chart import generate
from tests.chart.conftest import MODES, Objects, Render
from tests.unavailable import unavailable


@pytest.fixture(scope="module")
def helm4() -> str:
    """HELM4 of `e2e/tools.sh --paths` ($HELM4 overrides it)."""
    try:
        return str(find_helm(4))
    except ToolsMissing as missing:
        unavailable(str(missing))


def test_the_helm_4_binary_is_helm_4(helm4: str) -> None:
    version = subprocess.run([helm4, "version", "--short"], capture_output=True, text=True)
    assert version.stdout.startswith("v4."), version


def by_name(objects: Objects) -> dict[tuple[str, str], dict[str, Any]]:
    named = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert len(named) == len(objects), "two objects of one kind and name"
    return named


@pytest.mark.parametrize("mode", list(MODES))
def test_helm_4_renders_the_same_objects_as_helm_3(render: Render, helm4: str, mode: str) -> None:
    """Object for object; the order may differ (Helm 4 sorts kinds it does not know, as
    cert-manager's, after the MutatingWebhookConfiguration, Helm 3 before)."""
    by_helm4 = generate.helm_template(helm4, MODES[mode], skip_tests=False)
    assert by_name(by_helm4) == by_name(render(MODES[mode]))
