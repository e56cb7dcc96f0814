"""A real `podinit serve` process on 127.0.0.1 with real TLS, for the server tests
(started by e2e.serve.running), and the certificates it serves (e2e.pki, as everywhere)."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from e2e.pki import CertAuthority
from e2e.processes import free_port
from e2e.reviews import pod_review
from e2e.serve import running, serve_argv


@dataclass
class Certs:
    ca: CertAuthority
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.ca.cert

    def issue(self, name: str) -> tuple[Path, Path]:
        """A serving certificate for 127.0.0.1/localhost, written as `name`.crt/.key."""
        issued = self.ca.issue_server(name)
        return issued.cert, issued.key


def make_certs(directory: Path) -> Certs:
    return Certs(CertAuthority(directory, "test"), directory)


@dataclass
class Webhook:
    url: str
    ca_file: Path
    process: subprocess.Popen[bytes]
    log_file: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(base_url=self.url, verify=context, timeout=30, **kwargs)

    def logs(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for line in self.log_file.read_text().splitlines()
            if line.startswith("{")
        ]


@contextmanager
def run_webhook(
    certs: Certs,
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    cert: tuple[Path, Path] | None = None,
) -> Iterator[Webhook]:
    cert_file, key_file = cert or certs.issue("serving")
    port = free_port()
    log_file = tmp / f"webhook-{port}.log"
    url = f"https://127.0.0.1:{port}"
    command = serve_argv(port, "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file))
    ca = ssl.create_default_context(cafile=str(certs.ca_file))
    settings = {"PODINIT_TLS_RELOAD_SECONDS": "0.2", **(env or {})}
    with running(command, env=settings, log_file=log_file, url=url, ca=ca) as process:
        yield Webhook(url, certs.ca_file, process, log_file)


review = pod_review


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(base64.b64decode(response["response"]["patch"]))  # type: ignore[no-any-return]
