"""Where the end-to-end tools are: the binaries ``make e2e-tools`` builds (e2e/tools.sh)
into the tools cache, at the versions of e2e/versions.env. Nothing is taken from PATH but
runc: kubectl is built per Kubernetes release, and ``find_tools`` pairs each apiserver with
the kubectl of its own release (``kubectl_within_skew`` checks the pairing).

``find_tools()`` returns the control plane's paths or raises ``ToolsMissing`` naming what
is missing and how to get it; an environment variable per tool (``ETCD``,
``KUBE_APISERVER``, ``KUBE_CONTROLLER_MANAGER``, ``HELM``, ``HELM4``, ``KUBECTL``)
overrides its path. ``find_tools(version)`` for a release of the version matrix
(``KUBE_MATRIX``, ``matrix_versions()``) is its kube-apiserver and kubectl
(``KUBE_APISERVER_1_34``, ``KUBECTL_1_34``, ...) and no controller manager, unless it
is the oldest cluster's release (``controllers=True``).
``find_node_tools()`` does the same for what a one-node cluster adds (``KUBELET``,
``KUBE_SCHEDULER``, ``KUBE_PROXY``, ``CONTAINERD``, ``CONTAINERD_SHIM``,
``CRICTL``, and ``RUNC`` from PATH), of the newest release or of another of
``cluster_releases()``: the oldest supported one (``OLD_NODE_KUBELET``,
``OLD_NODE_CONTAINERD``, ``OLDEST_KUBE_SCHEDULER``, ``OLDEST_KUBE_PROXY``; its control
plane adds ``OLDEST_KUBE_CONTROLLER_MANAGER``), whose kubelet and containerd also make the
older node joined to the newest cluster (e2e.node.oldnode); ``find_oras()`` the one
``make images`` needs (``ORAS``); ``find_kube_router()`` the NetworkPolicy enforcer a node
test may start (``KUBE_ROUTER``). The names are those of ``e2e/tools.sh --paths``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent


class ToolsMissing(Exception):
    """The control-plane binaries are not there; the message says how to get them."""


@dataclass(frozen=True)
class Tools:
    etcd: Path
    kube_apiserver: Path
    # None for a release of the version matrix but the oldest cluster's: only KUBE_VERSION's
    # and OLD_NODE_KUBE_VERSION's are built (the matrix scenarios need no controller;
    # e2e.controlplane then creates what they would)
    kube_controller_manager: Path | None
    helm: Path
    helm4: Path
    kubectl: Path  # of kube_version's release: within kubectl's skew of its apiserver
    versions: dict[str, str]
    kube_version: str = ""  # the release of kube_apiserver and kubectl, e.g. "v1.37.2"

    @property
    def kube_minor(self) -> int:
        return minor_of(self.kube_version)


@dataclass(frozen=True)
class NodeTools:
    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path
    containerd: Path
    containerd_shim: Path  # containerd-shim-runc-v2, beside containerd
    crictl: Path
    runc: Path
    versions: dict[str, str]
    release: ClusterRelease  # of kubelet, kube-scheduler, kube-proxy and containerd

    @property
    def containerd_v1(self) -> bool:
        """containerd 1.x, whose configuration file has another layout."""
        return self.release.containerd_version.startswith("v1.")


@dataclass(frozen=True)
class ClusterRelease:
    """What a one-node cluster runs: its control plane's and node's Kubernetes release
    (apiserver, controller manager, scheduler, kubelet, kube-proxy, kubectl) and containerd."""

    name: str  # the tests' id, the minor: "1.37"
    kube_version: str
    containerd_version: str
    newest: bool  # KUBE_VERSION's, the one every node test runs on


def cluster_releases(versions: dict[str, str] | None = None) -> list[ClusterRelease]:
    """The clusters tests/node runs on, newest first: KUBE_VERSION on CONTAINERD_VERSION,
    and the oldest supported release (OLD_NODE_KUBE_VERSION on OLD_NODE_CONTAINERD_VERSION,
    the older node's programs under a control plane of their own release)."""
    versions = versions or read_versions()
    pairs = (
        ("KUBE_VERSION", "CONTAINERD_VERSION"),
        ("OLD_NODE_KUBE_VERSION", "OLD_NODE_CONTAINERD_VERSION"),
    )
    return [
        ClusterRelease(
            f"1.{minor_of(versions[kube])}", versions[kube], versions[containerd], newest=i == 0
        )
        for i, (kube, containerd) in enumerate(pairs)
    ]


def oldest_release() -> ClusterRelease:
    return cluster_releases()[-1]


def read_versions(path: Path = E2E_DIR / "versions.env") -> dict[str, str]:
    """``KEY=value`` lines of e2e/versions.env (comments and blank lines skipped)."""
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def tools_cache() -> Path:
    """``$PODINIT_TOOLS_CACHE``, else ``~/.cache/podinit-tools`` (as in e2e/tools.sh)."""
    env = os.environ.get("PODINIT_TOOLS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "podinit-tools"


def _cached(versions: dict[str, str], tool: str, version_key: str, binary: str = "") -> Path:
    return tools_cache() / f"{tool}-{versions[version_key]}" / (binary or tool)


def _locate(wanted: dict[str, tuple[Path, str]]) -> dict[str, Path]:
    """NAME -> path ($NAME overrides the default); ToolsMissing names every missing one."""
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name, (default, remedy) in wanted.items():
        path = Path(os.environ.get(name) or default)
        if not (path.is_file() and os.access(path, os.X_OK)):
            missing.append(f"{name.lower().replace('_', '-')} ({path}): {remedy}")
        paths[name] = path
    if missing:
        raise ToolsMissing("end-to-end tools missing: " + "; ".join(missing))
    return paths


def minor_of(version: str) -> int:
    """``v1.34.4`` (or ``1.34``, or kubectl's ``gitVersion``) -> 34."""
    match = re.match(r"v?1\.(\d+)", version)
    if not match:
        raise ValueError(f"not a Kubernetes 1.x version: {version!r}")
    return int(match[1])


def matrix_versions(versions: dict[str, str] | None = None) -> list[str]:
    """Every release the version matrix runs against, oldest first: ``KUBE_MATRIX`` and
    ``KUBE_VERSION``."""
    versions = versions or read_versions()
    older = [v for v in versions.get("KUBE_MATRIX", "").split(",") if v.strip()]
    return sorted({*map(str.strip, older), versions["KUBE_VERSION"]}, key=minor_of)


def kubectl_within_skew(kubectl_version: str, server_version: str) -> bool:
    """kubectl is supported within one minor of the apiserver, older or newer."""
    return abs(minor_of(kubectl_version) - minor_of(server_version)) <= 1


def find_tools(kube_version: str | None = None, *, controllers: bool = False) -> Tools:
    """Locate the binaries built by ``make e2e-tools`` (env vars override each path):
    KUBE_VERSION's control plane, or with ``kube_version`` a release of ``KUBE_MATRIX``
    (its kube-apiserver and kubectl; its controller manager too with ``controllers``, which
    only the oldest cluster's release has)."""
    versions = read_versions()
    built = "`make e2e-tools`"
    release = kube_version or versions["KUBE_VERSION"]
    if release not in matrix_versions(versions):
        raise ValueError(f"{release} is neither KUBE_VERSION nor in KUBE_MATRIX")
    main = release == versions["KUBE_VERSION"]
    # the names of `e2e/tools.sh --paths`: KUBE_APISERVER_1_34 for a matrix release
    suffix = "" if main else f"_1_{minor_of(release)}"

    def cached(tool: str, version_key: str) -> Path:
        return _cached(versions, tool, version_key)

    if versions.get("ETCD_VERSION", "debian") == "debian":
        etcd = (Path("/usr/bin/etcd"), "Debian `etcd-server` (apt-get install etcd-server)")
    else:
        etcd = (cached("etcd", "ETCD_VERSION"), built)
    wanted = {
        "ETCD": etcd,
        "KUBE_APISERVER" + suffix: (_release(release, "kube-apiserver"), built),
        "KUBECTL" + suffix: (_release(release, "kubectl"), built),
        "HELM": (cached("helm", "HELM_VERSION"), built),
        "HELM4": (cached("helm", "HELM4_VERSION"), built),
    }
    manager = "KUBE_CONTROLLER_MANAGER" if main else "OLDEST_KUBE_CONTROLLER_MANAGER"
    if controllers and not main and release != versions["OLD_NODE_KUBE_VERSION"]:
        raise ValueError(f"no controller manager is built for {release}")
    if main or controllers:
        wanted[manager] = (_release(release, "kube-controller-manager"), built)
    paths = _locate(wanted)
    return Tools(
        etcd=paths["ETCD"],
        kube_apiserver=paths["KUBE_APISERVER" + suffix],
        kube_controller_manager=paths.get(manager),
        helm=paths["HELM"],
        helm4=paths["HELM4"],
        kubectl=paths["KUBECTL" + suffix],
        versions=versions,
        kube_version=release,
    )


def _release(version: str, tool: str) -> Path:
    return tools_cache() / f"{tool}-{version}" / tool


def find_kubectl() -> Path:
    """The kubectl of KUBE_VERSION, for what talks to no apiserver (``kubectl kustomize``)."""
    versions = read_versions()
    built = (_release(versions["KUBE_VERSION"], "kubectl"), "`make e2e-tools`")
    return _locate({"KUBECTL": built})["KUBECTL"]


def find_node_tools(release: ClusterRelease | None = None) -> NodeTools:
    """Locate what a one-node cluster adds to the control plane: kubelet, kube-scheduler,
    kube-proxy, containerd (with containerd-shim-runc-v2 beside it) and crictl,
    built by ``make e2e-tools``, and runc on PATH (env vars override each path); of the
    newest release, or of ``release`` (the oldest: its own names, ``OLDEST_KUBE_PROXY``...).
    crictl is the newest's for both (the CRI is v1 on either runtime)."""
    versions = read_versions()
    release = release or cluster_releases(versions)[0]
    built = "`make e2e-tools`"
    runc_found = shutil.which("runc")
    kube, containerd, newest = release.kube_version, release.containerd_version, release.newest
    prefix = "" if newest else "OLDEST_"
    runtime = "CONTAINERD" if newest else "OLD_NODE_CONTAINERD"
    containerd_dir = tools_cache() / f"containerd-{containerd}"
    wanted = {
        ("KUBELET" if newest else "OLD_NODE_KUBELET"): (_release(kube, "kubelet"), built),
        prefix + "KUBE_SCHEDULER": (_release(kube, "kube-scheduler"), built),
        prefix + "KUBE_PROXY": (_release(kube, "kube-proxy"), built),
        runtime: (containerd_dir / "containerd", built),
        runtime + "_SHIM": (containerd_dir / "containerd-shim-runc-v2", built),
        "CRICTL": (_cached(versions, "crictl", "CRICTL_VERSION"), built),
        "RUNC": (Path(runc_found or "runc"), "runc on PATH (apt-get install runc)"),
    }
    paths = _locate(wanted)
    return NodeTools(
        kubelet=paths["KUBELET" if newest else "OLD_NODE_KUBELET"],
        kube_scheduler=paths[prefix + "KUBE_SCHEDULER"],
        kube_proxy=paths[prefix + "KUBE_PROXY"],
        containerd=paths[runtime],
        containerd_shim=paths[runtime + "_SHIM"],
        crictl=paths["CRICTL"],
        runc=paths["RUNC"],
        versions=versions,
        release=release,
    )


def find_oras() -> Path:
    """oras, which attaches the SBOMs to the pushed images (``make images`` builds it alone:
    ``e2e/tools.sh --oras``)."""
    versions = read_versions()
    wanted = {"ORAS": (_cached(versions, "oras", "ORAS_VERSION"), "`bash e2e/tools.sh --oras`")}
    return _locate(wanted)["ORAS"]


def find_helm(major: int = 3) -> Path:
    """Helm 3 (``HELM_VERSION``) or 4 (``HELM4_VERSION``) of the tools cache, ``$HELM`` or
    ``$HELM4`` overriding it; never a helm from PATH, whose version nobody chose."""
    name, key = ("HELM", "HELM_VERSION") if major == 3 else ("HELM4", "HELM4_VERSION")
    built = (_cached(read_versions(), "helm", key), "`make e2e-tools`")
    return _locate({name: built})[name]


def find_kube_router() -> Path:
    """kube-router, whose firewall alone enforces NetworkPolicies on the node when a test
    starts it (e2e.node.netpol); not part of ``find_node_tools``: the node runs without it."""
    versions = read_versions()
    built = (_cached(versions, "kube-router", "KUBE_ROUTER_VERSION"), "`make e2e-tools`")
    return _locate({"KUBE_ROUTER": built})["KUBE_ROUTER"]
