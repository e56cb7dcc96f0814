"""The webhook in a real cluster: `podinit serve` on 127.0.0.1 (TLS), the chart installed by
`helm install` with `webhook.url` pointing at it, and the real kube-apiserver calling it.

One server process and one helm release serve every test of this module; each test has its
own namespaces. Which webhooks the apiserver called for a pod, and in which round, comes from
its audit log (`ControlPlane.pod_admissions`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from e2e.audit import PodAdmission
from e2e.controlplane import ControlPlane
from e2e.examples import SHELL_WRAPPED
from e2e.runtime import (
    Runtime,
    RuntimeMissing,
    find_runtime,
    run_pod,
    run_unmutated_pod,
    wait_until,
)
from e2e.webhookconfig import mutating_webhook_configuration
from tests.e2e.scenario_helpers import (
    COPY_CONTAINER,
    INIT,
    RESTRICTED_SECURITY_CONTEXT,
    ROOT,
    UNREACHABLE_IMAGE,
    VOLUME,
    Podinit,
    assert_injected_once,
    assert_untouched,
    container,
    create,
    delete_namespace,
    deployment,
    is_wrapped,
    new_namespace,
    pod,
    second_webhook,
    status,
    unavailable,
    unique,
    wait_for_default_account,
)

SLEEP = ["sh", "-c", "sleep 3600"]
INJECT = {"podinit.dev/inject": "enabled"}


def label(cp: ControlPlane, namespace: str, **labels: str) -> None:
    cp.kubectl(
        "label", "namespace", namespace, "--overwrite", *(f"{k}={v}" for k, v in labels.items())
    )
    wait_for_default_account(cp, namespace)


def admissions(cp: ControlPlane, namespace: str, count: int) -> list[PodAdmission]:
    """The audit log's pod creations in `namespace`, once there are `count` of them."""
    found: list[PodAdmission] = cp.wait_for(
        f"{count} audited pod creations in {namespace}",
        lambda: (got := cp.pod_admissions(namespace)) and len(got) >= count and got,
        timeout=30,
    )
    return found


def audited_pod_names(cp: ControlPlane, namespace: str) -> list[tuple[str, dict[str, str]]]:
    """(name in the request, audit annotations) of each pod creation in `namespace`."""
    return [
        (e["objectRef"].get("name", ""), e.get("annotations") or {})
        for e in cp.audit_events()
        if e.get("stage") == "ResponseComplete"
        and e["verb"] == "create"
        and e["objectRef"].get("resource") == "pods"
        and not e["objectRef"].get("subresource")
        and e["objectRef"].get("namespace") == namespace
    ]


def pods_of(cp: ControlPlane, namespace: str, app: str, count: int) -> list[dict[str, Any]]:
    return cp.wait_for_pods(namespace, f"app={app}", count)


def called_once(admission: PodAdmission, configuration: str) -> bool:
    """Ours mutated the pod in round 0 and was not called again: the copy container already
    has a mount at the ServiceAccount token path, so the ServiceAccount plugin leaves the
    patched pod as it is and nothing triggers a reinvocation."""
    ours = [(m["round"], m["mutated"]) for m in admission.mutations]
    return ours == [(0, True)] and all(
        m["configuration"] == configuration for m in admission.mutations
    )


