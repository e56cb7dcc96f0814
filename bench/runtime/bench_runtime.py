"""Stop time of the shell-wrapped app with runc: unmutated vs mutated, in one run.

The app is `sh -c 'sleep 1000; echo done'` in a busybox rootfs. Each run starts the pod,
waits until `sleep` runs, then stops it as the kubelet does on deletion: `runc kill TERM`,
up to --grace seconds, then `runc kill KILL`. The time is from just before `runc kill TERM`
until the container has exited (the foreground `runc run` returned). Variants alternate run
by run so that background load falls on all of them alike:

  unmutated    sh is PID 1 and has no SIGTERM handler, so the kernel drops TERM: it stops
               only at the SIGKILL fallback (after the grace period; the kubelet's default
               terminationGracePeriodSeconds is 30 s, --grace shortens it here)
  mutated      the pod after the real webhook core's patch: the copy container installs
               podinit, which forwards TERM to the app's process group
  floor        unmutated, `runc kill KILL` straight away: runc's own kill-and-exit path

Run: .venv/bin/python bench/runtime/bench_runtime.py [--runs 5] [--grace 2]
                                            [--write-doc docs/performance.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.docsection import replace_section  # noqa: E402
from e2e.examples import SHELL_WRAPPED, DemoRow, example_pod, stop_time_demo  # noqa: E402
from e2e.runtime import (  # noqa: E402
    Container,
    Pod,
    Runtime,
    StopResult,
    find_runtime,
    mutate_pod,
    run_pod,
    run_unmutated_pod,
    wait_until,
)

SECTION = "Runtime"
MUTATED = "mutated (podinit)"
FLOOR = "floor: unmutated, SIGKILL at once"
ORPHANS = 5


def ready(app: Container) -> bool:
    """The shell has started `sleep`: TERM now finds the app in its steady state."""
    return any(p.comm == "sleep" for p in app.processes())


def stop_kill_now(app: Container) -> StopResult:
    start = time.monotonic()
    app.kill(signal.SIGKILL)
    code = app.wait(30)
    return StopResult(code, time.monotonic() - start, killed=True)


def measure(
    runs: int, grace: float, podinit: Path, runtime: Runtime
) -> dict[str, list[StopResult]]:
    original = example_pod(SHELL_WRAPPED)
    stored = mutate_pod(original)
    variants: dict[str, tuple[Callable[[], Pod], Callable[[Container], StopResult]]] = {
        "unmutated": (
            lambda: run_unmutated_pod(original, runtime=runtime),
            lambda app: app.stop(grace),
        ),
        MUTATED: (
            lambda: run_pod(stored, podinit, runtime=runtime),
            lambda app: app.stop(grace),
        ),
        FLOOR: (
            lambda: run_unmutated_pod(original, runtime=runtime),
            stop_kill_now,
        ),
    }
    results: dict[str, list[StopResult]] = {name: [] for name in variants}
    for i in range(runs):
        for name, (start, stop) in variants.items():
            with start() as pod:
                app = pod.app()
                wait_until("sleep to run", partial(ready, app))
                results[name].append(stop(app))
        print(f"run {i + 1}/{runs} done", file=sys.stderr)
    return results


def table(results: dict[str, list[StopResult]]) -> str:
    lines = [
        "| variant | stop time, median | min | max | exit code | stopped by |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, rs in results.items():
        seconds = [r.seconds for r in rs]
        codes = sorted({r.exit_code for r in rs})
        how = (
            "SIGKILL"
            if all(r.killed for r in rs)
            else "SIGTERM"
            if not any(r.killed for r in rs)
            else "mixed"
        )
        lines.append(
            f"| {name} | {_fmt(statistics.median(seconds))} | {_fmt(min(seconds))} "
            f"| {_fmt(max(seconds))} | {', '.join(map(str, codes))} | {how} |"
        )
    return "\n".join(lines)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def ratio(results: dict[str, list[StopResult]]) -> float:
    median = {name: statistics.median(r.seconds for r in rs) for name, rs in results.items()}
    return median["unmutated"] / median[MUTATED]


def floor_note(results: dict[str, list[StopResult]]) -> str:
    """How the mutated stop compares with runc's own SIGKILL path, in words that fit the data."""
    floor = [r.seconds for r in results[FLOOR]]
    over = statistics.median(r.seconds for r in results[MUTATED]) - statistics.median(floor)
    head = (
        "The floor row is runc's own SIGKILL path, which pays the same `runc kill` start-up; "
        "what the mutated pod adds is podinit forwarding TERM, the shell and `sleep` exiting, "
        "and podinit reaping them and exiting"
    )
    spread = max(floor) - min(floor)
    if over <= spread:
        within = f", within the floor's own spread ({_fmt(spread)})"
        return f"{head}: {over * 1000:+.1f} ms on the medians{within}."
    return f"{head}: {over * 1000:+.1f} ms on the medians."


