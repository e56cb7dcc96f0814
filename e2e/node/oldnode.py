"""A second, older node joined to a running ``Cluster``: kubelet ``OLD_NODE_KUBE_VERSION``
(1.34) on containerd ``OLD_NODE_CONTAINERD_VERSION`` (1.7), next to the first node's 1.37 +
containerd 2.4, under the same 1.37 control plane (kubelets may be three minors older than
the apiserver). containerd 1.7 has no image volumes, and kubelet 1.34 has ImageVolume off.

    with OldNode.join(cluster) as old:
        old.name                  # "podinit-node-old", Ready
        # pods with nodeName/nodeSelector old.name run there

Both nodes are this one machine, so what a second machine would have of its own is kept
apart here: containerd's root, state, socket and runc root (under ``<state>/old-node``), the
kubelet's root, port (10251) and pod logs, its cgroup root (``cleanup.OLD_NODE_CGROUP``:
two kubelets under one /kubepods would remove each other's pods as orphans) and its half of
the pod subnet (network.OLD_NODE_POD_RANGE, on the same bridge). The network namespace is
shared, so the first node's kube-proxy serves Services for both; the older node runs none of
its own (two would fight over the same iptables chains).

``leave()`` stops the kubelet, removes its pods through the CRI, stops containerd, deletes
the Node and removes the state and cgroups; ``Cluster.stop`` removes them too if it was not
called (the state lies under the cluster's).
"""

from __future__ import annotations

import contextlib
import shutil
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from e2e.node import cleanup
from e2e.node.cluster import Cluster
from e2e.node.containerd import Containerd
from e2e.node.kubelet import kubelet_argv, kubelet_config, write_yaml
from e2e.node.network import NODE_IP, OLD_NODE_POD_RANGE, PodNetwork
from e2e.processes import Process, free_port, wait_until
from e2e.tools import NodeTools, find_node_tools, oldest_release

OLD_NODE_NAME = "podinit-node-old"
KUBELET_PORT = 10251  # the first node's kubelet has 10250 on the same address


@dataclass
class OldNode:
    cluster: Cluster
    tools: NodeTools  # the oldest release's; of them it runs the kubelet and containerd
    state: Path
    containerd: Containerd
    procs: list[Process] = field(default_factory=list)  # containerd, kubelet
    name: str = OLD_NODE_NAME

    @classmethod
    @contextlib.contextmanager
    def join(cls, cluster: Cluster, *, timeout: float = 180) -> Iterator[OldNode]:
        """The older node, Ready; it leaves the cluster on exit."""
        tools = find_node_tools(oldest_release())
        state = cluster.state / "old-node"
        node = cls(
            cluster, tools, state, Containerd(tools.containerd, state, v1=tools.containerd_v1)
        )
        try:
            node._start_containerd()
            node._start_kubelet(timeout)
            yield node
        finally:
            node.leave()

    def _start_containerd(self) -> None:
        cluster, containerd = self.cluster, self.containerd
        network = PodNetwork(self.state, pod_range=OLD_NODE_POD_RANGE)
        network.write_cni_config()
        assert cluster.registry.ca_file is not None
        containerd.trust_registry(cluster.registry.host, cluster.registry.ca_file)
        config = containerd.write_config(
            sandbox_image=cluster.images["pause"].reference, cni_conf_dir=network.conf_dir
        )
        proc = cluster.cp.spawn(
            "containerd-old-node", containerd.argv(config), env=containerd.env()
        )
        self.procs.append(proc)
        wait_until("containerd 1.7's socket", containerd.answers, 30, [proc])

    def _start_kubelet(self, timeout: float) -> None:
        cp, directory = self.cluster.cp, self.state / "kubelet"
        directory.mkdir(parents=True, exist_ok=True)
        credentials = cp.ca.issue_client(
            "kubelet-old-node", f"system:node:{self.name}", ["system:nodes"]
        )
        kubeconfig = directory / "kubelet.kubeconfig"
        cp.write_kubeconfig(kubeconfig, credentials, "kubelet")
        resolv = directory / "resolv.conf"
        resolv.write_text(f"nameserver {NODE_IP}\n")
        config = kubelet_config(
            client_ca=cp.ca.cert,
            runtime_endpoint=self.containerd.endpoint,
            healthz_port=free_port(),
            resolv_conf=resolv,
            feature_gates={},  # 1.34's defaults: ImageVolume off
        )
        config.update(
            port=KUBELET_PORT,
            cgroupRoot=f"/{cleanup.OLD_NODE_CGROUP}",
            podLogsDir=str(self.state / "pod-logs"),
        )
        _make_cgroup_root()
        argv = kubelet_argv(
            self.tools.kubelet,
            config=write_yaml(directory / "config.yaml", config),
            kubeconfig=kubeconfig,
            root=directory,
            node_name=self.name,
        )
        kubelet = cp.spawn("kubelet-old-node", argv)
        self.procs.append(kubelet)
        wait_until(
            f"node {self.name} Ready", self._ready, timeout, [*cp.core, *self.procs], interval=0.5
        )

    def node(self) -> dict[str, object]:
        found: dict[str, object] = self.cluster.cp.api("GET", f"/api/v1/nodes/{self.name}")
        return found

    def _ready(self) -> bool:
        try:
            status = self.node().get("status") or {}
        except (OSError, urllib.error.URLError):
            return False
        conditions = status.get("conditions", []) if isinstance(status, dict) else []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def leave(self) -> None:
        """Stop the node and remove it and what it left; idempotent."""
        kubelet = [p for p in self.procs if p.name == "kubelet-old-node"]
        for proc in kubelet:
            proc.stop()
        if self.containerd.answers():
            cleanup.remove_pods(self.cluster.node_tools.crictl, self.containerd.endpoint)
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        with contextlib.suppress(OSError, urllib.error.URLError):
            self.cluster.cp.api("DELETE", f"/api/v1/nodes/{self.name}")
        cleanup.kill_shims(self.state)
        cleanup.unmount_under(self.state)
        shutil.rmtree(self.state, ignore_errors=True)
        _remove_cgroup_root()


def _hierarchies() -> list[Path]:
    """cgroup v1 hierarchies (named directories, not the cpu,cpuacct-style symlinks)."""
    root = cleanup.CGROUP_ROOT
    return [h for h in root.iterdir() if h.is_dir() and not h.is_symlink()] if root.is_dir() else []


def _make_cgroup_root() -> None:
    """The kubelet refuses a cgroupRoot that does not exist in every hierarchy."""
    for hierarchy in _hierarchies():
        with contextlib.suppress(OSError):
            (hierarchy / cleanup.OLD_NODE_CGROUP).mkdir(exist_ok=True)
            # a new v1 cpuset cgroup has no CPUs or memory nodes until given its parent's
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / name).is_file():
                    value = (hierarchy / name).read_text()
                    (hierarchy / cleanup.OLD_NODE_CGROUP / name).write_text(value)


def _remove_cgroup_root() -> None:
    """Its containers killed and every cgroup below it removed; the first node's stay."""
    cleanup.kill_containers((cleanup.OLD_NODE_CGROUP,))
