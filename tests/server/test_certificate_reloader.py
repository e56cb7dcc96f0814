"""The reloader in-process on real files and real TLS: a pair caught between its two writes is
not a failure, a pair that stays broken is reported once, and the certificate a handshake is
given is the new one whatever its key type."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from e2e.pki import CertAuthority, IssuedCert
from webhook.server.certs import Bundle, write_files
from webhook.server.metrics import Metrics
from webhook.server.tls import CertReloader, presented_certificate


def reloader(tmp_path: Path, metrics: Metrics) -> CertReloader:
    return CertReloader(
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
        tmp_path / "tls.crt",
        tmp_path / "tls.key",
        on_load=metrics.set_certificate_expiry,
        on_result=metrics.count_certificate_reload,
    )


def write(issued: IssuedCert, tmp_path: Path) -> None:
    """As selfManaged writes them: the key, then the certificate, each replaced atomically."""
    pair = Bundle(b"", b"", issued.cert_pem, issued.key_pem)
    write_files(pair, tmp_path / "tls.crt", tmp_path / "tls.key")


def served(watched: CertReloader) -> x509.Certificate:
    assert watched.current is not None
    return presented_certificate(watched.current)


def test_a_key_replaced_before_its_certificate_is_not_reported_as_a_failure(tmp_path: Path) -> None:
    ca, metrics = CertAuthority(tmp_path / "ca", "reloader"), Metrics()
    old, new = ca.issue_server("old"), ca.issue_server("new", key_type="rsa")
    watched = reloader(tmp_path, metrics)
    write(old, tmp_path)
    assert watched.check()
    (tmp_path / "tls.key").write_bytes(new.key_pem)  # a check between the two writes
    assert not watched.check()
    (tmp_path / "tls.crt").write_bytes(new.cert_pem)
    assert watched.check()
    assert metrics.certificate_reloads == {"ok": 2}
    assert served(watched) == x509.load_pem_x509_certificate(new.cert_pem)


def test_a_pair_that_stays_broken_is_reported_once_and_the_old_certificate_kept(
    tmp_path: Path,
) -> None:
    ca, metrics = CertAuthority(tmp_path / "ca", "reloader"), Metrics()
    old, new = ca.issue_server("old"), ca.issue_server("new")
    watched = reloader(tmp_path, metrics)
    write(old, tmp_path)
    assert watched.check()
    (tmp_path / "tls.key").write_bytes(new.key_pem)
    for _ in range(5):
        assert not watched.check()
    assert metrics.certificate_reloads == {"ok": 1, "failed": 1}
    assert served(watched) == x509.load_pem_x509_certificate(old.cert_pem)
    expected = x509.load_pem_x509_certificate(old.cert_pem).not_valid_after_utc.timestamp()
    assert metrics.certificate_expiry == expected


def test_an_encrypted_key_is_rejected_without_asking_for_a_password(tmp_path: Path) -> None:
    ca, metrics = CertAuthority(tmp_path / "ca", "reloader"), Metrics()
    watched = reloader(tmp_path, metrics)
    write(ca.issue_server("good"), tmp_path)
    assert watched.check()
    encrypted = ca.issue_server("encrypted", key_type="rsa")
    key = serialization.load_pem_private_key(encrypted.key_pem, password=None)
    locked = serialization.BestAvailableEncryption(b"secret")
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, locked)
    )
    (tmp_path / "tls.crt").write_bytes(encrypted.cert_pem)
    assert not watched.check() and not watched.check()
    assert metrics.certificate_reloads == {"ok": 1, "failed": 1}
