"""Warning Events when writing them is limited: a tiny queue under a burst of distinct
failures, and an identity the apiserver refuses Events to. Each test runs its own `podinit
serve` and chart (no other podinit webhook is installed meanwhile: tests/e2e/test_events.py's
is gone when its module ends).

Images come from UNREACHABLE_IMAGE (nothing listens on port 9): every lookup fails at once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import httpx

from e2e.controlplane import ControlPlane
from e2e.reviews import pod_review
from tests.e2e.events_helpers import (
    events,
    events_total,
    opted_in_fixture,  # noqa: F401 (the opted_in fixture)
)
from tests.e2e.scenario_helpers import (
    UNREACHABLE_IMAGE,
    Podinit,
    container,
    create,
    pod,
    running_podinit,
    status,
)


def test_with_a_tiny_queue_a_burst_of_distinct_failures_is_answered_and_drops_are_counted(
    control_plane: ControlPlane, tmp_path: Path, opted_in: str
) -> None:
    """100 pods with distinct names fail at once (posted straight to /mutate, 50 at a time);
    the queue holds one: every admission is answered, each failure is either written or
    counted as dropped, and the Events written are the ones counted as created."""
    cp = control_plane
    with running_podinit(cp, tmp_path, env={"PODINIT_EVENT_QUEUE_SIZE": "1"}) as podinit:
        reviews = [
            pod_review(
                pod(opted_in, f"p{index}", container("app", image=UNREACHABLE_IMAGE)),
                namespace=opted_in,
            )
            for index in range(100)
        ]
        answers = asyncio.run(post_all(podinit, reviews, concurrency=50))
        assert [a["response"]["allowed"] for a in answers] == [True] * 100

        def settled() -> dict[str, float] | None:
            totals = events_total(podinit)
            done = totals["created"] + totals["dropped"] + totals["failed"]
            return totals if done == 100 else None

        totals = cp.wait_for("every failure written or dropped", settled, timeout=60)
        assert totals["failed"] == 0
        assert totals["dropped"] > 0
        assert len(events(cp, opted_in)) == totals["created"]


async def post_all(
    podinit: Podinit, reviews: list[dict[str, Any]], concurrency: int
) -> list[dict[str, Any]]:
    verify = ssl.create_default_context(cafile=str(podinit.server.ca_file))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=podinit.server.url, verify=verify, limits=limits, timeout=30
    ) as client:

        async def post(review: dict[str, Any]) -> dict[str, Any]:
            answer = await client.post("/mutate", content=json.dumps(review))
            return answer.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(post(r) for r in reviews))


def test_an_apiserver_that_refuses_events_fails_no_admission_and_the_refusals_are_counted(
    control_plane: ControlPlane, tmp_path: Path, opted_in: str
) -> None:
    """podinit serve as a user with no rights at all: Events are refused (403), pods are
    admitted as always, and the refusals are counted."""
    cp = control_plane
    kubeconfig = cp.user_kubeconfig("podinit-without-rights")
    env = {"PODINIT_KUBECONFIG": str(kubeconfig), "PODINIT_PULL_SECRET_LOOKUPS": "false"}
    with running_podinit(cp, tmp_path, env=env) as podinit:
        for index in range(3):
            stored, warnings = create(
                cp, pod(opted_in, f"p{index}", container("app", image=UNREACHABLE_IMAGE))
            )
            assert "not wrapped" in warnings
            assert status(stored) is not None
        cp.wait_for("3 refused Events", lambda: events_total(podinit)["failed"] >= 3)
        assert events_total(podinit)["created"] == 0
        assert events(cp, opted_in) == []
        assert podinit.admissions_total().get("error", 0) == 0
