"""Serving certificates reloaded into the live SSLContext when the files' contents change.

Secret volumes swap a `..data` symlink, so mtimes of the visible paths do not move: compare the
bytes instead. A new pair is loaded into a scratch context first, because a failed
`load_cert_chain` on the live context could leave it without a usable certificate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

log = logging.getLogger("podinit.tls")


def not_after(certificate_pem: bytes) -> float:
    """The notAfter of the first certificate in a PEM file (the serving one), unix seconds."""
    return x509.load_pem_x509_certificate(certificate_pem).not_valid_after_utc.timestamp()


class CertReloader:
    def __init__(
        self,
        context: ssl.SSLContext,
        cert_file: Path,
        key_file: Path,
        *,
        on_load: Callable[[float], None] | None = None,
    ) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self.loaded_digest: str | None = None
        # Told the notAfter (unix seconds) of each certificate loaded into the live context.
        self.on_load = on_load

    @property
    def ready(self) -> bool:
        return self.loaded_digest is not None

    def _digest(self) -> str | None:
        try:
            return hashlib.sha256(
                self.cert_file.read_bytes() + b"\0" + self.key_file.read_bytes()
            ).hexdigest()
        except OSError as error:
            log.warning("cannot read certificate files: %s", error)
            return None

    def check(self) -> bool:
        """Load changed files that form a valid pair; True when the live context changed."""
        before = self._digest()
        if before is None or before == self.loaded_digest:
            return False
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            scratch.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as error:
            log.error("new certificate pair rejected, keeping the old one: %s", error)
            return False
        if self._digest() != before:  # files changed while loading: try again next tick
            return False
        self.context.load_cert_chain(self.cert_file, self.key_file)
        if self.on_load is not None:
            try:
                self.on_load(not_after(self.cert_file.read_bytes()))
            except (OSError, ValueError) as error:  # loaded by OpenSSL, unreadable to us
                log.warning("cannot read the serving certificate's notAfter: %s", error)
        if self.loaded_digest is not None:
            log.info("serving certificate reloaded")
        self.loaded_digest = before
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            # On the event loop's own thread, never a worker: handshakes use the context
            # there, and OpenSSL does not guard a context being reloaded while in use.
            self.check()
