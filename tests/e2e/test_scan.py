"""`podinit scan` against the real apiserver: pods created without the webhook are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e.cluster import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


def scan(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    command = [
        sys.executable,
        "-m",
        "webhook.cli.main",
        "scan",
        "--kubeconfig",
        str(cp.kubeconfig),
        *args,
    ]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )


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
    cp.wait_for(
        "the default ServiceAccount",
        lambda: cp.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0,
        timeout=60,
    )
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
    table = scan(cp, "-n", namespace).stdout.splitlines()
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    command = [sys.executable, "-m", "webhook.cli.main", "scan", "--kubeconfig", str(kubeconfig)]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith("podinit: cannot list pods: ")
    assert "Traceback" not in result.stderr


def test_scan_writes_the_image_configs_it_found_for_inject_to_use_offline(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    from tests.registry.registry_harness import Pusher, start_registry

    registry = start_registry(tmp_path / "registry")
    try:
        Pusher(registry).image("team/app", "1", entrypoint=["/app"], cmd=["--serve"])
        image = f"{registry.host}/team/app:1"
        cp = control_plane
        cp.wait_for(
            "the default ServiceAccount",
            lambda: (
                cp.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0
            ),
            timeout=60,
        )
        cp.kubectl(
            "create", "-n", namespace, "-f", "-", input=json.dumps(pod("app", {"image": image}))
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
        env["PODINIT_INSECURE_REGISTRIES"] = json.dumps([registry.host])
        command = [
            sys.executable,
            "-m",
            "webhook.cli.main",
            "scan",
            "--kubeconfig",
            str(cp.kubeconfig),
        ]
        result = subprocess.run(
            [*command, "-n", namespace, "-o", "image-config"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        configs = tmp_path / "images.yaml"
        configs.write_text(result.stdout)
        manifest = tmp_path / "pod.yaml"
        manifest.write_text(json.dumps(pod("app", {"image": image})))
        injected = subprocess.run(
            [
                sys.executable,
                "-m",
                "webhook.cli.main",
                "inject",
                "-f",
                str(manifest),
                "--offline",
                "--image-config",
                str(configs),
                "-o",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=True,
        )
        container = json.loads(injected.stdout)["spec"]["containers"][0]
        assert container["command"] == ["/podinit/podinit", "--", "/app"]
        assert container["args"] == ["--serve"]
    finally:
        registry.stop()
