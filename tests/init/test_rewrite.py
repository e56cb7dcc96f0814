"""3e: --rewrite changes or drops a signal on its way to the child."""

import signal
from typing import Any

from .conftest import helper


def test_rewrite_turns_sigterm_into_sigquit(run: Any, pid1: bool) -> None:
    init = run(["--rewrite", "TERM:QUIT", *helper("sigecho.py", int(signal.SIGQUIT))], pid1=pid1)
    assert init.line() == "ready"
    init.kill(signal.SIGTERM)
    assert init.line() == str(int(signal.SIGQUIT))
    assert init.wait() == 0


def test_rewrite_to_zero_drops_the_signal(run: Any) -> None:
    init = run(["-v", "--rewrite", "SIGHUP:0", *helper("sigecho.py")])
    assert init.line() == "ready"
    init.kill(signal.SIGHUP)
    init.expect_log("dropping SIGHUP")
    init.kill(signal.SIGTERM)
    # Had SIGHUP gone on, it would have come before the SIGTERM sent after it.
    assert init.line() == str(int(signal.SIGTERM))
    assert init.wait() == 0


def test_rewrite_from_env_takes_names_and_numbers_and_the_command_line_wins(run: Any) -> None:
    env = {"PODINIT_REWRITE": "term:USR1,10:12"}
    init = run(["--rewrite", "15:SIGQUIT", *helper("sigecho.py", int(signal.SIGQUIT))], env=env)
    assert init.line() == "ready"
    init.kill(signal.SIGUSR1)
    assert init.line() == str(int(signal.SIGUSR2))
    init.kill(signal.SIGTERM)
    assert init.line() == str(int(signal.SIGQUIT))
    assert init.wait() == 0
