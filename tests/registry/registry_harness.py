"""Real parts for the registry tests: a CA, `docker-registry` processes, a JWT token server,
a misbehaving HTTP server, an image pusher speaking the distribution API, and a counting
transport. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.unavailable import require_tool

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PKI ---------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Pki:
    ca_path: Path
    server_cert: Path
    server_key: Path
    signer_cert: Path  # token signing certificate (self-signed; the registry's rootcertbundle)
    signer_key: rsa.RSAPrivateKey
    signer_der: bytes


def make_pki(directory: Path) -> Pki:
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("podinit test CA"))
        .issuer_name(_name("podinit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import ipaddress

    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    # No ExtendedKeyUsage: Go's chain verification of the token's x5c then accepts it.
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("podinit test token signer"))
        .issuer_name(_name("podinit test token signer"))
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer_key, hashes.SHA256())
    )
    pki = Pki(
        ca_path=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        signer_cert=directory / "signer.pem",
        signer_key=signer_key,
        signer_der=signer.public_bytes(serialization.Encoding.DER),
    )
    pki.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(_pem_key(key))
    pki.signer_cert.write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    return pki


# -- token server ------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    pki: Pki
    service: str = "podinit-test-registry"
    issuer: str = "podinit-test-issuer"

    def mint(self, subject: str, access: list[dict[str, Any]]) -> str:
        """A JWT in the shape distribution's token auth verifies (RS256, x5c chain)."""
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.pki.signer_der).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": hashlib.sha256(os.urandom(16)).hexdigest()[:16],
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self.pki.signer_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


@dataclass
class TokenServer:
    """GET /token?service=…&scope=… — users get pull+push everywhere, anonymous gets pull on
    `public/*` only, wrong passwords get 401."""

    issuer: TokenIssuer
    users: dict[str, str]
    port: int = 0
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    requests: list[tuple[str, str]] = field(default_factory=list)  # (user or "", scope)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                # OAuth2 refresh-token grant, as used with `identitytoken` credentials.
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                user = outer.refresh_tokens.get(form.get("refresh_token", [""])[0], "")
                if form.get("grant_type") != ["refresh_token"] or not user:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._grant(user, form.get("scope", []), key="access_token")

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                user = ""
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if outer.users.get(name) != password:
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    user = name
                self._grant(user, query.get("scope", []), key="token")

            def _grant(self, user: str, scopes: list[str], *, key: str) -> None:
                outer.requests.append((user, " ".join(scopes)))
                access = []
                for scope in scopes:
                    kind, name, actions = scope.split(":")
                    if user:
                        allowed = actions.split(",")
                    else:
                        allowed = ["pull"] if name.startswith("public/") else []
                    access.append({"type": kind, "name": name, "actions": allowed})
                token = outer.issuer.mint(user or "anonymous", access)
                body = json.dumps({key: token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


# -- docker-registry ---------------------------------------------------------------------------


@dataclass
class Registry:
    """A running `docker-registry` on 127.0.0.1."""

    host: str  # "127.0.0.1:port"
    scheme: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(
    directory: Path, *, pki: Pki | None = None, auth: dict[str, Any] | None = None
) -> Registry:
    binary = require_tool(REGISTRY_BIN, "docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(directory / "data")},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{port}", "secret": "podinit-test-secret"},
        }
        if pki is not None:
            config["http"]["tls"] = {
                "certificate": str(pki.server_cert),
                "key": str(pki.server_key),
            }
        if auth is not None:
            config["auth"] = auth
        # JSON is YAML; no YAML writer needed.
        config_path = directory / "config.yml"
        config_path.write_text(json.dumps(config))
        log_path = directory / "registry.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            [binary, "serve", str(config_path)], stdout=log_file, stderr=subprocess.STDOUT
        )
        log_file.close()
        registry = Registry(f"127.0.0.1:{port}", "https" if pki else "http", process, log_path)
        if _wait_ready(registry, pki):
            return registry
        registry.stop()
        last_error = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not start:\n{last_error}")


def start_basic_auth_registry(directory: Path, pki: Pki) -> tuple[Registry, Pusher]:
    """TLS with the test CA and htpasswd basic auth for USER/PASSWORD, and a pusher for it."""
    htpasswd = require_tool("htpasswd", "apache2-utils")
    directory.mkdir(parents=True, exist_ok=True)
    line = subprocess.run([htpasswd, "-Bbn", USER, PASSWORD], check=True, capture_output=True)
    (directory / "htpasswd").write_bytes(line.stdout)
    auth = {"htpasswd": {"realm": "basic-realm", "path": str(directory / "htpasswd")}}
    registry = start_registry(directory, pki=pki, auth=auth)
    verify = ssl.create_default_context(cafile=str(pki.ca_path))
    return registry, Pusher(registry, verify=verify, auth=httpx.BasicAuth(USER, PASSWORD))


