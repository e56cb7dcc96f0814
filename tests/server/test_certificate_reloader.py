"""The reloader in-process on real files and real TLS: a pair caught between its two writes is
not a failure, a pair that stays broken is reported once, files that change while loaded are
not served, a context no client can finish a handshake with is rejected, and an error inside a
reload does not end the watch."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from e2e.pki import CertAuthority, IssuedCert
from webhook.server.certs import Bundle, write_files
from webhook.server.metrics import Metrics
from webhook.server.tls import (
    CertReloader,
    FilesChanging,
    Pair,
    RejectedPair,
    load_pair,
    presented_certificate,
)


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


def test_a_context_no_client_can_finish_a_handshake_with_is_rejected(tmp_path: Path) -> None:
    leaf = CertAuthority(tmp_path / "ca", "reloader").issue_server("ecdsa")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(leaf.cert, leaf.key)
    server.maximum_version = ssl.TLSVersion.TLSv1_2
    server.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")  # none that an ECDSA key can serve
    with pytest.raises(RejectedPair, match="handshake"):
        presented_certificate(server)


def test_an_error_inside_a_reload_is_logged_and_counted_and_the_watch_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca, metrics = CertAuthority(tmp_path / "ca", "reloader"), Metrics()
    first, second = ca.issue_server("first"), ca.issue_server("second", key_type="rsa")
    expiries: list[float] = []

    def on_load(not_after: float) -> None:  # a bug in a callback, on the first load only
        expiries.append(not_after)
        if len(expiries) == 1:
            raise RuntimeError("boom")

    watched = CertReloader(
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER),
        tmp_path / "tls.crt",
        tmp_path / "tls.key",
        on_load=on_load,
        on_result=metrics.count_certificate_reload,
    )
    write(first, tmp_path)

    async def watch_until_second_served() -> None:
        task = asyncio.create_task(watched.watch(0.01))
        while len(expiries) < 1:
            await asyncio.sleep(0.01)
        write(second, tmp_path)
        while len(expiries) < 2:
            await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()

    asyncio.run(asyncio.wait_for(watch_until_second_served(), timeout=10))
    assert served(watched) == x509.load_pem_x509_certificate(second.cert_pem)
    assert metrics.certificate_reloads == {"failed": 1, "ok": 1}
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "certificate reload failed, keeping the old one"
    ]


def test_files_that_changed_since_they_were_read_are_not_served(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path / "ca", "reloader")
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    write(ca.issue_server("read"), tmp_path)
    read = Pair.read(cert_file, key_file)
    write(ca.issue_server("written-since", key_type="rsa"), tmp_path)
    with pytest.raises(FilesChanging):
        load_pair(cert_file=cert_file, key_file=key_file, read=read)
    key_file.unlink()
    with pytest.raises(FilesChanging):
        load_pair(cert_file=cert_file, key_file=key_file, read=read)


def test_connections_get_the_listening_contexts_own_pair_until_one_is_loaded_then_that_one(
    tmp_path: Path,
) -> None:
    ca = CertAuthority(tmp_path / "ca", "reloader")
    listening, loaded = ca.issue_server("listening"), ca.issue_server("loaded", key_type="rsa")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(listening.cert, listening.key)
    watched = CertReloader(context, tmp_path / "tls.crt", tmp_path / "tls.key")
    assert not watched.check() and not watched.ready  # no files yet
    assert presented_certificate(context) == x509.load_pem_x509_certificate(listening.cert_pem)
    write(loaded, tmp_path)
    assert watched.check() and watched.ready
    assert presented_certificate(context) == x509.load_pem_x509_certificate(loaded.cert_pem)
