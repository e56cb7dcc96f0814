"""The servers of the webhook benchmark: the no-op baselines (FastAPI and plain ASGI, on
asyncio or uvloop, through podinit's own uvicorn settings), run as `bench_webhook.py _serve`
children; starting and pinning them; and the optional control plane for pull-secret reads."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

SERVER_CPU, LOAD_CPU = 0, 1
JSON = "application/json"


# -- the no-op baseline and the uvloop variants (run as subprocesses of this script) -----------


def _noop_app() -> Any:
    app = FastAPI(title="noop", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        review = orjson.loads(await request.body())
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
        return Response(orjson.dumps(answer), media_type=JSON)

    @app.get("/readyz")
    async def readyz() -> Response:
        return Response(b"ok", media_type="text/plain")

    return app


def _raw_noop_app() -> Any:
    """The same no-op work as a plain ASGI app, the way podinit serves /mutate: the floor of
    the stack without FastAPI (diagnostic)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/readyz":
            answer = b"ok"
        else:
            review = orjson.loads(body)
            answer = orjson.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": review["request"]["uid"], "allowed": True},
                }
            )
        headers = [(b"content-type", JSON.encode()), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def _run(main: Any, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    else:
        asyncio.run(main)  # what webhook/cli/main.py does for `podinit serve`


def serve_child(args: argparse.Namespace) -> None:
    import uvicorn

    from webhook.config import load
    from webhook.server import serve as serving

    config = load(
        None,
        host="127.0.0.1",
        port=args.port,
        tls_cert_file=Path(args.cert),
        tls_key_file=Path(args.key),
    )
    if args.app in ("noop", "rawnoop"):
        app = _noop_app() if args.app == "noop" else _raw_noop_app()
        server_config = serving.uvicorn_config(app, config, *serving.certificate_files(config))
        main = uvicorn.Server(server_config).serve()
    else:
        main = serving.serve(config)  # the real server, only on another loop
    _run(main, args.loop)


# -- servers -----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    has_metrics: bool

    def metrics(self, client: Any) -> dict[str, float]:
        text = client.get(f"{self.url}/metrics").text
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
        return values


def _pin(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


@contextmanager
def start_server(
    name: str,
    command: list[str],
    *,
    port: int,
    env: dict[str, str],
    tmp: Path,
    ca: ssl.SSLContext,
    cpu: int | None,
    has_metrics: bool,
) -> Iterator[Server]:
    from e2e.serve import running

    url, log = f"https://127.0.0.1:{port}", tmp / f"{name}.log"
    with running(
        command, env=env, log_file=log, url=url, ca=ca, preexec_fn=_pin(cpu), ready_within=60
    ) as process:
        yield Server(name, url, process, log, has_metrics)


def start_apiserver(stack: ExitStack) -> Any:
    """A real control plane (tests/e2e's) with the pod's namespace, its ServiceAccount and a
    pull secret, so `podinit serve` reads credentials as it does in a cluster with the
    default `pullSecretLookups: true`. Pinned to the load CPU: it idles during the runs (the
    reads are cached for 30 s). None, said why, when the tools are missing."""
    from e2e.controlplane import ControlPlane
    from e2e.tools import ToolsMissing, find_tools

    try:
        tools = find_tools()
    except ToolsMissing as missing:
        print(f"no apiserver, pull-secret lookups off: {missing}", flush=True)
        return None
    control_plane = ControlPlane.start(tools)
    stack.callback(control_plane.stop)
    for process in control_plane.procs:
        os.sched_setaffinity(process.popen.pid, {LOAD_CPU})
    control_plane.kubectl("create", "namespace", "shop")
    control_plane.kubectl("label", "namespace", "shop", "podinit.dev/inject=enabled")
    config = {"auths": {"registry.shop.example": {"auth": "c2hvcDpzZWNyZXQ="}}}
    control_plane.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "shop-registry", "namespace": "shop"},
            "stringData": {".dockerconfigjson": json.dumps(config)},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "shop", "namespace": "shop"},
            "imagePullSecrets": [{"name": "shop-registry"}],
        },
        _webhook_configuration(),
    )
    return control_plane


def _webhook_configuration() -> dict[str, Any]:
    """The chart's selection (`webhookConfiguration: podinit`, the default): the server's
    namespace gate reads it and serves `shop` from its set, as in a cluster. The apiserver
    never calls it: the run creates no pods through it."""
    selector = {"matchLabels": {"podinit.dev/inject": "enabled"}}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "podinit"},
        "webhooks": [
            {
                "name": "pods.podinit.dev",
                "clientConfig": {"url": "https://127.0.0.1:1/mutate"},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": selector,
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }
