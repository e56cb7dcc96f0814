"""3f: --term-delay holds SIGTERM before forwarding it."""

import signal
from typing import Any

from .conftest import helper


def test_sigterm_is_held_while_other_signals_go_through(run: Any, pid1: bool) -> None:
    init = run(["-v", "--term-delay", "3600", *helper("sigecho.py", int(signal.SIGINT))], pid1=pid1)
    assert init.line() == "ready"
    init.kill(signal.SIGTERM)
    init.expect_log("holding SIGTERM")
    init.kill(signal.SIGUSR1)
    # A SIGTERM forwarded at once would have arrived before this.
    assert init.line() == str(int(signal.SIGUSR1))
    init.kill(signal.SIGINT)
    assert init.line() == str(int(signal.SIGINT))
    assert init.wait() == 0


def test_a_held_sigterm_is_forwarded_after_the_delay(run: Any) -> None:
    init = run(helper("sigecho.py"), env={"PODINIT_TERM_DELAY": "0.5"})
    assert init.line() == "ready"
    init.kill(signal.SIGTERM)
    assert init.line() == str(int(signal.SIGTERM))
    assert init.wait() == 0