def _wait_ready(registry: Registry, pki: Pki | None) -> bool:
    deadline = time.monotonic() + 20
    verify: Any = ssl.create_default_context(cafile=str(pki.ca_path)) if pki else False
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{registry.base}/v2/", verify=verify, timeout=2)
            return True  # any HTTP answer (200 or 401) means it is serving
        time.sleep(0.05)
    return False


# -- pushing images ----------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pushed:
    digest: str
    size: int
    media_type: str


class Pusher:
    """Pushes images through the distribution API: blob upload + manifest PUT."""

    def __init__(
        self,
        registry: Registry,
        *,
        verify: Any = False,
        auth: httpx.Auth | None = None,
        bearer: TokenIssuer | None = None,
    ) -> None:
        self.registry = registry
        self._bearer = bearer
        self._client = httpx.Client(verify=verify, auth=auth, timeout=30)

    def close(self) -> None:
        self._client.close()

    def _headers(self, repo: str) -> dict[str, str]:
        if self._bearer is None:
            return {}
        token = self._bearer.mint(
            "pusher", [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]
        )
        return {"Authorization": f"Bearer {token}"}

    def blob(self, repo: str, data: bytes) -> Pushed:
        headers = self._headers(repo)
        started = self._client.post(
            f"{self.registry.base}/v2/{repo}/blobs/uploads/", headers=headers
        )
        assert started.status_code == 202, started.text
        location = urllib.parse.urljoin(self.registry.base, started.headers["location"])
        digest = digest_of(data)
        separator = "&" if "?" in location else "?"
        done = self._client.put(
            f"{location}{separator}digest={urllib.parse.quote(digest)}",
            content=data,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return Pushed(digest, len(data), "application/octet-stream")

    def manifest(self, repo: str, reference: str, body: dict[str, Any], media_type: str) -> Pushed:
        data = json.dumps(body).encode()
        response = self._client.put(
            f"{self.registry.base}/v2/{repo}/manifests/{reference}",
            content=data,
            headers={**self._headers(repo), "Content-Type": media_type},
        )
        assert response.status_code == 201, response.text
        return Pushed(digest_of(data), len(data), media_type)

    def image(
        self,
        repo: str,
        tag: str | None,
        *,
        entrypoint: list[str] | None,
        cmd: list[str] | None,
        arch: str = "amd64",
        variant: str | None = None,
        docker: bool = False,
    ) -> Pushed:
        layer = self.blob(repo, f"layer of {repo} {arch} {variant} {entrypoint} {cmd}".encode())
        config_json: dict[str, Any] = {
            "architecture": arch,
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }
        if variant:
            config_json["variant"] = variant
        config = self.blob(repo, json.dumps(config_json).encode())
        manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        body = {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json"
                if docker
                else "application/vnd.oci.image.config.v1+json",
                "digest": config.digest,
                "size": config.size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"
                    if docker
                    else "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer.digest,
                    "size": layer.size,
                }
            ],
        }
        pushed = self.manifest(repo, digest_of(json.dumps(body).encode()), body, manifest_type)
        if tag:
            self.manifest(repo, tag, body, manifest_type)
        return pushed

    def index(
        self,
        repo: str,
        tag: str,
        entries: list[tuple[Pushed, dict[str, str]]],
        *,
        docker: bool = False,
    ) -> Pushed:
        media_type = DOCKER_LIST if docker else OCI_INDEX
        body = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {"mediaType": p.media_type, "digest": p.digest, "size": p.size, "platform": plat}
                for p, plat in entries
            ],
        }
        return self.manifest(repo, tag, body, media_type)


# -- a registry that misbehaves on purpose -----------------------------------------------------


SLOW_SIBLING_ARM64 = "sha256:" + "e" * 64  # the digest FaultServer never answers


