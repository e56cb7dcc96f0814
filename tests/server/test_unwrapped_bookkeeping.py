"""What the pod watch keeps of unwrapped pods (webhook/server/unwrapped.py) when the watch's
events and the spec reads it makes interleave: a pod deleted while its spec is being read
stays forgotten, and a read that failed is read again."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from webhook.core import InjectSettings
from webhook.server.unwrapped import UnwrappedPods


def slipped_pod(name: str, uid: str) -> dict[str, Any]:
    """A pod of an opted-in namespace that the webhook never saw (no status annotation)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "apps",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2026-12-07T10:00:00Z",
        },
        "spec": {"containers": [{"name": "app", "image": "app:1", "command": ["/app"]}]},
    }


def selected(namespace: str, labels: Mapping[str, str]) -> bool:
    return namespace == "apps"


class HeldReads:
    """Answers spec reads with the pod as stored, each only once `release` is set."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored, self.release, self.started = stored, asyncio.Event(), asyncio.Event()

    async def __call__(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.started.set()
        await self.release.wait()
        return self.stored


def test_a_pod_deleted_while_its_spec_is_read_is_not_brought_back_by_the_answer() -> None:
    async def scenario() -> None:
        pod = slipped_pod("web-1", "uid-1")
        reads = HeldReads(pod)
        pods = UnwrappedPods(settings=InjectSettings, sends=selected, read_pod=reads)
        reading = asyncio.ensure_future(pods.changed(pod["metadata"]))
        await reads.started.wait()
        pods.deleted(pod["metadata"])  # the watch's DELETED arrives before the read's answer
        reads.release.set()
        await reading
        assert pods.pods == {} and pods.unread == {}

    asyncio.run(scenario())


def test_a_pod_whose_spec_is_read_undisturbed_is_counted_slipped() -> None:
    async def scenario() -> None:
        pod = slipped_pod("web-1", "uid-1")
        reads = HeldReads(pod)
        reads.release.set()
        pods = UnwrappedPods(settings=InjectSettings, sends=selected, read_pod=reads)
        await pods.changed(pod["metadata"])
        assert [(p.name, str(p.state)) for p in pods.pods.values()] == [("web-1", "slipped")]

    asyncio.run(scenario())


def test_a_failed_read_is_read_again_and_then_counted() -> None:
    async def scenario() -> None:
        pod = slipped_pod("web-1", "uid-1")
        answers: list[Exception | dict[str, Any]] = [ConnectionError("reset"), pod]

        async def read(namespace: str, name: str) -> dict[str, Any] | None:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        pods = UnwrappedPods(settings=InjectSettings, sends=selected, read_pod=read)
        await pods.changed(pod["metadata"])
        assert pods.pods == {} and list(pods.unread) == ["uid-1"]
        await pods.read_again()
        assert list(pods.pods) == ["uid-1"] and pods.unread == {}

    asyncio.run(scenario())


def test_each_pod_is_judged_with_the_settings_admissions_use_at_that_moment() -> None:
    """`auto` mode changes the admissions' settings while serving (nodes join and leave): the
    watch reads them anew for every pod instead of keeping those it started with."""

    async def scenario() -> None:
        current = [InjectSettings()]  # tini is a known init: a new admission would skip it
        pods = UnwrappedPods(
            settings=lambda: current[0], sends=selected, read_pod=lambda ns, name: stored(name)
        )

        async def stored(name: str) -> dict[str, Any]:
            pod = slipped_pod(name, f"uid-{name}")
            pod["spec"]["containers"][0]["command"] = ["/sbin/tini", "--", "/app"]
            return pod

        await pods.changed((await stored("before"))["metadata"])
        current[0] = InjectSettings(known_inits=())
        await pods.changed((await stored("after"))["metadata"])
        # both slipped past the webhook; only with tini unknown would an admission wrap one
        judged = [(p.name, p.wrappable) for p in pods.pods.values()]
        assert judged == [("before", False), ("after", True)]

    asyncio.run(scenario())
