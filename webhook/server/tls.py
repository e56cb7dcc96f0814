"""Serving certificates, reloaded when the files' contents change into a fresh SSLContext that
every new connection is switched to.

Why a fresh context: OpenSSL keeps one certificate per key type in a context, so
`load_cert_chain` on a live context holding an ECDSA pair *adds* an RSA pair next to it, and
which one a client gets depends on the signature algorithms it offers (OpenSSL's clients kept
getting the old ECDSA one). So a context is loaded once and never changed again; each reload
builds a new one.

How new connections get it: uvicorn hands its one SSLContext (`config.ssl`) to the event loop's
`create_server` (asyncio's or uvloop's), which wraps every accepted connection with it, and
neither loop has a public way to give a listening server another context. That context's
`sni_callback` is the public way: OpenSSL calls it on every ClientHello, with or without SNI,
before it picks the certificate, and setting the connection's `context` there switches the
connection to the current one (SSL_set_SSL_CTX, how virtual hosts choose a certificate). The
connection keeps the listening context's protocol options and ciphers, and takes only the
certificate, key and callbacks of the new one. Open connections keep what they negotiated.

What is served: Secret volumes swap a `..data` symlink, so mtimes of the visible paths do not
move: compare the bytes instead. A pair is served only when the files read the same before and
after loading it (one consistent pair, not one being rewritten) and a TLS handshake in memory
with the new context succeeds; the certificate that handshake presents is the one whose notAfter
the expiry metric reports. A pair that cannot be served leaves the old one serving, and is
reported (logged, counted) once, after it has read the same for a whole interval: a writer
that replaces the key and then the certificate (`certs.write_files`) is not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

log = logging.getLogger("podinit.tls")


class RejectedPair(Exception):
    """The files hold no pair that can be served: the reason."""


class FilesChanging(Exception):
    """The files changed while being loaded: try again next time."""


@dataclass(frozen=True)
class Pair:
    """The bytes of a certificate file and a key file, read one after the other."""

    cert: bytes
    key: bytes

    @classmethod
    def read(cls, cert_file: Path, key_file: Path) -> Pair:
        return cls(cert_file.read_bytes(), key_file.read_bytes())

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.cert + b"\0" + self.key).hexdigest()


def _still(pair: Pair, cert_file: Path, key_file: Path) -> bool:
    try:
        return Pair.read(cert_file, key_file) == pair
    except OSError:
        return False


def load_pair(
    *, cert_file: Path, key_file: Path, read: Pair, client_ca: bytes | None = None
) -> tuple[ssl.SSLContext, x509.Certificate]:
    """A new context serving the files, which must still hold what was `read` (FilesChanging
    otherwise, so that what is served is what was read), and the certificate it presents.
    With `client_ca` (PEM), it requires a client certificate that CA issued: a connection
    switched to this context verifies its client against this context's CAs (OpenSSL reads
    the store of the connection's current context), so each new context gets them too."""
    # The same settings as uvicorn's own context for podinit's config (no ciphers, client
    # certificates or ALPN of its own); a connection keeps the listening one's anyway.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    failure: ssl.SSLError | OSError | None = None
    try:
        # An empty password: an encrypted key fails here instead of OpenSSL prompting on a
        # terminal, which would block the event loop.
        context.load_cert_chain(cert_file, key_file, password=b"")
    except (ssl.SSLError, OSError) as error:
        failure = error
    if not _still(read, cert_file, key_file):
        raise FilesChanging
    if failure is not None:
        raise RejectedPair(str(failure)) from failure
    presented = presented_certificate(context)  # before client certificates are required
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca.decode())
        context.verify_mode = ssl.CERT_REQUIRED
    return context, presented


def _handshake(client_end: ssl.SSLObject, server_end: ssl.SSLObject) -> None:
    """Steps both ends of a handshake in memory until the client's end is done: two rounds for
    TLS 1.3, three for 1.2 (the client's getpeercert raises ValueError if it never is)."""
    for _ in range(4):
        try:
            client_end.do_handshake()
            return
        except ssl.SSLWantReadError:
            pass
        with contextlib.suppress(ssl.SSLWantReadError):
            server_end.do_handshake()


