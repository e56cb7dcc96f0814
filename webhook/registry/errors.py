"""The resolver's exception tree.

Every message is short (it becomes a kubectl warning, ≤ ~100 chars) and is built only from
things we chose to say: never from response bodies, URLs with query strings or credentials.
`result` is the metrics label for the failure.
"""

from __future__ import annotations

from typing import ClassVar

# Warnings are capped at 120 chars by the server; leave room for its own prefix.
MAX_MESSAGE = 100


def shorten(text: str, limit: int = 48) -> str:
    """Cut a user-supplied string (an image name) so messages stay within MAX_MESSAGE."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RegistryError(Exception):
    """Base of everything the resolver raises; `str(err)` is safe to show to users."""

    result: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])


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
    """Could not talk to the registry: connection refused/reset, TLS failure, 5xx, 429."""

    result = "unavailable"


class BadResponse(RegistryError):
    """The registry answered, but with something we cannot use (garbage, wrong digest, …)."""

    result = "bad_response"


class DeadlineExceeded(RegistryError):
    """The lookup did not finish in the time the caller gave it."""

    result = "deadline"


__all__ = [
    "MAX_MESSAGE",
    "AuthError",
    "BadResponse",
    "DeadlineExceeded",
    "InvalidReference",
    "NotFoundError",
    "RegistryError",
    "RegistryUnavailable",
    "shorten",
]
