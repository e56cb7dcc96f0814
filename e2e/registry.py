"""A real image registry on loopback: Debian's ``docker-registry`` (distribution) with
plain HTTP or TLS from an ``e2e.pki.CertAuthority``, anonymous, htpasswd basic auth or
token auth, and a ``Pusher`` that uploads blobs and manifests through the distribution
API (no docker, no tarballs)::

    ca = CertAuthority(tmp / "pki", "registry")
    with start_registry(tmp / "registry", ca=ca, users={"alice": "pw"}) as registry:
        registry.host                        # "127.0.0.1:PORT"
        registry.ca_file                     # the CA's PEM file, to trust the registry
        with registry.pusher("alice") as push:
            push.image("team/app", "1.0", entrypoint=["/app"], cmd=["--serve"])
        docker_config(registry.host, "alice", "pw")   # .dockerconfigjson for a pull secret

For token auth see e2e.registrytoken (``TokenIssuer``, ``TokenServer``).
``CountingTransport`` records what an httpx client really sent. ``RegistryMissing``
names the Debian package to install.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from e2e.pki import CertAuthority, IssuedCert
from e2e.processes import Process, StartupError, free_port, spawn, wait_until
from e2e.registrytoken import TokenIssuer

REGISTRY_BIN = "/usr/bin/docker-registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


class RegistryMissing(Exception):
    """A program the registry needs is not installed; the message names the package."""


def _find(tool: str, package: str) -> str:
    found = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if found is None:
        raise RegistryMissing(f"needs {tool} (Debian package {package})")
    return found


# -- docker-registry ---------------------------------------------------------------------------


@dataclass
class Registry:
    """A running ``docker-registry`` (see ``start_registry``); a context
    manager that stops it."""

    host: str  # "address:port", 127.0.0.1 unless started elsewhere
    scheme: str  # "https" with a CA, else "http"
    process: Process
    directory: Path  # config.yml, data/, htpasswd, registry.log
    ca: CertAuthority | None = None
    users: dict[str, str] = field(default_factory=dict)  # basic-auth user -> password

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.process.log

    @property
    def ca_file(self) -> Path | None:
        """PEM of the CA that issued the serving certificate (None: plain HTTP)."""
        return self.ca.cert if self.ca else None

    @property
    def ca_pem(self) -> bytes | None:
        return self.ca.cert_pem if self.ca else None

    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client needs to trust the registry (False: plain HTTP)."""
        if self.ca is None:
            return False
        return ssl.create_default_context(cafile=str(self.ca.cert))

    def pusher(self, user: str | None = None, *, bearer: TokenIssuer | None = None) -> Pusher:
        """A Pusher trusting the registry's CA, as basic-auth ``user`` (one of ``users``)
        or with tokens from ``bearer``."""
        auth = httpx.BasicAuth(user, self.users[user]) if user is not None else None
        return Pusher(self, verify=self.verify(), auth=auth, bearer=bearer)

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_registry(
    directory: Path,
    *,
    ca: CertAuthority | None = None,
    users: Mapping[str, str] | None = None,
    auth: dict[str, Any] | None = None,
    ready_within: float = 20,
    address: str = "127.0.0.1",
    redirect_blobs_to: str | None = None,
) -> Registry:
    """Start ``docker-registry`` on a free loopback port, storing into ``directory``.

    ``ca``: serve TLS with a certificate for 127.0.0.1/localhost issued by it.
    ``users``: htpasswd basic auth (realm ``basic-realm``). ``auth``: any other
    distribution ``auth`` section (e.g. ``TokenIssuer.auth(realm)``). ``address``: where to
    listen instead of loopback (a node's pods reach it on the pod bridge).
    ``redirect_blobs_to``: a base URL blob GETs are redirected to (307, distribution's
    ``redirect`` storage middleware, as S3-backed registries do). Returns once
    ``/v2/`` answers; raises RegistryMissing, or StartupError after three tries."""
    binary = _find(REGISTRY_BIN, "docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    if users:
        if auth is not None:
            raise ValueError("users and auth are exclusive")
        auth = _htpasswd_auth(directory, users)
    serving = (
        ca.issue_server(
            f"registry-{uuid.uuid4().hex[:8]}",
            [*dict.fromkeys([address, "127.0.0.1"]), "localhost"],
        )
        if ca
        else None
    )
    last_error: StartupError | None = None
    for _attempt in range(3):  # a free port can be taken before the registry binds it
        try:
            return _start_once(
                binary,
                directory,
                address=address,
                serving=serving,
                auth=auth,
                users=dict(users or {}),
                ca=ca,
                ready_within=ready_within,
                redirect_blobs_to=redirect_blobs_to,
            )
        except StartupError as e:
            last_error = e
    assert last_error is not None
    raise last_error


def _start_once(
    binary: str,
    directory: Path,
    *,
    address: str,
    serving: IssuedCert | None,
    auth: dict[str, Any] | None,
    users: dict[str, str],
    ca: CertAuthority | None,
    ready_within: float,
    redirect_blobs_to: str | None = None,
) -> Registry:
    """docker-registry on a free port of ``address``, once ``/v2/`` answers; stopped and
    StartupError if it does not."""
    port = free_port()
    config_path = directory / "config.yml"
    config = _registry_config(directory, listen=f"{address}:{port}", serving=serving, auth=auth)
    if redirect_blobs_to is not None:
        redirect = {"name": "redirect", "options": {"baseurl": redirect_blobs_to}}
        config["middleware"] = {"storage": [redirect]}
    config_path.write_text(json.dumps(config))  # JSON is YAML; no YAML writer needed.
    process = spawn("docker-registry", [binary, "serve", config_path], directory / "registry.log")
    registry = Registry(
        f"{address}:{port}", "https" if ca else "http", process, directory, ca, users
    )
    try:
        wait_until(
            f"docker-registry on {registry.host}",
            _answers(registry),
            ready_within,
            [process],
            interval=0.05,
        )
    except StartupError:
        registry.stop()
        raise
    return registry


def _htpasswd_auth(directory: Path, users: Mapping[str, str]) -> dict[str, Any]:
    """Basic auth for ``users`` (bcrypt, as distribution requires): the htpasswd file written
    into ``directory`` and the ``auth`` section naming it."""
    htpasswd = _find("htpasswd", "apache2-utils")
    lines = b"".join(
        subprocess.run(
            [htpasswd, "-Bbn", user, password], check=True, capture_output=True
        ).stdout.strip()
        + b"\n"
        for user, password in users.items()
    )
    (directory / "htpasswd").write_bytes(lines)
    return {"htpasswd": {"realm": "basic-realm", "path": str(directory / "htpasswd")}}


def _registry_config(
    directory: Path, *, listen: str, serving: IssuedCert | None, auth: dict[str, Any] | None
) -> dict[str, Any]:
    """docker-registry's configuration: quiet, storing under ``directory``, TLS when
    ``serving`` is given."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": listen, "secret": "podinit-test-secret"},
    }
    if serving is not None:
        config["http"]["tls"] = {"certificate": str(serving.cert), "key": str(serving.key)}
    if auth is not None:
        config["auth"] = auth
    return config


def _answers(registry: Registry) -> Callable[[], bool]:
    verify = registry.verify()

    def check() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{registry.base}/v2/", verify=verify, timeout=2)
            return True  # any HTTP answer (200 or 401) means it is serving
        return False

    return check


def docker_config(host: str, user: str, password: str) -> bytes:
    """A ``.dockerconfigjson`` with basic-auth credentials for ``host``."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}}).encode()


# -- pushing images ----------------------------------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pushed:
    digest: str
    size: int
    media_type: str


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: "
            f"{response.status_code}, expected {status}: {response.text}"
        )