def presented_certificate(server: ssl.SSLContext) -> x509.Certificate:
    """The certificate `server` presents, from a TLS handshake in memory: what clients get."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE  # whether clients trust it is the issuer's business
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_end = client.wrap_bio(to_client, to_server)
    try:
        _handshake(client_end, server.wrap_bio(to_server, to_client, server_side=True))
        der = client_end.getpeercert(binary_form=True)
    except (ssl.SSLError, ValueError) as error:
        raise RejectedPair(f"a TLS handshake with it fails: {error}") from error
    if der is None:  # only with anonymous ciphers, which no default context offers
        raise RejectedPair("a TLS handshake with it presents no certificate")
    return x509.load_der_x509_certificate(der)


def _key_description(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__


class CertReloader:
    def __init__(
        self,
        context: ssl.SSLContext,
        cert_file: Path,
        key_file: Path,
        *,
        on_load: Callable[[float], None] | None = None,
        on_result: Callable[[str], None] | None = None,
        client_ca: bytes | None = None,
    ) -> None:
        # `context` is the one the server listens with: it hands each connection `current`.
        self.client_ca = client_ca  # PEM; required of clients by every context loaded
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self.current: ssl.SSLContext | None = None
        self.loaded_digest: str | None = None
        # Told the notAfter (unix seconds) of each certificate served after a (re)load.
        self.on_load = on_load
        # Told "ok" or "failed" for each new pair of files loaded or rejected.
        self.on_result = on_result
        # A failure seen once (maybe a writer between its two files), and the one reported.
        self._suspect: str | None = None
        self._reported: str | None = None
        context.sni_callback = self._switch

    @property
    def ready(self) -> bool:
        return self.current is not None

    def _switch(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        current = self.current
        if current is not None:  # before the first load, the listening context's own pair
            connection.context = current

    def check(self) -> bool:
        """Serve changed files that form a valid pair; True when new connections get them."""
        try:
            pair = Pair.read(self.cert_file, self.key_file)
        except OSError as error:
            self._failed(f"unreadable: {error}", f"cannot read certificate files: {error}")
            return False
        if pair.digest == self.loaded_digest:
            self._suspect = self._reported = None  # the same bad pair again later is news
            return False
        try:
            context, certificate = load_pair(
                cert_file=self.cert_file,
                key_file=self.key_file,
                read=pair,
                client_ca=self.client_ca,
            )
        except FilesChanging:
            return False
        except RejectedPair as error:
            self._failed(
                pair.digest, f"new certificate pair rejected, keeping the old one: {error}"
            )
            return False
        self._publish(pair, context, certificate)
        return True

    def _publish(self, pair: Pair, context: ssl.SSLContext, certificate: x509.Certificate) -> None:
        first = self.current is None
        self.current = context  # one assignment: every later handshake gets the new pair
        self.loaded_digest = pair.digest
        self._suspect = self._reported = None
        if self.on_load is not None:
            self.on_load(certificate.not_valid_after_utc.timestamp())
        self._count("ok")
        log.info(
            "serving certificate loaded" if first else "serving certificate reloaded",
            extra={
                "sha256": certificate.fingerprint(hashes.SHA256()).hex(),
                "not_after": certificate.not_valid_after_utc.isoformat(),
                "key": _key_description(certificate),
            },
        )

    def _failed(self, state: str, message: str) -> None:
        """Report a failure once, when the files have read the same for a whole interval."""
        if state == self._reported:
            return
        if state != self._suspect:
            self._suspect = state
            return
        self._reported = state
        log.error(message)
        self._count("failed")

    def _count(self, result: str) -> None:
        if self.on_result is not None:
            self.on_result(result)

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # On the event loop's thread, as the handshakes that read `current`: a few KB
            # read and one handshake in memory, and only when the files changed.
            try:
                self.check()
            except Exception:  # a bug here must not end reloads for the life of the process
                log.exception("certificate reload failed, keeping the old one")
                self._count("failed")
