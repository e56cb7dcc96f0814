"""Processes the harness starts and waits for: free loopback ports, ``spawn`` (own
process group, parent-death signal, output to a log file), ``Process`` (alive, log tail,
stop the whole group) and ``wait_until`` (poll a check, failing early if a process it
depends on has died).

    proc = spawn("etcd", ["etcd", ...], logdir / "etcd.log")
    wait_until("etcd /health", lambda: http_ok(url), 30, [proc])
    proc.stop()                               # SIGTERM the group, then SIGKILL

A spawned process gets SIGKILL from the kernel when the thread that started it dies
(``setpriv --pdeathsig KILL``), so a killed test run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it before it is
    bound: callers retry a start that fails with ``address already in use``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PR_SET_PDEATHSIG = 1
_SETPRIV = shutil.which("setpriv")


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG SIGKILL for the calling process (a preexec_fn: it runs in the
    child between fork and exec)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def with_parent_death_signal(
    argv: list[str],
) -> tuple[list[str], Callable[[], None] | None]:
    """SIGKILL the child when the thread that spawned it dies: util-linux ``setpriv``
    (no Python code between fork and exec, safe with threads), else a preexec_fn.
    Returns the argv to run and the preexec_fn to pass to ``subprocess.Popen``."""
    if _SETPRIV:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    return argv, die_with_parent


@dataclass
class Process:
    """A process started by ``spawn``: its own process group, output in ``log``."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if still there after ``timeout``."""
        pgid = self.popen.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure nothing else in its group survives it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(1)


def spawn(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start ``argv`` in its own process group (``Process.stop`` kills the group) with a
    parent-death signal, stdin from /dev/null and stdout and stderr appended to ``log``
    after a ``# argv`` line. ``env`` defaults to os.environ."""
    args = [str(a) for a in argv]
    with log.open("ab") as out:
        out.write(f"# {' '.join(args)}\n".encode())
        out.flush()
        cmd, preexec = with_parent_death_signal(args)
        popen = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,  # own process group, killed as a whole
            preexec_fn=preexec,
        )
    return Process(name, args, log, popen)


class StartupError(RuntimeError):
    """A process exited, or a condition was not met in time (``wait_until``); the
    message carries the log tails."""


def port_taken(e: BaseException) -> bool:
    """``e`` is a StartupError from a process that lost the race for its port."""
    return isinstance(e, StartupError) and "address already in use" in str(e)


def wait_until(
    what: str,
    check: Callable[[], T],
    timeout: float,
    procs: Sequence[Process] = (),
    interval: float = 0.25,
) -> T:
    """Poll ``check`` every ``interval`` seconds until it returns something truthy, and
    return that. Raises StartupError naming ``what`` after ``timeout`` seconds, or as soon
    as one of ``procs`` has exited, with their log tails."""
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            if not p.alive():
                raise StartupError(
                    f"{p.name} exited with {p.popen.returncode} while waiting for {what}; "
                    f"log {p.log}:\n{p.tail()}"
                )
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {p.name} ({p.log}):\n{p.tail()}" for p in procs)
            raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}{tails}")
        time.sleep(interval)