def machine() -> str:
    runc = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout
    return (
        f"{os.cpu_count()} CPUs, Linux {platform.release()}, "
        f"runc {runc.split()[2] if runc else '?'}"
    )


def demo_table(rows: list[DemoRow]) -> str:
    lines = ["| variant | stop time | zombies left |", "| --- | --- | --- |"]
    lines += [f"| {r.variant} | {_fmt(r.stop_seconds)} | {r.zombies} |" for r in rows]
    return "\n".join(lines)


def markdown(
    results: dict[str, list[StopResult]], demo: list[DemoRow], runs: int, grace: float
) -> str:
    return f"""## {SECTION}

Stop time of the shell-wrapped app (`sh -c 'sleep 1000; echo done'`, busybox rootfs) run
with `runc`, unmutated and as stored after our mutation (copy container, then
`/podinit/podinit -- sh -c ...`), measured in one run: `make bench-runtime`
(`bench/runtime/bench_runtime.py`, median of {runs} runs per variant, variants alternating).
The stop is what the kubelet does on deletion: `runc kill TERM`, then `runc kill KILL` after
the grace period ({grace:g} s here; the kubelet's default is 30 s). Times run from just before
`runc kill TERM` until the container has exited, so they include starting `runc kill`.

{table(results)}

Unmutated / mutated: **{ratio(results):.0f}x** (with the default 30 s grace period the
unmutated pod would take 30 s, so the ratio only grows). Without podinit, `sh` is PID 1 of
the container's PID namespace and has no SIGTERM handler, so the kernel drops the signal;
with podinit, TERM reaches the shell's process group and the pod exits 143 (128+15).
{floor_note(results)}

The same run, once, with the orphan example of `make demo` (`e2e.runtime.stop_time_demo`:
a parent shell forks {ORPHANS} children and exits early, then the app `exec`s a `sleep` that
never waits; zombies counted in the container's PID namespace once the children exited):

{demo_table(demo)}

Measured {dt.datetime.now(dt.UTC):%Y-%m-%d} on {machine()}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per variant (median)")
    parser.add_argument("--grace", type=float, default=2.0, help="seconds before SIGKILL")
    parser.add_argument("--init", type=Path, default=ROOT / "build" / "podinit")
    parser.add_argument(
        "--write-doc", type=Path, help="replace the ## Runtime section of this file"
    )
    args = parser.parse_args()
    runtime = find_runtime()
    results = measure(args.runs, args.grace, args.init.resolve(), runtime)
    demo = stop_time_demo(args.init.resolve(), orphans=ORPHANS, grace=args.grace, runtime=runtime)
    print(table(results))
    print(f"\nunmutated / mutated: {ratio(results):.0f}x (grace {args.grace:g} s)\n")
    print(demo_table(demo))
    if args.write_doc:
        replace_section(args.write_doc, SECTION, markdown(results, demo, args.runs, args.grace))
        print(f"wrote the ## {SECTION} section of {args.write_doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
