"""Stopped processes and the terminal: Ctrl-Z, fg, a job started in the background."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import termios
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import (
    BIN,
    HELPERS,
    PYTHON,
    TIMEOUT,
    WRAPPER,
    children_of,
    descendants_of,
    helper,
    need_tool,
    stat_fields,
    wait_until,
)

PROMPT = "podinit-test$ "
CTRL_Z = "\x1a"
# valgrind takes the default action of the SIGTSTP podinit sends itself for "ignore", so it
# cannot stop there: the Ctrl-Z test runs the same build without it.
STOPPABLE = [] if any("valgrind" in w for w in WRAPPER) else WRAPPER


def app_command(*args: str, wrapper: list[str] = WRAPPER) -> str:
    """The shell command line that runs podinit with tests/init/helpers/tty_app.py."""
    return " ".join([*wrapper, str(BIN), "--", PYTHON, str(HELPERS / "tty_app.py"), *args])


def take_terminal() -> None:
    """In the child: make the terminal on stdin its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def stopped(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[1] == "T"


class Shell:
    """An interactive bash with job control on a new terminal, typed at like a user."""

    def __init__(self) -> None:
        bash = need_tool("bash", "bash")
        self.controller, terminal = os.openpty()
        self.proc = subprocess.Popen(
            [bash, "--norc", "--noprofile", "--noediting", "-i"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env={**os.environ, "PS1": PROMPT, "TERM": "dumb"},
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        os.close(terminal)
        self.seen = ""

    def type(self, text: str) -> None:
        os.write(self.controller, text.encode())

    def expect(self, text: str) -> str:
        """Reads the terminal up to and including text; returns what came before it."""
        deadline = time.monotonic() + TIMEOUT
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.controller], [], [], left)[0]:
                raise AssertionError(f"no {text!r} on the terminal; it shows {self.seen!r}")
            try:
                chunk = os.read(self.controller, 4096)
            except OSError:  # EIO: every process let go of the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"terminal closed before {text!r}; it showed {self.seen!r}")
            self.seen += chunk.decode(errors="replace").replace("\r\n", "\n")
        before, _, self.seen = self.seen.partition(text)
        return before

    def close(self) -> None:
        for pid in [*descendants_of(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        os.close(self.controller)


@pytest.fixture
def shell() -> Iterator[Shell]:
    sh = Shell()
    try:
        sh.expect(PROMPT)
        yield sh
    finally:
        sh.close()


def test_a_stopped_app_is_continued_to_act_on_sigterm(run: Any, pid1: bool) -> None:
    init = run(helper("sigecho.py"), pid1=pid1)
    assert init.line() == "ready"
    app = wait_until("the app", lambda: children_of(init.pid))[0]
    os.kill(app, signal.SIGSTOP)
    wait_until("the app to stop", lambda: stopped(app))
    init.kill(signal.SIGTERM)
    # Left stopped, it would never take its SIGTERM: in a pod, SIGKILL after the grace period.
    assert init.line() == str(int(signal.SIGTERM))
    assert init.wait() == 0


def test_ctrl_z_without_a_shell_to_resume_the_app_leaves_it_running(run: Any, pid1: bool) -> None:
    """As PID 1 (kubectl run -it), or leading a session of its own (kubectl exec -it)."""
    controller, terminal = os.openpty()
    init = run(
        helper("tty_app.py"),
        pid1=pid1,
        stdin=terminal,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(terminal)
    try:
        assert init.line() == "ready"
        os.write(controller, f"{CTRL_Z}hello\n".encode())
        assert init.line() == "got hello"
        assert init.wait() == 0
    finally:
        os.close(controller)


def test_ctrl_z_stops_the_job_in_a_shell_and_fg_resumes_it(shell: Shell) -> None:
    shell.type(f"{app_command(wrapper=STOPPABLE)}\n")
    shell.expect("ready")
    shell.type(CTRL_Z)
    shell.expect("Stopped")
    shell.expect(PROMPT)
    shell.type("fg\n")
    shell.expect("tty_app.py")  # bash names the job it continues
    shell.type("hello\n")
    shell.expect("got hello")
    shell.expect(PROMPT)
    shell.type("echo status=$?\n")
    shell.expect("status=0")


def test_a_job_started_in_the_background_leaves_the_terminal_to_the_shell(shell: Shell) -> None:
    shell.type(f"{app_command('--sleep')} &\n")
    shell.expect("ready")
    shell.type("echo still-$((1 + 1))\n")
    shell.expect("still-2")
    shell.type("kill %1; wait\n")
    shell.expect(f"Exit {128 + signal.SIGTERM}")
