"""3d and 3i: signals reach the child's whole group, none lost in a storm."""

import os
import signal
from typing import Any

from tests.scale import scaled

from .conftest import RESERVED, descendants_of, helper, stat_fields, wait_until

# The synchronous faults belong to whoever caused them; SIGCHLD is podinit's.
NOT_FORWARDED = {
    signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGILL, signal.SIGTRAP,
    signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV, signal.SIGSYS,
}  # fmt: skip


def forwarded_signals() -> list[int]:
    """1-31 and every realtime signal this libc lets a process wait for."""
    return sorted(int(s) for s in signal.valid_signals() - NOT_FORWARDED - RESERVED)


# A request to end is followed by SIGCONT, so that a stopped app acts on it.
CONTINUED = {signal.SIGHUP, signal.SIGTERM}


def test_every_catchable_signal_reaches_the_child(run: Any, pid1: bool) -> None:
    init = run(helper("sigecho.py"), pid1=pid1)
    assert init.line() == "ready"
    for sig in [s for s in forwarded_signals() if s != signal.SIGTERM]:
        init.kill(sig)
        assert init.line() == str(sig)
        if sig in CONTINUED:
            assert init.line() == str(int(signal.SIGCONT))
    init.kill(signal.SIGTERM)
    assert init.line() == str(int(signal.SIGTERM))
    assert init.wait() == 0


def wait_for_sleep(init: Any) -> None:
    def sleeping() -> bool:
        return any((f := stat_fields(p)) and f[0] == "sleep" for p in descendants_of(init.pid))

    wait_until("sleep to run", sleeping)


def test_a_trapped_shell_wrapper_stops_on_sigterm(run: Any, pid1: bool) -> None:
    init = run(["sh", "-c", 'trap "echo trapped; exit 0" TERM; sleep 1000'], pid1=pid1)
    wait_for_sleep(init)
    init.kill(signal.SIGTERM)
    assert init.line() == "trapped"
    assert init.wait() == 0


def test_a_shell_wrapper_with_cleanup_after_the_app_stops_on_sigterm(run: Any) -> None:
    init = run(["sh", "-c", "sleep 1000; echo cleanup"])
    wait_for_sleep(init)
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGTERM


def test_by_default_the_whole_process_group_gets_the_signal(run: Any, pid1: bool) -> None:
    init = run(helper("group_probe.py"), pid1=pid1)
    assert init.line() == "ready"
    init.kill(signal.SIGUSR1)
    lines = init.rest()
    assert init.wait() == 0
    assert sorted(lines) == ["grandchild 10", "grandchild 12", "main 10"]


def test_single_child_signals_only_the_child(run: Any) -> None:
    init = run(["--single-child", *helper("group_probe.py")])
    assert init.line() == "ready"
    init.kill(signal.SIGUSR1)
    lines = init.rest()
    assert init.wait() == 0
    assert sorted(lines) == ["grandchild 12", "main 10"]


def test_single_child_can_be_set_through_the_environment(run: Any) -> None:
    init = run(helper("group_probe.py"), env={"PODINIT_SINGLE_CHILD": "1"})
    assert init.line() == "ready"
    init.kill(signal.SIGUSR1)
    assert sorted(init.rest()) == ["grandchild 12", "main 10"]


def test_no_realtime_signal_is_lost_in_a_storm(run: Any, pid1: bool) -> None:
    realtime = [signal.SIGRTMIN, signal.SIGRTMIN + 5, signal.SIGRTMAX - len(RESERVED)]
    rounds = scaled(300)
    expected = {int(sig): rounds for sig in realtime} | {int(signal.SIGUSR1): 1}
    init = run(helper("sigcount.py", *(f"{s}={n}" for s, n in expected.items())), pid1=pid1)
    assert init.line() == "ready"
    for _ in range(rounds):
        for sig in [*realtime, signal.SIGUSR1]:
            init.kill(sig)
    counts = {int(s): int(n) for s, n in (item.split("=") for item in init.line().split())}
    # Realtime signals queue, each one counts; standard ones may coalesce.
    assert counts.pop(signal.SIGUSR1) >= 1
    assert counts == {int(sig): rounds for sig in realtime}
    assert init.wait() == 0


def closed_pipe() -> int:
    """The writing end of a pipe whose reader is gone: a write to it raises SIGPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    return writer


def test_a_log_line_to_a_closed_stderr_sends_the_app_no_sigpipe(run: Any, pid1: bool) -> None:
    stderr = closed_pipe()
    init = run(["-v", *helper("sigecho.py")], pid1=pid1, stderr=stderr)
    os.close(stderr)
    assert init.line() == "ready"
    init.kill(signal.SIGUSR1)  # logged, and so a SIGPIPE for podinit
    assert init.line() == str(int(signal.SIGUSR1))
    init.kill(signal.SIGTERM)
    assert init.line() == str(int(signal.SIGTERM))
    assert init.wait() == 0
