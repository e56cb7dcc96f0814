"""What a running `podinit serve` serves, seen from outside: the certificate a real TLS client
gets, the certificate metrics on /metrics, and certificate files replaced the way a Secret
volume replaces them."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from e2e.pki import IssuedCert
from tests.server.harness import Webhook


class SecretVolume:
    """The kubelet's layout: files are symlinks through `..data`, which is swapped atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0

    def publish(self, cert: Path, key: Path) -> None:
        self.publish_bytes(cert=cert.read_bytes(), key=key.read_bytes())

    def publish_bytes(self, *, cert: bytes, key: bytes) -> None:
        self.generation += 1
        data = self.root / f"..{self.generation}"
        data.mkdir()
        (data / "tls.crt").write_bytes(cert)
        (data / "tls.key").write_bytes(key)
        staged = self.root / "..data_tmp"
        staged.symlink_to(data.name)
        os.replace(staged, self.root / "..data")
        for name in ("tls.crt", "tls.key"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")

    @property
    def files(self) -> tuple[Path, Path]:
        return self.root / "tls.crt", self.root / "tls.key"


def served_certificate(
    webhook: Webhook,
    *,
    server_name: str = "127.0.0.1",
    version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> x509.Certificate:
    """The certificate a new TLS connection is given. An address as `server_name` sends no SNI
    (as the apiserver dialling an IP), a DNS name does (as it dialling the Service)."""
    context = ssl.create_default_context(cafile=str(webhook.ca_file))
    context.maximum_version = version
    port = int(webhook.url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def first_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def metric_samples(webhook: Webhook) -> dict[str, float]:
    """Every sample on /metrics: `name{labels}` -> value."""
    with webhook.client() as client:
        text = client.get("/metrics").text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def expiry(webhook: Webhook) -> float | None:
    return metric_samples(webhook).get("podinit_certificate_expiry_timestamp_seconds")


def reloads(webhook: Webhook, result: str) -> float | None:
    return metric_samples(webhook).get(f'podinit_certificate_reloads_total{{result="{result}"}}')


def exports_expiry_of(webhook: Webhook, issued: IssuedCert) -> bool:
    return expiry(webhook) == first_certificate(issued.cert).not_valid_after_utc.timestamp()
