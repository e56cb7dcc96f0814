"""The pod network: one Linux bridge, CNI bridge + host-local IPAM, nothing routed off it.

The bridge carries the node's own address (the apiserver, registry, DNS and kubelet listen
there, so pods reach them without forwarding). Pods get a route to the bridge's subnet and
the service range only, no default route; the bridge may forward only back onto itself
(service traffic between pods), and ``net.ipv4.ip_forward`` is never touched.

The rule that drops everything forwarded off the bridge is in the mangle table's FORWARD
chain, which every forwarded packet passes before the filter table's: a program that
ACCEPTs in filter FORWARD ahead of other rules (kube-router, e2e.node.netpol, inserts its
jump at position 1 and ACCEPTs what a policy allows) cannot let a pod's packet off the
machine.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

BRIDGE = "podinit0"
NETWORK_NAME = "podinit"
POD_SUBNET = "10.244.0.0/24"
NODE_IP = "10.244.0.1"  # the bridge's address: the node's InternalIP
# Each node's pods get addresses from their own half of the subnet: a second node on this
# machine (e2e.node.oldnode) shares the bridge, and host-local IPAM keeps leases per node.
POD_RANGE = ("10.244.0.2", "10.244.0.127")
OLD_NODE_POD_RANGE = ("10.244.0.128", "10.244.0.254")
SERVICE_SUBNET = "10.0.0.0/24"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian containernetworking-plugins
# In the mangle table, before any filter rule (see the module's docstring).
_FORWARD_TABLE = "mangle"
_FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP"]
_FORWARD_COMMENT = ["-m", "comment", "--comment", "podinit-node: pods never route off the bridge"]


class NetworkError(RuntimeError):
    pass


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class PodNetwork:
    state: Path  # IPAM leases live here, so cleanup is one rmtree
    pod_range: tuple[str, str] = POD_RANGE

    @property
    def conf_dir(self) -> Path:
        return self.state / "cni" / "net.d"

    def write_cni_config(self) -> Path:
        config = {
            "cniVersion": "1.0.0",
            "name": NETWORK_NAME,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    # the bridge keeps its address; pods get no default route through it
                    "isGateway": True,
                    "isDefaultGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.state / "cni" / "ipam"),
                        "ranges": [
                            [
                                {
                                    "subnet": POD_SUBNET,
                                    "rangeStart": self.pod_range[0],
                                    "rangeEnd": self.pod_range[1],
                                    "gateway": NODE_IP,
                                }
                            ]
                        ],
                        "routes": [{"dst": SERVICE_SUBNET}],
                    },
                },
                # no portmap: nothing here uses hostPort, and its iptables calls slowed
                # every pod's teardown (seen by hand with `time kubectl delete pod`)
            ],
        }
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        path = self.conf_dir / "10-podinit.conflist"
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path

    def create_bridge(self) -> None:
        """The bridge and its address exist before anything binds to NODE_IP."""
        if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
            _run("ip", "link", "add", BRIDGE, "type", "bridge")
        addresses = _run("ip", "-o", "-4", "addr", "show", "dev", BRIDGE).stdout
        if f" {NODE_IP}/" not in addresses:
            _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # Forwarding only for packets entering the bridge, and only back onto it
        # (pod -> service -> pod); the host's ip_forward stays as it is.
        Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding").write_text("1\n")
        rule = [*_FORWARD_RULE, *_FORWARD_COMMENT]
        if _run("iptables", "-t", _FORWARD_TABLE, "-C", *rule, check=False).returncode:
            _run("iptables", "-t", _FORWARD_TABLE, "-I", *rule)

    def remove(self) -> None:
        """The bridge, the forward rule and every CNI chain left behind; idempotent."""
        rule = [*_FORWARD_RULE, *_FORWARD_COMMENT]
        for table in (_FORWARD_TABLE, "filter"):  # filter: where earlier versions put it
            while _run("iptables", "-t", table, "-D", *rule, check=False).returncode == 0:
                pass
        _run("ip", "link", "del", BRIDGE, check=False)
        remove_chains()


def remove_chains(prefixes: tuple[str, ...] = ("CNI-", "KUBE-")) -> None:
    """Chains the node's programs made (CNI's bridge and portmap; the kubelet's and
    kube-proxy's KUBE-*) and every jump to them, in each table, IPv4 and IPv6."""
    for tool in ("iptables", "ip6tables"):
        for table in ("nat", "filter", "mangle"):
            rules = _run(f"{tool}-save", "-t", table, check=False).stdout.splitlines()
            chains = [line[1:].split()[0] for line in rules if line.startswith(":")]
            ours = [chain for chain in chains if chain.startswith(prefixes)]
            for rule in rules:
                words = shlex.split(rule) if rule.startswith("-A ") else []
                jumps = words[words.index("-j") + 1] if "-j" in words[:-1] else ""
                if words and not words[1].startswith(prefixes) and jumps.startswith(prefixes):
                    _run(tool, "-t", table, "-D", *words[1:], check=False)
            for chain in ours:
                _run(tool, "-t", table, "-F", chain, check=False)
            for chain in ours:
                _run(tool, "-t", table, "-X", chain, check=False)
