"""SIGTERM, zombies and exit codes: the mutated pod against the same pod unmutated."""

from __future__ import annotations

import signal
from functools import partial
from pathlib import Path

import pytest

from e2e.examples import (
    SHELL_WRAPPED,
    OrphansSettled,
    orphan_command,
    stop_time_demo,
    zombies_left,
)
from e2e.runtime import Runtime, run_pod, run_unmutated_pod, wait_until

from .conftest import app_pod, stored

# Bounds, not measurements: a stop takes milliseconds, the SIGKILL fallback is seconds away.
WELL_UNDER_A_SECOND = 1.0
IGNORED_FOR = 2.0
ORPHANS = 5


def test_sigterm_stops_the_shell_wrapped_app_well_before_the_sigkill_fallback_with_podinit(
    runtime: Runtime, podinit: Path
) -> None:
    with run_pod(stored(app_pod(SHELL_WRAPPED)), podinit, runtime=runtime) as running:
        app = running.app()
        wait_until("sleep to run", lambda: any(p.comm == "sleep" for p in app.processes()))
        result = app.stop(grace=30.0)
        assert not result.killed
        assert result.seconds < WELL_UNDER_A_SECOND
        assert result.exit_code == 128 + signal.SIGTERM
        assert "done" not in app.output()


def test_without_podinit_the_shell_wrapped_app_ignores_sigterm_until_sigkill(
    runtime: Runtime,
) -> None:
    with run_unmutated_pod(app_pod(SHELL_WRAPPED), runtime=runtime) as running:
        app = running.app()
        wait_until("sleep to run", lambda: any(p.comm == "sleep" for p in app.processes()))
        assert app.kill(signal.SIGTERM)
        with pytest.raises(TimeoutError):
            app.wait(IGNORED_FOR)
        assert [p.comm for p in app.processes()] == ["sh", "sleep"]
        assert app.kill(signal.SIGKILL)
        assert app.wait(30) == 128 + signal.SIGKILL


def test_orphans_of_a_parent_that_exited_early_leave_no_zombie_with_podinit(
    runtime: Runtime, podinit: Path
) -> None:
    pod = stored(app_pod(orphan_command(ORPHANS)))
    with run_pod(pod, podinit, runtime=runtime) as running:
        app = running.app()
        wait_until("the orphans to exit", partial(OrphansSettled(ORPHANS), app))
        assert zombies_left(app) == 0
        assert sorted(p.comm for p in app.processes()) == ["podinit", "sleep"]


def test_the_same_orphans_stay_zombies_without_podinit(runtime: Runtime) -> None:
    with run_unmutated_pod(app_pod(orphan_command(ORPHANS)), runtime=runtime) as running:
        app = running.app()
        wait_until("the orphans to exit", partial(OrphansSettled(ORPHANS), app))
        assert zombies_left(app) == ORPHANS  # nobody reaps: still all there after the wait


@pytest.mark.parametrize("code", [0, 7, 255])
def test_exit_codes_come_back_as_the_app_gave_them_with_and_without_podinit(
    runtime: Runtime, podinit: Path, code: int
) -> None:
    original = app_pod(["sh", "-c", f"exit {code}"])
    with run_pod(stored(original), podinit, runtime=runtime) as running:
        assert running.app().wait(60) == code
    with run_unmutated_pod(original, runtime=runtime) as running:
        assert running.app().wait(60) == code


def test_an_app_killed_by_a_signal_exits_128_plus_the_signal_number_through_podinit(
    runtime: Runtime, podinit: Path
) -> None:
    pod = stored(app_pod(["sh", "-c", "kill -USR1 $$$$; sleep 1000"]))
    with run_pod(pod, podinit, runtime=runtime) as running:
        assert running.app().wait(60) == 128 + signal.SIGUSR1


def test_sigkill_of_the_wrapped_pod_reports_137_like_the_unwrapped_one(
    runtime: Runtime, podinit: Path
) -> None:
    with run_pod(stored(app_pod(["sleep", "1000"])), podinit, runtime=runtime) as running:
        app = running.app()
        assert app.kill(signal.SIGKILL)
        assert app.wait(30) == 128 + signal.SIGKILL


def test_the_demo_shows_the_stop_time_and_the_zombies_side_by_side(
    runtime: Runtime, podinit: Path
) -> None:
    without, with_podinit = stop_time_demo(podinit, orphans=3, grace=2.0, runtime=runtime)
    assert without.variant.startswith("without podinit")
    assert without.zombies == 3
    assert without.stop_seconds >= 2.0
    assert with_podinit.variant.startswith("with podinit")
    assert with_podinit.zombies == 0
    assert with_podinit.stop_seconds < WELL_UNDER_A_SECOND
