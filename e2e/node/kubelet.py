"""The kubelet and kube-proxy of the node: their configuration files and command lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from e2e.node.network import NODE_IP, POD_SUBNET

NODE_NAME = "podinit-node"
CLUSTER_DOMAIN = "cluster.local"


def kubelet_config(
    *,
    client_ca: Path,
    runtime_endpoint: str,
    healthz_port: int,
    resolv_conf: Path,
    feature_gates: dict[str, bool],
) -> dict[str, Any]:
    return {
        "featureGates": feature_gates,
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        # the apiserver authenticates with a client certificate of the cluster CA;
        # what it may do is asked of the apiserver (SubjectAccessReview)
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        # this VM mounts cgroup v1 controllers; the kubelet refuses v1 unless told
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "containerRuntimeEndpoint": runtime_endpoint,
        "clusterDNS": [NODE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": str(resolv_conf),
        "failSwapOn": False,
        # a shared build machine: never evict test pods for the disk the machine uses
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "registerNode": True,
        "rotateCertificates": False,
        "nodeStatusUpdateFrequency": "5s",
    }


def kube_proxy_config(*, kubeconfig: Path, healthz_port: int, metrics_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_SUBNET,
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # Pod -> Service -> pod on one bridge: without br_netfilter the answer would go
        # straight back over the bridge, past the NAT; masquerading sends it via the node.
        "iptables": {"masqueradeAll": True},
        # leave the machine's conntrack sysctls alone
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "nodePortAddresses": [f"{NODE_IP}/32"],
    }


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def kubelet_argv(
    binary: Path, *, config: Path, kubeconfig: Path, root: Path, node_name: str = NODE_NAME
) -> list[str]:
    return [
        str(binary),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={root}",
        f"--cert-dir={root / 'pki'}",
        f"--hostname-override={node_name}",
        f"--node-ip={NODE_IP}",
        "--v=1",
    ]


def kube_proxy_argv(binary: Path, *, config: Path) -> list[str]:
    return [str(binary), f"--config={config}", "--v=1"]
