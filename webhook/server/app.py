"""The HTTP surface: /mutate, /healthz, /readyz, /metrics. Nothing here answers 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from fastapi import FastAPI, Request, Response

from webhook.server.admission import Admitter
from webhook.server.metrics import Metrics
from webhook.server.review import BadReview, parse

MAX_BODY = 3 * 1024 * 1024  # the apiserver's own request limit for objects
JSON = "application/json"
log = logging.getLogger("podinit.http")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > MAX_BODY:
            raise BadReview(f"body is over {MAX_BODY} bytes")
        return await request.body()  # the server stops at the declared length
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadReview(f"body is over {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(*, admitter: Admitter, metrics: Metrics, ready: Callable[[], bool]) -> FastAPI:
    app = FastAPI(title="podinit", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        try:
            review = parse(await _read_body(request))
        except BadReview as error:
            metrics.count_admission("bad-request")
            return Response(orjson.dumps({"error": str(error)}), status_code=400, media_type=JSON)
        return Response(orjson.dumps(await admitter.admit(review)), media_type=JSON)

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
