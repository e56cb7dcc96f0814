"""The reconciler backs off, on a real apiserver and controller manager: a workload whose
replacement slips through unwrapped as well is paused, twice as long each time it happens
again; an eviction a PodDisruptionBudget refuses is tried again, the wait doubling, and
reported once. Pods slip through as in test_reconcile.py (the webhook configuration at a dead
address), then the apiserver reaches the server.

Times are lower bounds only (a slow machine makes every wait longer, never shorter), with
`reconcile.stallSeconds` and `retrySeconds` of seconds instead of the hour and minute.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    delete_namespace,
    deployment,
)
from tests.e2e.test_reconcile import (
    APP,
    act_as_kubelet,
    events,
    metrics,
    reconciling_server,
    slipped_namespace,
)

# A condition the pod watch cannot evaluate (CEL only the apiserver runs): pods labelled
# `excluded` are never sent to the webhook, so the watch counts them as slipped, and each
# replacement of one slips again.
NOT_EXCLUDED = [
    {
        "name": "not-excluded",
        "expression": "!has(object.metadata.labels) || !('excluded' in object.metadata.labels)",
    }
]


def at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).timestamp()


def pause_of(event: dict[str, Any]) -> int:
    found = re.search(r"replaced for (\d+)s", event["note"])
    assert found, event["note"]
    return int(found[1])


def test_a_workload_whose_replacements_slip_too_is_paused_twice_as_long_each_time(
    control_plane: ControlPlane, probe_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cp = control_plane
    tmp = tmp_path_factory.mktemp("stall")
    with reconciling_server(
        cp, tmp, probe_namespace, PODINIT_RECONCILE_STALL_SECONDS="2"
    ) as podinit:
        loop = deployment("", "loop", *APP, replicas=3)
        loop["spec"]["template"]["metadata"]["labels"]["excluded"] = "true"
        namespace = slipped_namespace(cp, podinit, loop, count=3)
        try:
            podinit.url = None
            podinit.upgrade(
                "optIn", "--set-json", f"webhook.matchConditions={json.dumps(NOT_EXCLUDED)}"
            )

            def stalls() -> list[dict[str, Any]]:
                act_as_kubelet(cp, namespace)
                return sorted(events(cp, namespace, "PodinitReplacementStalled"), key=at)

            cp.wait_for("three stalls", lambda: len(stalls()) >= 3, timeout=120, interval=0.5)
            paused = stalls()
            evictions = sorted(events(cp, namespace, "PodinitReplacing"), key=at)
            assert [pause_of(e) for e in paused[:3]] == [2, 4, 8]
            assert all("not wrapped either" in e["note"] for e in paused)
            # Each pause holds: the next eviction comes no sooner than the pause allows.
            for stall, after in zip(paused[:2], evictions[1:3], strict=True):
                assert at(after) - at(stall) >= pause_of(stall) - 0.01
            assert len(evictions) == len(paused) or len(evictions) == len(paused) + 1
            counted = metrics(podinit.server)
            assert counted['podinit_reconcile_actions_total{action="stalled"}'] == len(paused)
        finally:
            delete_namespace(cp, namespace)


def test_an_eviction_a_budget_refuses_is_tried_again_later_each_time_and_reported_once(
    control_plane: ControlPlane, probe_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cp = control_plane
    tmp = tmp_path_factory.mktemp("refused")
    with reconciling_server(
        cp, tmp, probe_namespace, PODINIT_RECONCILE_RETRY_SECONDS="1"
    ) as podinit:
        budget = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "guarded"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}},
        }
        guarded = deployment("", "guarded", *APP, replicas=2)
        namespace = slipped_namespace(cp, podinit, guarded, budget, count=2)
        try:
            cp.wait_for(
                "the budget to count both pods healthy",
                lambda: (
                    cp.kubectl_json("get", "pdb", "guarded", "-n", namespace)
                    .get("status", {})
                    .get("currentHealthy")
                    == 2
                ),
                timeout=60,
            )
            podinit.url = None
            podinit.upgrade("optIn")

            def refused() -> float:
                return metrics(podinit.server)['podinit_reconcile_actions_total{action="refused"}']

            cp.wait_for("a refused eviction", lambda: refused() > 0, timeout=60, interval=0.2)
            first = time.monotonic()
            time.sleep(10)
            # Both pods are tried in one pass, again 1, 3 and 7 s after the first (the wait
            # doubling from retrySeconds), the next only after 15 s: at most 4 tries each.
            # Without doubling, a try every second (or every pass) would count 20 or more.
            tries = refused()
            assert time.monotonic() - first < 15
            assert 4 <= tries <= 8, tries
            told = events(cp, namespace, "PodinitEvictionRefused")
            assert len(told) == 2, "one Event per pod, at its first refusal"
            assert all("series" not in e for e in told)
            assert events(cp, namespace, "PodinitReplacing") == []
        finally:
            delete_namespace(cp, namespace)
