"""The resolver's exception tree.

Two audiences: `str(err)` (`message`) reaches the tenant, as a kubectl warning and an Event
note, so it is short (≤ ~100 chars) and names only the failure class and what the tenant
wrote (image, registry host): never a response body, a status line, another address, or
whether some address is open. `detail` is for the operator's log: what happened, with URLs
and secrets redacted (redact.py). `result` is the metrics label.

    RegistryError                 (result)
    ├── InvalidReference          invalid_reference  the image string is not a reference
    ├── AuthError                 unauthorized       denied: 401/403, credentials refused
    ├── NotFoundError             not_found          repository, tag, digest or platform
    ├── RegistryUnavailable       unavailable        unreachable (connect, TLS, protocol), 5xx, 429
    │   └── AddressDenied         address_denied     an address in registryDeniedNetworks
    ├── BadResponse               bad_response       an answer we cannot use
    │   ├── TooLarge              too_large          a body over its cap, compressed or not
    │   └── RedirectRefused       redirect_refused   too many, to http, or with a bad Location
    └── DeadlineExceeded          deadline           timed out
"""

from __future__ import annotations

from typing import ClassVar

# Warnings are capped at 120 chars by the server; leave room for its own prefix.
MAX_MESSAGE = 100
MAX_DETAIL = 1000


def shorten(text: str, limit: int = 48) -> str:
    """Cut a user-supplied string (an image name) so messages stay within MAX_MESSAGE."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RegistryError(Exception):
    """Base of everything the resolver raises; `str(err)` is safe to show to users."""

    result: ClassVar[str] = "error"

    def __init__(self, message: str, *, detail: str = "") -> None:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        super().__init__(message)
        self.detail = shorten(detail, MAX_DETAIL)

    @property
    def message(self) -> str:
        return str(self.args[0])

    def again(self) -> RegistryError:
        """A fresh copy to raise for a remembered failure (a raised exception keeps its
        traceback, so the remembered one is never raised twice)."""
        return type(self)(self.message, detail=self.detail)


class InvalidReference(RegistryError):
    """The image string is not a valid reference; retrying cannot help."""

    result = "invalid_reference"


class AuthError(RegistryError):
    """The registry (or its token service) refused us: 401/403, or credentials rejected."""

    result = "unauthorized"


class NotFoundError(RegistryError):
    """The repository, tag, digest or platform does not exist."""

    result = "not_found"


class RegistryUnavailable(RegistryError):
    """Could not talk to the registry: connection refused/reset, TLS failure, a peer that
    does not speak HTTP, 5xx, 429."""

    result = "unavailable"


class AddressDenied(RegistryUnavailable):
    """The host resolves into registryDeniedNetworks or the cluster's ranges: no connection was
    made. Its message is an unreachable registry's, so a tenant cannot tell a refused address
    from a closed port."""

    result = "address_denied"


class BadResponse(RegistryError):
    """The registry answered, but with something we cannot use (garbage, wrong digest, …)."""

    result = "bad_response"


class TooLarge(BadResponse):
    """A body (token, manifest, index, config) exceeded its cap, before or after decoding."""

    result = "too_large"


class RedirectRefused(BadResponse):
    """A redirect we do not follow: too many, to plain HTTP, or to something not a URL."""

    result = "redirect_refused"


class DeadlineExceeded(RegistryError):
    """The lookup did not finish in the time the caller gave it."""

    result = "deadline"


__all__ = [
    "MAX_MESSAGE",
    "AddressDenied",
    "AuthError",
    "BadResponse",
    "DeadlineExceeded",
    "InvalidReference",
    "NotFoundError",
    "RedirectRefused",
    "RegistryError",
    "RegistryUnavailable",
    "TooLarge",
    "shorten",
]