class Pusher:
    """Pushes images through the distribution API: blob upload + manifest PUT."""

    def __init__(
        self,
        registry: Registry,
        *,
        verify: ssl.SSLContext | bool = False,
        auth: httpx.Auth | None = None,
        bearer: TokenIssuer | None = None,
    ) -> None:
        self.registry = registry
        self._bearer = bearer
        self._client = httpx.Client(verify=verify, auth=auth, timeout=30)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

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
        _expect(started, 202)
        location = urllib.parse.urljoin(self.registry.base, started.headers["location"])
        digest = digest_of(data)
        separator = "&" if "?" in location else "?"
        done = self._client.put(
            f"{location}{separator}digest={urllib.parse.quote(digest)}",
            content=data,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        _expect(done, 201)
        return Pushed(digest, len(data), "application/octet-stream")

    def manifest(self, repo: str, reference: str, body: dict[str, Any], media_type: str) -> Pushed:
        data = json.dumps(body).encode()
        response = self._client.put(
            f"{self.registry.base}/v2/{repo}/manifests/{reference}",
            content=data,
            headers={**self._headers(repo), "Content-Type": media_type},
        )
        _expect(response, 201)
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
        """An image whose config has this ENTRYPOINT and CMD and one (fake) layer."""
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

    def with_argv(
        self, repo: str, source: str, tag: str, *, entrypoint: list[str], cmd: list[str] | None
    ) -> Pushed:
        """The image `repo:source` under `repo:tag` with another ENTRYPOINT and CMD: a new
        config blob, the same layers. Pushing to a tag that exists moves it."""
        accept = {"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}", **self._headers(repo)}
        got = self._client.get(f"{self.registry.base}/v2/{repo}/manifests/{source}", headers=accept)
        _expect(got, 200)
        manifest = got.json()
        media_type = got.headers["content-type"].split(";")[0]
        config_url = f"{self.registry.base}/v2/{repo}/blobs/{manifest['config']['digest']}"
        blob = self._client.get(config_url, headers=self._headers(repo), follow_redirects=True)
        _expect(blob, 200)
        config = blob.json()
        config["config"] = {**config.get("config", {}), "Entrypoint": entrypoint, "Cmd": cmd}
        pushed = self.blob(repo, json.dumps(config).encode())
        manifest["config"] = {**manifest["config"], "digest": pushed.digest, "size": pushed.size}
        return self.manifest(repo, tag, manifest, media_type)

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
