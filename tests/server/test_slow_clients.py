"""Clients that start an exchange and do not finish it are cut off after requestTimeoutSeconds,
connections beyond maxConnections are closed at once, and neither slows or drops a real
admission or an idle kept-alive connection (webhook/server/connections.py)."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.server.harness import Certs, Webhook, review, run_webhook

TIMEOUT = 1.5  # requestTimeoutSeconds in these tests
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "example/app:1", "command": ["app"]}]},
}
BODY = json.dumps(review(POD)).encode()
HEAD = (
    b"POST /mutate HTTP/1.1\r\nhost: podinit\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(BODY)
)


@pytest.fixture(scope="module")
def guarded(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    settings = {
        "PODINIT_TIMEOUT_SECONDS": "1",
        "PODINIT_REQUEST_TIMEOUT_SECONDS": str(TIMEOUT),
        "PODINIT_MAX_CONNECTIONS": "400",
    }
    with run_webhook(certs, tmp_path_factory.mktemp("guarded"), env=settings) as webhook:
        yield webhook


def connect(webhook: Webhook) -> ssl.SSLSocket:
    host, port = webhook.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(webhook.ca_file))
    raw = socket.create_connection((host, int(port)), timeout=10)
    return context.wrap_socket(raw, server_hostname=host)


def read_response(tls: ssl.SSLSocket) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a content-length: status and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        assert chunk, f"closed before the headers: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(": ") for h in lines[1:]) if k == "content-length"
    )
    while len(body) < length:
        chunk = tls.recv(65536)
        assert chunk, "closed within the body"
        body += chunk
    return int(lines[0].split()[1]), body


def admit(tls: ssl.SSLSocket) -> float:
    """A real admission on this connection; its latency in seconds."""
    started = time.monotonic()
    tls.sendall(HEAD + BODY)
    status, body = read_response(tls)
    assert status == 200 and json.loads(body)["response"]["allowed"] is True
    return time.monotonic() - started


class Watcher:
    """Notes when the server closes each connection it is given, from a thread of its own, so
    that closes are timed while the test goes on opening connections and admitting."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.closed: dict[ssl.SSLSocket, float] = {}
        self.started: dict[ssl.SSLSocket, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def watch(self, tls: ssl.SSLSocket, started: float) -> None:
        """From now on nothing is sent on `tls`; `started`: when its exchange began."""
        tls.setblocking(False)
        with self.lock:
            self.started[tls] = started
            self.selector.register(tls, selectors.EVENT_READ)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                ready = self.selector.select(timeout=0) if self.started else []
                for key, _ in ready:
                    tls = key.fileobj
                    assert isinstance(tls, ssl.SSLSocket)
                    try:
                        data = tls.recv(4096)
                    except ssl.SSLWantReadError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.closed[tls] = time.monotonic() - self.started[tls]
                        self.selector.unregister(tls)
            time.sleep(0.01)

    def wait(self, within: float) -> dict[ssl.SSLSocket, float]:
        """Seconds from each connection's start until its close (inf if still open)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.closed) == len(self.started):
                    break
            time.sleep(0.05)
        self.stop.set()
        self.thread.join()
        self.selector.close()
        return {tls: self.closed.get(tls, float("inf")) for tls in self.started}


def admit_then(tls: ssl.SSLSocket, data: bytes) -> None:
    admit(tls)
    tls.sendall(data)


# What an unfinished exchange looks like: what the client sends after the handshake.
STALLS: dict[str, Callable[[ssl.SSLSocket], None]] = {
    "nothing": lambda tls: None,
    "part of the request line": lambda tls: tls.sendall(b"POST /mut"),
    "part of the headers": lambda tls: tls.sendall(HEAD[:40]),
    "headers, no body": lambda tls: tls.sendall(HEAD),
    "headers, part of the body": lambda tls: tls.sendall(HEAD + BODY[:100]),
    "a whole admission, then part of the next": lambda tls: admit_then(tls, HEAD),
}


def test_unfinished_exchanges_are_closed_while_real_admissions_go_on(guarded: Webhook) -> None:
    per_kind = 50  # 300 in all, as in the reproduction
    watcher = Watcher()
    kinds: dict[ssl.SSLSocket, str] = {}
    busy: list[float] = []
    done = threading.Event()

    def real_admissions() -> None:
        """Admissions all along, on a kept-alive connection of their own."""
        with connect(guarded) as real:
            while not done.is_set():
                busy.append(admit(real))
                time.sleep(0.05)

    cut_off: list[float] = []

    def drip(tls: ssl.SSLSocket, started: float) -> None:
        """Slowloris proper: a header byte every 0.2 s, for longer than the timeout; notes
        when sending fails (the server closed the connection)."""
        for byte in HEAD[: int(TIMEOUT / 0.2) + 10]:
            try:
                tls.sendall(bytes([byte]))
            except OSError:
                cut_off.append(time.monotonic() - started)
                return
            time.sleep(0.2)

    admissions = threading.Thread(target=real_admissions, daemon=True)
    admissions.start()
    dripper = connect(guarded)
    drip_thread = threading.Thread(target=drip, args=(dripper, time.monotonic()), daemon=True)
    drip_thread.start()
    try:
        for kind, stall in STALLS.items():
            for _ in range(per_kind):
                tls = connect(guarded)
                stall(tls)
                kinds[tls] = kind
                watcher.watch(tls, time.monotonic())
        waited = watcher.wait(within=TIMEOUT + 3)
        drip_thread.join()
    finally:
        done.set()
        admissions.join()
        for tls in kinds:
            tls.close()
    late = {kinds[tls]: w for tls, w in waited.items() if not TIMEOUT - 0.1 < w < TIMEOUT + 1}
    assert late == {}, "closed too early or too late (s since the exchange began)"
    # Sending all along did not keep the dripping client's connection open.
    dripper.close()
    assert len(cut_off) == 1 and TIMEOUT < cut_off[0] < TIMEOUT + 1
    assert len(busy) > 20 and max(busy) < 0.5, busy
    with guarded.client() as client:
        metrics = client.get("/metrics").text
    closed = len(kinds) + 1
    assert f'podinit_connections_closed_total{{reason="request-timeout"}} {closed}.0' in metrics


def test_a_client_that_never_finishes_its_tls_handshake_is_closed_after_the_timeout(
    guarded: Webhook,
) -> None:
    host, port = guarded.url.removeprefix("https://").split(":")
    # What a client sends before stalling: nothing, or the first bytes of a ClientHello record.
    stalls = {"nothing": b"", "part of a ClientHello": b"\x16\x03\x01\x02\x00\x01\x00"}
    opened: list[tuple[str, socket.socket, float]] = []
    for kind, data in stalls.items():
        for _ in range(10):
            raw = socket.create_connection((host, int(port)), timeout=TIMEOUT + 10)
            raw.sendall(data)
            opened.append((kind, raw, time.monotonic()))
    late: dict[str, float] = {}
    for kind, raw, started in opened:
        with raw:
            with contextlib.suppress(ConnectionResetError):
                assert raw.recv(4096) == b"", "the server answered a half-done handshake"
            waited = time.monotonic() - started
        if not TIMEOUT - 0.1 < waited < TIMEOUT + 1:
            late[kind] = waited
    assert late == {}, "closed too early or too late (s since the connection was opened)"


def test_an_idle_kept_alive_connection_is_not_closed(guarded: Webhook) -> None:
    with connect(guarded) as tls:
        admit(tls)
        time.sleep(TIMEOUT * 2)
        admit(tls)  # the same connection, still open


def test_connections_beyond_the_limit_are_closed_and_open_ones_keep_working(
    certs: Certs, tmp_path: Path
) -> None:
    limit = 5
    settings = {"PODINIT_MAX_CONNECTIONS": str(limit), "PODINIT_TIMEOUT_SECONDS": "1"}
    with run_webhook(certs, tmp_path, env=settings) as webhook:
        time.sleep(0.3)  # the readiness probe's connection is gone
        kept = [connect(webhook) for _ in range(limit)]
        try:
            for tls in kept:
                admit(tls)
            extra = connect(webhook)
            watcher = Watcher()
            watcher.watch(extra, time.monotonic())
            assert watcher.wait(within=2)[extra] < 0.5
            extra.close()
            assert max(admit(tls) for tls in kept) < 0.5
            kept.pop().close()
            time.sleep(0.3)
            kept.append(connect(webhook))
            admit(kept[-1])
        finally:
            for tls in kept:
                tls.close()
        logs = [line for line in webhook.logs() if line["msg"] == "closed connections"]
    assert logs and logs[0]["closed"] == {"over-limit": 1}
