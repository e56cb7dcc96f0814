"""I/O against one registry: manifests and config blobs over an httpx.AsyncClient.

Policy (caching, single flight, deadlines) lives in the resolver; this module only turns
HTTP exchanges into parsed objects or RegistryErrors. Bodies are size-capped and
digest-checked because everything stored afterwards is keyed by digest.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from .auth import RegistryAuth
from .errors import (
    AuthError,
    BadResponse,
    NotFoundError,
    RegistryError,
    RegistryUnavailable,
    shorten,
)
from .wire import (
    ACCEPT_MANIFESTS,
    Index,
    Manifest,
    parse_image_config,
    parse_manifest,
    sha256_digest,
    verify_digest,
)

MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's limit for manifests
MAX_CONFIG_BYTES = 8 << 20  # image configs carry history; real ones are far below this
USER_AGENT = "podinit-webhook"


def make_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """System trust store, plus a private CA bundle if configured (for in-house registries).

    `ca_bundle` is PEM text or the path of a PEM file: settings may carry either."""
    context = ssl.create_default_context()
    if ca_bundle and "-----BEGIN" in ca_bundle:
        context.load_verify_locations(cadata=ca_bundle)
    elif ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def make_transport(
    *, ca_bundle: str | None = None, max_connections: int = 100
) -> httpx.AsyncHTTPTransport:
    """The default transport; tests wrap it (e.g. to count requests)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    return httpx.AsyncHTTPTransport(verify=make_ssl_context(ca_bundle), limits=limits, retries=0)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a repository is actually fetched from, after mirror rewriting."""

    host: str  # host[:port] contacted (a mirror, or the registry itself)
    scheme: str  # "https", or "http" for explicitly insecure hosts

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path}"


class RegistryClient:
    """Fetches manifests and image configs; one instance is shared by all lookups."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        insecure: frozenset[str] = frozenset(),
        mirrors: Mapping[str, str] | None = None,
    ) -> None:
        self._http = http
        self._insecure = insecure
        self._mirrors = dict(mirrors or {})

    def endpoint(self, registry: str) -> Endpoint:
        host = self._mirrors.get(registry, registry)
        return Endpoint(host, "http" if host in self._insecure else "https")

    def realm_allowed(self, url: httpx.URL) -> bool:
        """Credentials go to the token realm, so it must be https unless explicitly allowed."""
        if url.scheme == "https":
            return True
        netloc = url.netloc.decode()
        return url.scheme == "http" and netloc in self._insecure

    async def get_manifest(
        self, endpoint: Endpoint, repository: str, reference: str, *, auth: RegistryAuth
    ) -> tuple[str, Manifest | Index]:
        """(digest, manifest or index). The digest is computed from the bytes, not taken
        from Docker-Content-Digest, and must equal `reference` when that is a digest."""
        url = endpoint.url(f"{repository}/manifests/{reference}")
        what = f"manifest {shorten(repository, 40)}:{shorten(reference, 20)}"
        body, content_type = await self._get(
            url,
            auth=auth,
            accept=ACCEPT_MANIFESTS,
            limit=MAX_MANIFEST_BYTES,
            what=what,
            host=endpoint.host,
        )
        if reference.startswith(("sha256:", "sha512:")):
            verify_digest(body, reference, "manifest")
            digest = reference
        else:
            digest = sha256_digest(body)
        return digest, parse_manifest(body, content_type)

    async def head_manifest(
        self, endpoint: Endpoint, repository: str, tag: str, *, auth: RegistryAuth
    ) -> str | None:
        """The tag's current digest via HEAD (free on Docker Hub's rate limit), or None if
        the registry does not say; errors as for GET."""
        url = endpoint.url(f"{repository}/manifests/{tag}")
        what = f"manifest {shorten(repository, 40)}:{shorten(tag, 20)}"
        async with self._send(
            "HEAD", url, auth=auth, accept=ACCEPT_MANIFESTS, host=endpoint.host
        ) as response:
            self._check(response, what=what, host=endpoint.host, auth=auth)
            digest = response.headers.get("docker-content-digest", "")
        return digest if digest.startswith(("sha256:", "sha512:")) else None

    async def get_config(
        self, endpoint: Endpoint, repository: str, digest: str, *, auth: RegistryAuth
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(entrypoint, cmd) of the config blob `digest`, verified against the digest."""
        url = endpoint.url(f"{repository}/blobs/{digest}")
        body, _ = await self._get(
            url,
            auth=auth,
            accept="application/json, */*",
            limit=MAX_CONFIG_BYTES,
            what="image config",
            host=endpoint.host,
        )
        verify_digest(body, digest, "image config")
        return parse_image_config(body)

    def _send(
        self, method: str, url: str, *, auth: RegistryAuth, accept: str, host: str
    ) -> _Exchange:
        request = self._http.build_request(
            method, url, headers={"Accept": accept, "User-Agent": USER_AGENT}
        )
        return _Exchange(self._http, request, auth, host)

    async def _get(
        self, url: str, *, auth: RegistryAuth, accept: str, limit: int, what: str, host: str
    ) -> tuple[bytes, str | None]:
        async with self._send("GET", url, auth=auth, accept=accept, host=host) as response:
            self._check(response, what=what, host=host, auth=auth)
            length = response.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                raise BadResponse(f"{what} from {host} is too large")
            chunks, size = [], 0
            try:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise BadResponse(f"{what} from {host} is too large")
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                raise _transport_error(exc, host) from exc
            return b"".join(chunks), response.headers.get("content-type")

    @staticmethod
    def _check(response: httpx.Response, *, what: str, host: str, auth: RegistryAuth) -> None:
        status = response.status_code
        if status == 200:
            return
        if status in (401, 403):
            detail = "refused the credentials" if auth.used_credential else "requires credentials"
            if status == 403:
                detail = "denied access"
            raise AuthError(f"registry {host} {detail} for {what} ({status})")
        if status == 404:
            raise NotFoundError(f"{what} not found on {host}")
        if status == 429:
            raise RegistryUnavailable(f"registry {host} is rate limiting us (429)")
        if status >= 500:
            raise RegistryUnavailable(f"registry {host} failed with HTTP {status}")
        raise BadResponse(f"registry {host} answered HTTP {status} for {what}")


class _Exchange:
    """`async with` around client.send(stream=True) that maps transport errors."""

    def __init__(
        self, http: httpx.AsyncClient, request: httpx.Request, auth: RegistryAuth, host: str
    ) -> None:
        self._http, self._request, self._auth, self._host = http, request, auth, host
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        try:
            self._response = await self._http.send(
                self._request, auth=self._auth, stream=True, follow_redirects=True
            )
        except RegistryError:
            raise
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self._host) from exc
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _transport_error(exc: httpx.HTTPError, host: str) -> RegistryError:
    server = _server(exc, host)
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return RegistryUnavailable(f"TLS certificate of {server} is not trusted")
            cause = cause.__cause__ or cause.__context__
        return RegistryUnavailable(f"cannot connect to {server}")
    if isinstance(exc, httpx.TimeoutException):
        return RegistryUnavailable(f"{server} timed out")
    if isinstance(exc, httpx.TooManyRedirects):
        return BadResponse(f"{server} redirected too often")
    if isinstance(exc, httpx.DecodingError | httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return BadResponse(f"{server} broke the HTTP protocol")
    return RegistryUnavailable(f"{server}: {type(exc).__name__}")


def _server(exc: httpx.HTTPError, host: str) -> str:
    """Who failed: the registry, or the token service / blob storage it sent us to."""
    try:
        netloc = exc.request.url.netloc.decode()
    except RuntimeError:  # raised by httpx when the error carries no request
        return f"registry {host}"
    return f"registry {host}" if netloc == host else f"{shorten(netloc, 40)} (for {host})"


__all__ = ["Endpoint", "RegistryClient", "make_ssl_context", "make_transport"]
