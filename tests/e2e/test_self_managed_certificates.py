"""Self-managed certificates against the real apiserver: the Secret is the source of truth, the
caBundle is patched, and the apiserver then calls the webhook with them."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from e2e.controlplane import ControlPlane
from e2e.processes import free_port
from e2e.serve import serve_argv
from e2e.webhookconfig import mutating_webhook_configuration

ROOT = Path(__file__).resolve().parents[2]
SECRET = "podinit-tls"


@contextmanager
def self_managed_webhook(
    cp: ControlPlane, namespace: str, configuration: str, port: int, tmp: Path
) -> Iterator[Path]:
    """`podinit serve` with certificates: selfManaged; yields its log file."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")},
        "PODINIT_CERTIFICATES": "selfManaged",
        "PODINIT_NAMESPACE": namespace,
        "PODINIT_CERTIFICATE_SECRET": SECRET,
        "PODINIT_WEBHOOK_CONFIGURATION": configuration,
        "PODINIT_CERTIFICATE_HOSTS": json.dumps(["127.0.0.1"]),
        "PODINIT_KUBECONFIG": str(cp.kubeconfig),
        "PODINIT_TLS_CERT_FILE": str(tmp / f"{port}" / "tls.crt"),
        "PODINIT_TLS_KEY_FILE": str(tmp / f"{port}" / "tls.key"),
        "PODINIT_PULL_SECRET_LOOKUPS": "false",
    }
    log = tmp / f"webhook-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve_argv(port),
            env=env,
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def secret(cp: ControlPlane, namespace: str) -> dict[str, Any] | None:
    result = cp.kubectl("get", "secret", SECRET, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_replicas_share_one_secret_the_ca_bundle_is_patched_and_the_apiserver_calls_the_webhook(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp = control_plane
    port = free_port()
    configuration = f"podinit-{namespace}"
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    # A placeholder CA the apiserver cannot use: calls fail (ignored) until podinit patches it.
    placeholder = base64.b64encode(cp.ca.cert_pem).decode()
    cp.apply(
        mutating_webhook_configuration(
            configuration,
            f"https://127.0.0.1:{port}/mutate",
            placeholder,
            namespace_selector=selector,
        )
    )
    try:
        with self_managed_webhook(cp, namespace, configuration, port, tmp_path) as log:
            stored = cp.wait_for(
                "the certificate Secret", lambda: secret(cp, namespace), timeout=60
            )
            assert stored["type"] == "kubernetes.io/tls"
            wait_for_ca_bundle(cp, configuration, base64.b64decode(stored["data"]["ca.crt"]))
            assert_second_replica_uses_the_secret_as_it_is(
                cp, namespace, configuration, tmp_path, stored=stored
            )
            assert_apiserver_calls_the_webhook(cp, namespace)
            assert "stored a new serving certificate" in log.read_text()
    finally:
        cp.kubectl("delete", "mutatingwebhookconfiguration", configuration, check=False)


def wait_for_ca_bundle(cp: ControlPlane, configuration: str, ca: bytes) -> None:
    """podinit patches every webhook of its configuration with the Secret's CA."""

    def patched() -> bool:
        hooks = cp.kubectl_json("get", "mutatingwebhookconfiguration", configuration)["webhooks"]
        return all(base64.b64decode(h["clientConfig"]["caBundle"]) == ca for h in hooks)

    cp.wait_for("the caBundle patch", patched, timeout=60)


def assert_second_replica_uses_the_secret_as_it_is(
    cp: ControlPlane, namespace: str, configuration: str, tmp_path: Path, *, stored: dict[str, Any]
) -> None:
    """A second replica finds a valid Secret: it serves the same certificate and does not
    rewrite the Secret."""
    with self_managed_webhook(cp, namespace, configuration, free_port(), tmp_path):
        cp.wait_for(
            "the second replica's files",
            lambda: len(list(tmp_path.glob("*/tls.crt"))) == 2,
            timeout=60,
        )
    files = [p.read_bytes() for p in tmp_path.glob("*/tls.crt")]
    assert files[0] == files[1] == base64.b64decode(stored["data"]["tls.crt"])
    current = secret(cp, namespace)
    assert current is not None
    assert current["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def assert_apiserver_calls_the_webhook(cp: ControlPlane, namespace: str) -> None:
    """Through the patched caBundle the apiserver reaches podinit, which wraps the pod
    (created again until it is: the patch may take a moment to reach the apiserver)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 1d"]}
            ]
        },
    }

    def created_wrapped() -> dict[str, Any] | None:
        cp.kubectl(
            "delete", "pod", "app", "-n", namespace, "--wait=false", "--ignore-not-found",
            check=False,
        )  # fmt: skip
        cp.apply(pod)
        stored_pod = cp.kubectl_json("get", "pod", "app", "-n", namespace)
        command = stored_pod["spec"]["containers"][0]["command"]
        return stored_pod if command[0] == "/podinit/podinit" else None

    stored_pod = cp.wait_for(
        "a pod mutated through the self-managed certificate", created_wrapped, timeout=60
    )
    assert stored_pod["spec"]["containers"][0]["command"] == [
        "/podinit/podinit",
        "--",
        "sh",
        "-c",
        "sleep 1d",
    ]
