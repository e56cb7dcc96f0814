"""The examples the runtime tests, the benchmark and ``make demo`` run with e2e.runtime:
the shell-wrapped app (``SHELL_WRAPPED``), a parent that leaves orphans
(``orphan_command``), waiting for them and counting zombies, and the stop-time demo
(``stop_time_demo``: the same pod without and with podinit, stopped as the kubelet would)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from e2e.runtime import (
    Container,
    Pod,
    Runtime,
    mutate_pod,
    run_pod,
    run_unmutated_pod,
    wait_until,
)

# The shell-wrapped app: sh is PID 1 without podinit, has no SIGTERM handler, and the kernel
# drops unhandled signals to a namespace's init, so only SIGKILL stops it.
SHELL_WRAPPED = ["sh", "-c", "sleep 1000; echo done"]


def example_pod(command: Sequence[str], name: str = "app") -> dict[str, Any]:
    """An unmutated pod with one busybox container running `command`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": list(command)}]},
    }


def orphan_command(children: int, lifetime: float = 0.3) -> list[str]:
    """A parent that forks `children` and exits early, then an app that never waits.

    The inner sh leaves its children to PID 1; the outer sh then becomes (exec) `sleep`,
    which never calls wait(), so without an init they stay zombies once they exit. They
    run `usleep` so that they can be told apart from the `sleep` app.
    """
    micros = int(lifetime * 1_000_000)
    spawn = " ".join([f"usleep {micros} &"] * children)
    return ["sh", "-c", f"sh -c '{spawn}'; exec sleep 1000"]


class OrphansSettled:
    """Called with the container, polled: have the example's `children` orphans all come and
    gone (whether or not anyone reaped them)?

    Each must have been seen running `usleep` once and none may run any more. Checking only
    "no usleep running now" said yes too early under load (in CI, then in 2 of 14 runs with
    both cores busy): a forked child is called `sh` until it has exec'd `usleep`, and the
    children were not all listed yet when the app had started.
    """

    def __init__(self, children: int) -> None:
        self.children = children
        self.seen: set[int] = set()

    def __call__(self, container: Container) -> bool:
        processes = container.processes()
        self.seen.update(p.pid for p in processes if p.comm == "usleep")
        running = any(p.state != "Z" and p.comm not in ("podinit", "sleep") for p in processes)
        return len(self.seen) >= self.children and not running


def zombies_left(container: Container, *, within: float = 1.0) -> int:
    """Zombies in the container once an init had `within` seconds to reap: reaping follows the
    orphans' exit by a SIGCHLD round trip, so a count taken at once can catch them in between."""
    deadline = time.monotonic() + within
    while (count := container.zombies()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


class DemoRow(NamedTuple):
    variant: str
    stop_seconds: float
    zombies: int


def stop_time_demo(
    podinit_binary: Path, *, orphans: int = 3, grace: float = 3.0, runtime: Runtime | None = None
) -> list[DemoRow]:
    """The shell-wrapped app that leaves orphans, run without and with podinit.

    For each: wait until the orphans have exited, count the zombies, then stop the pod as
    the kubelet would (TERM, `grace` seconds, KILL) and time it. Takes about grace + 2 s.
    """
    original = example_pod(orphan_command(orphans))
    variants: list[tuple[str, Callable[[], Pod]]] = [
        ("without podinit", lambda: run_unmutated_pod(original, runtime=runtime)),
        ("with podinit", lambda: run_pod(mutate_pod(original), podinit_binary, runtime=runtime)),
    ]
    rows = []
    for variant, start in variants:
        with start() as pod:
            app = pod.app()
            wait_until("the orphans to exit", partial(OrphansSettled(orphans), app))
            zombies = zombies_left(app)
            stopped = app.stop(grace)
        how = "SIGKILL after the grace period" if stopped.killed else "SIGTERM"
        rows.append(DemoRow(f"{variant} (stopped by {how})", stopped.seconds, zombies))
    return rows


__all__ = [
    "SHELL_WRAPPED",
    "DemoRow",
    "OrphansSettled",
    "example_pod",
    "orphan_command",
    "stop_time_demo",
    "zombies_left",
]
