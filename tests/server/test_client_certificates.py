"""Mutual TLS (clientCaFile, issue 18 D1) and the operational port (metricsPort), on a real
`podinit serve` process: with a client CA, only a client with a certificate from it is answered
on the webhook port, before and after the serving certificate is reloaded; probes and metrics
are served on metricsPort without one, and /mutate is not.

(The apiserver presents such a certificate when its AdmissionConfiguration's
WebhookAdmissionConfiguration kubeConfigFile names one for the webhook's host: with the real
apiserver in tests/e2e/test_mutual_tls.py.)
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from e2e.pki import CertAuthority
from e2e.processes import free_port
from e2e.serve import running, serve_argv
from tests.server.harness import make_certs, review

REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, ssl.SSLError)


@dataclass
class Served:
    url: str
    ops_url: str
    server_ca: Path
    apiserver: tuple[Path, Path]  # a client certificate from the client CA
    stranger: tuple[Path, Path]  # one from another CA
    serving: tuple[Path, Path]
    certs: CertAuthority


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("mtls")
    certs = make_certs(tmp)
    cert_file, key_file = certs.issue("serving")
    clients = CertAuthority(tmp / "clients", "apiserver-clients")
    others = CertAuthority(tmp / "others", "others")
    apiserver = clients.issue_client("apiserver", "kube-apiserver")
    stranger = others.issue_client("stranger", "kube-apiserver")
    port, ops = free_port(), free_port()
    env = {
        "PODINIT_CLIENT_CA_FILE": str(clients.cert),
        "PODINIT_METRICS_PORT": str(ops),
        "PODINIT_TLS_RELOAD_SECONDS": "0.2",
    }
    command = serve_argv(port, "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file))
    ops_url = f"https://127.0.0.1:{ops}"
    ca = ssl.create_default_context(cafile=str(certs.ca_file))
    with running(command, env=env, log_file=tmp / "serve.log", url=ops_url, ca=ca):
        yield Served(
            f"https://127.0.0.1:{port}",
            ops_url,
            certs.ca_file,
            (apiserver.cert, apiserver.key),
            (stranger.cert, stranger.key),
            (cert_file, key_file),
            certs.ca,
        )


def post(served: Served, cert: tuple[Path, Path] | None) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(served.server_ca))
    if cert is not None:
        context.load_cert_chain(*cert)
    with httpx.Client(base_url=served.url, verify=context, timeout=10) as client:
        return client.post("/mutate", json=review({"metadata": {"name": "p"}, "spec": {}}))


def test_with_a_client_ca_the_apiservers_certificate_is_answered(served: Served) -> None:
    assert post(served, served.apiserver).status_code == 200


def test_with_a_client_ca_a_caller_without_a_certificate_is_refused_at_the_handshake(
    served: Served,
) -> None:
    with pytest.raises(REFUSED):
        post(served, None)


def test_with_a_client_ca_a_certificate_from_another_ca_is_refused_at_the_handshake(
    served: Served,
) -> None:
    with pytest.raises(REFUSED):
        post(served, served.stranger)


def test_the_metrics_port_serves_probes_and_metrics_without_a_client_certificate_but_not_mutate(
    served: Served,
) -> None:
    context = ssl.create_default_context(cafile=str(served.server_ca))
    with httpx.Client(base_url=served.ops_url, verify=context, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
        assert "podinit_admissions_total" in client.get("/metrics").text
        assert client.post("/mutate", json={}).status_code in (404, 405)


def test_after_the_serving_certificate_is_reloaded_a_client_certificate_is_still_required(
    served: Served,
) -> None:
    new = served.certs.issue_server("serving-2")
    served.serving[0].write_bytes(new.cert.read_bytes())
    served.serving[1].write_bytes(new.key.read_bytes())
    served.serving[0].write_bytes(new.cert.read_bytes())  # the pair, whatever was read between
    wanted = new.cert.read_bytes()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until new connections get the new certificate
        host, port = served.url.removeprefix("https://").split(":")
        pem = ssl.get_server_certificate((host, int(port)))
        if ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(wanted.decode()):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the new serving certificate was not served within 10 s")
    with pytest.raises(REFUSED):
        post(served, None)
    assert post(served, served.apiserver).status_code == 200
