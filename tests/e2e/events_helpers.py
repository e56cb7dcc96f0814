"""Reading podinit's Events and its events metric, for tests/e2e/test_events*.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import Podinit, delete_namespace, new_namespace

INJECT = {"podinit.dev/inject": "enabled"}
REASON = "PodinitNotWrapped"


def events(cp: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    """podinit's Events in `namespace`, as events.k8s.io/v1 has them."""
    items = cp.kubectl_json("get", "events.events.k8s.io", "-n", namespace)["items"]
    return [e for e in items if e.get("reason") == REASON]


def wait_for_events(
    cp: ControlPlane, namespace: str, count: int = 1, timeout: float = 30
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cp.wait_for(
        f"{count} {REASON} Events in {namespace}",
        lambda: (got := events(cp, namespace)) and len(got) >= count and got,
        timeout=timeout,
    )
    return found


def events_total(podinit: Podinit) -> dict[str, float]:
    """`podinit_events_total` by result, from the server's /metrics."""
    with podinit.server.client() as client:
        text = client.get("/metrics").text
    return {
        match[1]: float(match[2])
        for match in re.finditer(r'^podinit_events_total\{result="([^"]+)"\} (\S+)$', text, re.M)
    }


@pytest.fixture(name="opted_in")
def opted_in_fixture(control_plane: ControlPlane) -> Iterator[str]:
    """A namespace podinit sees, deleted afterwards (with its Events)."""
    name = new_namespace(control_plane, "events", **INJECT)
    yield name
    delete_namespace(control_plane, name)
