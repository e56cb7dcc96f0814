"""3b: podinit exits as its child did."""

import os
import signal
from pathlib import Path
from typing import Any

from tests.scale import SCALE

from .conftest import PYTHON

DIE_BY = (
    "import os, resource, signal, sys; n = int(sys.argv[1]);"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0));"
    "signal.signal(n, signal.SIG_DFL); signal.pthread_sigmask(signal.SIG_UNBLOCK, [n]);"
    "os.kill(os.getpid(), n)"
)
# Signals whose default action doesn't end a process.
SURVIVABLE = {
    signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH,
    signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
}  # fmt: skip


def test_every_exit_code_passes_through(run: Any) -> None:
    step = 1 if SCALE >= 1 else 17  # 0, 17, ..., 255 for the slow builds
    for code in range(0, 256, step):
        init = run(["sh", "-c", f"exit {code}"], pid1=False)
        assert init.wait() == code


def test_a_child_killed_by_signal_n_gives_128_plus_n(run: Any) -> None:
    fatal = sorted(signal.valid_signals() - SURVIVABLE - {signal.SIGKILL})
    if SCALE < 1:
        fatal = [signal.SIGHUP, signal.SIGSEGV, signal.SIGTERM, fatal[-1]]
    for sig in fatal:
        init = run([PYTHON, "-c", DIE_BY, str(int(sig))], pid1=False)
        assert init.wait() == 128 + sig, sig


def test_a_missing_command_exits_127_naming_it(run: Any, pid1: bool) -> None:
    init = run(["no-such-command-here", "arg"], pid1=pid1)
    assert init.wait() == 127
    assert init.err_lines == ["podinit: no-such-command-here: command not found"]


def test_a_file_that_is_not_executable_exits_126(run: Any, tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    init = run([str(script)], pid1=False)
    assert init.wait() == 126
    assert len(init.err_lines) == 1
    assert init.err_lines[0].startswith(f"podinit: {script}: ")


def test_remap_exit_turns_a_sigterm_death_into_success(run: Any, pid1: bool) -> None:
    init = run(["--remap-exit", "143:0", "sh", "-c", "kill -TERM $$"], pid1=pid1)
    assert init.wait() == 0


def test_remap_exit_from_env_takes_a_list_and_the_command_line_wins(run: Any) -> None:
    env = {"PODINIT_REMAP_EXIT": "3:4,5:6"}
    init = run(["--remap-exit", "5:7", "sh", "-c", "exit 5"], pid1=False, env=env)
    assert init.wait() == 7
    init = run(["sh", "-c", "exit 3"], pid1=False, env=env)
    assert init.wait() == 4


def test_a_missing_command_exits_127_even_when_stderr_is_a_closed_pipe(
    run: Any, pid1: bool
) -> None:
    reader, writer = os.pipe()
    os.close(reader)
    init = run(["-v", "no-such-command-here"], pid1=pid1, stderr=writer)
    os.close(writer)
    assert init.wait() == 127
