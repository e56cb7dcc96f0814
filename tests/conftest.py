"""Options shared by the whole suite."""

from __future__ import annotations

import os
import signal
from collections.abc import Generator

import pytest
from hypothesis import Phase, settings

# `make mutation` (docs/mutation.md): one failing example kills a mutant; shrinking it would
# run the mutant (often one that loops) hundreds of times more for nothing.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])

# Under `make mutation`, a test that runs this many seconds is a mutant that loops: its process
# ends with mutmut's "timeout" status (counted as killed, like mutmut's own CPU-time limit),
# instead of running until that limit, minutes later. The slowest test of the core takes 3.3 s
# at PODINIT_TEST_SCALE=0.34 (measured outside mutmut); the limit leaves room for a loaded machine.
MUTANT_TEST_SECONDS = float(os.environ.get("PODINIT_MUTANT_TEST_SECONDS", "30"))
MUTMUT_TIMEOUT_STATUS = 36


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite golden files from the output"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test run against a mutant (mutmut names it in MUTANT_UNDER_TEST) is bounded."""
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return (yield)

    def overran(signum: int, frame: object) -> None:
        os._exit(MUTMUT_TIMEOUT_STATUS)  # the process runs this one mutant's tests only

    previous = signal.signal(signal.SIGALRM, overran)
    signal.setitimer(signal.ITIMER_REAL, MUTANT_TEST_SECONDS)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
