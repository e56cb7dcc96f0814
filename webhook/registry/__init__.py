"""Async OCI distribution client: image reference -> ENTRYPOINT/CMD (see ImageResolver).

Layout: reference (parsing), credentials (dockerconfigjson), auth (httpx.Auth challenge
flow), wire (formats), client (HTTP I/O), platforms (index selection), cache (LRU, single
flight), store (credential-scoped caches), settings, resolver (the façade: policy,
deadlines, metrics), errors (the exception tree). What a tenant may cost through the images
it names (docs/threat-model.md): network (where to connect), bodies (capped reads),
fairness (shares per host and tenant), backoff (failing hosts), redact (secrets out of logs).
"""

from .cache import SingleFlight
from .credentials import Credential, CredentialsError, Keyring, parse_docker_config
from .errors import (
    AddressDenied,
    AuthError,
    BadResponse,
    DeadlineExceeded,
    InvalidReference,
    NotFoundError,
    RedirectRefused,
    RegistryError,
    RegistryUnavailable,
    TooLarge,
)
from .platforms import Platform
from .redact import redact_text, redact_url
from .reference import ImageReference, parse_reference
from .resolver import ImageResolver
from .settings import PullSecrets, ResolverSettings, ResolverStats

__all__ = [
    "AddressDenied",
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
    "RedirectRefused",
    "RegistryError",
    "RegistryUnavailable",
    "ResolverSettings",
    "ResolverStats",
    "SingleFlight",
    "TooLarge",
    "parse_docker_config",
    "parse_reference",
    "redact_text",
    "redact_url",
]
