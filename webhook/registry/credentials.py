"""Registry credentials from dockerconfigjson payloads (imagePullSecrets, mounted files).

Secrets never leave this module in readable form: `Credential.__repr__` hides them, parse
errors never quote the payload, and caches see only `fingerprint()` (a keyed hash).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import urlsplit

import orjson

from .reference import normalize_host


class DockerAuthEntry(TypedDict, total=False):
    """One value of `auths` in a dockerconfigjson."""

    auth: str  # base64("user:password")
    username: str
    password: str
    identitytoken: str  # OAuth2 refresh token (ACR, some Harbor setups)
    registrytoken: str  # a bearer token to send as-is


class DockerConfig(TypedDict, total=False):
    auths: dict[str, DockerAuthEntry]


@dataclass(frozen=True, slots=True)
class Credential:
    """What to present to one registry. Never printed: repr shows the username only."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, secret=<redacted>)"

    __str__ = __repr__

    def fingerprint(self, key: bytes) -> str:
        """Keyed hash identifying this credential in cache keys; `key` is per process, so a
        leaked fingerprint cannot be brute-forced offline against password guesses."""
        material = "\0".join(
            (self.username, self.password, self.identity_token, self.registry_token)
        )
        return hmac.new(key, material.encode(), hashlib.sha256).hexdigest()[:32]


class CredentialsError(ValueError):
    """A dockerconfigjson payload could not be read. The message never quotes the payload."""


@dataclass(frozen=True, slots=True)
class KeyringEntry:
    host: str  # may contain fnmatch wildcards (kubelet allows "*.example.com")
    path: str  # repository prefix, "" for the whole registry
    credential: Credential


def _split_key(key: str) -> tuple[str, str]:
    # Keys are "host", "host/path" or a URL ("https://index.docker.io/v1/").
    if "://" not in key:
        key = "//" + key
    parts = urlsplit(key)
    host = normalize_host(parts.netloc)
    path = parts.path.strip("/")
    # Docker Hub's legacy key carries an API path, not a repository prefix.
    if path in ("v1", "v2") or path.startswith(("v1/", "v2/")):
        path = ""
    return host, path


def _credential(entry: Mapping[str, Any]) -> Credential | None:
    def text(name: str) -> str:
        value = entry.get(name, "")
        return value if isinstance(value, str) else ""

    username, password = text("username"), text("password")
    if text("auth"):
        try:
            decoded = base64.b64decode(text("auth"), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            return None
    cred = Credential(username, password, text("identitytoken"), text("registrytoken"))
    if not (cred.username or cred.password or cred.identity_token or cred.registry_token):
        return None
    return cred


def parse_docker_config(payload: bytes | str | Mapping[str, Any]) -> list[KeyringEntry]:
    """Entries of one dockerconfigjson (or legacy .dockercfg, which lacks `auths`)."""
    if isinstance(payload, bytes | str):
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise CredentialsError("docker config is not valid JSON") from None
    else:
        data = payload
    if not isinstance(data, Mapping):
        raise CredentialsError("docker config is not a JSON object")
    auths = data.get("auths", data)
    if not isinstance(auths, Mapping):
        raise CredentialsError("docker config 'auths' is not an object")
    entries = []
    for key, value in auths.items():
        if not isinstance(key, str) or not isinstance(value, Mapping):
            continue
        cred = _credential(value)
        if cred is not None and key.strip():
            host, path = _split_key(key)
            entries.append(KeyringEntry(host, path, cred))
    return entries


class Keyring:
    """Credentials from an ordered list of dockerconfigjson payloads; first match wins
    (pod pull secrets, then the service account's, then a mounted file)."""

    __slots__ = ("_layers",)

    def __init__(self, layers: Iterable[list[KeyringEntry]] = ()) -> None:
        self._layers = [layer for layer in layers if layer]

    @classmethod
    def from_payloads(cls, payloads: Iterable[bytes | str | Mapping[str, Any]]) -> Keyring:
        """Unreadable payloads are skipped: a broken secret must not break public pulls."""
        layers = []
        for payload in payloads:
            try:
                layers.append(parse_docker_config(payload))
            except CredentialsError:
                continue
        return cls(layers)

    def __repr__(self) -> str:
        return f"Keyring(<{sum(map(len, self._layers))} entries>)"

    def __bool__(self) -> bool:
        return bool(self._layers)

    def lookup(self, registry: str, repository: str = "") -> Credential | None:
        """The credential for `registry` (normalised host[:port]) and `repository`.

        Within one payload the most specific key wins (longest repository prefix, exact
        host before wildcard), like kubelet; across payloads the first that matches wins.
        """
        registry = normalize_host(registry)
        for layer in self._layers:
            best: tuple[int, int, Credential] | None = None
            for entry in layer:
                exact = entry.host == registry
                if not exact and not ("*" in entry.host and _glob_host(entry.host, registry)):
                    continue
                if entry.path and not (
                    repository == entry.path or repository.startswith(entry.path + "/")
                ):
                    continue
                rank = (len(entry.path), int(exact), entry.credential)
                if best is None or rank[:2] > best[:2]:
                    best = rank
            if best is not None:
                return best[2]
        return None


def _glob_host(pattern: str, host: str) -> bool:
    # A wildcard matches one DNS label only, and ports must agree (kubelet semantics).
    if pattern.count(".") != host.count("."):
        return False
    return fnmatch.fnmatchcase(host, pattern)


__all__ = [
    "Credential",
    "CredentialsError",
    "DockerConfig",
    "Keyring",
    "KeyringEntry",
    "parse_docker_config",
]
