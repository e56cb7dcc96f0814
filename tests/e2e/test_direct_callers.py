"""Callers of /mutate that are not the apiserver (issue 18 D1), on a real apiserver: `podinit
serve` with its chart's webhook configuration (webhookConfiguration set to the release's, as
the chart sets it), and reviews posted straight to /mutate as any pod on the network could.

A review naming a namespace the configuration does not select reads no pull secret, makes no
registry lookup and writes no Event; a review naming an owner with another uid writes no Event,
one naming the owner as it is does. (That the chart's NetworkPolicy keeps such callers away
is tested on the node with an enforcing firewall: tests/node/test_network_policy.py.)
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from e2e.reviews import pod_review
from tests.e2e.events_helpers import events, events_total
from tests.e2e.scenario_helpers import (
    UNREACHABLE_IMAGE,
    Podinit,
    container,
    create,
    delete_namespace,
    deployment,
    new_namespace,
    pod,
    unique,
)
from tests.server.harness import make_certs, run_webhook


@pytest.fixture(scope="module")
def served(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Podinit]:
    tmp = tmp_path_factory.mktemp("direct")
    certs = make_certs(tmp)
    release = unique("podinit-direct")
    env = {
        "PODINIT_KUBECONFIG": str(control_plane.kubeconfig),
        "PODINIT_INJECTION_MODE": "copy",
        "PODINIT_LOG_LEVEL": "debug",
        "PODINIT_WEBHOOK_CONFIGURATION": release,
    }
    with run_webhook(certs, tmp, env=env) as server:
        podinit = Podinit(
            cp=control_plane,
            server=server,
            release=release,
            release_namespace=unique("podinit-direct-release"),
            ca_bundle=base64.b64encode(certs.ca_file.read_bytes()).decode(),
        )
        podinit.install()
        try:
            wait_until_the_configuration_is_known(podinit)
            yield podinit
        finally:
            podinit.uninstall()


def wait_until_the_configuration_is_known(podinit: Podinit) -> None:
    """The server allows every namespace until it has read its webhook configuration (a read
    before `helm install` found none; it reads again at most once a second): wait until a
    review for a namespace nothing selects is refused (tests compare counts from here on)."""
    probe = pod_review(
        # not UNREACHABLE_IMAGE's host: its failure would be remembered for the tests' lookups
        pod("no-such-namespace", "probe", container("app", image="127.0.0.2:9/probe/app:1")),
        namespace="no-such-namespace",
    )
    podinit.cp.wait_for(
        "the server to read its webhook configuration",
        lambda: "patch" not in post(podinit, probe),
        timeout=30,
    )


@pytest.fixture
def selected(control_plane: ControlPlane) -> Iterator[str]:
    name = new_namespace(control_plane, "direct-in", **{"podinit.dev/inject": "enabled"})
    yield name
    delete_namespace(control_plane, name)


@pytest.fixture
def unselected(control_plane: ControlPlane) -> Iterator[str]:
    name = new_namespace(control_plane, "direct-out")
    yield name
    delete_namespace(control_plane, name)


def post(podinit: Podinit, body: dict[str, Any]) -> dict[str, Any]:
    with podinit.server.client() as client:
        answer = client.post("/mutate", json=body)
    assert answer.status_code == 200
    return answer.json()["response"]  # type: ignore[no-any-return]


def lookups(podinit: Podinit) -> float:
    with podinit.server.client() as client:
        text = client.get("/metrics").text
    found = re.findall(r"^podinit_registry_lookups_total\{[^}]*\} (\S+)$", text, re.M)
    return sum(float(value) for value in found)


def secret_reads(podinit: Podinit, namespace: str) -> list[str]:
    return [
        entry["msg"]
        for entry in podinit.server.logs()
        if entry.get("logger") == "podinit.pullsecrets" and f" {namespace}/" in entry["msg"]
    ]


def forged(namespace: str, name: str, **metadata: Any) -> dict[str, Any]:
    """A review as a caller writes it: a private-looking image, a pull secret to use."""
    spec = {"imagePullSecrets": [{"name": "regcred"}]}
    body = pod(namespace, name, container("app", image=UNREACHABLE_IMAGE), spec=spec, **metadata)
    return pod_review(body, namespace=namespace)


def test_a_direct_caller_naming_an_unselected_namespace_gets_no_lookup_no_secret_and_no_event(
    control_plane: ControlPlane, served: Podinit, unselected: str, selected: str
) -> None:
    before, unverified = lookups(served), events_total(served).get("unverified", 0)
    answer = post(served, forged(unselected, "x"))
    assert "patch" not in answer
    assert answer["warnings"] == [
        "podinit: pod not wrapped: its namespace is not selected by podinit"
    ]
    assert lookups(served) == before
    assert secret_reads(served, unselected) == []

    # The same review in a selected namespace does read and look up: the check is what differs.
    # (a namespace made a moment ago is known at the server's next read, within a second)
    def looked_up_for_selected() -> bool:
        post(served, forged(selected, "x"))
        return lookups(served) > before

    control_plane.wait_for("a lookup for the selected namespace", looked_up_for_selected)
    control_plane.wait_for(
        "the selected namespace's secret read", lambda: secret_reads(served, selected)
    )
    control_plane.wait_for(
        "the selected namespace's Event to be judged",
        # pod x was never created
        lambda: events_total(served).get("unverified", 0) > unverified,
    )
    assert events(control_plane, unselected) == []


def test_a_forged_owner_uid_gets_no_event_and_the_real_owner_does(
    control_plane: ControlPlane, served: Podinit, selected: str
) -> None:
    cp = control_plane
    app = container("app", image=UNREACHABLE_IMAGE)
    owner, _ = create(cp, deployment(selected, "web", app, replicas=0, kind="ReplicaSet"))
    reference = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": "00000000-0000-4000-8000-000000000000",
        "controller": True,
    }
    before = events_total(served).get("unverified", 0)
    post(served, forged(selected, "web-a", ownerReferences=[reference]))
    cp.wait_for(
        "the forged owner to be judged",
        lambda: events_total(served).get("unverified", 0) > before,
    )
    assert events(cp, selected) == []
    real = {**reference, "uid": owner["metadata"]["uid"]}
    post(served, forged(selected, "web-b", ownerReferences=[real]))
    [event] = cp.wait_for("the real owner's Event", lambda: events(cp, selected), timeout=30)
    assert event["regarding"]["uid"] == owner["metadata"]["uid"]


def test_a_forged_deployment_in_kube_system_gets_no_event(
    control_plane: ControlPlane, served: Podinit
) -> None:
    coredns = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "coredns", "uid": "u"}
    review = forged("kube-system", "coredns-x", ownerReferences=[coredns])
    review["request"]["object"]["spec"]["containers"][0]["name"] = "app\nWarning: pwned"
    answer = post(served, review)
    assert "patch" not in answer
    assert events(control_plane, "kube-system") == []


def test_a_forged_pod_named_by_generatename_gets_no_event(
    control_plane: ControlPlane, served: Podinit, selected: str
) -> None:
    """No pod of that generateName is created after the review: nothing to write about (an
    Event on the namespace, as before, let any caller write into any selected namespace)."""
    review = forged(selected, "unused")
    review["request"]["object"]["metadata"] = {"generateName": "forged-", "namespace": selected}
    before = events_total(served).get("unverified", 0)
    post(served, review)
    control_plane.wait_for(
        "the forged pod to be judged",
        lambda: events_total(served).get("unverified", 0) > before,
        timeout=60,  # asked for until POD_GIVE_UP after the admission
    )
    assert events(control_plane, selected) == []
