"""Secrets out of what the operator's log says about a registry exchange.

Registries put secrets in URLs (presigned blob URLs carry X-Amz-Signature=…, some token
realms take credentials as query parameters, and any URL may carry user:password@), and
in headers (Authorization). Log lines keep scheme, host, port and path, and the names of
query parameters; values and userinfo become "…".
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_AUTH = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact_url(url: object) -> str:
    """`url` (a str or an httpx.URL) without userinfo or query values."""
    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
        if parts.username is not None or parts.password is not None:
            netloc = "…@" + netloc
    except ValueError:  # not a URL we can take apart: say nothing of it
        return "<unparsable URL>"
    query = "&".join(
        name + ("=…" if sep else "")
        for name, sep, _ in (field.partition("=") for field in parts.query.split("&") if field)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Every URL in `text` redacted, and Bearer/Basic credentials cut out."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    return _AUTH.sub(lambda m: m.group(1) + " …", text)


__all__ = ["redact_text", "redact_url"]
