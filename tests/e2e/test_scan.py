"""`podinit scan` against the real apiserver: each container's state (wrapped, skipped, failed,
slipped through, unselected), told apart by the chart's own webhook configuration as installed,
and `--fail-on-unwrapped` for CI and cron."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    CHART,
    UNREACHABLE_IMAGE,
    container,
    running_podinit,
    unique,
    wait_for_default_account,
)
from tests.e2e.scenario_helpers import pod as pod_in

ROOT = Path(__file__).resolve().parents[2]
SHELL = ["sh", "-c", "sleep 1d"]
TINI = ["/sbin/tini", "--", "app"]
# `scan -n` of the opted-in namespace once the webhook runs: (pod, container) -> (state, detail)
ENABLED_ROWS = {
    ("before-install", "app"): ("slipped", "would be injected"),
    ("before-install-tini", "app"): ("slipped", "would be skipped: already runs an init (tini)"),
    ("opted-out", "*"): ("skipped", "opted out by podinit.dev/inject"),
    ("wrapped", "sidecar"): ("wrapped", ""),
    ("wrapped", "app"): ("wrapped", ""),
    ("tini", "app"): ("skipped", "already runs an init (tini)"),
    ("lookup-fails", "app"): ("failed", "cannot connect to registry 127.0.0.1:9"),
    ("host-pid", "*"): ("skipped", "hostPID: the container shares the node's PID namespace"),
}
ENABLED_SUMMARY = {
    "wrapped": 2, "skipped": 3, "failed": 1, "slipped": 2, "unselected": 0, "terminating": 0,
    "slippedPods": 2,
}  # fmt: skip
NO_WEBHOOK = (
    "podinit: no MutatingWebhookConfiguration has a webhook named pods.podinit.dev: "
    "no pod counts as selected for injection"
)


def podinit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, with only the PODINIT_* settings given here."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    command = [sys.executable, "-m", "webhook.cli.main", *args]
    return subprocess.run(
        command, env={**environment, **env}, capture_output=True, text=True, timeout=120,
        cwd=ROOT, check=False,
    )  # fmt: skip


def scan(cp: ControlPlane, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return podinit("scan", "--kubeconfig", str(cp.kubeconfig), *args, **env)


def scan_json(
    cp: ControlPlane, namespace: str
) -> tuple[dict[tuple[str, str], tuple[str, str]], Any]:
    """(pod, container) -> (state, detail), and the summary."""
    result = scan(cp, "-n", namespace, "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {(r["pod"], r["container"]): (r["state"], r["detail"]) for r in report["rows"]}
    return rows, report["summary"]


def pod(name: str, container: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **metadata},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36", **container}]},
    }


def namespaces(cp: ControlPlane, **labels: str) -> dict[str, str]:
    """A fresh namespace per role, labelled podinit.dev/inject=<value> unless the value is ""."""
    names = {role: unique(f"scan-{role}") for role in labels}
    for role, name in names.items():
        cp.kubectl("create", "namespace", name)
        if labels[role]:
            cp.kubectl("label", "namespace", name, f"podinit.dev/inject={labels[role]}")
        wait_for_default_account(cp, name)
    return names


def create(cp: ControlPlane, *manifests: dict[str, Any]) -> None:
    for manifest in manifests:
        cp.kubectl("create", "-f", "-", input=json.dumps(manifest))


def fails_on_unwrapped_pods_until_they_are_deleted(
    cp: ControlPlane, enabled: str, plain: str
) -> None:
    failing = scan(cp, "-n", enabled, "--fail-on-unwrapped")
    assert failing.returncode == 1, failing.stderr
    assert failing.stderr == "podinit: 3 containers not wrapped (1 failed, 2 slipped in 2 pods)\n"
    table = failing.stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "POD", "CONTAINER", "STATE", "DETAIL"]
    assert table[-2:] == [
        "",
        "2 wrapped, 3 skipped, 1 failed, 2 slipped, 0 unselected, 0 terminating; "
        "pods slipped through: 2",
    ]
    assert scan(cp, "-n", plain, "--fail-on-unwrapped").returncode == 0
    for name in ("before-install", "before-install-tini", "lookup-fails"):
        cp.kubectl("delete", "pod", name, "-n", enabled, "--wait=false")
    cp.wait_for("the pods deleted", lambda: len(scan_json(cp, enabled)[0]) == 5, timeout=60)
    passing = scan(cp, "-n", enabled, "--fail-on-unwrapped")
    assert (passing.returncode, passing.stderr) == (0, "")


def test_pods_from_before_the_install_slipped_through_and_the_webhooks_decisions_are_told_apart(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    ns = namespaces(cp, enabled="enabled", plain="")
    enabled, plain = ns["enabled"], ns["plain"]
    # No webhook configuration yet: pods are created as they are, and get no status.
    create(
        cp,
        pod_in(enabled, "before-install", container("app", SHELL)),
        pod_in(enabled, "before-install-tini", container("app", TINI)),
        pod_in(enabled, "opted-out", container("app", SHELL),
               annotations={"podinit.dev/inject": "false"}),
        pod_in(plain, "unlabelled", container("app", SHELL)),
    )  # fmt: skip
    with running_podinit(cp, tmp_path):
        create(
            cp,
            pod_in(enabled, "wrapped", container("app", SHELL), spec={"initContainers": [
                container("setup", TINI), container("sidecar", SHELL, restartPolicy="Always"),
            ]}),
            pod_in(enabled, "tini", container("app", TINI)),
            pod_in(enabled, "lookup-fails", container("app", image=UNREACHABLE_IMAGE)),
            pod_in(enabled, "host-pid", container("app", SHELL), spec={"hostPID": True}),
        )  # fmt: skip
        assert scan_json(cp, enabled) == (ENABLED_ROWS, ENABLED_SUMMARY)
        assert scan_json(cp, plain) == (
            {("unlabelled", "app"): ("unselected", "would be injected")},
            {"wrapped": 0, "skipped": 0, "failed": 0, "slipped": 0, "unselected": 1,
             "terminating": 0, "slippedPods": 0},
        )  # fmt: skip

        fails_on_unwrapped_pods_until_they_are_deleted(cp, enabled, plain)
    # Without the webhook configuration nothing tells which pods should have been wrapped.
    unknown = scan(cp, "-n", enabled, "--fail-on-unwrapped")
    assert unknown.returncode == 2
    assert unknown.stderr == f"{NO_WEBHOOK}; cannot tell which pods slipped through\n"
    for name in ns.values():
        cp.kubectl("delete", "namespace", name, "--wait=false")


def test_in_cluster_wide_mode_pods_created_while_the_webhook_was_down_slipped_through(
    control_plane: ControlPlane,
) -> None:
    """The chart installed with a webhook nobody serves (`failurePolicy: Ignore`): the API
    server creates the pods unchanged. Only the ones its selectors send count as slipped."""
    cp = control_plane
    ns = namespaces(cp, plain="", disabled="disabled")
    release, release_namespace = unique("scan-down"), unique("scan-down-release")
    cp.helm(
        "install", release, str(CHART), "-n", release_namespace, "--create-namespace",
        "--set", "mode=clusterWide", "--set", "server.enabled=false",
        "--set", "webhook.url=https://127.0.0.1:9/mutate",
        "--set", f"webhook.caBundle={cp.ca.ca_bundle}",
    )  # fmt: skip
    try:
        create(
            cp,
            pod_in(ns["plain"], "during-outage", container("app", SHELL)),
            pod_in(ns["plain"], "label-opted-out", container("app", SHELL),
                   labels={"podinit.dev/inject": "disabled"}),
            pod_in(ns["disabled"], "in-disabled", container("app", SHELL)),
        )  # fmt: skip
        assert scan_json(cp, ns["plain"])[0] == {
            ("during-outage", "app"): ("slipped", "would be injected"),
            ("label-opted-out", "app"): ("unselected", "would be injected"),
        }
        assert scan_json(cp, ns["disabled"])[0] == {
            ("in-disabled", "app"): ("unselected", "would be injected"),
        }
        assert scan(cp, "-n", ns["plain"], "--fail-on-unwrapped").returncode == 1
        assert scan(cp, "-n", ns["disabled"], "--fail-on-unwrapped").returncode == 0
    finally:
        cp.helm("uninstall", release, "-n", release_namespace, check=False)
        for name in (*ns.values(), release_namespace):
            cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_without_a_podinit_webhook_configuration_pods_are_unselected_and_a_note_says_why(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    wait_for_default_account(cp, namespace)
    for manifest in (
        pod("shell", {"command": SHELL}),
        pod("tini", {"command": TINI}),
        pod("optout", {"command": ["app"]}, annotations={"podinit.dev/inject": "false"}),
    ):
        cp.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    result = scan(cp, "-n", namespace, "-o", "json")
    assert (result.returncode, result.stderr) == (0, f"{NO_WEBHOOK}\n")
    rows = {
        (r["pod"], r["container"]): (r["state"], r["detail"])
        for r in json.loads(result.stdout)["rows"]
    }
    assert rows == {
        ("shell", "app"): ("unselected", "would be injected"),
        ("tini", "app"): ("unselected", "would be skipped: already runs an init (tini)"),
        ("optout", "*"): ("skipped", "opted out by podinit.dev/inject"),
    }
    # Without --kubeconfig, as kubectl: $KUBECONFIG.
    table = podinit("scan", "-n", namespace, KUBECONFIG=str(cp.kubeconfig)).stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "POD", "CONTAINER", "STATE", "DETAIL"]
    assert len(table) == 6  # the header, three rows, a blank line, the summary


def test_scan_with_an_unreachable_cluster_fails_with_exit_code_2_and_a_message(
    tmp_path: Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:9"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "users": [{"name": "x", "user": {"token": "t"}}],
            }
        )
    )
    result = podinit("scan", "--kubeconfig", str(kubeconfig), "--fail-on-unwrapped")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("podinit: cannot list mutatingwebhookconfigurations: ")
    assert "Traceback" not in result.stderr


def test_scan_writes_the_image_configs_it_found_for_inject_to_use_offline(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    from e2e.registry import Pusher
    from tests.registry.registry_harness import start_or_skip

    registry = start_or_skip(tmp_path / "registry")
    try:
        Pusher(registry).image("team/app", "1", entrypoint=["/app"], cmd=["--serve"])
        image = f"{registry.host}/team/app:1"
        wait_for_default_account(control_plane, namespace)
        manifest = json.dumps(pod("app", {"image": image}))
        control_plane.kubectl("create", "-n", namespace, "-f", "-", input=manifest)
        insecure = json.dumps([registry.host])
        result = scan(
            control_plane, "-n", namespace, "-o", "image-config",
            PODINIT_INSECURE_REGISTRIES=insecure,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (tmp_path / "images.yaml").write_text(result.stdout)
        (tmp_path / "pod.yaml").write_text(manifest)
        injected = podinit(
            "inject", "-f", str(tmp_path / "pod.yaml"), "--offline",
            "--image-config", str(tmp_path / "images.yaml"), "-o", "json",
        )  # fmt: skip
        assert injected.returncode == 0, injected.stderr
        container = json.loads(injected.stdout)["spec"]["containers"][0]
        assert container["command"] == ["/podinit/podinit", "--", "/app"]
        assert container["args"] == ["--serve"]
    finally:
        registry.stop()
