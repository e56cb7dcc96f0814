"""`registryCaFile`: the certificates a private registry is trusted with, read and checked
once, so that a file that cannot be used is a ConfigError when the resolver is built."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from webhook.config import ConfigError, read_setting_file

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


def registry_ca_bundle(path: Path) -> str:
    """The file's certificates as PEM text: PEM (text outside its blocks, such as comments,
    left out) or DER, one certificate or several."""
    data = read_setting_file(path, "registry_ca_file")
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system CAs: counts only the file's
    if b"-----BEGIN" in data:
        pem = b"".join(block[0] + b"\n" for block in _PEM_BLOCK.finditer(data))
        try:
            scratch.load_verify_locations(cadata=pem.decode("ascii"))
        except (ssl.SSLError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            if scratch.cert_store_stats()["x509"] == 0:
                raise ConfigError(f"registryCaFile: {path}: no valid PEM certificates") from error
            raise ConfigError(f"registryCaFile: {path}: a PEM certificate is not valid") from error
        return pem.decode("ascii")
    try:
        scratch.load_verify_locations(cadata=data)  # bytes: DER
    except (ssl.SSLError, ValueError) as error:
        raise ConfigError(f"registryCaFile: {path}: no PEM or DER certificates") from error
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in _der_items(data))


def _der_items(data: bytes) -> list[bytes]:
    """Concatenated DER objects (each an ASN.1 SEQUENCE), already known to load, split apart."""
    items: list[bytes] = []
    while data:
        size, head = data[1], 2
        if size & 0x80:  # long form: the low bits count the length bytes that follow
            head += size & 0x7F
            size = int.from_bytes(data[2:head], "big")
        items.append(data[: head + size])
        data = data[head + size :]
    return items
