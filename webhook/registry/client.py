"""I/O against one registry: manifests and config blobs over an httpx.AsyncClient.

Policy (caching, single flight, deadlines) lives in the resolver; this module turns HTTP
exchanges into parsed objects or RegistryErrors. Everything the registry controls is bounded
here before it is read: bodies by size (bodies.py), each request (redirects and token fetch
included) by time, requests per host by a share (fairness.py), redirects by count, scheme and
origin, and hosts that fail as a whole are backed off (backoff.py). Bodies are digest-checked
because everything stored afterwards is keyed by digest. Addresses are checked by the
transport's network backend (network.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpcore
import httpx

from .auth import RegistryAuth
from .backoff import Backoff
from .bodies import ACCEPT_ENCODING, read_capped
from .errors import (
    AddressDenied,
    AuthError,
    BadResponse,
    DeadlineExceeded,
    NotFoundError,
    RedirectRefused,
    RegistryError,
    RegistryUnavailable,
    shorten,
)
from .fairness import Shares
from .network import DeniedAddress, GuardedBackend, NetworkPolicy, parse_networks
from .redact import redact_text, redact_url
from .settings import ResolverSettings
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
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_AUTH = httpx.Auth()  # for other origins: nothing added, not even URL userinfo


def make_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """System trust store, plus a private CA bundle if configured (for in-house registries).

    `ca_bundle` is PEM text or the path of a PEM file: settings may carry either."""
    context = ssl.create_default_context()
    if ca_bundle and "-----BEGIN" in ca_bundle:
        context.load_verify_locations(cadata=ca_bundle)
    elif ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def make_vouching_context(ca_bundle: str) -> ssl.SSLContext:
    """The private CA alone: a peer it verifies is a registry the operator configured."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if "-----BEGIN" in ca_bundle:
        context.load_verify_locations(cadata=ca_bundle)
    else:
        context.load_verify_locations(cafile=ca_bundle)
    return context


def policy_for(
    settings: ResolverSettings, *, insecure: frozenset[str], mirrors: Mapping[str, str]
) -> NetworkPolicy:
    """Where lookups may connect; ValueError naming the setting when a network is invalid."""
    return NetworkPolicy(
        denied=parse_networks(settings.denied_networks, "registryDeniedNetworks"),
        allowed=parse_networks(settings.allowed_networks, "registryAllowedNetworks"),
        named=insecure | frozenset(mirrors.values()),
        vouch=make_vouching_context(settings.ca_bundle) if settings.ca_bundle else None,
    )


def make_transport(
    *,
    ca_bundle: str | None = None,
    max_connections: int = 100,
    network: NetworkPolicy | None = None,
) -> httpx.AsyncHTTPTransport:
    """The default transport, with every connect checked against `network` when given;
    tests wrap it (e.g. to count requests)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=20)
    context = make_ssl_context(ca_bundle)
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, retries=0)
    if network is not None:
        # httpx takes no network backend: the pool it built is replaced by the same one with ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=0,
            network_backend=GuardedBackend(network),
        )
    return transport


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a repository is actually fetched from, after mirror rewriting."""

    host: str  # host[:port] contacted (a mirror, or the registry itself)
    scheme: str  # "https", or "http" for explicitly insecure hosts

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """What one exchange may take: time (redirects and token fetch included), redirects,
    and requests in flight per host."""

    request_timeout: float = 5.0
    max_redirects: int = 3
    connections_per_host: int = 8


@dataclass(frozen=True, slots=True)
class _Answer:
    headers: httpx.Headers
    body: bytes


