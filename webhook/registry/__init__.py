"""Async OCI distribution client: image reference -> ENTRYPOINT/CMD (see ImageResolver).

Layout: reference (parsing), credentials (dockerconfigjson), auth (httpx.Auth challenge
flow), wire (formats), client (HTTP I/O), platforms (index selection), cache (LRU, single
flight), store (credential-scoped caches), settings, resolver (the façade: policy,
deadlines, metrics), errors (the exception tree).
"""

from .cache import SingleFlight
from .credentials import Credential, CredentialsError, Keyring, parse_docker_config
from .errors import (
    AuthError,
    BadResponse,
    DeadlineExceeded,
    InvalidReference,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
)
from .platforms import Platform
from .reference import ImageReference, parse_reference
from .resolver import ImageResolver
from .settings import PullSecrets, ResolverSettings, ResolverStats

__all__ = [
    "AuthError",
    "BadResponse",
    "Credential",
    "CredentialsError",
    "DeadlineExceeded",
    "ImageReference",
    "ImageResolver",
    "InvalidReference",
    "Keyring",
    "NotFoundError",
    "Platform",
    "PullSecrets",
    "RegistryError",
    "RegistryUnavailable",
    "ResolverSettings",
    "ResolverStats",
    "SingleFlight",
    "parse_docker_config",
    "parse_reference",
]
