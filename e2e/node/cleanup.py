"""Remove everything a node run leaves on the machine, whether it stopped cleanly or not:
pods (through the CRI while containerd still runs), then by force: container processes,
shims, mounts under the state directory, kubepods cgroups, kube-proxy's, CNI's and
kube-router's iptables chains, kube-router's ipsets (e2e.node.netpol), the bridge, the state
directory. Every step is idempotent."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from e2e.node import netpol
from e2e.node.network import BRIDGE, PodNetwork

CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
# The older node's kubelet (e2e.node.oldnode) keeps its pods under a cgroup root of its own:
# two kubelets sharing /kubepods would each remove the other's pods as orphans.
OLD_NODE_CGROUP = "podinit-old-node"


def remove_pods(crictl: Path, endpoint: str) -> None:
    """Stop and remove every pod sandbox through the CRI (runs CNI DEL, unmounts)."""
    argv = [str(crictl), "--runtime-endpoint", endpoint, "--timeout", "20s", "rmp", "-af"]
    subprocess.run(argv, capture_output=True, check=False, timeout=120)


def _kubepods_cgroups(tops: tuple[str, ...] = (KUBEPODS, OLD_NODE_CGROUP)) -> Iterator[Path]:
    """Every cgroup directory under ``tops``, deepest first, in every v1 hierarchy and v2."""
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        for top in (hierarchy / name for name in tops):
            if top.is_dir():
                yield from sorted(
                    (p for p in top.rglob("*") if p.is_dir()),
                    key=lambda p: len(p.parts),
                    reverse=True,
                )
                yield top


def _kill_pids(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_containers(tops: tuple[str, ...] = (KUBEPODS, OLD_NODE_CGROUP)) -> None:
    """SIGKILL whatever still runs in a kubepods cgroup (or the older node's), then remove
    the cgroups."""
    for _attempt in range(10):
        pids: set[int] = set()
        for cgroup in _kubepods_cgroups(tops):
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
        if not pids:
            break
        _kill_pids(pids)
        time.sleep(0.2)
    for cgroup in _kubepods_cgroups(tops):
        with contextlib.suppress(OSError):
            cgroup.rmdir()


def kill_shims(state: Path) -> None:
    """containerd shims started for this node's containerd (their argv names its socket)."""
    marker = str(state).encode()
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"containerd-shim" in cmdline and marker in cmdline:
                pids.add(int(proc.name))
    _kill_pids(pids)


def unmount_under(state: Path) -> None:
    """Every mount at or below ``state``, deepest first (lazily, so a busy one goes too)."""
    prefix = str(state.resolve())
    for _attempt in range(5):
        mounts = [
            line.split()[1].encode().decode("unicode_escape")
            for line in Path("/proc/self/mounts").read_text().splitlines()
        ]
        ours = sorted(
            (m for m in mounts if m == prefix or m.startswith(prefix + "/")),
            key=len,
            reverse=True,
        )
        if not ours:
            return
        for mount in ours:
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def kube_proxy_cleanup(kube_proxy: Path | None) -> None:
    """kube-proxy's own cleanup of its iptables/nftables rules (KUBE-* chains)."""
    if kube_proxy is not None and kube_proxy.is_file():
        subprocess.run([str(kube_proxy), "--cleanup"], capture_output=True, check=False, timeout=60)


def everything(state: Path, *, kube_proxy: Path | None) -> None:
    """The forced part of a teardown (processes of the node are already stopped)."""
    kill_containers()
    kill_shims(state)
    unmount_under(state)
    kube_proxy_cleanup(kube_proxy)
    PodNetwork(state).remove()  # every KUBE-* chain, kube-router's too
    netpol.remove_rules()  # its ipsets, free once no rule refers to them
    shutil.rmtree(state, ignore_errors=True)


def leftovers(state: Path) -> list[str]:
    """What a stopped node left on the machine; empty after a clean teardown."""
    found: list[str] = []
    if state.exists():
        found.append(f"state directory {state}")
    prefix = str(state)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    found += [f"mount {m}" for m in mounts if m == prefix or m.startswith(prefix + "/")]
    found += [f"cgroup {c}" for c in _kubepods_cgroups()]
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        found.append(f"bridge {BRIDGE}")
    found += netpol.iptables_lines(
        lambda line: line.startswith((":KUBE-", ":CNI-")) or "podinit-node" in line
    )
    found += [f"ipset {name}" for name in netpol.ipsets()]
    marker = str(state).encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if marker in cmdline and b"containerd" in cmdline:
                    found.append(f"process {proc.name}: {cmdline[:80]!r}")
    return found
