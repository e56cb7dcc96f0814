"""Serving certificates swapped the way a Secret volume swaps them, while requests keep coming."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from e2e.pki import KeyType
from tests.server.harness import Certs, run_webhook
from tests.server.served_certificates import (
    SecretVolume,
    first_certificate,
    served_certificate,
    wait_for,
)


@pytest.mark.parametrize("key_type", ["ec", "rsa"], ids=["same-key-type", "ecdsa-to-rsa"])
def test_a_rotated_certificate_is_served_without_a_restart_or_a_failed_handshake(
    key_type: KeyType, certs: Certs, tmp_path: Path
) -> None:
    volume = SecretVolume(tmp_path / "tls")
    volume.publish(*certs.issue("old"))
    new = certs.ca.issue_server("new", key_type=key_type)
    new_cert, new_key = new.cert, new.key
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
