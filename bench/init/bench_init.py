"""Benchmark podinit against Debian's tini, tini-static, dumb-init and catatonit.

Every init runs the same workloads in the same run, as PID 1 of a new PID
namespace (unshare --pid --fork --mount-proc) except for the exec overhead,
which is the median of N runs of `INIT /bin/true` minus bare `/bin/true`.
Prints a Markdown table with podinit's ratio against the best anchor.

    python bench/init/bench_init.py --init build/podinit [--runs 300] [--storm 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from e2e.processes import wait_until  # noqa: E402

ORPHAN = HERE.parents[1] / "tests" / "init" / "helpers" / "spawn_orphan.py"
ANCHORS = ["tini", "tini-static", "dumb-init", "catatonit"]
TRAPPED = 'trap "exit 0" TERM; sleep 1000'
STOP_CAP = 3.0  # seconds a wrapper gets before we call it hung (Kubernetes: SIGKILL at 30 s)

# Released together with a go pipe: the generator's zombies all reparent to
# PID 1 at once; we time until /proc holds nothing but PID 1 and ourselves.
STORM = """
import os, sys, time
n = int(sys.argv[1])
go_r, go_w = os.pipe()
ready_r, ready_w = os.pipe()
generator = os.fork()
if generator == 0:
    os.close(go_w)
    for _ in range(n):
        if os.fork() == 0:
            os._exit(0)
    os.write(ready_w, b"x")
    os.read(go_r, 1)
    os._exit(0)
os.read(ready_r, 1)
t0 = time.monotonic()
os.close(go_w)
os.wait()  # the generator, our own child
me = str(os.getpid())
while any(p.isdigit() and p not in ("1", me) for p in os.listdir("/proc")):
    pass
print(time.monotonic() - t0, flush=True)
"""


def pid1(init: list[str], cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
    argv = ["unshare", "--pid", "--fork", "--mount-proc", *init, "--", *cmd]
    return subprocess.Popen(argv, text=True, **kw)


def stop(proc: subprocess.Popen[str]) -> None:
    """Kills the namespace's PID 1 (and so everything in it), then unshare."""
    if proc.poll() is None:
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
    proc.wait()


def children(ppid: int) -> list[int]:
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
            found.append(int(p))
    return found


def child_of(pid: int, timeout: float = 10) -> int:
    return int(wait_until(f"a child of {pid}", lambda: next(iter(children(pid)), 0), timeout,
                          interval=0.005))  # fmt: skip


def wait_for_comm(root: int, comm: str, timeout: float = 10) -> None:
    """Until a process named comm runs below root (the sleep of a wrapper)."""

    def running() -> bool:
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() == comm and ancestor(root, int(p)):
                    return True
            except OSError:
                continue
        return False

    wait_until(f"{comm} to start below {root}", running, timeout, interval=0.002)


def ancestor(root: int, pid: int) -> bool:
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        if pid == root:
            return True
    return False


def spawn_wait(argv: list[str]) -> float:
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 2)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    os.waitpid(pid, 0)
    elapsed = time.perf_counter() - t0
    os.close(devnull)
    return elapsed


def exec_overhead(inits: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median µs over interleaved runs, minus bare /bin/true's median."""
    true = shutil.which("true") or "/bin/true"
    samples: dict[str, list[float]] = {name: [] for name in [*inits, "bare"]}
    for _ in range(runs):
        samples["bare"].append(spawn_wait([true]))
        for name, init in inits.items():
            samples[name].append(spawn_wait([*init, "--", true]))
    bare = statistics.median(samples.pop("bare"))
    return {name: (statistics.median(s) - bare) * 1e6 for name, s in samples.items()}


def rss_kb(init: list[str]) -> float:
    proc = pid1(init, ["sleep", "1000"])
    try:
        pid = child_of(proc.pid)
        child_of(pid)
        time.sleep(0.2)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
        raise RuntimeError("no VmRSS")
    finally:
        stop(proc)


def stop_time(init: list[str], cmd: list[str]) -> float:
    """Seconds from SIGTERM to the init's exit; inf when it outlives STOP_CAP.

    A blocking wait with a watchdog: Popen.wait(timeout) polls with sleeps
    that would round the latencies up."""
    proc = pid1(init, cmd, stderr=subprocess.DEVNULL)
    try:
        pid = child_of(proc.pid)
        wait_for_comm(pid, "sleep")
        watchdog = threading.Timer(STOP_CAP, os.kill, (pid, signal.SIGKILL))
        watchdog.start()
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGTERM)
        proc.wait()
        elapsed = time.perf_counter() - t0
        watchdog.cancel()
        return float("inf") if elapsed >= STOP_CAP else elapsed
    finally:
        stop(proc)


