"""Image-config lookups shared by the server and the CLI: the resolver built from config, and
many images resolved at once into what the core takes (a config or a failure per image)."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterable
from pathlib import Path

from webhook.config import Config, ConfigError, read_setting_file
from webhook.core import ImageResult, LookupFailure
from webhook.registry import ImageResolver, Platform, PullSecrets, RegistryError, ResolverSettings

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


def make_resolver(config: Config) -> ImageResolver:
    ca_file = config.registry_ca_file
    ca = registry_ca_bundle(ca_file) if ca_file else None
    return ImageResolver(
        ResolverSettings(
            default_platform=Platform(
                os=config.default_platform_os, architecture=config.default_architecture
            ),
            mirrors=config.registry_mirrors,
            insecure=frozenset(config.insecure_registries),
            ca_bundle=ca,
            default_timeout=config.lookup_budget,
            tag_ttl=config.tag_ttl_seconds,
            negative_ttl=config.negative_ttl_seconds,
            max_entries=config.cache_entries,
        )
    )


def registry_ca_bundle(path: Path) -> str:
    """The certificates of `registryCaFile` as PEM text, loaded once here so that a file that
    cannot be used is a ConfigError at start. PEM (text outside its blocks, such as comments,
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


async def resolve_all(
    resolver: ImageResolver,
    images: Iterable[str],
    *,
    architecture: str,
    pull_secrets: PullSecrets,
    budget: float,
) -> dict[str, ImageResult]:
    """Every image resolved concurrently within `budget` seconds; a registry error becomes that
    image's LookupFailure. Cache hits are answered without awaiting anything."""
    platform = Platform(os=resolver.settings.default_platform.os, architecture=architecture)
    results: dict[str, ImageResult] = {}
    misses: list[str] = []
    for image in sorted(images):
        hit = resolver.cached(image, platform=platform, pull_secrets=pull_secrets)
        if hit is None:
            misses.append(image)
        else:
            results[image] = hit

    async def one(image: str) -> ImageResult:
        try:
            return await resolver.resolve(
                image, platform=platform, pull_secrets=pull_secrets, deadline=deadline
            )
        except RegistryError as error:
            return LookupFailure(error.message)

    if misses:
        deadline = asyncio.get_running_loop().time() + budget
        found = await asyncio.gather(*(one(image) for image in misses))
        results.update(zip(misses, found, strict=True))
    return results
