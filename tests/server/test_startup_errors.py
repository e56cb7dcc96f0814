"""A real `podinit serve` process given files it cannot use: one line naming the setting, exit
code 1, before it listens; and its port where a kubelet service link shadows PODINIT_PORT."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import yaml

from e2e.processes import free_port
from e2e.serve import ROOT, running, serve_argv
from tests.server.harness import Certs, decoded_patch, review, run_webhook


def environment(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}, **extra}


def serve_fails(cert: Path, key: Path, **env: str) -> tuple[int, str]:
    argv = serve_argv(free_port(), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    serve = subprocess.run(
        argv, env=environment(**env), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return serve.returncode, serve.stderr


def test_a_certificate_and_a_key_that_do_not_match_stop_serve_with_one_line_naming_both(
    certs: Certs,
) -> None:
    cert, _ = certs.issue("first")
    _, other_key = certs.issue("second")
    assert serve_fails(cert, other_key) == (
        1,
        f"podinit: tlsKeyFile: {other_key} is not the key of the certificate in "
        f"tlsCertFile {cert}\n",
    )


def test_a_certificate_file_without_a_certificate_stops_serve_with_one_line(
    certs: Certs, tmp: Path
) -> None:
    _, key = certs.issue("serving")
    cert = tmp / "tls.crt"
    cert.write_text("not a certificate\n")
    assert serve_fails(cert, key) == (
        1,
        f"podinit: tlsCertFile: {cert}: no valid PEM certificate\n",
    )


def test_a_key_file_without_a_key_stops_serve_with_one_line(certs: Certs, tmp: Path) -> None:
    cert, _ = certs.issue("serving")
    key = tmp / "tls.key"
    key.write_text("not a key\n")
    assert serve_fails(cert, key) == (
        1,
        f"podinit: tlsKeyFile: {key}: no valid unencrypted PEM private key\n",
    )


def test_a_registry_ca_file_that_is_not_a_certificate_stops_serve_with_one_line(
    certs: Certs, tmp: Path
) -> None:
    cert, key = certs.issue("serving")
    ca_file = tmp / "registry-ca.pem"
    ca_file.write_text("not a certificate\n")
    assert serve_fails(cert, key, PODINIT_REGISTRY_CA_FILE=str(ca_file)) == (
        1,
        f"podinit: registryCaFile: {ca_file}: no PEM or DER certificates\n",
    )


def test_serve_next_to_a_service_named_podinit_listens_on_the_port_of_its_config_file(
    certs: Certs, tmp: Path
) -> None:
    cert, key = certs.issue("serving")
    port = free_port()
    config = tmp / "config.yaml"
    config.write_text(f"host: 127.0.0.1\nport: {port}\ntlsCertFile: {cert}\ntlsKeyFile: {key}\n")
    env = {"PODINIT_PORT": "tcp://10.96.0.10:443", "PODINIT_SERVICE_PORT": "443"}
    argv = [sys.executable, "-m", "webhook.cli.main", "serve", "--config", str(config)]
    ca = ssl.create_default_context(cafile=str(certs.ca_file))
    url = f"https://127.0.0.1:{port}"
    with running(argv, env=env, log_file=tmp / "serve.log", url=url, ca=ca):
        pass  # ready on the config file's port: the service link did not count as a setting


def test_an_apiserver_that_does_not_answer_leaves_auto_mode_on_copy_with_a_warning(
    certs: Certs, tmp: Path
) -> None:
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}
                ],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    env = {"PODINIT_KUBECONFIG": str(kubeconfig), "PODINIT_PULL_SECRET_LOOKUPS": "false"}
    with run_webhook(certs, tmp, env=env) as webhook, webhook.client() as client:
        pod = {"spec": {"containers": [{"name": "app", "image": "a:1", "command": ["app"]}]}}
        answer = client.post("/mutate", json=review(pod)).json()
    volumes = [op["value"] for op in decoded_patch(answer) if op["path"] == "/spec/volumes"]
    assert volumes == [[{"name": "podinit", "emptyDir": {"sizeLimit": "8Mi"}}]]
    warnings = [e["msg"] for e in webhook.logs() if e["level"] == "warning"]
    assert any(m.startswith("cannot read the Kubernetes version: ") for m in warnings), warnings
