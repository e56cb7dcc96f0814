"""Mutual TLS with the real apiserver (clientCaFile, issue 18 D1): the apiserver presents the
client certificate its AdmissionConfiguration names for webhooks (e2e/components.py
`write_admission_configuration`), and a server that trusts only that certificate's CA wraps the
apiserver's pods while refusing any other caller at the handshake; a server expecting another
CA gets no admission from this apiserver (the pod is created unwrapped, failurePolicy Ignore).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from e2e.controlplane import ControlPlane
from e2e.pki import CertAuthority
from e2e.processes import free_port
from e2e.serve import running, serve_argv
from e2e.webhookconfig import mutating_webhook_configuration
from tests.e2e.scenario_helpers import (
    container,
    create,
    delete_namespace,
    is_wrapped,
    new_namespace,
    pod,
    unique,
)
from tests.server.harness import make_certs, review
from tests.server.test_client_certificates import REFUSED


@contextmanager
def webhook_trusting(
    cp: ControlPlane, tmp: Path, client_ca: Path
) -> Iterator[tuple[str, str, Path]]:
    """`podinit serve` whose webhook port answers only clients with a certificate from
    `client_ca` (probes on metricsPort), called by the apiserver for the pods of one opted-in
    namespace: that namespace, the webhook's URL and the CA of its serving certificate."""
    certs = make_certs(tmp)
    cert_file, key_file = certs.issue("serving")
    port, ops = free_port(), free_port()
    env = {
        "PODINIT_KUBECONFIG": str(cp.kubeconfig),
        "PODINIT_CLIENT_CA_FILE": str(client_ca),
        "PODINIT_METRICS_PORT": str(ops),
        "PODINIT_INJECTION_MODE": "copy",
    }
    command = serve_argv(port, "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file))
    ca = ssl.create_default_context(cafile=str(certs.ca_file))
    url = f"https://127.0.0.1:{port}"
    name = unique("podinit-mtls")
    with running(
        command, env=env, log_file=tmp / "serve.log", url=f"https://127.0.0.1:{ops}", ca=ca
    ):
        namespace = new_namespace(cp, "mtls", **{name: "enabled"})
        bundle = base64.b64encode(certs.ca_file.read_bytes()).decode()
        selector = {"matchLabels": {name: "enabled"}}
        cp.apply(
            mutating_webhook_configuration(
                name, f"{url}/mutate", bundle, namespace_selector=selector
            )
        )
        try:
            yield namespace, url, certs.ca_file
        finally:
            cp.kubectl("delete", "mutatingwebhookconfiguration", name, check=False)
            delete_namespace(cp, namespace)


def direct_call(url: str, server_ca: Path) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(server_ca))
    with httpx.Client(base_url=url, verify=context, timeout=10) as client:
        return client.post("/mutate", json=review({"metadata": {"name": "p"}, "spec": {}}))


def test_the_apiservers_client_certificate_is_answered_and_a_caller_without_one_is_not(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    assert cp.webhook_client_ca is not None
    with webhook_trusting(cp, tmp_path, cp.webhook_client_ca.cert) as (namespace, url, ca):
        made, _ = create(cp, pod(namespace, "app", container("app", command=["sleep", "1"])))
        assert is_wrapped(made["spec"]["containers"][0]), made["spec"]
        with pytest.raises(REFUSED):
            direct_call(url, ca)


def test_a_server_expecting_another_ca_gets_no_admission_from_the_apiserver(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """The control: the same apiserver, a client CA it has no certificate from."""
    other = CertAuthority(tmp_path / "other", "other-clients")
    with webhook_trusting(control_plane, tmp_path, other.cert) as (namespace, _, _):
        made, _ = create(
            control_plane, pod(namespace, "app", container("app", command=["sleep", "1"]))
        )
        assert not is_wrapped(made["spec"]["containers"][0]), made["spec"]
