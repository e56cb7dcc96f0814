"""Self-managed certificates: a CA and a serving certificate for `<service>.<namespace>.svc`.

The Secret is the source of truth shared by all replicas: whoever finds it missing or due for
renewal writes a new one (optimistic concurrency: a conflict means another replica won, so its
Secret is read back and used). Each replica writes the pair to local files, which the TLS
reloader picks up, and makes sure the webhook configuration's caBundle trusts the CA. While a
CA is replaced the bundle carries the old CA too, so no in-flight admission fails.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("podinit.certs")

CA_LIFETIME = dt.timedelta(days=3650)
SERVING_LIFETIME = dt.timedelta(days=365)
RENEW_WHEN_LEFT = 1 / 3  # renew once two thirds of a certificate's lifetime have passed
# How long after a CA rotation the replaced CA stays trusted when the serving certificate is
# reissued for another reason (every replica has long since reloaded by then).
ROTATION = dt.timedelta(days=1)


@dataclass(frozen=True)
class Bundle:
    """PEM texts as stored in the Secret."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes
    previous_ca: bytes = b""  # kept in the caBundle while a replaced CA may still be in use

    @property
    def ca_bundle(self) -> bytes:
        return self.ca_cert + self.previous_ca

    def to_secret_data(self) -> dict[str, str]:
        fields = {
            "ca.crt": self.ca_bundle,
            "ca.key": self.ca_key,
            "tls.crt": self.cert,
            "tls.key": self.key,
            "ca-current.crt": self.ca_cert,
        }
        return {k: base64.b64encode(v).decode() for k, v in fields.items()}

    @classmethod
    def from_secret_data(cls, data: dict[str, str] | None) -> Bundle | None:
        try:
            raw = {k: base64.b64decode(v) for k, v in (data or {}).items()}
            current = raw["ca-current.crt"]
            return cls(
                current,
                raw["ca.key"],
                raw["tls.crt"],
                raw["tls.key"],
                raw["ca.crt"][len(current) :],
            )
        except (KeyError, ValueError):
            return None


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    # X.509 caps a CN at 64 characters; clients verify the SANs, so a long name is left out.
    cn = common_name if len(common_name) <= 64 else "podinit-webhook"
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the apiserver may use for the Service; the first is the certificate's CN."""
    svc = f"{service}.{namespace}.svc"
    return [svc, service, f"{service}.{namespace}", f"{svc}.cluster.local"]


def canonical_names(names: list[str]) -> list[str]:
    """Names as a certificate gives them back: IP addresses in canonical form, DNS names in
    lower case, each once, so that a configured `FD00::1` does not look like a change."""
    result: list[str] = []
    for name in names:
        try:
            name = str(ipaddress.ip_address(name))
        except ValueError:
            name = name.lower()
        if name not in result:
            result.append(name)
    return result


def _general_name(name: str) -> x509.GeneralName:
    """An IP address SAN for addresses (a webhook reached by URL), a DNS name otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def new_ca(now: dt.datetime) -> tuple[bytes, bytes]:
    key = _key()
    name = _name("podinit-webhook-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        # Key identifiers: strict verifiers (Python's VERIFY_X509_STRICT) require them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def new_serving(
    ca_cert: bytes, ca_key: bytes, names: list[str], now: dt.datetime
) -> tuple[bytes, bytes]:
    issuer = x509.load_pem_x509_certificate(ca_cert)
    signer = serialization.load_pem_private_key(ca_key, password=None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + SERVING_LIFETIME, issuer.not_valid_after_utc))
        .add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def _due(cert: x509.Certificate, now: dt.datetime) -> bool:
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - now < lifetime * RENEW_WHEN_LEFT


def _matches(key_pem: bytes, cert: x509.Certificate) -> bool:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key() == cert.public_key()


def _usable_ca(bundle: Bundle, now: dt.datetime) -> x509.Certificate | None:
    """The bundle's CA when it can sign: parses, its key is its own, valid now, not due."""
    try:
        ca = x509.load_pem_x509_certificate(bundle.ca_cert)
        sound = _matches(bundle.ca_key, ca)
    except Exception:  # any parse error: unusable, replaced below
        return None
    if not sound or not _valid(ca, now) or _due(ca, now):
        return None
    return ca


def _usable_serving(bundle: Bundle, ca: x509.Certificate, now: dt.datetime) -> list[str] | None:
    """The names of the bundle's serving certificate when it can be served as it is: parses,
    its key is its own, issued by `ca`, valid now and not due."""
    try:
        serving = x509.load_pem_x509_certificate(bundle.cert)
        serving.verify_directly_issued_by(ca)
        sound = _matches(bundle.key, serving)
        san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # unparsable, another issuer, no SANs: reissued below
        return None
    if not sound or not _valid(serving, now) or _due(serving, now):
        return None
    return canonical_names(
        [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]
    )


def _valid(cert: x509.Certificate, now: dt.datetime) -> bool:
    # Tolerates the backdating of new certificates (5 minutes) for replicas whose clocks differ.
    return cert.not_valid_before_utc <= now + dt.timedelta(minutes=5) < cert.not_valid_after_utc


