"""What the registry tests add to e2e.registry (a real `docker-registry`, the pusher, token
auth, the counting transport): the skip-or-fail rule when docker-registry is missing, the
fixtures' credentials, and a misbehaving HTTP server (FaultServer). Everything listens on
127.0.0.1 only."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e import registry
from e2e.pki import CertAuthority
from e2e.processes import free_port
from e2e.registry import OCI_INDEX, OCI_MANIFEST, Pushed, Pusher, Registry, digest_of
from e2e.registrytoken import QuietHTTPServer, TokenServer
from tests.unavailable import unavailable


def start_or_skip(directory: Path, **options: Any) -> Registry:
    """``e2e.registry.start_registry``, or ``unavailable`` (skip; fail under CI) when
    docker-registry (or htpasswd) is not installed."""
    try:
        return registry.start_registry(directory, **options)
    except registry.RegistryMissing as e:
        unavailable(str(e))


def start_basic_auth_registry(directory: Path, ca: CertAuthority) -> tuple[Registry, Pusher]:
    """TLS with the test CA and htpasswd basic auth for USER/PASSWORD, and a pusher for it."""
    started = start_or_skip(directory, ca=ca, users={USER: PASSWORD})
    return started, started.pusher(USER)


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


class FaultServer:
    """Plain-HTTP server whose behaviour is chosen by the repository name:
    hang/…, drip/…, err500/…, garbage/…, deny/… (401 Basic), missing/… (404),
    baddigest/… (valid manifest, config blob that does not match its digest),
    slowsibling/… (an index whose arm64 entry never arrives), badrealm/… (a bearer
    challenge naming a token service that is down), httpsrealm/… (a bearer challenge naming
    https://`redirect_to`), norealm/… (a bearer challenge without a realm), token503/…,
    token404/…, tokenbig/…, tokenjunk/…, tokenempty/… (a bearer challenge naming this
    server's token service, which answers 503, 404, a Content-Length over the limit, a body
    that is not JSON, an empty token), tokenendless/… (a chunked token answer without end,
    up to ENDLESS bytes), tokengzip/… (a token answer that is a gzip bomb), tokenredirect/…
    (the token service answers 307 to `redirect_to`), err403/…, err429/…, err400/…, big/…
    (a manifest declared 1 GiB long), gzipbomb/… (a manifest that is a gzip bomb), loop/…
    (a redirect to itself), redirect/… (307 to `redirect_to`), badproto/… (no HTTP at all),
    endless/… (a chunked manifest without end), bigconfig/… and endlessconfig/… (a manifest whose
    config blob is declared 1 GiB long, or chunked without end).
    POST bodies are kept in `posts`, bytes of endless bodies written in `streamed`."""

    def __init__(self, *, redirect_to: str = "") -> None:
        self.stop_event = threading.Event()
        self.requests: list[str] = []
        self.posts: list[tuple[str, bytes]] = []
        self.streamed = 0
        self.redirect_to = redirect_to
        self.dead_realm = f"127.0.0.1:{free_port()}"  # a token service that is down
        self._server = QuietHTTPServer(("127.0.0.1", 0), _FaultHandler)
        self._server.fault = self  # type: ignore[attr-defined]
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fault(self) -> FaultServer:
        return self.server.fault  # type: ignore[attr-defined,no-any-return]

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _declare_only(self, length: int, headers: dict[str, str] | None = None) -> None:
        """A 200 whose body never comes: the client must refuse it by its Content-Length."""
        self.send_response(200)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.close_connection = True

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.fault.posts.append((self.path, self.rfile.read(length)))
        self.do_GET()

    def do_GET(self) -> None:
        self.fault.requests.append(self.path)
        parts = self.path.split("/")
        mode = parts[2] if len(parts) > 2 else ""
        if parts[1] == "token":
            self._token(mode.partition("?")[0])
        elif mode in ("hang", "drip"):
            self._stall(mode)
        elif mode in ("big", "loop", "badproto", "gzipbomb", "redirect"):
            self._break_http(mode)
        elif mode in ("slowsibling", "baddigest"):
            self._bad_documents(mode)
        elif mode in ("endless", "bigconfig", "endlessconfig"):
            self._big_documents(mode)
        else:
            self._error(mode)

    def _stall(self, mode: str) -> None:
        if mode == "hang":
            self.fault.stop_event.wait(60)
            return
        self.send_response(200)
        self.send_header("Content-Type", OCI_MANIFEST)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(600):
            if self.fault.stop_event.wait(0.1):
                return
            with contextlib.suppress(OSError):
                self.wfile.write(b" ")
                self.wfile.flush()

    def _break_http(self, mode: str) -> None:
        if mode == "big":
            self._declare_only(1 << 30, {"Content-Type": OCI_MANIFEST})
        elif mode == "loop":
            self._send(302, b"", {"Location": self.path})
        elif mode == "redirect":
            self._send(307, b"", {"Location": self.fault.redirect_to})
        elif mode == "gzipbomb":
            self._send(200, gzip_bomb(), {"Content-Type": OCI_MANIFEST, "Content-Encoding": "gzip"})
        else:
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            self.close_connection = True

    def _error(self, mode: str) -> None:
        if mode in ("err403", "err429", "err400"):
            self._send(int(mode[3:]), b"{}")
        elif mode == "err500":
            self._send(500, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}')
        elif mode == "garbage":
            self._send(200, b"\x00\xffnot json{{", {"Content-Type": OCI_MANIFEST})
        elif mode == "deny":
            challenge = {"WWW-Authenticate": 'Basic realm="fault"'}
            self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', challenge)
        elif mode == "missing":
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        elif mode == "badrealm":
            challenge = f'Bearer realm="http://{self.fault.dead_realm}/token",service="x"'
            self._send(401, b"{}", {"WWW-Authenticate": challenge})
        elif mode == "httpsrealm":
            challenge = f'Bearer realm="https://{self.fault.redirect_to}/token",service="x"'
            self._send(401, b"{}", {"WWW-Authenticate": challenge})
        elif mode == "norealm":
            self._send(401, b"{}", {"WWW-Authenticate": 'Bearer service="fault"'})
        elif mode.startswith("token"):
            challenge = f'Bearer realm="http://{self.fault.host}/token/{mode}",service="x"'
            self._send(401, b"{}", {"WWW-Authenticate": challenge})
        else:
            self._send(404, b"{}")

    def _token(self, kind: str) -> None:
        if kind == "token503":
            self._send(503, b"")
        elif kind == "token404":
            self._send(404, b"{}")
        elif kind == "tokenbig":
            self._declare_only(10 * 1024 * 1024)
        elif kind == "tokenjunk":
            self._send(200, b"not json")
        elif kind == "tokenendless":
            self._endless()
        elif kind == "tokengzip":
            self._send(200, gzip_bomb(), {"Content-Encoding": "gzip"})
        elif kind == "tokenredirect":
            self._send(307, b"", {"Location": self.fault.redirect_to})
        else:
            self._send(200, b'{"token": ""}')

    def _endless(self) -> None:
        """200, chunked, no Content-Length: 64 KiB chunks until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"%x\r\n%s\r\n" % (len(_FILLER), _FILLER)
        self.close_connection = True
        with contextlib.suppress(OSError):
            while self.fault.streamed < ENDLESS and not self.fault.stop_event.is_set():
                self.wfile.write(chunk)
                self.fault.streamed += len(_FILLER)

    def _big_documents(self, mode: str) -> None:
        if mode == "endless":
            self._endless()
        elif "/blobs/" not in self.path:
            self._manifest_of_config("sha256:" + "1" * 64, 1234)  # not what is sent
        elif mode == "bigconfig":
            self._declare_only(1 << 30)
        else:
            self._endless()

    def _bad_documents(self, mode: str) -> None:
        if mode == "slowsibling":
            config, amd64, index = slow_sibling_documents()
            if self.path.endswith(SLOW_SIBLING_ARM64):
                self.fault.stop_event.wait(60)
            elif self.path.endswith(digest_of(config)):
                self._send(200, config)
            elif self.path.endswith(digest_of(amd64)):
                self._send(200, amd64, {"Content-Type": OCI_MANIFEST})
            else:
                self._send(200, index, {"Content-Type": OCI_INDEX})
        elif "/blobs/" in self.path:
            self._send(200, b'{"config":{"Entrypoint":["/evil"]}}')
        else:
            self._manifest_of_config("sha256:" + "0" * 64, 10)

    def _manifest_of_config(self, digest: str, size: int) -> None:
        """An image manifest naming a config blob of `digest` and `size`, and no layers."""
        config = {"mediaType": "application/vnd.oci.image.config.v1+json"}
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**config, "digest": digest, "size": size},
            "layers": [],
        }
        self._send(200, json.dumps(body).encode(), {"Content-Type": OCI_MANIFEST})


