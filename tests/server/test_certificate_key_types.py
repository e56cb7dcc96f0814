"""A reloaded certificate with another key type (ECDSA, RSA, Ed25519) is the one served, to
clients with and without SNI, over TLS 1.3 and 1.2, and the expiry metric is that
certificate's."""

from __future__ import annotations

import datetime as dt
import functools
import ssl
from pathlib import Path

from e2e.pki import IssuedCert, KeyType
from tests.server.harness import Certs, Webhook, run_webhook
from tests.server.served_certificates import (
    SecretVolume,
    exports_expiry_of,
    fingerprint,
    first_certificate,
    served_certificate,
    wait_for,
)

# The apiserver dials the Service by name (SNI) or a URL's address (no SNI), and negotiates
# TLS 1.3 or, with older settings, 1.2, where the certificate is chosen by another path.
CLIENTS = [
    ("localhost", ssl.TLSVersion.TLSv1_3),
    ("127.0.0.1", ssl.TLSVersion.TLSv1_3),
    ("localhost", ssl.TLSVersion.TLSv1_2),
    ("127.0.0.1", ssl.TLSVersion.TLSv1_2),
]
# From ECDSA to RSA and back, through Ed25519 (Go's TLS serves and accepts all three): no key
# type's certificate may linger in the server.
STEPS: tuple[KeyType, ...] = ("rsa", "ec", "ed25519", "rsa", "ec")


def issue(certs: Certs, name: str, key_type: KeyType, hours: int) -> IssuedCert:
    """A serving certificate whose notAfter (whole seconds) tells it apart on /metrics."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return certs.ca.issue_server(name, key_type=key_type, not_after=now + dt.timedelta(hours=hours))


def served_to_every_client(webhook: Webhook) -> set[str]:
    return {
        fingerprint(served_certificate(webhook, server_name=name, version=version))
        for name, version in CLIENTS
    }


def test_each_reloaded_certificate_is_served_whatever_its_key_type_and_its_expiry_is_exported(
    certs: Certs, tmp_path: Path
) -> None:
    volume = SecretVolume(tmp_path / "tls")
    first = issue(certs, "first", "ec", hours=10)
    volume.publish(first.cert, first.key)
    with run_webhook(certs, tmp_path, cert=volume.files) as webhook:
        assert served_to_every_client(webhook) == {fingerprint(first_certificate(first.cert))}
        for number, key_type in enumerate(STEPS, start=1):
            new = issue(certs, f"new-{number}", key_type, hours=10 + number)
            volume.publish(new.cert, new.key)
            loaded = functools.partial(exports_expiry_of, webhook, new)
            assert wait_for(loaded), f"step {number}: {key_type} never loaded"
            served = served_to_every_client(webhook)
            assert served == {fingerprint(first_certificate(new.cert))}, f"step {number}"
