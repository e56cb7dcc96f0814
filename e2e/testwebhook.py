"""A tiny mutating admission webhook for the end-to-end tests (not podinit's).

It serves HTTPS on 127.0.0.1 with a cert from a ``CertAuthority`` and answers every
AdmissionReview with the JSON patch returned by ``mutate(request)`` (or none). Every
request it receives is recorded in ``calls``. Used to prove the harness wiring (a real
apiserver calling a URL on loopback and trusting its caBundle) and as the "second
webhook" of the reinvocation scenario::

    hook = TestWebhook(ca, lambda req: [{"op": "add", "path": "/metadata/labels/x",
                                          "value": "y"}])
    with hook:
        cp.apply(hook.configuration("second-webhook", reinvocation_policy="IfNeeded"))
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from e2e.pki import CertAuthority
from e2e.webhookconfig import mutating_webhook_configuration

Patch = list[dict[str, Any]]


class TestWebhook:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        ca: CertAuthority,
        mutate: Callable[[dict[str, Any]], Patch | None],
        *,
        name: str = "test-webhook",
        warnings: Callable[[dict[str, Any]], list[str]] | None = None,
    ) -> None:
        self.ca = ca
        self.mutate = mutate
        self.warnings = warnings
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        cert = ca.issue_server(name)
        self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ssl.load_cert_chain(str(cert.cert), str(cert.key))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = self._ssl.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"https://127.0.0.1:{port}/mutate"

    def start(self) -> TestWebhook:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> TestWebhook:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def configuration(self, name: str, **kwargs: Any) -> dict[str, Any]:
        """A MutatingWebhookConfiguration pointing at this server (see
        ``mutating_webhook_configuration`` for the keyword arguments)."""
        return mutating_webhook_configuration(name, self.url, self.ca.ca_bundle, **kwargs)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.calls)

    def _review(self, review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        with self._lock:
            self.calls.append(request)
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        patch = self.mutate(request)
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        if self.warnings:
            response["warnings"] = self.warnings(request)
        return {
            "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": response,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.dumps(hook._review(json.loads(self.rfile.read(length))))
                    status = 200
                except Exception as e:  # report to the apiserver, which logs it
                    body, status = json.dumps({"error": repr(e)}), 500
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
