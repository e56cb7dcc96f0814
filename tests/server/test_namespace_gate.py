"""The namespace gate (issue 18, deliverable 1), without an apiserver: a review naming a
namespace the installed webhook does not select reads no pull secrets, makes no registry
lookup and notices no Event; reads of the selection are bounded whatever a caller names.
tests/e2e/test_direct_callers.py does it against a real apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from e2e.reviews import pod_review
from webhook.core import InjectSettings
from webhook.core.selection import label_selector
from webhook.registry import ImageResolver, ResolverSettings
from webhook.registry_lookups import PullSecretReader
from webhook.server.admission import Admitter
from webhook.server.events import EventRecorder
from webhook.server.metrics import Metrics
from webhook.server.namespaces import NamespaceGate

OPT_IN = {
    "matchExpressions": [
        {"key": "podinit.dev/inject", "operator": "In", "values": ["enabled"]},
        {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system", "podinit"],
        },
    ]
}


class Body:
    def __init__(self, value: Any) -> None:
        self.value = value

    async def read(self) -> bytes:
        return orjson.dumps(self.value)


class Cluster:
    """The two lists the gate makes, from namespace labels; counts them."""

    def __init__(self, labels: dict[str, dict[str, str]], selector: Any = OPT_IN) -> None:
        self.labels = labels
        self.selector = selector
        self.lists = 0

    async def read_mutating_webhook_configuration_without_preload_content(
        self, name: str, **_: Any
    ) -> Body:
        assert name == "podinit"
        hook = {"name": "pods.podinit.dev", "namespaceSelector": self.selector}
        return Body({"webhooks": [hook]})

    async def list_namespace_without_preload_content(
        self, *, label_selector: str, **_: Any
    ) -> Body:
        self.lists += 1
        assert (
            label_selector == "podinit.dev/inject in (enabled),"
            "kubernetes.io/metadata.name notin (kube-system,podinit)"
        )
        chosen = [
            n for n, labels in self.labels.items() if labels.get("podinit.dev/inject") == "enabled"
        ]
        return Body({"items": [{"metadata": {"name": n}} for n in chosen]})


class Secrets:
    """A CoreApi for PullSecretReader that counts reads."""

    def __init__(self) -> None:
        self.reads = 0

    async def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        self.reads += 1
        raise LookupError

    read_namespaced_service_account = read_namespaced_secret


class NoEvents:
    async def create_namespaced_event(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError

    patch_namespaced_event = create_namespaced_event


def admit(
    cluster: Cluster, namespaces: list[str]
) -> tuple[list[dict[str, Any]], int, int, EventRecorder]:
    """Admissions of a pod whose image needs a lookup, in each of `namespaces`: the responses,
    the registry requests and pull-secret reads made, and the Event recorder."""
    requests = 0

    def registry(_: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(503)

    async def main() -> tuple[list[dict[str, Any]], Secrets, EventRecorder]:
        secrets, metrics = Secrets(), Metrics()
        gate = NamespaceGate(admission=cluster, core=cluster, configuration="podinit")
        await gate.read()
        events = EventRecorder(NoEvents(), metrics, queue_size=100, instance="t")
        transport = httpx.MockTransport(registry)
        async with ImageResolver(ResolverSettings(), transport=transport) as resolver:
            admitter = Admitter(
                settings=InjectSettings(),
                metrics=metrics,
                resolver=resolver,
                pull_secrets=PullSecretReader(secrets),
                events=events,
                namespaces=gate,
            )
            reviews = [
                pod_review(
                    {
                        "metadata": {"name": "p", "namespace": namespace},
                        "spec": {
                            "containers": [{"name": "app", "image": "registry.example/app:1"}]
                        },
                    },
                    namespace=namespace,
                )["request"]
                for namespace in namespaces
            ]
            # at once, as a flood arrives: an unknown namespace waits for the next read
            done = await asyncio.gather(*(admitter.admit(review) for review in reviews))
            answers = [d["response"] for d in done]
        return answers, secrets, events

    answers, secrets, events = asyncio.run(main())
    return answers, requests, secrets.reads, events


def test_a_review_in_an_unselected_namespace_reads_no_secrets_looks_up_and_notices_nothing() -> (
    None
):
    cluster = Cluster({"shop": {"podinit.dev/inject": "enabled"}, "kube-system": {}})
    [answer], requests, reads, events = admit(cluster, ["kube-system"])
    assert answer["allowed"] is True and "patch" not in answer
    assert answer["warnings"] == [
        "podinit: pod not wrapped: its namespace is not selected by podinit"
    ]
    assert (requests, reads) == (0, 0)
    assert events._queue.qsize() == 0


def test_a_review_in_a_selected_namespace_is_looked_up_with_its_pull_secrets() -> None:
    cluster = Cluster({"shop": {"podinit.dev/inject": "enabled"}})
    _, requests, reads, events = admit(cluster, ["shop"])
    assert requests > 0 and reads > 0
    assert events._queue.qsize() == 1  # the lookup failed: an Event is due


def test_a_namespace_labelled_after_the_last_read_is_read_again_before_it_is_refused() -> None:
    cluster = Cluster({"shop": {}})

    async def main() -> tuple[bool, bool]:
        gate = NamespaceGate(admission=cluster, core=cluster, configuration="podinit", recheck=0.0)
        await gate.read()
        before = gate.allows("shop")
        cluster.labels["shop"] = {"podinit.dev/inject": "enabled"}
        return before, await gate.check("shop")

    assert asyncio.run(main()) == (False, True)


def test_a_caller_naming_a_thousand_namespaces_at_once_costs_one_read_per_second() -> None:
    cluster = Cluster({"shop": {"podinit.dev/inject": "enabled"}})
    answers, requests, reads, _ = admit(cluster, [f"ns-{i}" for i in range(1000)])
    assert all("patch" not in a for a in answers)
    assert (requests, reads) == (0, 0)
    assert cluster.lists <= 3  # the first read, then at most one a second


def test_without_a_podinit_webhook_installed_every_namespace_is_served() -> None:
    class Elsewhere(Cluster):
        async def read_mutating_webhook_configuration_without_preload_content(
            self, name: str, **_: Any
        ) -> Body:
            return Body({"webhooks": [{"name": "other.example.dev"}]})

    _, requests, _, _ = admit(Elsewhere({}), ["anywhere"])
    assert requests > 0


def test_selectors_are_written_as_the_apis_label_selector_strings() -> None:
    assert label_selector(None) == ""
    assert label_selector({}) == ""
    assert (
        label_selector(
            {
                "matchLabels": {"team": "a"},
                "matchExpressions": [
                    {"key": "x", "operator": "Exists"},
                    {"key": "y", "operator": "DoesNotExist"},
                    {"key": "z", "operator": "NotIn", "values": ["1", "2"]},
                ],
            }
        )
        == "team=a,x,!y,z notin (1,2)"
    )


def test_a_namespace_labelled_just_after_a_read_is_served_after_the_next_read_not_refused() -> None:
    """`kubectl create namespace; kubectl label ...; kubectl apply` in one go: the first pods
    wait for the next read (at most `recheck` seconds) instead of being admitted unwrapped."""
    cluster = Cluster({"shop": {}})

    async def main() -> tuple[bool, bool]:
        gate = NamespaceGate(admission=cluster, core=cluster, configuration="podinit")
        await gate.read()  # recheck: the default second
        before = gate.allows("shop")
        cluster.labels["shop"] = {"podinit.dev/inject": "enabled"}
        return before, await gate.check("shop")

    assert asyncio.run(main()) == (False, True)


def test_a_read_begun_before_the_namespace_was_labelled_is_not_taken_as_the_answer() -> None:
    """A slow read (a busy apiserver) that listed the namespaces before `kubectl label`, still
    under way when the pod arrives: the pod waits for a read begun after it, and is served."""

    class Slow(Cluster):
        def __init__(self, labels: dict[str, dict[str, str]]) -> None:
            super().__init__(labels)
            self.held = asyncio.Event()

        async def list_namespace_without_preload_content(
            self, *, label_selector: str, **kwargs: Any
        ) -> Body:
            answer = await super().list_namespace_without_preload_content(
                label_selector=label_selector, **kwargs
            )
            if self.lists == 1:
                await self.held.wait()
            return answer

    cluster = Slow({"shop": {}})

    async def main() -> tuple[bool, int]:
        gate = NamespaceGate(admission=cluster, core=cluster, configuration="podinit", recheck=0.05)
        first = asyncio.ensure_future(gate.read())
        await asyncio.sleep(0.01)  # listed without the label, not answered yet
        cluster.labels["shop"] = {"podinit.dev/inject": "enabled"}
        asked = asyncio.ensure_future(gate.check("shop"))
        await asyncio.sleep(0.2)  # longer than recheck: the first read is still under way
        cluster.held.set()
        await first
        return await asked, cluster.lists

    assert asyncio.run(main()) == (True, 2)
