"""`podinit scan` against the real apiserver: pods created without the webhook are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


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


def wait_for_default_account(cp: ControlPlane, namespace: str) -> None:
    def exists() -> bool:
        return cp.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0

    cp.wait_for("the default ServiceAccount", exists, timeout=60)


def pod(name: str, container: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **metadata},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36", **container}]},
    }


def test_scan_reports_the_decision_for_every_container_of_every_pod(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    wait_for_default_account(cp, namespace)
    for manifest in (
        pod("shell", {"command": ["sh", "-c", "sleep 1d"]}),
        pod("tini", {"command": ["/sbin/tini", "--", "app"]}),
        pod("optout", {"command": ["app"]}, annotations={"podinit.dev/inject": "false"}),
    ):
        cp.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    result = scan(cp, "-n", namespace, "-o", "json")
    assert result.returncode == 0, result.stderr
    rows = {(r["pod"], r["container"]): r["decision"] for r in json.loads(result.stdout)}
    assert rows == {
        ("shell", "app"): "injected",
        ("tini", "app"): "skipped: already runs an init (tini)",
        ("optout", "*"): "skipped: opted out by podinit.dev/inject",
    }
    # Without --kubeconfig, as kubectl: $KUBECONFIG.
    table = podinit("scan", "-n", namespace, KUBECONFIG=str(cp.kubeconfig)).stdout.splitlines()
    assert table[0].split() == ["NAMESPACE", "POD", "CONTAINER", "DECISION"]
    assert len(table) == 4


def test_scan_with_an_unreachable_cluster_fails_with_a_message(tmp_path: Path) -> None:
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
    result = podinit("scan", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    assert result.stderr.startswith("podinit: cannot list pods: ")
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
