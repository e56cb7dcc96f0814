"""3a: how the command is started."""

import fcntl
import os
import signal
import stat
import termios
from pathlib import Path
from typing import Any

from .conftest import PYTHON, alive, children_of, need_tool, wait_until

PROBE = "import os; print(os.getpgrp() == os.getpid(), os.getpgrp() != os.getpgid(os.getppid()))"


def test_the_command_is_found_through_path(run: Any, tmp_path: Path) -> None:
    tool = tmp_path / "hello-from-path"
    tool.write_text("#!/bin/sh\necho found $1\n")
    tool.chmod(0o755)
    init = run(["hello-from-path", "it"], env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert init.line() == "found it"
    assert init.wait() == 0


def test_the_child_leads_its_own_process_group(run: Any, pid1: bool) -> None:
    init = run([PYTHON, "-c", PROBE], pid1=pid1)
    assert init.line() == "True True"
    assert init.wait() == 0


def test_the_child_gets_the_terminal_foreground(run: Any) -> None:
    controller, terminal = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    code = "import os; print(os.tcgetpgrp(0) == os.getpgrp() == os.getpid())"
    init = run(
        [PYTHON, "-c", code],
        pid1=False,
        stdin=terminal,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(terminal)
    try:
        assert init.line() == "True"
        assert init.wait() == 0
    finally:
        os.close(controller)


def status_mask(line: str) -> int:
    return int(line.split(":")[1], 16)


def test_the_child_starts_with_no_blocked_or_ignored_signal(run: Any) -> None:
    def inherit_a_mess() -> None:
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGHUP})

    init = run(["cat", "/proc/self/status"], pid1=False, preexec_fn=inherit_a_mess)
    fields = dict(line.split(":", 1) for line in init.rest() if ":" in line)
    assert init.wait() == 0
    assert int(fields["SigBlk"], 16) == 0
    assert int(fields["SigIgn"], 16) == 0


def test_no_file_descriptor_of_podinit_leaks_into_the_child(run: Any, pid1: bool) -> None:
    init = run(["sleep", "1000"], pid1=pid1)
    child = wait_until("the child", lambda: children_of(init.pid))[0]
    # Asleep, not just exec'd: sleep's own start-up may hold a file open for a moment.
    wchan = Path(f"/proc/{child}/wchan")
    wait_until("sleep to sleep", lambda: wchan.read_text() == "hrtimer_nanosleep")
    fds = sorted(int(fd) for fd in os.listdir(f"/proc/{child}/fd"))
    assert fds == [0, 1, 2]
    assert stat.S_ISFIFO(os.stat(f"/proc/{child}/fd/1").st_mode)
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGTERM
    assert not alive(child)


# What the webhook sets (webhook/core/annotations.py) and docs/init.md lists.
OPTION_VARIABLES = {
    "PODINIT_VERBOSE": "0",
    "PODINIT_SINGLE_CHILD": "0",
    "PODINIT_REWRITE": "HUP:0",
    "PODINIT_REMAP_EXIT": "3:4",
    "PODINIT_TERM_DELAY": "0.5",
    "PODINIT_GRACE": "2",
}


def test_the_app_does_not_inherit_the_podinit_variables(run: Any) -> None:
    """A podinit below the app (an image with its own) would apply them a second time."""
    code = "import os, sys; print(sorted(set(os.environ) & set(sys.argv[1:])))"
    init = run([PYTHON, "-c", code, *OPTION_VARIABLES], pid1=False, env=OPTION_VARIABLES)
    assert init.line() == "[]"
    assert init.wait() == 0


def test_a_sighup_during_start_up_does_not_kill_a_podinit_started_under_nohup(run: Any) -> None:
    """strace sends SIGHUP at each of podinit's rt_sigaction calls, i.e. while it resets the
    dispositions its parent left ignored: blocked by then, it can't kill podinit."""
    strace = need_tool("strace", "strace")
    tracer = [strace, "-o", "/dev/null", "-e", "trace=rt_sigaction"]
    tracer += ["-e", "inject=rt_sigaction:signal=SIGHUP"]

    def nohup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    # LeakSanitizer cannot work under ptrace (the ASan build's run).
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    # The SIGHUPs that arrive blocked are forwarded, or here dropped, like any later one.
    args = ["--rewrite", "HUP:0", "true"]
    init = run(args, pid1=False, wrapper=tracer, preexec_fn=nohup, env={"ASAN_OPTIONS": asan})
    assert init.wait() == 0
