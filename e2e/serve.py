"""A server process on 127.0.0.1 that says when it is ready on ``/readyz`` over TLS:
``podinit serve`` (``serve_argv``) or a benchmark's baseline server. Shared by the
server tests, the benchmarks and ``make demo``::

    with running(serve_argv(port, ...), env={"PODINIT_...": ...}, log_file=log,
                 url=f"https://127.0.0.1:{port}", ca=ssl_context) as process:
        ...                                   # /readyz answered 200
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from e2e.processes import StartupError, wait_until

ROOT = Path(__file__).resolve().parents[1]


def serve_argv(port: int, *extra: str) -> list[str]:
    """`podinit serve` on 127.0.0.1:port, as the tests start it."""
    serve = [sys.executable, "-m", "webhook.cli.main", "serve"]
    return [*serve, "--host", "127.0.0.1", "--port", str(port), *extra]


@contextmanager
def running(
    command: list[str],
    *,
    env: dict[str, str],
    log_file: Path,
    url: str,
    ca: ssl.SSLContext,
    preexec_fn: Callable[[], None] | None = None,
    ready_within: float = 30,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process with only the given PODINIT_* settings (the rest of os.environ
    is kept), run from the repository root with its output in ``log_file``, yielded once
    ``url``/readyz answers 200 (RuntimeError with the log's end if it exits or is not
    ready within ``ready_within`` seconds), stopped with SIGTERM (SIGKILL after 15 s)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command,
            env={**environment, **env},
            stdout=log,
            stderr=log,
            cwd=ROOT,
            preexec_fn=preexec_fn,
        )
    try:
        _wait_ready(process, url, ca, log_file, ready_within)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, ca: ssl.SSLContext, log: Path, within: float
) -> None:
    with httpx.Client(base_url=url, verify=ca, timeout=5) as client:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(f"{url}/readyz", ready, within, interval=0.1)
        except StartupError:
            raise RuntimeError(f"not ready in {within:g}s:\n{log.read_text()[-3000:]}") from None
