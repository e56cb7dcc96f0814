"""Bounds on what one client can hold: every request/response exchange must finish within
`requestTimeoutSeconds`, and at most `maxConnections` connections are served at once.

The apiserver is the only real client. It keeps connections alive between admissions (it
drops idle ones after 90 s; uvicorn's keep-alive timeout, 120 s, is left to close the rest),
and it gives up on an admission after the webhook's `timeoutSeconds` (≤ 30 s), dial and TLS
included. So a connection that is mid-exchange longer than that is one nobody waits on: a
client that sends its request line, headers or body too slowly or not at all (slowloris),
that never sends anything after the TLS handshake, or that never reads its answer. uvicorn
holds all of these forever (it arms no timer on a new connection, disarms its keep-alive
timer at the first byte of a request, and has no header or body timeout).

Here, per connection, an exchange has a deadline from the end of the TLS handshake, or from
the first byte after an idle keep-alive period, until its response has been sent: past it,
the connection is aborted (no 408: nobody reads it; the ASGI handler, if it runs, sees a
disconnect). An idle kept-alive connection has no deadline, only uvicorn's keep-alive timer.
Measured (a fake transport, 8 KB requests): ~1 µs of CPU per request on top of uvicorn's
~24 µs, against ~300 µs per admission.

The cap is checked when a connection has completed its handshake: one over `maxConnections`
is aborted at once, and connections already open (the apiserver's kept-alive ones) are left
alone. uvicorn's own `limit_concurrency` was not used: it accepts every connection and then
answers every *request* with 503 while the count of connections (or running requests) is at
the limit, including the requests the apiserver sends on its established connections, i.e.
a flood of idle connections would turn real admissions into 503s.

The TLS handshake comes before any of this: the protocol sees a connection only once it is
done. uvicorn passes no `ssl_handshake_timeout` to the event loop, whose default is 60 s, so
`bounded_tls_handshakes` supplies `requestTimeoutSeconds` as well; a connection mid-handshake
does not count toward the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook.server.metrics import Metrics

log = logging.getLogger("podinit.connections")
LOG_EVERY = 10.0  # seconds: closures are logged as a count at most this often


@dataclass(frozen=True)
class ConnectionLimits:
    request_timeout: float
    max_connections: int


class _Reporter:
    """Counts closed connections in the metrics and logs them as counts, at most one line
    every LOG_EVERY seconds, so that a flood of connections does not flood the log."""

    def __init__(self, metrics: Metrics, limits: ConnectionLimits) -> None:
        self.metrics = metrics
        self.limits = limits
        self.pending: dict[str, int] = {}
        self.last = -LOG_EVERY
        self.flush_scheduled = False

    def closed(self, reason: str, loop: asyncio.AbstractEventLoop) -> None:
        self.metrics.count_connection_closed(reason)
        self.pending[reason] = self.pending.get(reason, 0) + 1
        if self.flush_scheduled:
            return
        wait = self.last + LOG_EVERY - loop.time()
        if wait <= 0:
            self.flush(loop)
        else:
            self.flush_scheduled = True
            loop.call_later(wait, self.flush, loop)

    def flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flush_scheduled = False
        self.last = loop.time()
        pending, self.pending = self.pending, {}
        log.warning(
            "closed connections",
            extra={
                "closed": pending,
                "request_timeout_seconds": self.limits.request_timeout,
                "max_connections": self.limits.max_connections,
            },
        )


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the two bounds above; `guarded_protocol` makes the
    subclass that holds a server's limits and reporter."""

    _limits: ClassVar[ConnectionLimits]
    _reporter: ClassVar[_Reporter]
    # When the current exchange must be over (None: none under way), and the one timer
    # that checks it. The timer is not cancelled when an exchange ends but re-armed when it
    # fires, so that the admission path pays for no timer, only for reading the clock.
    _deadline: float | None = None
    _timer: asyncio.TimerHandle | None = None
    _receiving = False  # between the first byte of a request and its last

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._reporter.closed("over-limit", self.loop)
            transport.abort()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # the first byte after an idle keep-alive period
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._receiving = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._receiving = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._deadline = None
        # uvicorn starts a pipelined request here, or else arms its keep-alive timer.
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if pipelined or self._receiving:
            self._arm()  # the next exchange has begun already

    def _arm(self) -> None:
        self._deadline = self.loop.time() + self._limits.request_timeout
        if self._timer is None:
            self._timer = self.loop.call_later(self._limits.request_timeout, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._deadline is None or self.transport.is_closing():
            return
        left = self._deadline - self.loop.time()
        if left > 0:  # a later exchange than the one the timer was armed for
            self._timer = self.loop.call_later(left, self._check)
            return
        self._reporter.closed("request-timeout", self.loop)
        self.transport.abort()


def guarded_protocol(limits: ConnectionLimits, metrics: Metrics) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the two bounds above (pass it as `http=`)."""

    # A class per server: uvicorn instantiates `http=` itself, with no arguments of ours.
    class GuardedProtocol(_GuardedProtocol):
        _limits = limits
        _reporter = _Reporter(metrics, limits)

    return GuardedProtocol


@contextlib.contextmanager
def bounded_tls_handshakes(loop: asyncio.AbstractEventLoop, seconds: float) -> Iterator[None]:
    """Servers created on `loop` meanwhile give a TLS handshake `seconds`, not the loop's 60 s
    default: uvicorn creates its server with no way to pass the timeout."""
    create_server = loop.create_server
    loop.create_server = functools.partial(  # type: ignore[method-assign]
        create_server, ssl_handshake_timeout=seconds
    )
    try:
        yield
    finally:
        del loop.create_server
