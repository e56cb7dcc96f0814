"""Throwaway X.509 certificates for the harness: a ``CertAuthority`` writing PEM files
(EC P-256 keys, or RSA 2048 or Ed25519 leaves on request; key identifiers, two days'
validity) and the server and client certificates it issues (``IssuedCert``: the paths of a
cert and its key).

The control plane's cluster CA is one (``ControlPlane.ca``); tests and the registry use
their own for a webhook's or a registry's serving certificate::

    ca = CertAuthority(tmp_path, "webhook")
    cert = ca.issue_server("webhook")         # SANs 127.0.0.1, localhost
    ca.ca_bundle                              # base64 PEM for a webhook's caBundle
    ca.issue_server("webhook", key_type="rsa")  # the same with an RSA key
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec", "rsa", "ed25519"]


def pem_key(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """An unencrypted PKCS#8 PEM of ``key`` (the form the Kubernetes binaries read)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class IssuedCert:
    cert: Path
    key: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key.read_bytes()


def _new_key(key_type: KeyType) -> CertificateIssuerPrivateKeyTypes:
    """EC P-256 (what the Kubernetes binaries generate), or RSA 2048 or Ed25519 for tests of a
    server that must cope with every key type."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Signatures only; a CA's key also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _extended_key_usage(*, server: bool, client: bool) -> x509.ExtendedKeyUsage:
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return x509.ExtendedKeyUsage(usages)


def _subject(common_name: str, organizations: Sequence[str]) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    # Kubernetes usernames (the CN) may exceed X.509's 64-character upper bound,
    # which the apiserver does not enforce; cryptography does unless told not to.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False))
    return x509.Name(attrs)


def _subject_alt_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """IP addresses as IP SANs (what TLS clients match an IP against), the rest as DNS names."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(sans)


class CertAuthority:
    """A throwaway CA writing PEM files into ``directory``.

    Used for the apiserver (serving and client certs) and reusable by the tests for a
    webhook's serving cert: ``CertAuthority(dir, "webhook").issue_server("webhook",
    ["127.0.0.1", "localhost"])`` and ``ca.ca_bundle`` for the webhook's caBundle.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-ca")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{name}-ca.crt"
        self.key = directory / f"{name}-ca.key"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(pem_key(self._key))
        self.key.chmod(0o600)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    @property
    def ca_bundle(self) -> str:
        """base64 of the CA's PEM: the value of a webhook clientConfig.caBundle."""
        return base64.b64encode(self.cert_pem).decode()

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        hosts: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        not_after: dt.datetime | None = None,
        key_type: KeyType = "ec",
    ) -> IssuedCert:
        """A leaf certificate for ``common_name`` (and ``organizations``: Kubernetes groups),
        valid for ``hosts`` until ``not_after`` (a day from now by default), with a ``key_type``
        key, written as ``<name>.crt`` and ``<name>.key``."""
        key = _new_key(key_type)
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_subject(common_name, organizations))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after or now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(_extended_key_usage(server=server, client=client), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(_subject_alt_names(hosts), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = IssuedCert(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(pem_key(key))
        issued.key.chmod(0o600)
        return issued

    def issue_server(
        self,
        name: str,
        hosts: Sequence[str] = ("127.0.0.1", "localhost"),
        *,
        not_after: dt.datetime | None = None,
        key_type: KeyType = "ec",
    ) -> IssuedCert:
        return self.issue(
            name, hosts[0], hosts=hosts, server=True, not_after=not_after, key_type=key_type
        )

    def issue_client(self, name: str, user: str, groups: Sequence[str] = ()) -> IssuedCert:
        return self.issue(name, user, organizations=groups, client=True)
