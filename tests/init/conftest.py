"""Runs podinit as a real PID 1 (a new PID namespace) or as a plain subreaper.

PODINIT_BIN picks the binary (default build/podinit), PODINIT_WRAPPER a command
to run it under (valgrind), PODINIT_TEST_SCALE (tests/scale.py) shrinks storms for slow builds.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import processes
from tests.unavailable import require_tool

ROOT = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent / "helpers"
BIN = Path(os.environ.get("PODINIT_BIN", ROOT / "build" / "podinit")).resolve()
WRAPPER = shlex.split(os.environ.get("PODINIT_WRAPPER", ""))
# Generous: these bound a hang, they never measure speed.
TIMEOUT = 120.0 if WRAPPER else 60.0
PYTHON = sys.executable
# valgrind keeps SIGRTMAX for itself: its client can neither wait for it nor send it.
RESERVED = {signal.SIGRTMAX} if any("valgrind" in w for w in WRAPPER) else set()


def need_tool(tool: str, package: str) -> str:
    """The tool's path; a skip naming the Debian package, or a failure under CI."""
    return require_tool(tool, package)


def helper(name: str, *args: object) -> list[str]:
    return [PYTHON, str(HELPERS / name), *map(str, args)]


def stat_fields(pid: int) -> tuple[str, str, int] | None:
    """(comm, state, ppid) of a process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
    return comm, state, int(ppid)


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid: int) -> list[int]:
    return [p for p in all_pids() if (f := stat_fields(p)) and f[2] == pid]


def descendants_of(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        found += kids
        todo += kids
    return found


def host_pid(init: Init, pid: int) -> int:
    """The pid, as seen from here, of a process below init that it printed as seen from there."""

    def find() -> int | None:
        for p in descendants_of(init.pid):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                status = Path(f"/proc/{p}/status").read_text()
                nspids = next(line for line in status.splitlines() if line.startswith("NSpid:"))
                if int(nspids.split()[-1]) == pid:
                    return p
        return None

    return int(wait_until(f"process {pid} below podinit", find)) if init.pid1 else pid


def alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[1] != "Z"


def wait_until(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """e2e.processes.wait_until polling every 20 ms, with these tests' timeout."""
    return processes.wait_until(what, check, timeout, interval=0.02)


class Init:
    """One podinit run, with its stdout and stderr read line by line."""

    def __init__(
        self,
        args: list[str],
        *,
        pid1: bool,
        env: dict[str, str] | None = None,
        binary: Path | None = None,
        wrapper: list[str] | None = None,
        **popen: Any,
    ) -> None:
        cmd = [*(WRAPPER if wrapper is None else wrapper), str(binary or BIN), *args]
        if pid1:
            cmd = [need_tool("unshare", "util-linux"), "--pid", "--fork", "--mount-proc", *cmd]
        self.pid1 = pid1
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=popen.pop("stderr", subprocess.PIPE),
            stdin=popen.pop("stdin", subprocess.DEVNULL),
            env={**os.environ, **(env or {})},
            text=True,
            **popen,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.err_lines: list[str] = []
        self._readers = [self._reader(self.proc.stdout, self.out, None)]
        if self.proc.stderr:
            self._readers.append(self._reader(self.proc.stderr, self.err, self.err_lines))
        self._pid: int | None = None

    @staticmethod
    def _reader(stream: Any, q: queue.Queue[str], keep: list[str] | None) -> threading.Thread:
        def run() -> None:
            for line in stream:
                if keep is not None:
                    keep.append(line.rstrip("\n"))
                q.put(line.rstrip("\n"))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    @property
    def pid(self) -> int:
        """podinit's pid as seen from here (under unshare, its only child)."""
        if self._pid is None:
            if self.pid1:
                kids = wait_until("podinit to start", lambda: children_of(self.proc.pid))
                self._pid = int(kids[0])
            else:
                self._pid = self.proc.pid
        return self._pid

    def kill(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def line(self, timeout: float = TIMEOUT) -> str:
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output; stderr: {self.err_lines}") from None

    def expect(self, text: str) -> str:
        """Reads stdout up to the line that starts with text."""
        while not (got := self.line()).startswith(text):
            pass
        return got

    def expect_log(self, text: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if text in self.err.get(timeout=max(0.0, deadline - time.monotonic())):
                    return
            except queue.Empty:
                raise AssertionError(f"no log {text!r} in {self.err_lines}") from None

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"podinit did not exit; stderr: {self.err_lines}") from None
        for reader in self._readers:
            reader.join(5)
        return code

    def rest(self) -> list[str]:
        """Everything left on stdout after exit."""
        self.wait()
        lines = []
        while not self.out.empty():
            lines.append(self.out.get())
        return lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            for pid in [*descendants_of(self.proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def run() -> Iterator[Callable[..., Init]]:
    """run(args, pid1=True, env=..., **popen) starts podinit; all are stopped at the end."""
    started: list[Init] = []

    def start(args: list[str], pid1: bool = True, **kwargs: Any) -> Init:
        init = Init(args, pid1=pid1, **kwargs)
        started.append(init)
        return init

    yield start
    for init in started:
        init.stop()


@pytest.fixture(params=[True, False], ids=["pid1", "subreaper"])
def pid1(request: pytest.FixtureRequest) -> bool:
    """Runs a test both as PID 1 of a new namespace and as a non-PID-1 subreaper."""
    return bool(request.param)
