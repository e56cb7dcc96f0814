"""A certificate pair that cannot be served (half written, a key that is not the certificate's,
garbage) leaves the old certificate served; the failure is counted and logged once, and the
next good pair is picked up: the watcher lives on."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.pki import IssuedCert
from tests.server.harness import Certs, Webhook, run_webhook
from tests.server.served_certificates import (
    SecretVolume,
    exports_expiry_of,
    fingerprint,
    first_certificate,
    reloads,
    served_certificate,
    wait_for,
)

Broken = Callable[[IssuedCert, IssuedCert], tuple[bytes, bytes]]

# (certificate, key) files made from the new pair and another one.
BROKEN: dict[str, Broken] = {
    "a key that is not the certificate's": lambda new, other: (new.cert_pem, other.key_pem),
    "a key of another type than the certificate's": lambda new, other: (
        other.cert_pem,
        new.key_pem,
    ),
    "a half-written certificate": lambda new, _: (
        new.cert_pem[: len(new.cert_pem) // 2],
        new.key_pem,
    ),
    "a half-written key": lambda new, _: (new.cert_pem, new.key_pem[: len(new.key_pem) // 2]),
    "garbage for a key": lambda new, _: (new.cert_pem, b"garbage\n"),
    "an empty certificate": lambda new, _: (b"", new.key_pem),
}


def rejections(webhook: Webhook) -> list[dict[str, object]]:
    return [e for e in webhook.logs() if "rejected" in str(e.get("msg", ""))]


def serves(webhook: Webhook, issued: IssuedCert) -> bool:
    return fingerprint(served_certificate(webhook)) == fingerprint(first_certificate(issued.cert))


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_a_pair_that_cannot_be_served_keeps_the_old_one_is_counted_and_logged_once_and_the_next_good_pair_is_served(  # noqa: E501
    broken: Broken, certs: Certs, tmp_path: Path
) -> None:
    volume = SecretVolume(tmp_path / "tls")
    old = certs.ca.issue_server("old")
    new = certs.ca.issue_server("new", key_type="rsa")
    other = certs.ca.issue_server("other")
    volume.publish(old.cert, old.key)
    with run_webhook(certs, tmp_path, cert=volume.files) as webhook:
        assert reloads(webhook, "ok") == 1 and reloads(webhook, "failed") == 0
        cert, key = broken(new, other)
        volume.publish_bytes(cert=cert, key=key)
        assert wait_for(lambda: reloads(webhook, "failed") == 1), "the failure was not counted"
        assert serves(webhook, old) and exports_expiry_of(webhook, old)
        time.sleep(1)  # five reload intervals: the same bad pair is not counted or logged again
        assert reloads(webhook, "failed") == 1
        [record] = rejections(webhook)
        assert record["level"] == "error"

        volume.publish(new.cert, new.key)
        assert wait_for(lambda: serves(webhook, new)), "the watcher stopped"
        assert exports_expiry_of(webhook, new)
        assert reloads(webhook, "ok") == 2 and reloads(webhook, "failed") == 1
        assert webhook.process.poll() is None