def renewed(bundle: Bundle | None, names: list[str], now: dt.datetime) -> Bundle | None:
    """A new bundle when `bundle` is missing, unusable (parts that do not fit together, not
    valid now), for other names or due; else None."""
    names = canonical_names(names)
    ca = _usable_ca(bundle, now) if bundle else None
    if bundle is None or ca is None:
        ca_cert, ca_key = new_ca(now)
        return Bundle(
            ca_cert,
            ca_key,
            *new_serving(ca_cert, ca_key, names, now),
            previous_ca=_previous(bundle, now),
        )
    present = _usable_serving(bundle, ca, now)
    if present is None or sorted(present) != sorted(names):
        return Bundle(
            bundle.ca_cert,
            bundle.ca_key,
            *new_serving(bundle.ca_cert, bundle.ca_key, names, now),
            # A CA rotation still in progress keeps trusting the CA it replaced.
            previous_ca=bundle.previous_ca if now - ca.not_valid_before_utc < ROTATION else b"",
        )
    return None


def _previous(bundle: Bundle | None, now: dt.datetime) -> bytes:
    """The CA being replaced, kept in the caBundle while replicas may still serve its
    certificates; nothing when it is unreadable or over."""
    if bundle is None:
        return b""
    try:
        ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    except ValueError:
        return b""
    return bundle.ca_cert if ca.not_valid_after_utc > now else b""


def _base64(value: str | bytes | None) -> str:
    """The client models give caBundle as base64 text; accept raw bytes too."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value or ""


def write_files(bundle: Bundle, cert_file: Path, key_file: Path) -> None:
    """Key first, then certificate, each replaced atomically. The reloader serves only a pair
    that loads, and waits a whole interval before calling one that does not a failure, so the
    moment between the two replacements is neither served nor reported (webhook/server/tls.py)."""
    for path, content, mode in ((key_file, bundle.key, 0o600), (cert_file, bundle.cert, 0o644)):
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.tmp")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(staged, path)


class CertificateManager:
    """Keeps Secret, local files and caBundle in step; `ensure()` once, then `run()` forever."""

    def __init__(
        self,
        *,
        core: Any,
        admission: Any,
        namespace: str,
        service: str,
        secret: str,
        webhook_configuration: str,
        cert_file: Path,
        key_file: Path,
        extra_names: tuple[str, ...] = (),
    ) -> None:
        self.core = core
        self.admission = admission
        self.namespace = namespace
        self.secret = secret
        self.webhook_configuration = webhook_configuration
        self.cert_file = cert_file
        self.key_file = key_file
        self.names = canonical_names(dns_names(service, namespace) + list(extra_names))

    async def ensure(self) -> Bundle:
        bundle: Bundle | None = None
        for _attempt in range(5):
            bundle, version = await self._read()
            fresh = renewed(bundle, self.names, dt.datetime.now(dt.UTC))
            if fresh is None and bundle is not None:
                break
            assert fresh is not None
            if await self._store(fresh, version):
                bundle = fresh
                log.info(
                    "stored a new serving certificate in secret %s/%s", self.namespace, self.secret
                )
                break
        if bundle is None:
            raise RuntimeError(
                f"could not store certificates in secret {self.namespace}/{self.secret}"
            )
        # caBundle first: the apiserver must trust a new CA before a certificate it signed is
        # served; if the patch fails, the files keep the pair the old bundle trusts.
        await self._patch_ca_bundle(bundle.ca_bundle)
        write_files(bundle, self.cert_file, self.key_file)
        return bundle

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.ensure()
            except Exception:  # keep serving with what we have; try again next round
                log.exception("certificate check failed")

    async def _read(self) -> tuple[Bundle | None, str | None]:
        try:
            secret = await self.core.read_namespaced_secret(self.secret, self.namespace)
        except Exception as error:
            if getattr(error, "status", None) == 404:
                return None, None
            raise
        return Bundle.from_secret_data(secret.data), secret.metadata.resource_version

    async def _store(self, bundle: Bundle, version: str | None) -> bool:
        """False when another replica changed the Secret first (409): read theirs and retry."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": self.secret,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/name": "podinit"},
            },
            "data": bundle.to_secret_data(),
        }
        try:
            if version is None:
                await self.core.create_namespaced_secret(self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = version
                await self.core.replace_namespaced_secret(self.secret, self.namespace, body)
        except Exception as error:
            if getattr(error, "status", None) in (409,):
                return False
            raise
        return True

    async def _patch_ca_bundle(self, ca_bundle: bytes) -> None:
        try:
            config = await self.admission.read_mutating_webhook_configuration(
                self.webhook_configuration
            )
        except Exception as error:
            if getattr(error, "status", None) == 404:
                log.warning("webhook configuration %s not found yet", self.webhook_configuration)
                return
            raise
        wanted = base64.b64encode(ca_bundle).decode()
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": wanted}
            for i, hook in enumerate(config.webhooks or [])
            if _base64(hook.client_config.ca_bundle) != wanted
        ]
        if ops:
            await self.admission.patch_mutating_webhook_configuration(
                self.webhook_configuration, ops, _content_type="application/json-patch+json"
            )
            log.info("caBundle of %s updated", self.webhook_configuration)
