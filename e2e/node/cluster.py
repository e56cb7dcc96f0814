"""A one-node cluster: control plane, registry with the images built from the Dockerfile,
containerd, kubelet, kube-proxy, pod network and DNS, started and stopped as one.

    with Cluster.start() as cluster:
        cluster.cp.kubectl("get", "nodes")       # the ControlPlane: kubectl, helm, api
        cluster.images["webhook"].reference      # <registry>/podinit/webhook:<version>

``Cluster.start`` first removes what an earlier run left (see e2e.node.cleanup);
``stop`` removes pods through the CRI, stops every process and removes the rest.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from e2e.controlplane import ControlPlane
from e2e.images import build, referrers, standin
from e2e.images.buildah import Buildah
from e2e.node import cleanup
from e2e.node.containerd import Containerd
from e2e.node.dns import DnsServer, ServiceLookup
from e2e.node.kubelet import (
    NODE_NAME,
    kube_proxy_argv,
    kube_proxy_config,
    kubelet_argv,
    kubelet_config,
    write_yaml,
)
from e2e.node.network import NODE_IP, PodNetwork
from e2e.node.runtimelog import RuntimeLog
from e2e.processes import Process, StartupError, free_port, wait_until
from e2e.registry import Registry, start_registry
from e2e.tools import (
    ClusterRelease,
    NodeTools,
    cluster_releases,
    find_node_tools,
    find_oras,
    find_tools,
)
from e2e.webhookconfig import http_ok

DEFAULT_STATE = Path(os.environ.get("PODINIT_NODE_STATE", "/var/lib/podinit-node"))
# On for the apiserver and the kubelet alike: the apiserver drops a gated field while its
# gate is off, the kubelet ignores it. ContainerStopSignals (alpha, off through 1.37):
# lifecycle.stopSignal reaches the runtime, and container statuses report the stop signal.
NODE_FEATURE_GATES = {"ContainerStopSignals": True}


@dataclass
class Cluster:
    cp: ControlPlane
    registry: Registry
    images: dict[str, build.Pushed]
    node_tools: NodeTools
    state: Path
    containerd: Containerd
    dns: DnsServer
    lock: int  # flock on the machine's node lock, held while this cluster runs
    node_procs: list[Process] = field(default_factory=list)  # kubelet, kube-proxy

    @classmethod
    def start(
        cls,
        *,
        state: Path = DEFAULT_STATE,
        startup_timeout: float = 180,
        kubelet_feature_gates: Mapping[str, bool] | None = None,
        release: ClusterRelease | None = None,
    ) -> Cluster:
        """Everything up and the node Ready; raises StartupError (logs kept) otherwise.
        ``kubelet_feature_gates`` are set on top of NODE_FEATURE_GATES. ``release``: the
        newest (default) or the oldest of ``e2e.tools.cluster_releases()``; every
        Kubernetes program of the cluster and its containerd are of that release."""
        release = release or cluster_releases()[0]
        tools = find_tools(release.kube_version, controllers=True)
        node_tools = find_node_tools(release)
        lock = _take_node_lock(state)
        try:
            teardown(state, node_tools)
            state.mkdir(parents=True)
            network = PodNetwork(state)
            network.create_bridge()
            cp = ControlPlane.start(
                tools,
                address=NODE_IP,
                startup_timeout=startup_timeout,
                feature_gates=NODE_FEATURE_GATES,
                scheduler=node_tools.kube_scheduler,
            )
        except BaseException:
            os.close(lock)
            raise
        try:
            cluster = cls._start_node(cp, node_tools, network, state, lock)
            gates = {**NODE_FEATURE_GATES, **(kubelet_feature_gates or {})}
            cluster._start_kubelet(startup_timeout, gates)
            cluster._start_kube_proxy()
            return cluster
        except BaseException:
            cp.stop(keep_logs=True)
            teardown(state, node_tools)
            os.close(lock)
            raise

    @classmethod
    def _start_node(
        cls,
        cp: ControlPlane,
        node_tools: NodeTools,
        network: PodNetwork,
        state: Path,
        lock: int,
    ) -> Cluster:
        registry = start_registry(state / "registry", ca=cp.ca, address=NODE_IP)
        cp.procs.append(registry.process)
        images = push_images(registry, cp.logdir / "images")

        containerd = Containerd(node_tools.containerd, state, v1=node_tools.containerd_v1)
        containerd.trust_registry(registry.host, cp.ca.cert)
        config = containerd.write_config(
            sandbox_image=images["pause"].reference, cni_conf_dir=network.conf_dir
        )
        network.write_cni_config()
        runtime = cp.spawn("containerd", containerd.argv(config), env=containerd.env())
        wait_until("containerd's socket", containerd.answers, 30, [runtime])

        dns = DnsServer(NODE_IP, _service_lookup(cp)).start()
        return cls(cp, registry, images, node_tools, state, containerd, dns, lock)

    def _start_kubelet(self, timeout: float, feature_gates: dict[str, bool]) -> None:
        cp, directory = self.cp, self.state / "kubelet"
        credentials = cp.ca.issue_client("kubelet", f"system:node:{NODE_NAME}", ["system:nodes"])
        kubeconfig = directory / "kubelet.kubeconfig"
        directory.mkdir(parents=True, exist_ok=True)
        cp.write_kubeconfig(kubeconfig, credentials, "kubelet")
        resolv = directory / "resolv.conf"  # the node's own: no search domains of the machine
        resolv.write_text(f"nameserver {NODE_IP}\n")
        healthz = free_port()
        config = write_yaml(
            directory / "config.yaml",
            kubelet_config(
                client_ca=cp.ca.cert,
                runtime_endpoint=self.containerd.endpoint,
                healthz_port=healthz,
                resolv_conf=resolv,
                feature_gates=feature_gates,
            ),
        )
        argv = kubelet_argv(
            self.node_tools.kubelet, config=config, kubeconfig=kubeconfig, root=directory
        )
        kubelet = cp.spawn("kubelet", argv)
        self.node_procs.append(kubelet)
        wait_until(
            f"node {NODE_NAME} Ready",
            self._node_ready,
            timeout,
            [*cp.core, kubelet],
            interval=0.5,
        )

    def _node_ready(self) -> bool:
        try:
            node = self.cp.api("GET", f"/api/v1/nodes/{NODE_NAME}")
        except (OSError, urllib.error.URLError):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _start_kube_proxy(self) -> None:
        cp, directory = self.cp, self.state / "kube-proxy"
        directory.mkdir(parents=True, exist_ok=True)
        kubeconfig = directory / "kube-proxy.kubeconfig"
        cp.write_kubeconfig(kubeconfig, cp.ca.issue_client("kube-proxy", "system:kube-proxy"), "")
        healthz = free_port()
        config = write_yaml(
            directory / "config.yaml",
            kube_proxy_config(
                kubeconfig=kubeconfig, healthz_port=healthz, metrics_port=free_port()
            ),
        )
        proxy = cp.spawn("kube-proxy", kube_proxy_argv(self.node_tools.kube_proxy, config=config))
        self.node_procs.append(proxy)
        wait_until(
            "kube-proxy /healthz",
            lambda: http_ok(f"http://127.0.0.1:{healthz}/healthz"),
            60,
            [*self.cp.core, proxy],
        )

    @property
    def release(self) -> ClusterRelease:
        """The Kubernetes and containerd releases it runs."""
        return self.node_tools.release

    @property
    def runtime_log(self) -> RuntimeLog:
        """containerd's log: when it created, started, stopped and saw exit each container."""
        return RuntimeLog(self.cp.logdir / "containerd.log")

    def stop(self, *, keep_logs: bool = False) -> None:
        for proc in reversed(self.node_procs):
            proc.stop()
        cleanup.remove_pods(self.node_tools.crictl, self.containerd.endpoint)
        self.dns.stop()
        self.cp.stop(keep_logs=keep_logs)
        teardown(self.state, self.node_tools)
        os.close(self.lock)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.stop(keep_logs=exc_type is not None)

    def write_access(self, directory: Path) -> None:
        """kubeconfig, registry (HOST:PORT), registry-ca.crt and images.json for users."""
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.cp.kubeconfig, directory / "kubeconfig")
        (directory / "registry").write_text(self.registry.host + "\n")
        shutil.copy(self.cp.ca.cert, directory / "registry-ca.crt")
        build.write_index(list(self.images.values()), directory)


