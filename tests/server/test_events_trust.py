"""Events a review's author cannot abuse (issue 18, deliverables 1 and 5), without an apiserver:
one Event per pod however many containers fail, notes free of control characters with the
author's text quoted and cut, and no Event about an object that does not exist as the review
names it (owners.OwnerCheck in front of the writer). tests/e2e/test_events_trust.py does the
same against a real apiserver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from webhook.core import InjectSettings, LookupFailure, mutate
from webhook.server.event_content import note
from webhook.server.events import EventRecorder
from webhook.server.metrics import Metrics
from webhook.server.owners import Found, OwnerCheck, Unverifiable

UID = "6a1f0d4e-0000-4000-8000-000000000001"
OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": UID}


def many(count: int, **metadata: Any) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": f"r.local/c{i}:1"} for i in range(count)]
    return {"metadata": {"generateName": "web-", **metadata}, "spec": {"containers": containers}}


def failing(pod: dict[str, Any], reason: str = "registry r.local timed out") -> Any:
    images = {c["image"]: LookupFailure(reason) for c in pod["spec"]["containers"]}
    return mutate(pod, InjectSettings(), images)


# --------------------------------------------------------------------------- one per pod, clean


def test_a_pod_with_110_failing_containers_is_one_event_naming_three_and_counting_the_rest() -> (
    None
):
    pod = many(110, ownerReferences=[{**OWNER, "controller": True}])
    recorded = EventRecorder(Api(), Metrics(), queue_size=1000, instance="t")
    recorded.notice("shop", pod, failing(pod))
    [entry] = recorded._entries.values()
    assert recorded._queue.qsize() == 1
    assert entry.note == (
        '110 containers not wrapped: "c0": registry r.local timed out; '
        '"c1": registry r.local timed out; "c2": registry r.local timed out; and 107 more'
    )


def test_control_characters_and_bidi_overrides_in_names_and_reasons_do_not_reach_the_note() -> None:
    pod = many(1)
    pod["spec"]["containers"][0]["name"] = 'app\n\x1b[31mWarning\u202e"x'
    noted = note(failing(pod, reason="registry evil\r\nFAKE: ok\x00 timed out"))
    assert noted == 'container "app??[31mWarning?\'x": registry evil??FAKE: ok? timed out'


def test_a_container_name_is_cut_to_63_characters_and_a_reason_to_240() -> None:
    pod = many(1)
    pod["spec"]["containers"][0]["name"] = "n" * 500
    noted = note(failing(pod, reason="r" * 5000))
    assert noted == f'container "{"n" * 60}...": {"r" * 237}...'


# --------------------------------------------------------------------------- what it is about


class Api:
    """An EventsApi recording what it is asked to create."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create_namespaced_event(self, namespace: str, body: Any, **_: Any) -> Any:
        self.created.append(body)

    async def patch_namespaced_event(self, *args: Any, **kwargs: Any) -> Any:
        return None


class Reads:
    """ObjectReads from a dict, and the pods of generateName `web-` in `pods`; counts reads."""

    def __init__(
        self,
        objects: dict[tuple[str, str, str, str], Found | Unverifiable],
        pods: list[Found] | Unverifiable | None = None,
    ) -> None:
        self.objects = objects
        self.pods = pods or []
        self.calls = 0

    async def generated(self, namespace: str, generate_name: str) -> list[Found]:
        assert (namespace, generate_name) == ("shop", "web-")
        if isinstance(self.pods, Unverifiable):
            raise self.pods
        return self.pods

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> Found | None:
        self.calls += 1
        found = self.objects.get((api_version, kind, namespace, name))
        if isinstance(found, Unverifiable):
            raise found
        return found


def written(
    reads: Reads, pods: list[dict[str, Any]], *, pod_settle: float = 0.0
) -> tuple[list[dict[str, Any]], Metrics]:
    async def main() -> tuple[list[dict[str, Any]], Metrics]:
        api, metrics = Api(), Metrics()
        owners = OwnerCheck(reads, pod_settle=pod_settle, pod_give_up=pod_settle)
        recorder = EventRecorder(api, metrics, queue_size=100, instance="t", owners=owners)
        writer = asyncio.create_task(recorder.run())
        for pod in pods:
            recorder.notice("shop", pod, failing(pod))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if recorder._queue.empty() and len(api.created) + metrics.events["unverified"] > 0:
                break
        await asyncio.sleep(0.05)
        writer.cancel()
        return api.created, metrics

    return asyncio.run(main())


def owned(pod_name: str = "web-x", **owner: Any) -> dict[str, Any]:
    return many(1, name=pod_name, ownerReferences=[{**OWNER, "controller": True, **owner}])


def test_an_owner_that_exists_with_the_uid_the_pod_names_gets_the_event() -> None:
    reads = Reads({("apps/v1", "ReplicaSet", "shop", "web-7d9f"): Found(UID, None)})
    [event], metrics = written(reads, [owned()])
    assert event["regarding"]["uid"] == UID and event["regarding"]["name"] == "web-7d9f"
    assert metrics.events["unverified"] == 0


def test_an_owner_named_with_another_uid_gets_no_event_and_is_counted_unverified() -> None:
    reads = Reads({("apps/v1", "ReplicaSet", "shop", "web-7d9f"): Found("another-uid", None)})
    created, metrics = written(reads, [owned()])
    assert created == []
    assert metrics.events["unverified"] == 1