def commands(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
    return {c["name"]: c.get("command") for c in spec["containers"]}


# --------------------------------------------------------------------------- scenarios


def test_a_deployments_pods_are_wrapped_in_an_opted_in_namespace_untouched_elsewhere_until_cluster_wide_mode_and_never_in_kube_system(  # noqa: E501
    control_plane: ControlPlane, namespace: str, podinit: Podinit
) -> None:
    cp = control_plane
    label(cp, namespace, **INJECT)
    plain = new_namespace(cp, "e2e-scn-plain")
    web = deployment(namespace, "web", container("app", SLEEP))
    system_app = unique("podinit-scn-probe")
    system = deployment("kube-system", system_app, container("app", SLEEP), replicas=1)
    try:
        # kube-system opted in by label: still excluded, by name, in either mode
        cp.kubectl("label", "namespace", "kube-system", "podinit.dev/inject=enabled")
        cp.apply(web, {**web, "metadata": {"name": "web", "namespace": plain}}, system)
        assert_generated_pods_wrapped_once(cp, podinit, namespace)
        # the same Deployment in an unlabelled namespace: not even sent to the webhook
        for stored in pods_of(cp, plain, "web", 2):
            assert_untouched(stored, commands(web))
        assert not any(a.called(podinit.configuration) for a in admissions(cp, plain, 2))
        for stored in pods_of(cp, "kube-system", system_app, 1):
            assert_untouched(stored, commands(system))

        podinit.upgrade("clusterWide")
        assert podinit.webhook_configuration()["clientConfig"]["url"] == (
            f"{podinit.server.url}/mutate"
        )
        assert_cluster_wide_wraps_new_pods_only(cp, plain, web)
        cp.kubectl("scale", "deployment", system_app, "-n", "kube-system", "--replicas=2")
        assert_kube_system_never_sent(cp, podinit, system_app, system)
    finally:
        podinit.upgrade("optIn")
        cp.kubectl("label", "namespace", "kube-system", "podinit.dev/inject-", check=False)
        cp.kubectl("delete", "deployment", system_app, "-n", "kube-system", check=False)
        delete_namespace(cp, plain)


def assert_generated_pods_wrapped_once(cp: ControlPlane, podinit: Podinit, namespace: str) -> None:
    """The controller-manager's pods of `web`: generateName, no name in the request, each
    wrapped by one call, and logged under the name the webhook was sent."""
    wrapped = pods_of(cp, namespace, "web", 2)
    for stored in wrapped:
        assert stored["metadata"]["generateName"].startswith("web-")
        assert_injected_once(stored, {"app"})
        assert stored["spec"]["containers"][0]["command"] == [INIT, "--", *SLEEP]
    for admission in admissions(cp, namespace, 2):
        assert admission.user == "system:serviceaccount:kube-system:replicaset-controller"
        assert called_once(admission, podinit.configuration)
    names = audited_pod_names(cp, namespace)
    assert [n for n, _ in names] == ["", ""], names
    generated = wrapped[0]["metadata"]["generateName"]
    logged = podinit.logged_admissions(namespace)
    assert {e["pod"] for e in logged} == {generated}, logged  # the name it was sent
    assert [e["decisions"] for e in logged] == [{"app": "injected"}] * 2


def assert_cluster_wide_wraps_new_pods_only(
    cp: ControlPlane, plain: str, web: dict[str, Any]
) -> None:
    """In the unlabelled namespace, scaled up after the switch: the new pod is wrapped, the
    ones admitted before stay as they were."""
    before = {p["metadata"]["uid"] for p in pods_of(cp, plain, "web", 2)}
    cp.kubectl("scale", "deployment", "web", "-n", plain, "--replicas=3")
    new = [p for p in pods_of(cp, plain, "web", 3) if p["metadata"]["uid"] not in before]
    assert len(new) == 1
    assert_injected_once(new[0], {"app"})
    for stored in pods_of(cp, plain, "web", 3):
        if stored["metadata"]["uid"] in before:  # admitted before the upgrade, as they were
            assert_untouched(stored, commands(web))


def assert_kube_system_never_sent(
    cp: ControlPlane, podinit: Podinit, system_app: str, system: dict[str, Any]
) -> None:
    """kube-system's pods, scaled in cluster-wide mode: untouched, never sent to podinit."""
    for stored in pods_of(cp, "kube-system", system_app, 2):
        assert_untouched(stored, commands(system))
    system_admissions = [
        a
        for a in admissions(cp, "kube-system", 2)
        if a.user == "system:serviceaccount:kube-system:replicaset-controller"
    ]
    assert system_admissions
    assert not any(a.called(podinit.configuration) for a in system_admissions)
    assert not podinit.logged_admissions("kube-system")


def test_the_opt_out_annotation_is_honoured_and_with_the_charts_match_conditions_the_webhook_is_not_even_called(  # noqa: E501
    control_plane: ControlPlane, namespace: str, podinit: Podinit
) -> None:
    cp = control_plane
    label(cp, namespace, **INJECT)
    opted_out = pod(
        namespace,
        "opted-out",
        container("app", SLEEP),
        annotations={"podinit.dev/inject": "false"},
    )
    # the chart's configuration: the apiserver's matchConditions keep the pod from the webhook
    before = sum(podinit.admissions_total().values())
    stored, _ = create(cp, opted_out)
    assert_untouched(stored, commands(opted_out))
    assert sum(podinit.admissions_total().values()) == before
    stored, _ = create(cp, pod(namespace, "opted-in", container("app", SLEEP)))
    assert is_wrapped(stored["spec"]["containers"][0])
    first, second = admissions(cp, namespace, 2)
    assert not first.called(podinit.configuration)
    assert second.mutated_by(podinit.configuration)
    # the counter does move: by one per call for the opted-in pod (reinvocation included)
    assert sum(podinit.admissions_total().values()) == before + len(second.mutations)
    assert {e["pod"] for e in podinit.logged_admissions(namespace)} == {"opted-in"}

    # without matchConditions the server is called, and itself leaves the pod alone
    bare = new_namespace(cp, "e2e-scn-no-conditions")
    configuration = f"podinit-scn-no-conditions-{bare}"
    cp.apply(
        mutating_webhook_configuration(
            configuration,
            f"{podinit.server.url}/mutate",
            podinit.ca_bundle,
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": bare}},
        )
    )
    try:
        opted_out["metadata"]["namespace"] = bare
        stored, stderr = create(cp, opted_out)
        assert_untouched(stored, commands(opted_out))
        assert "podinit" not in stderr
        [admission] = admissions(cp, bare, 1)
        assert admission.called(configuration) and not admission.mutated_by(configuration)
        [entry] = podinit.logged_admissions(bare)
        assert entry["pod"] == "opted-out" and entry["decisions"] == {}, entry
    finally:
        cp.kubectl("delete", "mutatingwebhookconfiguration", configuration, check=False)
        delete_namespace(cp, bare)


def test_a_namespace_enforcing_pod_security_restricted_admits_the_mutated_pods(
    control_plane: ControlPlane, namespace: str, podinit: Podinit
) -> None:
    cp = control_plane
    label(
        cp,
        namespace,
        **INJECT,
        **{
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        },
    )
    # the namespace does enforce: a pod without the restricted securityContext is refused
    refused = cp.kubectl(
        "create", "-f", "-", input=json.dumps(pod(namespace, "plain", container("app", SLEEP))),
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr

    app = container("app", SLEEP, securityContext=RESTRICTED_SECURITY_CONTEXT)
    stored, stderr = create(cp, pod(namespace, "restricted", app))
    assert "PodSecurity" not in stderr and "would violate" not in stderr, stderr
    assert_injected_once(stored, {"app"})
    copy = stored["spec"]["initContainers"][0]
    assert copy["name"] == COPY_CONTAINER and copy["securityContext"]["runAsNonRoot"] is True

    # the controller-manager's pods too (a refusal would leave the ReplicaSet without pods)
    cp.apply(deployment(namespace, "web", app))
    for stored in pods_of(cp, namespace, "web", 2):
        assert_injected_once(stored, {"app"})


def test_a_container_added_by_a_later_webhook_is_wrapped_on_reinvocation_and_nothing_is_injected_twice(  # noqa: E501
    control_plane: ControlPlane, namespace: str, podinit: Podinit
) -> None:
    cp = control_plane
    label(cp, namespace, **INJECT)
    sidecar = container("sidecar", ["sh", "-c", "sleep 7200"])

    def add_sidecar(request: dict[str, Any]) -> list[dict[str, Any]] | None:
        names = [c["name"] for c in request["object"]["spec"]["containers"]]
        if "sidecar" in names:
            return None
        return [{"op": "add", "path": "/spec/containers/-", "value": sidecar}]

    with second_webhook(cp, namespace, add_sidecar, reinvocation_policy="Never") as (hook, second):
        stored, _ = create(cp, pod(namespace, "app", container("app", SLEEP)))
        cp.apply(deployment(namespace, "web", container("app", SLEEP)))
        deployed = pods_of(cp, namespace, "web", 2)
        # the second webhook saw our mutation: ours ran first
        [seen, *_] = hook.requests()
        assert is_wrapped(seen["object"]["spec"]["containers"][0])

    for result in (stored, *deployed):
        assert [c["name"] for c in result["spec"]["containers"]] == ["app", "sidecar"]
        assert_injected_once(result, {"app", "sidecar"})
        argv = result["spec"]["containers"][1]["command"]
        assert argv == [INIT, "--", "sh", "-c", "sleep 7200"]

    admission = admissions(cp, namespace, 3)[0]
    rounds = [(m["round"], m["configuration"], m["mutated"]) for m in admission.mutations]
    assert rounds == [
        (0, podinit.configuration, True),
        (0, second, True),
        (1, podinit.configuration, True),  # reinvoked because the pod changed after us
    ], admission.mutations


def test_a_server_side_dry_run_returns_the_mutated_pod_and_an_image_without_a_config_is_admitted_unwrapped_with_our_warning(  # noqa: E501
    control_plane: ControlPlane, namespace: str, podinit: Podinit
) -> None:
    cp = control_plane
    label(cp, namespace, **INJECT)
    dry, _ = create(cp, pod(namespace, "dry", container("app", SLEEP)), "--dry-run=server")
    assert_injected_once(dry, {"app"})
    missing = cp.kubectl("get", "pod", "dry", "-n", namespace, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    [admission] = admissions(cp, namespace, 1)
    assert admission.dry_run and admission.mutated_by(podinit.configuration)

    # no command and an image whose config cannot be looked up: nothing to wrap it with
    lost = container("lost", image=UNREACHABLE_IMAGE)
    stored, stderr = create(cp, pod(namespace, "mixed", lost, container("app", SLEEP)))
    assert "Warning: podinit: lost not wrapped: " in stderr, stderr
    [lost_stored, app_stored] = stored["spec"]["containers"]
    assert "command" not in lost_stored
    assert not [m for m in lost_stored.get("volumeMounts") or [] if m["name"] == VOLUME]
    assert_injected_once(stored, {"app"})
    decision = (status(stored) or {})["containers"]["lost"]
    assert decision.startswith("failed: ") and "127.0.0.1:9" in decision, decision
    # the stored pod is the one kubectl printed
    assert cp.kubectl_json("get", "pod", "mixed", "-n", namespace)["spec"] == stored["spec"]
    assert is_wrapped(app_stored)


@pytest.fixture(scope="session")
def runner() -> tuple[Runtime, Path]:
    """runc, a static busybox and build/podinit, checked before any cluster is started."""
    try:
        runtime = find_runtime()
    except RuntimeMissing as error:
        unavailable(str(error))
    if os.geteuid() != 0:
        unavailable("running containers with runc needs root")
    binary = Path(os.environ.get("PODINIT_BIN", ROOT / "build" / "podinit")).resolve()
    if not binary.is_file():
        unavailable(f"needs {binary} (make init)")
    return runtime, binary


def test_a_stored_mutated_pod_runs_under_runc_and_sigterm_stops_the_shell_wrapped_app_at_once(
    runner: tuple[Runtime, Path], control_plane: ControlPlane, namespace: str, podinit: Podinit
) -> None:
    runtime, binary = runner
    cp = control_plane
    label(cp, namespace, **INJECT)
    # no ServiceAccount token: the runner mounts emptyDir volumes only
    original = pod(
        namespace,
        "shell",
        container("app", SHELL_WRAPPED, image="busybox"),
        spec={"automountServiceAccountToken": False},
    )
    create(cp, original)
    stored = cp.kubectl_json("get", "pod", "shell", "-n", namespace)
    assert_injected_once(stored, {"app"})
    assert stored["spec"]["containers"][0]["command"] == [INIT, "--", *SHELL_WRAPPED]

    with run_pod(stored, binary, runtime=runtime) as running:
        assert running.init_containers[COPY_CONTAINER].wait(0) == 0
        app = running.app()
        wait_until("the app's sleep", lambda: any(p.comm == "sleep" for p in app.processes()))
        [init] = [p for p in app.processes() if p.pid == app.pid]
        assert init.comm == "podinit"  # the container's PID 1
        stopped = app.stop(grace=20)
    assert not stopped.killed, stopped
    assert stopped.exit_code == 128 + 15  # the shell died of the forwarded SIGTERM
    assert stopped.seconds < 5, stopped  # generous: it takes milliseconds

    # the pod as it was written: sh is PID 1, ignores SIGTERM and waits for SIGKILL
    with run_unmutated_pod(original, runtime=runtime) as running:
        app = running.app()
        wait_until("the app's sleep", lambda: any(p.comm == "sleep" for p in app.processes()))
        unwrapped = app.stop(grace=1)
    assert unwrapped.killed and unwrapped.exit_code == 128 + 9, unwrapped