class RegistryClient:
    """Fetches manifests and image configs; one instance is shared by all lookups."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        insecure: frozenset[str] = frozenset(),
        mirrors: Mapping[str, str] | None = None,
        bounds: Bounds | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._http = http
        self._insecure = insecure
        self._mirrors = dict(mirrors or {})
        self.bounds = bounds or Bounds()
        self.hosts: Shares[str] = Shares(per_key=self.bounds.connections_per_host)
        self.backoff = backoff or Backoff(base=0, ceiling=0, max_entries=1)

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
        answer = await self._request(
            "GET", url, auth=auth, accept=ACCEPT_MANIFESTS, limit=MAX_MANIFEST_BYTES,
            what=what, endpoint=endpoint,
        )  # fmt: skip
        body = answer.body
        with _invalid(what, endpoint.host):
            if reference.startswith(("sha256:", "sha512:")):
                verify_digest(body, reference, "manifest")
                digest = reference
            else:
                digest = sha256_digest(body)
            return digest, parse_manifest(body, answer.headers.get("content-type"))

    async def head_manifest(
        self, endpoint: Endpoint, repository: str, tag: str, *, auth: RegistryAuth
    ) -> str | None:
        """The tag's current digest via HEAD (free on Docker Hub's rate limit), or None if
        the registry does not say; errors as for GET."""
        url = endpoint.url(f"{repository}/manifests/{tag}")
        what = f"manifest {shorten(repository, 40)}:{shorten(tag, 20)}"
        answer = await self._request(
            "HEAD", url, auth=auth, accept=ACCEPT_MANIFESTS, limit=0, what=what,
            endpoint=endpoint,
        )  # fmt: skip
        digest = answer.headers.get("docker-content-digest", "")
        return digest if digest.startswith(("sha256:", "sha512:")) else None

    async def get_config(
        self, endpoint: Endpoint, repository: str, digest: str, *, auth: RegistryAuth
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(entrypoint, cmd) of the config blob `digest`, verified against the digest."""
        url = endpoint.url(f"{repository}/blobs/{digest}")
        answer = await self._request(
            "GET", url, auth=auth, accept="application/json, */*", limit=MAX_CONFIG_BYTES,
            what="image config", endpoint=endpoint,
        )  # fmt: skip
        with _invalid("image config", endpoint.host):
            verify_digest(answer.body, digest, "image config")
            return parse_image_config(answer.body)

    # -- one exchange: redirects, shares, time, backoff ---------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        auth: RegistryAuth,
        accept: str,
        limit: int,
        what: str,
        endpoint: Endpoint,
    ) -> _Answer:
        headers = {"Accept": accept, "User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
        request = self._http.build_request(method, url, headers=headers)
        sent_auth: httpx.Auth = auth
        redirected: set[str] = set()
        for hop in range(self.bounds.max_redirects + 2):
            netloc = request.url.netloc.decode()
            blocked = self.backoff.check(netloc)
            if blocked is not None:
                raise blocked
            async with self.hosts.hold(netloc):  # queueing here is not the host's time
                answer = await self._send(
                    request, sent_auth, limit=limit, what=what, endpoint=endpoint,
                    redirected=redirected,
                )  # fmt: skip
            if isinstance(answer, _Answer):
                self.backoff.succeeded(netloc)
                return answer
            request = self._redirect(answer, request, endpoint=endpoint, hops=hop)
            # Credentials and tokens stay with the registry's own origin (S3 & co. reject
            # them anyway); a redirect never carries a body, only GET and HEAD are sent.
            same = _origin(request.url) == _origin(httpx.URL(endpoint.url("")))
            sent_auth = auth if same else _NO_AUTH
            redirected.add(request.url.netloc.decode())
        raise AssertionError("unreachable: _redirect refuses past max_redirects")

    async def _send(
        self,
        request: httpx.Request,
        auth: httpx.Auth,
        *,
        limit: int,
        what: str,
        endpoint: Endpoint,
        redirected: set[str],
    ) -> _Answer | httpx.URL:
        """The answer, or where a redirect points (unchecked)."""
        host = endpoint.host
        netloc = request.url.netloc.decode()
        try:
            async with asyncio.timeout(self.bounds.request_timeout):
                response = await self._http.send(
                    request, auth=auth, stream=True, follow_redirects=False
                )
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        return request.url.join(response.headers["location"])
                    self._check(response, what=what, host=host, auth=auth, url=request.url)
                    if request.method == "HEAD":
                        return _Answer(response.headers, b"")
                    body = await read_capped(
                        response, limit=limit, what=f"{what} from registry {host}"
                    )
                    return _Answer(response.headers, body)
                finally:
                    await response.aclose()
        except TimeoutError:
            error: RegistryError = DeadlineExceeded(
                f"{_who(netloc, host, redirected)} timed out",
                detail=f"{request.method} {redact_url(request.url)}: no answer within "
                f"{self.bounds.request_timeout:.3g}s",
            )
            self.backoff.failed(netloc, error)
            raise error from None
        except httpx.InvalidURL as exc:  # a Location httpx cannot even join
            raise RedirectRefused(
                f"registry {host} sent an invalid redirect", detail=redact_text(str(exc))
            ) from None
        except httpx.HTTPError as exc:
            failed = _netloc(exc, netloc)
            error = _transport_error(exc, _who(failed, host, redirected), request)
            self.backoff.failed(failed, error)
            raise error from exc

    def _redirect(
        self, target: httpx.URL, request: httpx.Request, *, endpoint: Endpoint, hops: int
    ) -> httpx.Request:
        host = endpoint.host
        shown = redact_url(target)
        if hops >= self.bounds.max_redirects:
            raise RedirectRefused(
                f"registry {host} redirected too often",
                detail=f"more than {self.bounds.max_redirects} redirects, last to {shown}",
            )
        netloc = target.netloc.decode()
        if target.scheme == "http" and netloc not in self._insecure:
            raise RedirectRefused(
                f"registry {host} redirected to plain HTTP", detail=f"redirect to {shown}"
            )
        if target.scheme not in ("http", "https") or not target.host:
            raise RedirectRefused(
                f"registry {host} sent an invalid redirect", detail=f"redirect to {shown}"
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        return self._http.build_request(
            request.method, target.copy_with(username=None, password=None), headers=headers
        )

    @staticmethod
    def _check(
        response: httpx.Response, *, what: str, host: str, auth: httpx.Auth, url: httpx.URL
    ) -> None:
        """Status to error; messages name the class only, the log gets the status."""
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"{response.request.method} {redact_url(url)} -> HTTP {status}"
        if status in (401, 403):
            used = isinstance(auth, RegistryAuth) and auth.used_credential
            verdict = "refused the credentials" if used else "requires credentials"
            if status == 403:
                verdict = "denied access"
            raise AuthError(f"registry {host} {verdict} for {what}", detail=detail)
        if status == 404:
            raise NotFoundError(f"{what} not found on {host}", detail=detail)
        if status == 429 or status >= 500:
            raise RegistryUnavailable(f"registry {host} is unavailable", detail=detail)
        raise BadResponse(f"registry {host} sent an invalid answer for {what}", detail=detail)


class _invalid:
    """`with _invalid(what, host):` turns a document's BadResponse (which says what is wrong
    with it) into one that says only that it is invalid; what was wrong goes to `detail`."""

    def __init__(self, what: str, host: str) -> None:
        self._what, self._host = what, host

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if isinstance(error, BadResponse) and not error.detail:
            raise BadResponse(
                f"registry {self._host} sent an invalid {self._what}", detail=error.message
            ) from None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _netloc(exc: httpx.HTTPError, default: str) -> str:
    try:
        return exc.request.url.netloc.decode()
    except RuntimeError:  # raised by httpx when the error carries no request
        return default


def _who(netloc: str, host: str, redirected: set[str]) -> str:
    """Who failed, without echoing an address the registry chose: the registry, a server
    it redirected us to, or (any other request of the exchange) its token service."""
    if netloc == host:
        return f"registry {host}"
    if netloc in redirected:
        return f"the server registry {host} redirected to"
    return f"the token service of {host}"


def _transport_error(exc: httpx.HTTPError, who: str, sent: httpx.Request) -> RegistryError:
    """One tenant message per class: refused, reset, TLS failure, a peer that is not HTTP and
    a denied address all read "cannot connect" (else they tell a port's state apart)."""
    try:
        request = exc.request
    except RuntimeError:  # raised by httpx when the error carries no request
        request = sent
    where = f"{request.method} {redact_url(request.url)}"
    detail = f"{where}: {type(exc).__name__}: {redact_text(str(exc))}"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DeniedAddress):
            return AddressDenied(
                f"cannot connect to {who}", detail=f"{where}: {redact_text(str(cause))}"
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = f"{where}: TLS certificate not trusted: {cause.verify_message}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return DeadlineExceeded(f"{who} timed out", detail=detail)
    return RegistryUnavailable(f"cannot connect to {who}", detail=detail)


__all__ = [
    "Bounds",
    "Endpoint",
    "RegistryClient",
    "make_ssl_context",
    "make_transport",
    "make_vouching_context",
]
