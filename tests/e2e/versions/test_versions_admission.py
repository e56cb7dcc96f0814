"""The admission scenarios that matter per Kubernetes minor, on each release's own apiserver
(see conftest.py): `auto` mode's choice, opt-in and cluster-wide selection, the chart's
matchConditions, reinvocation, the status annotation and `--dry-run=server`.

The webhook runs in its default mode, `auto`. What each release really has on by default
comes from that release's own pkg/features/kube_features.go (k8s.io/kubernetes in the Go
module cache), not from podinit: ImageVolume is beta and off in 1.34, beta and on from 1.35,
GA and locked on from 1.36. The first test checks that table against the apiserver itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from e2e.audit import PodAdmission
from e2e.controlplane import ControlPlane
from e2e.tools import minor_of
from tests.e2e.scenario_helpers import (
    COPY_CONTAINER,
    INIT,
    VOLUME,
    Podinit,
    assert_untouched,
    container,
    create,
    is_wrapped,
    pod,
    second_webhook,
    status,
    unique,
)

SLEEP = ["sh", "-c", "sleep 3600"]
INIT_IMAGE = "docker.io/podinit/init:0.1.0"  # the server's default initImage
# ImageVolume's default in each release's kube_features.go
IMAGE_VOLUMES_ON = {34: False, 35: True, 36: True, 37: True}


def image_volumes_on(cp: ControlPlane) -> bool:
    return IMAGE_VOLUMES_ON[minor_of(cp.tools.kube_version)]


def admissions(cp: ControlPlane, namespace: str, count: int) -> list[PodAdmission]:
    found: list[PodAdmission] = cp.wait_for(
        f"{count} audited pod creations in {namespace}",
        lambda: (got := cp.pod_admissions(namespace)) and len(got) >= count and got,
        timeout=30,
    )
    return found


def assert_wrapped_once(stored: Mapping[str, Any], wrapped: set[str], image_volume: bool) -> None:
    """One podinit volume (the init image itself, or an emptyDir filled by the one copy
    container, first of the initContainers), each container of `wrapped` run by it once."""
    spec = stored["spec"]
    ours = [v for v in spec.get("volumes") or [] if v["name"].startswith(VOLUME)]
    copies = [c for c in spec.get("initContainers") or [] if c["name"].startswith(COPY_CONTAINER)]
    if image_volume:
        assert ours == [
            {"name": VOLUME, "image": {"reference": INIT_IMAGE, "pullPolicy": "IfNotPresent"}}
        ], ours
        assert not copies, copies
    else:
        assert [v["name"] for v in ours] == [VOLUME] and "emptyDir" in ours[0], ours
        assert [c["name"] for c in copies] == [COPY_CONTAINER]
        assert spec["initContainers"][0]["name"] == COPY_CONTAINER
    for c in spec["containers"]:
        argv = (c.get("command") or []) + (c.get("args") or [])
        mounts = [m for m in c.get("volumeMounts") or [] if m["name"] == VOLUME]
        if c["name"] in wrapped:
            assert argv[:2] == [INIT, "--"] and argv.count(INIT) == 1, argv
            assert mounts == [{"name": VOLUME, "mountPath": "/podinit", "readOnly": True}], c
        else:
            assert not is_wrapped(c) and not mounts, c
    decisions = (status(stored) or {}).get("containers", {})
    assert decisions == dict.fromkeys(wrapped, "injected"), decisions


def test_auto_mounts_the_init_as_an_image_volume_exactly_on_the_releases_whose_apiserver_keeps_image_volumes(  # noqa: E501
    versioned: ControlPlane, podinit: Podinit, plain: str, opted_in: str
) -> None:
    cp = versioned
    assert cp.server_version() == cp.tools.kube_version
    # the apiserver itself: a pod with an image volume, written by hand, kept or dropped
    by_hand = pod(plain, "by-hand", container("app", SLEEP))
    by_hand["spec"]["volumes"] = [{"name": "tools", "image": {"reference": INIT_IMAGE}}]
    answer = cp.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-",
        input=json.dumps(by_hand), check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    kept = [v for v in json.loads(answer.stdout)["spec"]["volumes"] if v["name"] == "tools"]
    if image_volumes_on(cp):
        assert [v["image"]["reference"] for v in kept] == [INIT_IMAGE], kept
    else:  # the gate is off: the apiserver drops the whole volume, silently
        assert kept == [], kept
    # and the apiserver's own account of its gate, from its /metrics
    gate = 'kubernetes_feature_enabled{name="ImageVolume",'
    [line] = [m for m in cp.kubectl("get", "--raw", "/metrics").stdout.splitlines() if gate in m]
    assert line.endswith(" 1" if image_volumes_on(cp) else " 0"), line
    # podinit's `auto` choice follows it
    stored, stderr = create(cp, pod(opted_in, "app", container("app", SLEEP)))
    assert "Warning" not in stderr, stderr
    assert_wrapped_once(stored, {"app"}, image_volume=image_volumes_on(cp))
    assert stored["spec"]["containers"][0]["command"] == [INIT, "--", *SLEEP]


def test_pods_of_an_opted_in_namespace_are_wrapped_others_are_not_even_sent_until_cluster_wide_mode_and_kube_system_never(  # noqa: E501
    versioned: ControlPlane, podinit: Podinit, plain: str, opted_in: str
) -> None:
    cp = versioned
    app = container("app", SLEEP)
    stored, _ = create(cp, pod(opted_in, "in", app))
    assert_wrapped_once(stored, {"app"}, image_volume=image_volumes_on(cp))
    stored, _ = create(cp, pod(plain, "before", app))
    assert_untouched(stored, {"app": SLEEP})
    [admission] = admissions(cp, plain, 1)
    assert not admission.called(podinit.configuration)
    system = unique("matrix-system")
    cp.kubectl("label", "namespace", "kube-system", "podinit.dev/inject=enabled")
    podinit.upgrade("clusterWide")
    try:
        stored, _ = create(cp, pod(plain, "after", app))
        assert_wrapped_once(stored, {"app"}, image_volume=image_volumes_on(cp))
        # the pod admitted before the switch is as it was
        before = cp.kubectl_json("get", "pod", "before", "-n", plain)
        assert_untouched(before, {"app": SLEEP})
        stored, _ = create(cp, pod("kube-system", system, app))
        assert_untouched(stored, {"app": SLEEP})
        kube_system = admissions(cp, "kube-system", 1)
        assert not any(a.called(podinit.configuration) for a in kube_system)
    finally:
        podinit.upgrade("optIn")
        cp.kubectl("label", "namespace", "kube-system", "podinit.dev/inject-", check=False)
        cp.kubectl("delete", "pod", system, "-n", "kube-system", "--wait=false", check=False)


def test_the_opt_out_annotation_keeps_the_pod_from_the_webhook_through_the_charts_match_conditions(
    versioned: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = versioned
    before = sum(podinit.admissions_total().values())
    out = pod(opted_in, "out", container("app", SLEEP), annotations={"podinit.dev/inject": "false"})
    stored, _ = create(cp, out)
    assert_untouched(stored, {"app": SLEEP})
    [admission] = admissions(cp, opted_in, 1)
    assert not admission.called(podinit.configuration)
    assert sum(podinit.admissions_total().values()) == before
    assert podinit.webhook_configuration()["matchConditions"]  # the chart's, on this release


def test_a_container_added_by_a_later_webhook_is_wrapped_on_reinvocation_and_nothing_twice(
    versioned: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = versioned
    sidecar = container("sidecar", ["sh", "-c", "sleep 7200"])

    def add_sidecar(request: dict[str, Any]) -> list[dict[str, Any]] | None:
        if any(c["name"] == "sidecar" for c in request["object"]["spec"]["containers"]):
            return None
        return [{"op": "add", "path": "/spec/containers/-", "value": sidecar}]

    with second_webhook(cp, opted_in, add_sidecar, reinvocation_policy="Never") as (_, second):
        stored, _ = create(cp, pod(opted_in, "app", container("app", SLEEP)))
    assert [c["name"] for c in stored["spec"]["containers"]] == ["app", "sidecar"]
    assert_wrapped_once(stored, {"app", "sidecar"}, image_volume=image_volumes_on(cp))
    [admission] = admissions(cp, opted_in, 1)
    rounds = [(m["round"], m["configuration"], m["mutated"]) for m in admission.mutations]
    assert rounds == [
        (0, podinit.configuration, True),
        (0, second, True),
        (1, podinit.configuration, True),  # reinvoked because the pod changed after us
    ], admission.mutations


def test_a_server_side_dry_run_returns_the_wrapped_pod_with_its_status_and_stores_nothing(
    versioned: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = versioned
    dry, _ = create(cp, pod(opted_in, "dry", container("app", SLEEP)), "--dry-run=server")
    assert_wrapped_once(dry, {"app"}, image_volume=image_volumes_on(cp))
    missing = cp.kubectl("get", "pod", "dry", "-n", opted_in, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    [admission] = admissions(cp, opted_in, 1)
    assert admission.dry_run and admission.mutated_by(podinit.configuration)
