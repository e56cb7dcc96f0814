"""NetworkPolicies enforced on the node, opt in: kube-router's firewall alone (its
NetworkPolicy controller; no routing, no service proxy) for as long as a test needs it.

    with netpol.enforcing(cluster) as enforcer:   # tests/node/test_network_policy.py
        ...                                        # policies hold between the bridge's pods

The bridge CNI enforces no policy, so without this a NetworkPolicy on the node is only
stored. kube-router works through the filter table (jumps at position 1 of INPUT, FORWARD
and OUTPUT to KUBE-ROUTER-*, a KUBE-POD-FW-* chain per local pod, a KUBE-NWPLCY-* chain per
policy), ipsets (KUBE-SRC-*, KUBE-DST-*; the `ipset` command, Debian package ``ipset``) and
``bridge-nf-call-iptables``, so that traffic switched between pods on the bridge passes
iptables too. It REJECTs what no policy admits and ACCEPTs what one does, which would skip
the node's own FORWARD drop if that were a filter rule: e2e.node.network keeps it in the
mangle table, which every forwarded packet passes first.

What it cannot show: kube-router admits all traffic whose source is one of the node's own
addresses (its rule "permit the traffic to pods when source is the pod's local node"), so
the API server, the kubelet's probes and every program on the node reach any pod whatever
the policies say. Only pods are kept out.

kube-router leaves its chains and ipsets behind when it stops; ``remove_rules`` removes them
(``--cleanup-config`` would also undo its router's and service proxy's state, which never
ran here). ``enforcing`` does both on the way out, so the node's other tests run without it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.node.kubelet import NODE_NAME
from e2e.node.network import SERVICE_SUBNET, remove_chains
from e2e.processes import Process, wait_until
from e2e.tools import find_kube_router

if TYPE_CHECKING:
    from e2e.node.cluster import Cluster

# Everything kube-router's firewall makes (KUBE-ROUTER-INPUT/FORWARD/OUTPUT, per pod, per policy
# and KUBE-NWPLCY-DEFAULT); never kube-proxy's or the kubelet's KUBE-* chains.
CHAINS = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
# Its ipsets, of the pods a policy selects and of its peers (IPv6 ones are "inet6:KUBE-...").
IPSETS = ("KUBE-SRC-", "KUBE-DST-")
# Logged (--v=1) at the end of every full sync of the policies into iptables.
SYNCED = "sync iptables took"


def kube_router_argv(binary: Path, *, kubeconfig: Path) -> list[str]:
    """The firewall alone. No health port: its server listens on every address of the
    machine, and the log says when a sync is done (``SYNCED``)."""
    return [
        str(binary),
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        f"--service-cluster-ip-range={SERVICE_SUBNET}",
        "--health-port=0",
        "--metrics-port=0",
        "--v=1",
    ]


def ipsets() -> list[str]:
    """kube-router's ipsets on the machine (none without the `ipset` command)."""
    if shutil.which("ipset") is None:
        return []
    listed = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True, check=False)
    return [
        name for name in listed.stdout.split() if name.removeprefix("inet6:").startswith(IPSETS)
    ]


def remove_rules() -> None:
    """kube-router's chains (and every jump to them), then its ipsets, which a rule still
    referring to them would keep; idempotent."""
    remove_chains(CHAINS)
    for name in ipsets():
        subprocess.run(["ipset", "destroy", name], capture_output=True, check=False)


def iptables_lines(keep: Callable[[str], bool]) -> list[str]:
    """The lines of every IPv4 and IPv6 filter, nat and mangle table that `keep` picks, each
    named by where it was found."""
    found: list[str] = []
    for tool in ("iptables-save", "ip6tables-save"):
        for table in ("filter", "nat", "mangle"):
            text = subprocess.run([tool, "-t", table], capture_output=True, text=True).stdout
            found += [f"{tool} -t {table}: {line}" for line in text.splitlines() if keep(line)]
    return found


def leftovers() -> list[str]:
    """kube-router's chains and ipsets still on the machine; empty once removed."""
    chains = tuple(f":{prefix}" for prefix in CHAINS)
    found = iptables_lines(lambda line: line.startswith(chains))
    return found + [f"ipset {name}" for name in ipsets()]


@dataclass
class PolicyEnforcer:
    process: Process

    def syncs(self) -> int:
        """How many full syncs of the policies into iptables kube-router has finished."""
        try:
            return self.process.log.read_text(errors="replace").count(SYNCED)
        except OSError:
            return 0

    def stop(self) -> None:
        """Stop kube-router, then remove what it left (it would put it back if still running)."""
        self.process.stop()
        remove_rules()


@contextmanager
def enforcing(cluster: Cluster, binary: Path | None = None) -> Iterator[PolicyEnforcer]:
    """kube-router's firewall on the node, as the admin, yielded once it has synced the
    policies (and every pod's chain) once; stopped and its rules removed afterwards."""
    cp = cluster.cp
    argv = kube_router_argv(binary or find_kube_router(), kubeconfig=cp.kubeconfig)
    enforcer = PolicyEnforcer(cp.spawn("kube-router", argv))
    try:
        wait_until("kube-router's first sync", enforcer.syncs, 60, [*cp.core, enforcer.process])
        yield enforcer
    finally:
        enforcer.stop()