def slow_sibling_documents() -> tuple[bytes, bytes, bytes]:
    """Config, amd64 manifest and index of slowsibling/…: an index whose amd64 image is served
    at once and whose arm64 image hangs."""
    config = json.dumps({"config": {"Entrypoint": ["/fast"]}}).encode()
    amd64 = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "layers": [],
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest_of(amd64),
                    "size": len(amd64),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": SLOW_SIBLING_ARM64,
                    "size": 100,
                    "platform": {"os": "linux", "architecture": "arm64"},
                },
            ],
        }
    ).encode()
    return config, amd64, index


class _QuietServer(http.server.ThreadingHTTPServer):
    """Clients that give up (deadlines, cancelled fetches) reset connections on purpose."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultServer:
    """Plain-HTTP server whose behaviour is chosen by the repository name:
    hang/…, drip/…, err500/…, garbage/…, deny/… (401 Basic), missing/… (404),
    baddigest/… (valid manifest, config blob that does not match its digest),
    slowsibling/… (an index whose arm64 entry never arrives), badrealm/… (a bearer
    challenge naming a token service that is down)."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.requests: list[str] = []
        self.dead_realm = f"127.0.0.1:{free_port()}"  # a token service that is down
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(
                self, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _slow_sibling(self) -> None:
                config, amd64, index = slow_sibling_documents()
                if self.path.endswith(SLOW_SIBLING_ARM64):
                    outer.stop_event.wait(60)
                elif self.path.endswith(digest_of(config)):
                    self._send(200, config)
                elif self.path.endswith(digest_of(amd64)):
                    self._send(200, amd64, {"Content-Type": OCI_MANIFEST})
                else:
                    self._send(200, index, {"Content-Type": OCI_INDEX})

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                parts = self.path.split("/")
                mode = parts[2] if len(parts) > 2 else ""
                if mode == "hang":
                    outer.stop_event.wait(60)
                    return
                if mode == "drip":
                    self.send_response(200)
                    self.send_header("Content-Type", OCI_MANIFEST)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    for _ in range(600):
                        if outer.stop_event.wait(0.1):
                            return
                        with contextlib.suppress(OSError):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                    return
                if mode == "err500":
                    self._send(500, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}')
                elif mode == "garbage":
                    self._send(200, b"\x00\xffnot json{{", {"Content-Type": OCI_MANIFEST})
                elif mode == "deny":
                    self._send(
                        401,
                        b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                        {"WWW-Authenticate": 'Basic realm="fault"'},
                    )
                elif mode == "missing":
                    self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                elif mode == "badrealm":
                    challenge = f'Bearer realm="http://{outer.dead_realm}/token",service="x"'
                    self._send(401, b"{}", {"WWW-Authenticate": challenge})
                elif mode == "slowsibling":
                    self._slow_sibling()
                elif mode == "baddigest":
                    if "/blobs/" in self.path:
                        self._send(200, b'{"config":{"Entrypoint":["/evil"]}}')
                    else:
                        body = {
                            "schemaVersion": 2,
                            "mediaType": OCI_MANIFEST,
                            "config": {
                                "mediaType": "application/vnd.oci.image.config.v1+json",
                                "digest": "sha256:" + "0" * 64,
                                "size": 10,
                            },
                            "layers": [],
                        }
                        self._send(200, json.dumps(body).encode(), {"Content-Type": OCI_MANIFEST})
                else:
                    self._send(404, b"{}")

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()


# -- counting transport ------------------------------------------------------------------------


class CountingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport and records every request that reached the wire."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, kind: str, status: int | None = 200) -> int:
        return sum(
            1
            for _method, path, code in self.seen
            if f"/{kind}/" in path and (status is None or code == status)
        )


@contextlib.contextmanager
def running(server: FaultServer | TokenServer) -> Iterator[None]:
    server.start()
    try:
        yield
    finally:
        server.stop()


# -- what the session fixtures provide ---------------------------------------------------------

USER, PASSWORD = "alice", "wonderland"


@dataclass
class PlainImages:
    registry: Registry
    single: Pushed  # app/single:1.0, OCI, ENTRYPOINT ["/app"] CMD ["--serve"]
    tini: Pushed  # app/tini:latest, Docker schema2, ENTRYPOINT ["/usr/bin/tini","--"]
    multi: Pushed  # app/multi:1.0, OCI index, amd64 and arm64 differ
    same: Pushed  # app/same:1.0, Docker manifest list, platforms agree
    arm64: Pushed  # the arm64 image inside app/multi


@dataclass
class TokenSetup:
    registry: Registry
    server: TokenServer


def docker_config(host: str, user: str = USER, password: str = PASSWORD) -> bytes:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}}).encode()
