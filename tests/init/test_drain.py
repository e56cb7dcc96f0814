"""3g and 3h: when the child exits, what is left gets SIGTERM, a grace period,
then SIGKILL, and podinit exits with the child's status."""

import os
import signal
from typing import Any

from .conftest import alive, helper, host_pid, stat_fields, wait_until


def parent_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return fields[2] if fields else None


def orphan_pid(init: Any) -> int:
    return int(init.expect("orphan ready").split()[-1])


def test_orphans_get_sigterm_and_run_their_handler(run: Any, pid1: bool) -> None:
    init = run(["--grace", "60", *helper("spawn_orphan.py", "handler", "--linger", "1")], pid1=pid1)
    orphan = orphan_pid(init)
    assert init.wait() == 3
    assert init.rest() == ["orphan got TERM", "orphan finished"]
    # As PID 1 the printed pid is the namespace's, which dies with podinit anyway.
    assert pid1 or not alive(orphan)


def test_the_default_grace_lets_a_handler_finish(run: Any) -> None:
    init = run(helper("spawn_orphan.py", "handler", "--linger", "0.5"))
    orphan_pid(init)
    assert init.wait() == 3
    assert init.rest() == ["orphan got TERM", "orphan finished"]


def test_an_orphan_ignoring_sigterm_is_killed_after_the_grace(run: Any, pid1: bool) -> None:
    init = run(helper("spawn_orphan.py", "ignore"), pid1=pid1, env={"PODINIT_GRACE": "0.5"})
    orphan = orphan_pid(init)
    assert init.wait() == 3
    assert pid1 or not alive(orphan)


def test_a_subreaper_adopts_orphans_without_a_warning(run: Any) -> None:
    init = run(helper("spawn_orphan.py", "handler", "--wait"), pid1=False)
    orphan = orphan_pid(init)
    assert wait_until("the orphan's adoption", lambda: parent_of(orphan) == init.pid)
    init.kill(signal.SIGTERM)
    assert init.wait() == 3
    assert init.err_lines == []


def test_a_subreaper_leaks_no_orphan_to_its_parent(run: Any) -> None:
    init = run(["--grace", "0.2", *helper("spawn_orphan.py", "ignore")], pid1=False)
    orphan = orphan_pid(init)
    assert init.wait() == 3
    # Leaked, it would now be a live child of the machine's init.
    assert not alive(orphan)


def test_a_stopped_orphan_is_continued_and_runs_its_sigterm_handler(run: Any, pid1: bool) -> None:
    init = run(["--grace", "60", *helper("spawn_orphan.py", "handler", "--wait")], pid1=pid1)
    orphan = host_pid(init, orphan_pid(init))
    init.expect("main waiting")  # the orphan stopped before that would hold it up
    wait_until("the orphan's adoption", lambda: parent_of(orphan) == init.pid)
    os.kill(orphan, signal.SIGSTOP)
    wait_until("the orphan to stop", lambda: (stat_fields(orphan) or ("", "", 0))[1] == "T")
    init.kill(signal.SIGTERM)
    # Left stopped, it would get its SIGTERM only as the SIGKILL 60 s later.
    assert init.rest() == ["orphan got TERM", "orphan finished"]
    assert init.wait() == 3


def test_an_orphan_that_reuses_the_apps_pid_does_not_change_the_exit_status(run: Any) -> None:
    init = run(["--grace", "60", *helper("reuse_pid.py")])
    assert init.line().startswith("reused ")
    assert init.wait() == 3
