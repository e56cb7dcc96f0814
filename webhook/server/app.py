"""The HTTP surface: /mutate, /healthz, /readyz, /metrics. Nothing here answers 500.

/mutate is a plain ASGI handler dispatched ahead of FastAPI: it is the one route on the
apiserver's critical path, and FastAPI's router, middleware stack and Request/Response objects
cost more CPU per admission than podinit's own work (docs/performance.md, "Webhook"). FastAPI
serves the operational routes, where that cost does not matter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from webhook.server.admission import Admitter
from webhook.server.metrics import Metrics
from webhook.server.review import BadReview, parse

MAX_BODY = 3 * 1024 * 1024  # the apiserver's own request limit for objects
log = logging.getLogger("podinit.http")

_JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The client disconnected before sending the whole body: nobody to answer."""


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused (BadReview) as soon as it is known to exceed MAX_BODY, whether
    the length is declared or the body is streamed without one."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise BadReview(f"body is over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadReview(f"body is over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    # With a length, the server sends one plain body instead of chunked encoding.
    headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class MutateEndpoint:
    """POST /mutate: an AdmissionReview in, an AdmissionReview out (or 400 naming the problem)."""

    def __init__(self, *, admitter: Admitter, metrics: Metrics) -> None:
        self.admitter = admitter
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _answer(
                send,
                405,
                orjson.dumps({"error": f"{scope['method']} is not allowed, use POST"}),
                (b"allow", b"POST"),
            )
            return
        try:
            review = parse(await read_body(scope, receive))
        except BadReview as error:
            self.metrics.count_admission("bad-request")
            await _answer(send, 400, orjson.dumps({"error": str(error)}))
            return
        except ClientGone:
            return
        await _answer(send, 200, orjson.dumps(await self.admitter.admit(review)))


def operational_app(*, metrics: Metrics, ready: Callable[[], bool]) -> FastAPI:
    app = FastAPI(title="podinit", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b"ok", media_type="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        if ready():
            return Response(b"ok", media_type="text/plain")
        return Response(b"certificates not loaded", status_code=503, media_type="text/plain")

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def create_app(*, admitter: Admitter, metrics: Metrics, ready: Callable[[], bool]) -> ASGIApp:
    mutate = MutateEndpoint(admitter=admitter, metrics=metrics)
    rest = operational_app(metrics=metrics, ready=ready)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mutate":
            await mutate(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app