def test_an_owner_that_does_not_exist_gets_no_event() -> None:
    created, metrics = written(Reads({}), [owned(kind="Deployment", name="coredns")])
    assert created == []
    assert metrics.events["unverified"] == 1


def test_an_owner_that_cannot_be_read_has_its_event_on_the_namespace_naming_it_quoted() -> None:
    reads = Reads({("example.dev/v1", "Runner", "shop", "r1"): Unverifiable("forbidden")})
    pod = owned(apiVersion="example.dev/v1", kind="Runner", name="r1")
    [event], _ = written(reads, [pod])
    assert event["regarding"]["kind"] == "Namespace" and event["regarding"]["name"] == "shop"
    assert event["note"].startswith('pod of Runner "r1": container "c0": ')


def test_the_pods_of_one_owner_read_it_once() -> None:
    reads = Reads({("apps/v1", "ReplicaSet", "shop", "web-7d9f"): Found(UID, None)})
    pods = [owned(f"web-{i}") for i in range(50)]
    for index, pod in enumerate(pods):  # distinct failures: each one is its own Event entry
        pod["spec"]["containers"][0]["name"] = f"c{index}"
    created, _ = written(reads, pods)
    assert len(created) == 50
    assert reads.calls == 1


def test_a_bare_pod_created_by_its_admission_gets_the_event_with_its_uid() -> None:
    now = datetime.now(UTC)
    reads = Reads({("v1", "Pod", "shop", "bare"): Found("pod-uid", now)})
    [event], _ = written(reads, [many(1, name="bare")])
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "bare",
        "namespace": "shop",
        "uid": "pod-uid",
    }


def test_a_bare_pod_that_was_never_created_or_is_older_than_its_admission_gets_no_event() -> None:
    old = datetime.now(UTC) - timedelta(hours=1)
    reads = Reads({("v1", "Pod", "shop", "old"): Found("old-uid", old)})
    created, metrics = written(reads, [many(1, name="never"), many(1, name="old")])
    assert created == []
    assert metrics.events["unverified"] == 2


def test_a_pod_named_by_generatename_gets_the_event_on_the_one_pod_its_admission_created() -> None:
    now = datetime.now(UTC)
    older = Found("older-uid", now - timedelta(hours=1), "web-old")  # same prefix, not this one
    reads = Reads({}, pods=[older, Found("new-uid", now, "web-x7k2p")])
    [event], _ = written(reads, [many(1)])
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-x7k2p",
        "namespace": "shop",
        "uid": "new-uid",
    }
    assert event["note"] == 'container "c0": registry r.local timed out', event["note"]


def test_a_generatename_pod_that_was_never_created_gets_no_event() -> None:
    """A review sent to /mutate by anyone but the apiserver names a pod nobody creates."""
    old = Found("old-uid", datetime.now(UTC) - timedelta(hours=1), "web-old")
    created, metrics = written(Reads({}, pods=[old]), [many(1)])
    assert created == []
    assert metrics.events["unverified"] == 1


def test_several_pods_of_one_generatename_failing_alike_get_one_event_on_the_namespace() -> None:
    now = datetime.now(UTC)
    reads = Reads({}, pods=[Found("a", now, "web-a"), Found("b", now, "web-b")])
    [event], _ = written(reads, [many(1), many(1)])
    assert event["regarding"]["kind"] == "Namespace"
    assert event["note"] == 'pod "web-"*: container "c0": registry r.local timed out'


def test_pods_that_cannot_be_listed_leave_the_event_on_the_namespace() -> None:
    [event], _ = written(Reads({}, pods=Unverifiable("HTTP 403")), [many(1)])
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "name": "shop",
        "namespace": "shop",
    }


def test_a_pod_with_neither_name_nor_generatename_gets_no_event() -> None:
    """The apiserver refuses to create it, after the mutating webhooks have seen it."""
    pod = many(1)
    del pod["metadata"]["generateName"]
    created, metrics = written(Reads({}), [pod])
    assert created == []
    assert metrics.events["unverified"] == 1


def test_a_second_generatename_pod_failing_alike_later_gets_an_event_of_its_own() -> None:
    """The first failure's Event is about the first pod: a repeat after it was found is
    another pod's, not a count in the first one's series."""

    async def main() -> list[dict[str, Any]]:
        first = Found("uid-1", datetime.now(UTC), "web-1")
        reads = Reads({}, pods=[first])
        api, metrics = Api(), Metrics()
        owners = OwnerCheck(reads, pod_settle=0.0, pod_give_up=0.0)
        recorder = EventRecorder(api, metrics, queue_size=100, instance="t", owners=owners)
        writer = asyncio.create_task(recorder.run())
        recorder.notice("shop", many(1), failing(many(1)))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if api.created:
                break
        await asyncio.sleep(2.5)  # the first pod now older than the next admission by CLOCK_SLACK
        reads.pods = [first, Found("uid-2", datetime.now(UTC), "web-2")]
        recorder.notice("shop", many(1), failing(many(1)))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(api.created) == 2:
                break
        writer.cancel()
        return api.created

    created = asyncio.run(main())
    assert [e["regarding"]["name"] for e in created] == ["web-1", "web-2"]
