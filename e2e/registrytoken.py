"""Token auth for the registry of e2e.registry: ``TokenIssuer`` mints the JWTs
distribution's token auth verifies (RS256 with an x5c chain) and gives the registry's
``auth`` section; ``TokenServer`` is the token endpoint a Bearer challenge names (users
get pull and push, anonymous pull on ``public/*`` only; the OAuth2 refresh-token grant
too)::

    issuer = TokenIssuer(tmp / "signer")
    with TokenServer(issuer, users={"alice": "pw"}) as tokens:
        registry = start_registry(tmp / "registry", ca=ca, auth=issuer.auth(tokens.realm))
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TokenIssuer:
    """Mints JWTs in the shape distribution's token auth verifies (RS256, x5c chain),
    signed by a self-signed RSA certificate written to ``directory/signer.pem``."""

    def __init__(
        self,
        directory: Path,
        service: str = "podinit-test-registry",
        issuer: str = "podinit-test-issuer",
    ) -> None:
        self.service = service
        self.issuer = issuer
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # No ExtendedKeyUsage: Go's chain verification of the token's x5c then accepts it.
        signer = (
            x509.CertificateBuilder()
            .subject_name(_name("podinit test token signer"))
            .issuer_name(_name("podinit test token signer"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._der = signer.public_bytes(serialization.Encoding.DER)
        self.signer_cert = directory / "signer.pem"
        self.signer_cert.write_bytes(signer.public_bytes(serialization.Encoding.PEM))

    def auth(self, realm: str) -> dict[str, Any]:
        """The registry's ``auth`` section for tokens from the endpoint at ``realm``."""
        return {
            "token": {
                "realm": realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.signer_cert),
            }
        }

    def mint(self, subject: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._der).decode()]}
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
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """Clients that give up (deadlines, cancelled fetches) reset connections on purpose."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class TokenServer:
    """GET /token?service=…&scope=… — users get pull+push everywhere, anonymous gets pull on
    `public/*` only, wrong passwords get 401; POST is the OAuth2 refresh-token grant."""

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

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> TokenServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
