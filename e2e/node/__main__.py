"""``make cluster`` / ``make cluster-down``: the one-node cluster in the background.

    python -m e2e.node up     start it (a second `up` says it is running), write
                              build/cluster/{kubeconfig,registry,registry-ca.crt,images.json}
    python -m e2e.node down   stop it and remove everything it left on the machine

``up`` starts a detached supervisor process that owns every cluster process (they die
with it) and stops them all on SIGTERM; ``down`` signals it, then removes leftovers even
when the supervisor is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from e2e.node.cluster import DEFAULT_STATE, Cluster, teardown
from e2e.tools import ToolsMissing, find_node_tools

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "cluster"
STARTUP_TIMEOUT = 900  # a first run builds the images
# written for users while the cluster runs (Cluster.write_access adds registry-ca.crt and
# images.json, which stay useful after it stops)
RUNTIME_FILES = ("kubeconfig", "registry", "ready", "supervisor.pid")


def _pid(out: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((out / "supervisor.pid").read_text())
        os.kill(pid, 0)
        return pid
    return None


def up(out: Path, state: Path) -> int:
    pid = _pid(out)
    if pid is not None:
        print(f"cluster: already running (supervisor pid {pid}); KUBECONFIG={out}/kubeconfig")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    (out / "ready").unlink(missing_ok=True)
    log = out / "supervisor.log"
    argv = [sys.executable, "-m", "e2e.node", "supervise", "--out", str(out)]
    argv += ["--state", str(state)]
    with log.open("w") as log_file:
        child = subprocess.Popen(
            argv, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    (out / "supervisor.pid").write_text(f"{child.pid}\n")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not (out / "ready").exists():
        if child.poll() is not None or time.monotonic() > deadline:
            print(f"cluster: failed to start; {log}:\n{log.read_text()[-3000:]}", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            return 1
        time.sleep(0.5)
    print((out / "ready").read_text(), end="")
    return 0


def supervise(out: Path, state: Path) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.monotonic()
    cluster = Cluster.start(state=state)
    try:
        cluster.write_access(out)
        (out / "ready").write_text(
            f"cluster: node Ready in {time.monotonic() - started:.0f}s\n"
            f"  export KUBECONFIG={out}/kubeconfig\n"
            f"  registry {cluster.registry.host} (CA {out}/registry-ca.crt)\n"
            f"  logs {cluster.cp.logdir}\n"
        )
        stop.wait()
    finally:
        cluster.stop(keep_logs=True)
        for name in RUNTIME_FILES:
            (out / name).unlink(missing_ok=True)
    return 0


def down(out: Path, state: Path) -> int:
    pid = _pid(out)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 180
        while _pid(out) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        if _pid(out) is not None:
            os.kill(pid, signal.SIGKILL)
    try:
        node_tools = find_node_tools()
    except ToolsMissing:
        node_tools = None
    teardown(state, node_tools)
    for name in RUNTIME_FILES:
        (out / name).unlink(missing_ok=True)
    print("cluster: down; processes stopped, pod network and node state removed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.node", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "supervise"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("cluster: needs root (network, mounts, cgroups)", file=sys.stderr)
        return 1
    command = {"up": up, "down": down, "supervise": supervise}[args.command]
    return command(args.out, args.state)


if __name__ == "__main__":
    sys.exit(main())