ENDLESS = 128 << 20  # an endless body ends here, so that a client that reads it all survives
_FILLER = b" " * (64 << 10)


@functools.cache
def gzip_bomb() -> bytes:
    """128 MiB of spaces in ~128 KiB of gzip (httpx's decoder inflates a network read whole:
    64 KiB of this is 64 MiB), made without holding the 128 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = b" " * (1 << 20)
    return b"".join(packer.compress(megabyte) for _ in range(128)) + packer.flush()


class TcpListener:
    """A port that accepts TCP connections, counts them and says nothing: proof that a
    lookup did (or did not) connect somewhere."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.accepted = 0
        self._held: list[socket.socket] = []

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._socket.accept()
                self.accepted += 1
                self._held.append(connection)

    def stop(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()


class BlobStore:
    """Plain HTTP file server over a registry's storage directory, where distribution's
    redirect middleware sends blob GETs (as S3 would serve them); records each request's path
    and Authorization header."""

    def __init__(self, root: Path) -> None:
        self.requests: list[tuple[str, str | None]] = []
        store = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                store.requests.append((self.path, self.headers.get("Authorization")))
                super().do_GET()

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def running(server: FaultServer | TokenServer | TcpListener | BlobStore) -> Iterator[None]:
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
    """A .dockerconfigjson for ``host``, by default with the fixtures' credentials."""
    return registry.docker_config(host, user, password)
