"""Warning Events on a real apiserver: `podinit serve` (TLS on 127.0.0.1) called by the
kube-apiserver through the chart's webhook configuration, writing events.k8s.io/v1 Events
where `kubectl describe` and `kubectl events` show them.

Images come from UNREACHABLE_IMAGE (nothing listens on port 9): every lookup fails at once.
"""

from __future__ import annotations

import re
from typing import Any

from e2e.controlplane import ControlPlane
from tests.e2e.events_helpers import (
    REASON,
    events,
    events_total,
    opted_in_fixture,  # noqa: F401 (the opted_in fixture)
    wait_for_events,
)
from tests.e2e.scenario_helpers import (
    UNREACHABLE_IMAGE,
    Podinit,
    container,
    create,
    deployment,
    pod,
    status,
)

NOTE = re.compile(r'container "app": .*127\.0\.0\.1:9')  # the container and the failed lookup


def replica_set(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    """Pods whose image podinit cannot look up (the registry is unreachable)."""
    app = container("app", image=UNREACHABLE_IMAGE)
    return deployment(namespace, name, app, replicas=replicas, kind="ReplicaSet")


def test_a_replicasets_pods_whose_lookup_fails_get_a_warning_event_on_the_replicaset(
    control_plane: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = control_plane
    created, _ = create(cp, replica_set(opted_in, "web", replicas=2))
    cp.wait_for_pods(opted_in, "app=web", 2)
    [event] = wait_for_events(cp, opted_in)
    assert event["type"] == "Warning"
    assert event["reportingController"] == "podinit.dev/webhook"
    assert event["regarding"] == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "namespace": opted_in,
        "uid": created["metadata"]["uid"],
    }
    assert NOTE.match(event["note"]), event["note"]
    described = cp.kubectl("describe", "replicaset", "web", "-n", opted_in).stdout
    events_section = described[described.index("Events:") :]
    assert REASON in events_section and 'container "app": ' in events_section, events_section


def test_a_bare_pod_gets_its_event_on_the_pod_it_became_with_its_uid(
    control_plane: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = control_plane
    stored, warnings = create(cp, pod(opted_in, "bare", container("app", image=UNREACHABLE_IMAGE)))
    assert "not wrapped" in warnings
    [event] = wait_for_events(cp, opted_in)
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "bare",
        "namespace": opted_in,
        "uid": stored["metadata"]["uid"],  # read after admission: kubectl describe pod shows it
    }
    assert NOTE.match(event["note"]), event["note"]
    listed = cp.kubectl("events", "-n", opted_in, "--for", "pod/bare").stdout
    assert REASON in listed and 'container "app": ' in listed, listed
    assert status(stored) is not None  # the admission itself was answered as before


def test_a_bare_pod_named_by_generatename_gets_its_event_on_the_pod_the_apiserver_named(
    control_plane: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    """Its name is chosen after admission: the writer finds the pod its admission created."""
    cp = control_plane
    manifest = pod(opted_in, "unused", container("app", image=UNREACHABLE_IMAGE))
    manifest["metadata"] = {"generateName": "gen-", "namespace": opted_in}
    stored, _ = create(cp, manifest)
    [event] = wait_for_events(cp, opted_in)
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": stored["metadata"]["name"],
        "namespace": opted_in,
        "uid": stored["metadata"]["uid"],
    }
    assert NOTE.match(event["note"]), event["note"]
    described = cp.kubectl("describe", "pod", stored["metadata"]["name"], "-n", opted_in).stdout
    assert REASON in described[described.index("Events:") :], described


def test_a_server_side_dry_run_writes_no_event(
    control_plane: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = control_plane
    image = container("app", image=UNREACHABLE_IMAGE)
    create(cp, pod(opted_in, "dry", image), "--dry-run=server")
    create(cp, pod(opted_in, "real", image))  # written after the dry run's would have been
    wait_for_events(cp, opted_in)
    assert {e["regarding"]["name"] for e in events(cp, opted_in)} == {"real"}
    admitted = {entry["pod"] for entry in podinit.logged_admissions(opted_in)}
    assert admitted == {"dry", "real"}  # the webhook did decide the dry run


def test_a_burst_of_200_failing_admissions_is_one_event_whose_series_counts_them(
    control_plane: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    """200 pods of one ReplicaSet fail alike: one Event is created at the first, and the
    others are folded in memory and written as its series (within the 30 s interval). The
    count to expect is the apiserver's: the pod creations its audit log shows podinit called
    for (a replica set controller that retries may create a few more pods than replicas)."""
    cp = control_plane
    before = events_total(podinit)
    create(cp, replica_set(opted_in, "burst", replicas=200))
    cp.wait_for_pods(opted_in, "app=burst", 200, timeout=120)

    def counted() -> tuple[dict[str, Any], int] | None:
        found = events(cp, opted_in)
        series = found[0].get("series") if len(found) == 1 else None
        admitted = len(
            [
                a
                for a in cp.pod_admissions(opted_in)
                if any(m["configuration"] == podinit.configuration for m in a.mutations)
            ]
        )
        return (found[0], admitted) if series and series["count"] == admitted else None

    event, admitted = cp.wait_for("the series to count every admission", counted, timeout=60)
    assert admitted >= 200
    assert event["regarding"]["name"] == "burst"
    assert len(events(cp, opted_in)) == 1
    after = events_total(podinit)
    delta = {result: after[result] - before.get(result, 0) for result in after}
    assert delta["created"] == 1
    assert delta["aggregated"] == admitted - 1
    assert delta["series"] >= 1
    assert delta["dropped"] == 0
    assert podinit.admissions_total().get("error", 0) == 0
