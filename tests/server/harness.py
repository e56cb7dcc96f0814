"""A real `podinit serve` process on 127.0.0.1 with real TLS, for the server tests."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trustme

from webhook.server.review import pod_review

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Certs:
    ca: trustme.CA
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def issue(self, name: str) -> tuple[Path, Path]:
        """A serving certificate for 127.0.0.1/localhost, written as `name`.crt/.key."""
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert_file, key_file = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        key_file.write_bytes(cert.private_key_pem.bytes())
        return cert_file, key_file


def make_certs(directory: Path) -> Certs:
    certs = Certs(trustme.CA(), directory)
    certs.ca.cert_pem.write_to_path(str(certs.ca_file))
    return certs


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


def serve_argv(port: int, *extra: str) -> list[str]:
    """`podinit serve` on 127.0.0.1:port, as the tests start it."""
    serve = [sys.executable, "-m", "webhook.cli.main", "serve"]
    return [*serve, "--host", "127.0.0.1", "--port", str(port), *extra]


@contextmanager
def running(
    command: list[str],
    *,
    env: dict[str, str],
    log_file: Path,
    url: str,
    ca: ssl.SSLContext,
    preexec_fn: Callable[[], None] | None = None,
    ready_within: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process with only the given PODINIT_* settings, yielded once `url`/readyz
    answers 200, stopped with SIGTERM (SIGKILL after 15 s). Used by the tests and the bench."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command,
            env={**environment, **env},
            stdout=log,
            stderr=log,
            cwd=ROOT,
            preexec_fn=preexec_fn,
        )
    try:
        _wait_ready(process, url, ca, log_file, ready_within)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, ca: ssl.SSLContext, log: Path, within: float
) -> None:
    deadline = time.monotonic() + within
    with httpx.Client(base_url=url, verify=ca, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"not ready in {within:g}s:\n{log.read_text()[-3000:]}")


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