def interleaved(
    n: int, inits: dict[str, list[str]], measure: Callable[[list[str]], float]
) -> dict[str, float]:
    """Median of n runs per init, taking the inits in turn so that load from
    elsewhere on the machine falls on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in inits}
    for _ in range(n):
        for name, init in inits.items():
            samples[name].append(measure(init))
    return {name: statistics.median(s) for name, s in samples.items()}


def storm(init: list[str], n: int) -> float:
    proc = pid1(init, [sys.executable, "-c", STORM, str(n)], stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        stop(proc)
    return float(out.strip()) * 1000


def orphan_handler(init: list[str]) -> str:
    proc = pid1(
        init,
        [sys.executable, str(ORPHAN), "handler", "--linger", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        stop(proc)
    if "orphan finished" in out:
        return "yes"
    return "TERM, killed in handler" if "orphan got TERM" in out else "no (SIGKILL)"


def fmt(value: float, unit: str) -> str:
    if value == float("inf"):
        return f"> {STOP_CAP:g} s (hung)"
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--init", default="build/podinit", help="podinit binary")
    ap.add_argument("--runs", type=int, default=300, help="exec overhead runs per init")
    ap.add_argument("--stops", type=int, default=21, help="SIGTERM latency runs per init")
    ap.add_argument("--storm", type=int, default=10_000, help="orphans per storm")
    ap.add_argument("--storms", type=int, default=7, help="storm runs per init")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-init needs root (unshare --pid --mount-proc)")

    paths = {"podinit": str(Path(args.init).resolve())}
    for name in ANCHORS:
        found = shutil.which(name)
        if found:
            paths[name] = found
        else:
            print(f"# {name} missing (Debian package {name.split('-')[0]}), skipped")
    inits = {name: [path] for name, path in paths.items()}

    rows: list[tuple[str, dict[str, float], str]] = []
    # Debian's tini and dumb-init are dynamic: their size says nothing about a
    # FROM scratch image, so they stay out of that row.
    static = {n: p for n, p in paths.items() if b"/ld-" not in Path(p).read_bytes()[:4096]}
    for name in sorted(set(paths) - set(static)):
        print(f"# {name} is dynamically linked: left out of the size row")
    rows.append(
        ("static size", {n: Path(p).stat().st_size / 1024 for n, p in static.items()}, "KB")
    )
    print("# exec overhead ...", file=sys.stderr)
    rows.append(("exec overhead", exec_overhead(inits, args.runs), "µs"))
    print("# rss ...", file=sys.stderr)
    rows.append(("RSS as PID 1", {n: rss_kb(i) for n, i in inits.items()}, "kB"))
    print("# sigterm ...", file=sys.stderr)
    stop = interleaved(args.stops, inits, lambda i: stop_time(i, ["sleep", "1000"]))
    rows.append(("SIGTERM to exit", {n: v * 1000 for n, v in stop.items()}, "ms"))
    print("# trapped wrapper ...", file=sys.stderr)
    trapped = interleaved(3, inits, lambda i: stop_time(i, ["sh", "-c", TRAPPED]))
    rows.append(("trapped `sh -c` stop", {n: v * 1000 for n, v in trapped.items()}, "ms"))
    print("# storm ...", file=sys.stderr)
    reaped = interleaved(args.storms, inits, lambda i: storm(i, args.storm))
    rows.append((f"reap {args.storm:,} orphans", reaped, "ms"))
    print("# orphan handlers ...", file=sys.stderr)
    handled = {n: orphan_handler(i) for n, i in inits.items()}

    names = list(paths)
    print("| metric | " + " | ".join(names) + " | podinit / best anchor |")
    print("|---" * (len(names) + 2) + "|")
    for metric, values, unit in rows:
        anchors = [v for n, v in values.items() if n != "podinit"]
        best = min(anchors) if anchors else float("nan")
        ratio = values["podinit"] / best if best not in (0, float("inf")) else float("nan")
        cells = [fmt(values[n], unit) if n in values else "dynamic" for n in names]
        print(f"| {metric} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    print("| orphans ran their TERM handler | " + " | ".join(handled[n] for n in names) + " | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
