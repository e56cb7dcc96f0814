"""Registry authentication as an httpx.Auth challenge flow.

Anonymous first; on `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…` fetch a
token (with basic credentials when we have them) and retry; on `Basic` retry with basic
credentials. The challenge is remembered per host, so later requests (other repositories
included) authenticate up front instead of paying a 401 round trip each time.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .backoff import Backoff
from .bodies import ACCEPT_ENCODING, read_capped
from .cache import LRU
from .credentials import Credential
from .errors import AuthError, BadResponse, RegistryError, RegistryUnavailable
from .redact import redact_url

# One challenge: a scheme, then comma-separated key=value or key="quoted value" params.
_CHALLENGE = re.compile(
    r"([A-Za-z]+)\s+((?:[^,\s=]+\s*=\s*(?:\"(?:[^\"\\]|\\.)*\"|[^,\s]*)\s*,?\s*)*)"
)
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
MAX_TOKEN_RESPONSE = 1 << 20
# Treat tokens as expired a little early so one cannot expire in flight.
_EXPIRY_MARGIN = 10.0
_DEFAULT_TOKEN_LIFETIME = 60.0  # what the token spec says to assume when expires_in is absent
_TOKEN_HEADERS = {"Accept-Encoding": ACCEPT_ENCODING, "User-Agent": "podinit-webhook"}


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lower case
    realm: str = ""
    service: str = ""
    scope: str = ""


def parse_challenges(header: str) -> list[Challenge]:
    """Challenges in one WWW-Authenticate value, e.g. `Bearer realm="…",service="…"`."""
    out = []
    for match in _CHALLENGE.finditer(header):
        params = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
            for m in _PARAM.finditer(match.group(2))
        }
        out.append(
            Challenge(
                scheme=match.group(1).lower(),
                realm=params.get("realm", ""),
                service=params.get("service", ""),
                scope=params.get("scope", ""),
            )
        )
    return out


class TokenCache:
    """Bearer tokens by (realm, service, scope, credential fingerprint), LRU-bounded.

    The fingerprint is part of the key so a token obtained with one tenant's credentials
    is never presented on behalf of another (or of an anonymous request)."""

    def __init__(
        self, *, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lru: LRU[tuple[str, str, str, str], str] = LRU(max_entries=max_entries, clock=clock)

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        return self._lru.get(key)

    def put(self, key: tuple[str, str, str, str], token: str, lifetime: float) -> None:
        self._lru.put(key, token, ttl=max(0.0, lifetime - _EXPIRY_MARGIN))

    def discard(self, key: tuple[str, str, str, str]) -> None:
        self._lru.pop(key)

    def __len__(self) -> int:
        return len(self._lru)


class RegistryAuth(httpx.Auth):
    """Auth for one lookup: one registry host, one repository, at most one credential.

    `used_credential` tells the resolver whether anything it fetched depended on the
    credential; results fetched without it are shareable with everyone."""

    def __init__(
        self,
        *,
        host: str,
        repository: str,
        credential: Credential | None,
        fingerprint: str,
        tokens: TokenCache,
        challenges: LRU[str, Challenge],
        realm_allowed: Callable[[httpx.URL], bool],
        backoff: Backoff | None = None,
    ) -> None:
        self._host = host
        self._scope = f"repository:{repository}:pull"
        self._credential = credential
        self._fingerprint = fingerprint if credential else ""
        self._tokens = tokens
        self._challenges = challenges
        self._realm_allowed = realm_allowed
        self._backoff = backoff
        self.used_credential = False

    def __repr__(self) -> str:
        return f"RegistryAuth(host={self._host!r}, scope={self._scope!r}, credential=<redacted>)"

    def _basic(self) -> str | None:
        cred = self._credential
        if cred is None or not (cred.username or cred.password):
            return None
        raw = f"{cred.username}:{cred.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _key(self, challenge: Challenge, scope: str) -> tuple[str, str, str, str]:
        return (challenge.realm, challenge.service, scope, self._fingerprint)

    def _token_request(self, challenge: Challenge, scope: str) -> httpx.Request:
        if not challenge.realm:
            raise AuthError(f"registry {self._host} sent a bearer challenge without a realm")
        try:
            url = httpx.URL(challenge.realm)
        except httpx.InvalidURL:
            raise AuthError(f"registry {self._host} sent an invalid token realm") from None
        if not self._realm_allowed(url):
            raise AuthError(
                f"registry {self._host} sent a token realm that is not https",
                detail=f"realm {redact_url(url)}",
            )
        blocked = self._backoff.check(url.netloc.decode()) if self._backoff else None
        if blocked is not None:
            raise blocked
        params = {k: v for k, v in (("service", challenge.service), ("scope", scope)) if v}
        cred = self._credential
        if cred is not None and cred.identity_token:
            # OAuth2 refresh-token grant (the token spec's POST form), used by ACR & co.
            self.used_credential = True
            form = {
                "grant_type": "refresh_token",
                "refresh_token": cred.identity_token,
                "client_id": "podinit",
                **params,
            }
            return httpx.Request("POST", url, data=form, headers=_TOKEN_HEADERS)
        request = httpx.Request("GET", url.copy_merge_params(params), headers=_TOKEN_HEADERS)
        basic = self._basic()
        if basic is not None:
            self.used_credential = True
            request.headers["Authorization"] = basic
        return request

    async def _accept_token(
        self, response: httpx.Response, challenge: Challenge, scope: str
    ) -> str:
        try:
            return await self._read_token(response, challenge, scope)
        except RegistryError as error:
            # Refusals are about the credential; anything else is the service's failure,
            # remembered so that the next image naming it does not try again at once.
            if not isinstance(error, AuthError) and self._backoff is not None:
                self._backoff.failed(response.request.url.netloc.decode(), error)
            raise

    async def _read_token(self, response: httpx.Response, challenge: Challenge, scope: str) -> str:
        status = response.status_code
        service = f"token service of {self._host}"
        detail = f"{response.request.method} {redact_url(response.request.url)} -> HTTP {status}"
        if status in (401, 403):
            who = "credentials" if self._credential else "anonymous access"
            raise AuthError(f"{service} refused {who}", detail=detail)
        if status == 429 or status >= 500:
            raise RegistryUnavailable(f"{service} is unavailable", detail=detail)
        if status != 200:  # redirects included: a token request is never sent on
            raise BadResponse(f"{service} sent an invalid answer", detail=detail)
        body = await read_capped(response, limit=MAX_TOKEN_RESPONSE, what=f"answer of {service}")
        try:
            data: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadResponse(f"{service} sent an invalid answer", detail="not JSON") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise BadResponse(f"{service} sent an invalid answer", detail="no usable token")
        await _settle(response, body)
        lifetime = data.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = _DEFAULT_TOKEN_LIFETIME
        self._tokens.put(self._key(challenge, scope), token, float(lifetime))
        return token

    def _cached_token(self, challenge: Challenge, scope: str) -> str | None:
        cred = self._credential
        if cred is not None and cred.registry_token:
            self.used_credential = True
            return cred.registry_token
        token = self._tokens.get(self._key(challenge, scope))
        if token is not None and self._fingerprint:
            self.used_credential = True
        return token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        known = self._challenges.get(self._host)
        presented_token = False
        if known is not None and known.scheme == "bearer":
            token = self._cached_token(known, self._scope)
            if token is None:
                token_response = yield self._token_request(known, self._scope)
                token = await self._accept_token(token_response, known, self._scope)
            request.headers["Authorization"] = f"Bearer {token}"
            presented_token = True
        elif known is not None and known.scheme == "basic" and (basic := self._basic()):
            request.headers["Authorization"] = basic
            self.used_credential = True
        response = yield request
        if response.status_code != 401:
            return
        challenge = _pick(parse_challenges(response.headers.get("www-authenticate", "")))
        if challenge is None:
            return
        await _settle(response)  # its body is the registry's to make endless: never read
        # Remember realm/service for the host; the scope is per request.
        self._challenges.put(
            self._host, Challenge(challenge.scheme, challenge.realm, challenge.service)
        )
        if challenge.scheme == "bearer":
            scope = challenge.scope or self._scope
            token = None
            if presented_token:
                # The token we had was refused (expired early, revoked): fetch a fresh one once.
                self._tokens.discard(self._key(challenge, scope))
            else:
                token = self._cached_token(challenge, scope)
            if token is None:
                token_response = yield self._token_request(challenge, scope)
                token = await self._accept_token(token_response, challenge, scope)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
        elif challenge.scheme == "basic":
            basic = self._basic()
            if basic is None or request.headers.get("authorization") == basic:
                return  # nothing (new) to offer: the 401 stands
            request.headers["Authorization"] = basic
            self.used_credential = True
            yield request


async def _settle(response: httpx.Response, body: bytes = b"") -> None:
    """Mark a response of this flow as read. httpx reads each one whole (`aread`) before it
    sends the flow's next request: unbounded for a 401 body, an error for a token answer
    read_capped has streamed already. With its content set, aread returns at once."""
    await response.aclose()
    response._content = body  # httpx's own marker of a read body; no public setter


def _pick(challenges: list[Challenge]) -> Challenge | None:
    # Prefer bearer: registries offering both expect token clients.
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


__all__ = ["Challenge", "RegistryAuth", "TokenCache", "parse_challenges"]