def _take_node_lock(state: Path) -> int:
    """One node per machine: the bridge, its address and the kubelet's port are fixed."""
    path = state.parent / f".{state.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StartupError(
            f"another podinit node runs on this machine (lock {path}): `make cluster-down`"
        ) from None
    return fd


def teardown(state: Path, node_tools: NodeTools | None) -> None:
    if node_tools is None:
        cleanup.everything(state, kube_proxy=None)
        return
    containerd = Containerd(node_tools.containerd, state)
    if containerd.answers():  # a run that did not stop: let the CRI remove its pods first
        cleanup.remove_pods(node_tools.crictl, containerd.endpoint)
    cleanup.everything(state, kube_proxy=node_tools.kube_proxy)


def push_images(registry: Registry, out_dir: Path) -> dict[str, build.Pushed]:
    """podinit's images (webhook on the Debian stand-in base) and the test images."""
    buildah = Buildah.default()
    cert_dir = out_dir / "certs"
    cert_dir.mkdir(parents=True, exist_ok=True)
    assert registry.ca_file is not None
    shutil.copy(registry.ca_file, cert_dir / "ca.crt")
    pushed = build.product_images(
        buildah,
        registry=registry.host,
        bases=standin.bases(buildah, build.PLATFORMS),
        cert_dir=cert_dir,
        out_dir=out_dir,
    )
    for image in pushed:
        referrers.attach_sboms(find_oras(), image, cert_dir=cert_dir)
    pushed += build.test_images(buildah, registry=registry.host, cert_dir=cert_dir)
    return {p.name: p for p in pushed}


def _service_lookup(cp: ControlPlane) -> ServiceLookup:
    def lookup(namespace: str, service: str) -> str | None:
        try:
            found = cp.api("GET", f"/api/v1/namespaces/{namespace}/services/{service}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
        cluster_ip: str = found["spec"].get("clusterIP", "None")
        return cluster_ip

    return lookup
