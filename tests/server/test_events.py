"""Warning Events, the part that needs no apiserver: what an admission notices, what it refers
to, how repeats fold and a full queue drops, and an apiserver that is gone (a closed port).
tests/e2e/test_events.py writes them to a real apiserver."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from kubernetes.aio import client as kube

from e2e.processes import free_port
from e2e.reviews import pod_review
from tests.server.mutator import cases
from webhook.core import InjectSettings, LookupFailure, LookupFailurePolicy, Mutation, mutate
from webhook.registry import ImageResolver, ResolverSettings
from webhook.server.admission import Admitter
from webhook.server.event_content import note, regarding_of
from webhook.server.events import EventRecorder
from webhook.server.metrics import Metrics
from webhook.server.review import AdmissionRequest, BadReview, parse

IMAGE = "registry.local/app:1"
SLOW = f"registry lookup of {IMAGE} took over 3.5 s"
OWNER_UID = "6a1f0d4e-0000-4000-8000-000000000001"


def pod(
    name: str | None = "web", *, generate: str | None = None, **metadata: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {**metadata}
    if name is not None:
        meta["name"] = name
    if generate is not None:
        meta["generateName"] = generate
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "app", "image": IMAGE}]},
    }


def failing(pod_: dict[str, Any], **settings: Any) -> Mutation:
    """The core's answer when the image cannot be looked up."""
    return mutate(pod_, InjectSettings(**settings), {IMAGE: LookupFailure(SLOW)})


class NoApi:
    """An EventsApi that must never be called (the writer is not running in these tests)."""

    async def create_namespaced_event(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the admission path called the API")

    patch_namespaced_event = create_namespaced_event


def recorder(metrics: Metrics, queue_size: int = 100) -> EventRecorder:
    return EventRecorder(NoApi(), metrics, queue_size=queue_size, instance="test")


def results(metrics: Metrics) -> dict[str, float]:
    text = metrics.render().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("podinit_events_total{"):
            labels, value = line.split(" ")
            found[labels.split('"')[1]] = float(value)
    return found


# --------------------------------------------------------------------------- what is noticed


def test_a_container_whose_lookup_failed_is_noted_by_name_with_the_cores_reason() -> None:
    assert note(failing(pod())) == f'container "app": {SLOW}'


def test_a_denied_pod_is_noted_once_as_denied() -> None:
    mutation = failing(pod(), on_lookup_failure=LookupFailurePolicy.DENY)
    assert note(mutation) == f"pod denied: container app: {SLOW}"


def test_a_bad_option_annotation_is_noted_for_the_pod() -> None:
    bad = pod(annotations={"podinit.dev/grace": "soon"})
    noted = note(failing(bad))
    assert noted is not None
    assert noted.startswith("pod not wrapped: bad annotation podinit.dev/grace: 'soon'"), note


@pytest.mark.parametrize(
    "metadata",
    [
        {"annotations": {"podinit.dev/inject": "false"}},  # opted out
        {"annotations": {"podinit.dev/skip-containers": "app"}},  # container opted out
    ],
)
def test_pods_and_containers_skipped_by_policy_are_not_noted(metadata: dict[str, Any]) -> None:
    assert note(failing(pod(**metadata))) is None


def test_a_container_that_already_runs_an_init_is_not_noted() -> None:
    tini = pod()
    tini["spec"]["containers"][0]["command"] = ["tini", "--", "app"]
    assert note(mutate(tini, InjectSettings(), {})) is None


# --------------------------------------------------------------------------- what it is about


def test_the_controller_owner_is_preferred_over_other_owners() -> None:
    owners = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "u-other"},
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-7d9f",
            "uid": OWNER_UID,
            "controller": True,
        },
    ]
    reference, who = regarding_of("shop", pod(None, generate="web-7d9f-", ownerReferences=owners))
    assert reference == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-7d9f",
        "namespace": "shop",
        "uid": OWNER_UID,
    }
    assert who == ""


def test_without_a_controller_the_first_owner_is_used() -> None:
    owners = [{"apiVersion": "batch/v1", "kind": "Job", "name": "nightly", "uid": OWNER_UID}]
    reference, _ = regarding_of("shop", pod(None, generate="nightly-", ownerReferences=owners))
    assert (reference["kind"], reference["name"], reference.get("uid")) == (
        "Job",
        "nightly",
        OWNER_UID,
    )


def test_a_bare_pod_is_referred_to_by_its_name_without_a_uid() -> None:
    reference, who = regarding_of("shop", pod("web"))
    assert reference == {"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": "shop"}
    assert who == ""


def test_a_pod_with_only_a_generate_name_and_no_owner_is_noted_on_its_namespace() -> None:
    recorded = recorder(Metrics())
    recorded.notice("shop", pod(None, generate="worker-"), failing(pod(None, generate="worker-")))
    [entry] = recorded._entries.values()
    assert entry.regarding == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "name": "shop",
        "namespace": "shop",
    }
    assert entry.note == f'pod "worker-"*: container "app": {SLOW}'


def test_a_note_is_never_over_the_apis_1024_bytes() -> None:
    long_reason = "é" * 2000  # two bytes each
    containers = [{"name": f"c{i}-" + "é" * 60, "image": f"r.local/c{i}:1"} for i in range(110)]
    many = {"metadata": {"name": "web"}, "spec": {"containers": containers}}
    failures = {c["image"]: LookupFailure(long_reason) for c in containers}
    recorded = recorder(Metrics())
    recorded.notice("shop", many, mutate(many, InjectSettings(), failures))
    [entry] = recorded._entries.values()
    assert len(entry.note.encode()) <= 1024
    assert entry.note.startswith('110 containers not wrapped: "c0-éé')


