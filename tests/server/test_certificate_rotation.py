"""Serving certificates swapped the way a Secret volume swaps them, while requests keep coming."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from pathlib import Path

import httpx
from cryptography import x509

from tests.server.harness import Certs, Webhook, run_webhook


class SecretVolume:
    """The kubelet's layout: files are symlinks through `..data`, which is swapped atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0

    def publish(self, cert: Path, key: Path) -> None:
        self.generation += 1
        data = self.root / f"..{self.generation}"
        data.mkdir()
        (data / "tls.crt").write_bytes(cert.read_bytes())
        (data / "tls.key").write_bytes(key.read_bytes())
        staged = self.root / "..data_tmp"
        staged.symlink_to(data.name)
        os.replace(staged, self.root / "..data")
        for name in ("tls.crt", "tls.key"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")

    @property
    def files(self) -> tuple[Path, Path]:
        return self.root / "tls.crt", self.root / "tls.key"


def served_certificate(webhook: Webhook) -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(webhook.ca_file))
    port = int(webhook.url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def first_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def wait_for(condition: object, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_a_rotated_certificate_is_served_without_a_restart_or_a_failed_handshake(
    certs: Certs, tmp_path: Path
) -> None:
    volume = SecretVolume(tmp_path / "tls")
    volume.publish(*certs.issue("old"))
    new_cert, new_key = certs.issue("new")
    failures: list[str] = []
    successes = 0
    stop = threading.Event()

    with run_webhook(certs, tmp_path, cert=volume.files) as webhook:

        def hammer() -> None:
            nonlocal successes
            context = ssl.create_default_context(cafile=str(webhook.ca_file))
            while not stop.is_set():
                try:  # a new connection each time, so every request is a fresh handshake
                    with httpx.Client(verify=context, timeout=10) as client:
                        client.get(f"{webhook.url}/healthz").raise_for_status()
                    successes += 1
                except httpx.HTTPError as error:
                    failures.append(repr(error))

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        volume.publish(new_cert, new_key)
        rotated = wait_for(lambda: served_certificate(webhook) == first_certificate(new_cert))
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join()
        pid = webhook.process.pid
        assert webhook.process.poll() is None and pid == webhook.process.pid

    assert rotated, "the new certificate was never served"
    assert failures == []
    assert successes > 20


def test_a_mismatched_certificate_and_key_are_rejected_and_the_old_pair_keeps_serving(
    certs: Certs, tmp_path: Path
) -> None:
    volume = SecretVolume(tmp_path / "tls")
    old_cert, old_key = certs.issue("old")
    volume.publish(old_cert, old_key)
    new_cert, _ = certs.issue("new")
    with run_webhook(certs, tmp_path, cert=volume.files) as webhook:
        volume.publish(new_cert, old_key)
        assert wait_for(lambda: any("rejected" in e.get("msg", "") for e in webhook.logs()))
        assert served_certificate(webhook) == first_certificate(old_cert)
        with webhook.client() as client:
            assert client.get("/readyz").status_code == 200


def test_certificate_files_that_vanish_are_reported_and_the_old_pair_keeps_serving(
    certs: Certs, tmp_path: Path
) -> None:
    volume = SecretVolume(tmp_path / "tls")
    old_cert, old_key = certs.issue("old")
    volume.publish(old_cert, old_key)
    with run_webhook(certs, tmp_path, cert=volume.files) as webhook:
        (volume.root / "..data").unlink()  # every file now a dangling symlink
        assert wait_for(
            lambda: any("cannot read certificate files" in e.get("msg", "") for e in webhook.logs())
        )
        assert served_certificate(webhook) == first_certificate(old_cert)
        with webhook.client() as client:
            assert client.get("/readyz").status_code == 200
