"""/mutate under structurally mutated AdmissionReviews: every answer is 200 or 400, and nothing is
logged at error level (which is what the server's catch-all does with an unexpected exception).

The app is the one `podinit serve` runs (create_app over an Admitter), in-process, with a real
ImageResolver whose registry is an httpx.MockTransport and a PullSecretReader on a fake API, so
lookups, pull secrets and the pod's architecture are part of every admission.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from tests.server.mutator import cases
from webhook.core import ImageConfig, ImageOverride, InjectSettings
from webhook.registry import ImageResolver, ResolverSettings
from webhook.registry_lookups import PullSecretReader
from webhook.server.admission import Admitter
from webhook.server.app import create_app
from webhook.server.logs import JsonFormatter
from webhook.server.metrics import Metrics

SEED = 20240611
CASES = 5000
CONFIG = orjson.dumps({"config": {"Entrypoint": ["/bin/app"], "Cmd": ["--serve", "$(A)"]}})
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = orjson.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": CONFIG_DIGEST,
            "size": len(CONFIG),
        },
        "layers": [],
    }
)


def registry(request: httpx.Request) -> httpx.Response:
    """Every repository on every host holds the same image; anything else is not found."""
    path = request.url.path
    if path == "/v2/":
        return httpx.Response(200, json={})
    if "/manifests/" in path:
        headers = {"content-type": "application/vnd.oci.image.manifest.v1+json"}
        return httpx.Response(200, content=MANIFEST, headers=headers)
    if path.endswith(f"/blobs/{CONFIG_DIGEST}"):
        return httpx.Response(200, content=CONFIG)
    return httpx.Response(404)


class FakeCoreApi:
    """Secrets and ServiceAccounts as the kubernetes client returns them."""

    async def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        payload = json.dumps({"auths": {"registry.fuzz:5000": {"auth": "dTpw"}}})
        data = {".dockerconfigjson": base64.b64encode(payload.encode()).decode()}
        return SimpleNamespace(type="kubernetes.io/dockerconfigjson", data=data)

    async def read_namespaced_service_account(self, name: str, namespace: str) -> Any:
        return SimpleNamespace(image_pull_secrets=[SimpleNamespace(name="pull")])


class Records(logging.Handler):
    """Every record, each also formatted as `podinit serve` writes it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)  # a record the JSON formatter cannot write fails the test here
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def post(app: Any, body: bytes) -> tuple[int, bytes]:
    """One POST /mutate through the ASGI app, as uvicorn would make it."""
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop() if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mutate",
        "headers": [(b"content-type", b"application/json")],
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def fuzz(bodies: list[bytes]) -> list[tuple[int, bytes, bytes]]:
    settings = InjectSettings(
        image_overrides=(ImageOverride("example/*", ImageConfig(entrypoint=("/bin/sh",))),),
    )
    metrics = Metrics()
    async with ImageResolver(
        ResolverSettings(default_timeout=1.0), transport=httpx.MockTransport(registry)
    ) as resolver:
        reader = PullSecretReader(FakeCoreApi())
        admitter = Admitter(
            settings=settings, metrics=metrics, resolver=resolver, pull_secrets=reader
        )
        app = create_app(admitter=admitter, metrics=metrics, ready=lambda: True)
        answers = []
        for body in bodies:
            status, answer = await post(app, body)
            answers.append((status, body, answer))
        reader.close()
    return answers


def test_mutated_reviews_are_answered_200_or_400_without_an_error_logged(
    records: Records,
) -> None:
    bodies = cases(SEED, CASES)
    started = time.perf_counter()
    answers = asyncio.run(fuzz(bodies))
    elapsed = time.perf_counter() - started
    statuses = {status for status, _, _ in answers}
    unexpected = [(s, b[:300], a[:300]) for s, b, a in answers if s not in (200, 400)]
    assert not unexpected, unexpected[:3]
    errors = [r for r in records.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.getMessage(), records.format(r)[:2000]) for r in errors[:3]]
    # The mutations reach the core: most reviews are still answered, many pods still wrapped.
    assert statuses == {200, 400}
    wrapped = sum(b'"patch"' in a for _, _, a in answers)
    assert wrapped > CASES // 10
    assert elapsed < 30, f"{CASES} admissions took {elapsed:.1f} s"