# --------------------------------------------------------------------------- aggregation, drops


def test_a_thousand_repeats_of_one_failure_queue_one_event_and_fold_the_rest() -> None:
    metrics = Metrics()
    recorded = recorder(metrics, queue_size=10)
    for _ in range(1000):
        recorded.notice("shop", pod(), failing(pod()))
    assert recorded._queue.qsize() == 1
    [entry] = recorded._entries.values()
    assert entry.count == 1000
    assert results(metrics) == {
        "created": 0,
        "series": 0,
        "aggregated": 999,
        "dropped": 0,
        "failed": 0,
        "unverified": 0,
    }


def test_failures_beyond_a_full_queue_are_dropped_and_counted_in_metrics() -> None:
    metrics = Metrics()
    recorded = recorder(metrics, queue_size=2)
    for index in range(10):
        name = f"web-{index}"
        recorded.notice("shop", pod(name), failing(pod(name)))
    assert recorded._queue.qsize() == 2
    assert results(metrics)["dropped"] == 8
    assert 'podinit_events_total{result="dropped"} 8.0' in metrics.render().decode()


def test_a_dropped_failure_is_queued_again_when_it_recurs_after_the_queue_drained() -> None:
    metrics = Metrics()
    recorded = recorder(metrics, queue_size=1)
    recorded.notice("shop", pod("a"), failing(pod("a")))
    recorded.notice("shop", pod("b"), failing(pod("b")))  # dropped: the queue holds a's
    recorded._queue.get_nowait()
    recorded.notice("shop", pod("b"), failing(pod("b")))
    assert recorded._queue.get_nowait()[3] == "b"
    assert results(metrics)["dropped"] == 1


def test_the_map_of_remembered_failures_is_bounded() -> None:
    recorded = EventRecorder(NoApi(), Metrics(), queue_size=1000, instance="t", max_entries=5)
    for index in range(20):
        name = f"web-{index}"
        recorded.notice("shop", pod(name), failing(pod(name)))
    assert len(recorded._entries) == 5
    assert [key[3] for key in recorded._entries] == [f"web-{i}" for i in range(15, 20)]


# --------------------------------------------------------------------------- admissions


def request(pod_: dict[str, Any], **extra: Any) -> AdmissionRequest:
    review = pod_review(pod_, namespace="shop")
    return {**review["request"], **extra}  # type: ignore[no-any-return]


def run_admissions(
    requests: list[AdmissionRequest], queue_size: int = 100
) -> tuple[Metrics, EventRecorder]:
    async def main() -> tuple[Metrics, EventRecorder]:
        metrics = Metrics()
        events = recorder(metrics, queue_size)
        unavailable = httpx.MockTransport(lambda _: httpx.Response(503))  # every lookup fails
        async with ImageResolver(ResolverSettings(), transport=unavailable) as resolver:
            admitter = Admitter(
                settings=InjectSettings(), metrics=metrics, resolver=resolver, events=events
            )
            for item in requests:
                await admitter.admit(item)
        return metrics, events

    return asyncio.run(main())


def test_a_dry_run_admission_notices_nothing_and_the_same_admission_for_real_does() -> None:
    metrics, events = run_admissions([request(pod(), dryRun=True)])
    assert metrics.containers == {("failed", "lookup-failed"): 1}  # decided and left unwrapped
    assert events._queue.qsize() == 0
    assert list(events._entries) == []
    metrics, events = run_admissions([request(pod())])
    assert metrics.containers == {("failed", "lookup-failed"): 1}
    assert events._queue.qsize() == 1


def test_fuzzed_pods_never_make_noticing_raise(caplog: pytest.LogCaptureFixture) -> None:
    """The admission path's catch-all would hide an exception from notice as an internal
    error: none may happen, whatever the pod looks like."""
    requests = []
    for body in cases(20240612, 400):
        try:
            requests.append(parse(body))  # as /mutate does before admitting
        except BadReview:
            continue
    assert len(requests) > 200
    with caplog.at_level(logging.ERROR, logger="podinit.admission"):
        metrics, events = run_admissions(requests, queue_size=10_000)
    assert "error" not in metrics.admissions, [r.getMessage() for r in caplog.records][:3]
    assert sum(e.count for e in events._entries.values()) > 50  # many reached notice


# --------------------------------------------------------------------------- the writer


def test_an_apiserver_that_is_gone_is_counted_as_failed_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> Metrics:
        metrics = Metrics()
        configuration = kube.Configuration(host=f"https://127.0.0.1:{free_port()}")
        async with kube.ApiClient(configuration) as api:
            events = EventRecorder(
                kube.EventsV1Api(api), metrics, queue_size=100, instance="t", interval=0.05
            )
            writer = asyncio.create_task(events.run())
            for index in range(5):
                name = f"web-{index}"
                events.notice("shop", pod(name), failing(pod(name)))
            for _ in range(200):
                if metrics.events["failed"] >= 5:
                    break
                await asyncio.sleep(0.02)
            writer.cancel()
        return metrics

    with caplog.at_level(logging.WARNING, logger="podinit.events"):
        metrics = asyncio.run(main())
    assert metrics.events["failed"] >= 5
    assert metrics.events["created"] == 0
    warnings = [r for r in caplog.records if r.name == "podinit.events"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].exc_info is None
    assert warnings[0].getMessage().startswith("writing Events failed: ")
