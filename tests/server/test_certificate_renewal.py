"""When self-managed certificates are made, kept and renewed (pure logic, no API)."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from webhook.server.certs import Bundle, dns_names, renewed, write_files

NAMES = dns_names("podinit", "podinit-system")
NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def first() -> Bundle:
    bundle = renewed(None, NAMES, NOW)
    assert bundle is not None
    return bundle


def test_a_missing_secret_gets_a_ca_and_a_serving_certificate_for_the_service_names() -> None:
    bundle = first()
    cert = x509.load_pem_x509_certificate(bundle.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "podinit.podinit-system.svc",
        "podinit",
        "podinit.podinit-system",
        "podinit.podinit-system.svc.cluster.local",
    ]
    assert cert.issuer == x509.load_pem_x509_certificate(bundle.ca_cert).subject


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A full TLS handshake in memory; raises ssl.SSLCertVerificationError on a bad chain."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_end = server.wrap_bio(to_server, to_client, server_side=True)
    client_end = client.wrap_bio(to_client, to_server, server_hostname=hostname)
    for _ in range(10):
        done = 0
        for end in (client_end, server_end):
            try:
                end.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        if done == 2:
            return
    raise AssertionError("handshake did not finish")


def serving(bundle: Bundle, tmp_path: Path) -> ssl.SSLContext:
    """A server context loaded from the files the reloader would read."""
    write_files(bundle, tmp_path / "tls.crt", tmp_path / "tls.key")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return server


def test_the_pair_verifies_against_the_ca_bundle_for_the_service_dns_name(tmp_path: Path) -> None:
    bundle = first()
    server = serving(bundle, tmp_path)
    client = ssl.create_default_context(cadata=bundle.ca_bundle.decode())
    handshake(server, client, "podinit.podinit-system.svc")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client, "other.podinit-system.svc")
    assert oct((tmp_path / "tls.key").stat().st_mode & 0o777) == "0o600"


def test_a_fresh_bundle_is_kept() -> None:
    assert renewed(first(), NAMES, NOW + dt.timedelta(days=200)) is None


def test_a_serving_certificate_two_thirds_through_its_life_is_renewed_under_the_same_ca() -> None:
    bundle = first()
    again = renewed(bundle, NAMES, NOW + dt.timedelta(days=250))
    assert again is not None and again.ca_cert == bundle.ca_cert and again.cert != bundle.cert


def test_a_ca_near_its_end_is_replaced_and_the_old_ca_stays_in_the_bundle() -> None:
    bundle = first()
    again = renewed(bundle, NAMES, NOW + dt.timedelta(days=3000))
    assert again is not None and again.ca_cert != bundle.ca_cert
    assert again.ca_bundle == again.ca_cert + bundle.ca_cert


def test_a_certificate_for_other_names_is_reissued() -> None:
    assert renewed(first(), dns_names("other", "podinit-system"), NOW) is not None


def test_the_secret_data_round_trips_and_garbage_reads_as_missing() -> None:
    bundle = first()
    assert Bundle.from_secret_data(bundle.to_secret_data()) == bundle
    assert Bundle.from_secret_data({"tls.crt": "!!"}) is None
    assert renewed(Bundle(b"junk", b"junk", b"junk", b"junk"), NAMES, NOW) is not None


def served_and_trusted(bundle: Bundle, tmp_path: Path) -> None:
    """The bundle's pair loads and verifies against its caBundle, as the apiserver checks it."""
    client = ssl.create_default_context(cadata=bundle.ca_bundle.decode())
    handshake(serving(bundle, tmp_path), client, NAMES[0])


@pytest.mark.parametrize(
    "broken",
    [
        lambda good, other: replace(good, key=other.key),  # tls.key of another pair
        lambda good, other: replace(good, key=b"garbage"),
        lambda good, other: replace(good, cert=other.cert, key=other.key),  # another CA's pair
        lambda good, other: replace(good, ca_key=other.ca_key),  # ca.key of another CA
    ],
    ids=["foreign-key", "garbage-key", "foreign-issuer", "foreign-ca-key"],
)
def test_a_secret_whose_parts_do_not_fit_together_is_replaced_by_one_that_serves(
    broken: Callable[[Bundle, Bundle], Bundle], tmp_path: Path
) -> None:
    stored = broken(first(), first())
    again = renewed(stored, NAMES, NOW)
    assert again is not None
    served_and_trusted(again, tmp_path)
    assert renewed(again, NAMES, NOW) is None


def test_certificates_not_yet_valid_are_replaced(tmp_path: Path) -> None:
    ahead = renewed(None, NAMES, NOW + dt.timedelta(hours=1))  # written by a clock running ahead
    again = renewed(ahead, NAMES, NOW)
    assert again is not None and again.ca_cert != ahead.ca_cert  # type: ignore[union-attr]
    served_and_trusted(again, tmp_path)


def test_long_service_and_namespace_names_still_get_a_certificate() -> None:
    names = dns_names("podinit-admission-webhook", "platform-engineering-admission-system")
    bundle = renewed(None, names, NOW)
    assert bundle is not None and len(names[0]) > 64
    assert renewed(bundle, names, NOW) is None


def test_an_address_written_in_another_form_is_the_same_name() -> None:
    bundle = renewed(None, [*NAMES, "fd00::1", "10.0.0.1"], NOW)
    assert renewed(bundle, [*NAMES, "FD00:0:0:0:0:0:0:1", "10.0.0.1", "10.0.0.1"], NOW) is None


def test_a_serving_reissue_right_after_a_ca_rotation_keeps_trusting_the_old_ca() -> None:
    rotated = renewed(first(), NAMES, NOW + dt.timedelta(days=3000))
    assert rotated is not None and rotated.previous_ca
    moved = NOW + dt.timedelta(days=3000, hours=1)
    reissued = renewed(rotated, dns_names("renamed", "podinit-system"), moved)
    assert reissued is not None and reissued.previous_ca == rotated.previous_ca
    later = renewed(rotated, dns_names("renamed", "podinit-system"), moved + dt.timedelta(days=2))
    assert later is not None and later.previous_ca == b""


def test_the_certificates_pass_strict_x509_verification(tmp_path: Path) -> None:
    bundle = first()
    strict = ssl.create_default_context(cadata=bundle.ca_bundle.decode())
    strict.verify_flags |= ssl.VERIFY_X509_STRICT  # the default for Python 3.13 clients
    handshake(serving(bundle, tmp_path), strict, NAMES[0])
