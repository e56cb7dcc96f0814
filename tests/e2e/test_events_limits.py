"""Warning Events when writing them is limited: a tiny queue under a burst of distinct
failures, an identity the apiserver refuses Events to, an Event deleted under the writer.
Each test runs its own `podinit serve` and chart or its own writer (no other podinit webhook
is installed meanwhile: tests/e2e/test_events.py's is gone when its module ends).

Images come from UNREACHABLE_IMAGE (nothing listens on port 9): every lookup fails at once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from kubernetes.aio import client as kube

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
from webhook.config import load
from webhook.core import InjectSettings, LookupFailure, mutate
from webhook.kube import api_client, close
from webhook.server.events import EventRecorder
from webhook.server.metrics import Metrics


def test_with_a_tiny_queue_a_burst_of_distinct_failures_is_answered_and_drops_are_counted(
    control_plane: ControlPlane, tmp_path: Path, opted_in: str
) -> None:
    """100 pods with distinct names fail at once (posted straight to /mutate, 50 at a time);
    the queue holds one: every admission is answered, each failure is either written or
    counted as dropped, and the Events written are the ones counted as created. (No pod was
    created: the writer finds none of them and writes nothing, counted as unverified.)"""
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
            done = totals["created"] + totals["dropped"] + totals["failed"] + totals["unverified"]
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


def test_an_event_deleted_under_the_writer_is_written_anew_when_the_failure_recurs(
    control_plane: ControlPlane, opted_in: str
) -> None:
    """The writer in-process, as the admin, with a 0.2 s interval: an Event that is gone
    (its TTL ran out, its namespace was emptied) makes its series patch fail with 404; the
    failure is then forgotten, and its next occurrence creates a new Event."""
    cp = control_plane
    bare = pod(opted_in, "gone", container("app", image=UNREACHABLE_IMAGE))
    failed = mutate(bare, InjectSettings(), {UNREACHABLE_IMAGE: LookupFailure("unreachable")})

    def names() -> set[str]:
        return {e["metadata"]["name"] for e in events(cp, opted_in)}

    async def poll(what: str, check: Callable[[], bool]) -> None:
        await asyncio.to_thread(cp.wait_for, what, check, 30)

    async def main() -> tuple[set[str], set[str], Metrics]:
        api = await api_client(load(None, kubeconfig=cp.kubeconfig), user_kubeconfig=False)
        assert api is not None
        metrics = Metrics()
        recorder = EventRecorder(
            kube.EventsV1Api(api), metrics, queue_size=10, instance="test", interval=0.2
        )
        writer = asyncio.create_task(recorder.run())
        try:
            recorder.notice(opted_in, bare, failed)
            await poll("the first Event", lambda: bool(names()))
            first = names()
            await asyncio.to_thread(
                cp.kubectl, "delete", "events.events.k8s.io", *first, "-n", opted_in
            )
            recorder.notice(opted_in, bare, failed)  # folded in: its series patch finds nothing
            await poll("the patch to fail", lambda: metrics.events["failed"] == 1)
            recorder.notice(opted_in, bare, failed)
            await poll("a new Event", lambda: bool(names()))
            return first, names(), metrics
        finally:
            writer.cancel()
            await close(api)

    first, second, metrics = asyncio.run(main())
    assert len(first) == len(second) == 1 and first != second
    [event] = events(cp, opted_in)
    assert event["note"] == 'container "app": unreachable'
    assert "series" not in event or event["series"] is None  # a new Event, counted from 1
    assert metrics.events == {"created": 2, "aggregated": 1, "failed": 1}
