"""Where the end-to-end tools are: the binaries ``make e2e-tools`` builds (e2e/tools.sh)
into the tools cache, at the versions of e2e/versions.env, and kubectl on PATH.

``find_tools()`` returns the control plane's paths or raises ``ToolsMissing`` naming what
is missing and how to get it; an environment variable per tool (``ETCD``,
``KUBE_APISERVER``, ``KUBE_CONTROLLER_MANAGER``, ``HELM``, ``KUBECTL``) overrides its path.
``find_node_tools()`` does the same for what a one-node cluster adds (``KUBELET``,
``KUBE_SCHEDULER``, ``KUBE_PROXY``, ``CONTAINERD``, ``CONTAINERD_SHIM``, ``CTR``,
``CRICTL``, and ``RUNC`` from PATH); ``find_oras()`` the one ``make images`` needs
(``ORAS``). The names are those of ``e2e/tools.sh --paths``.
"""

from __future__ import annotations

import os
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
    kube_controller_manager: Path
    helm: Path
    kubectl: Path
    versions: dict[str, str]


@dataclass(frozen=True)
class NodeTools:
    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path
    containerd: Path
    containerd_shim: Path  # containerd-shim-runc-v2, beside containerd
    ctr: Path
    crictl: Path
    runc: Path
    versions: dict[str, str]


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


def find_tools() -> Tools:
    """Locate the binaries built by ``make e2e-tools`` (env vars override each path)."""
    versions = read_versions()

    def cached(tool: str, version_key: str) -> Path:
        return _cached(versions, tool, version_key)

    if versions.get("ETCD_VERSION", "debian") == "debian":
        etcd = (Path("/usr/bin/etcd"), "Debian `etcd-server` (apt-get install etcd-server)")
    else:
        etcd = (cached("etcd", "ETCD_VERSION"), "`make e2e-tools`")
    kubectl_found = shutil.which("kubectl")
    wanted = {
        "ETCD": etcd,
        "KUBE_APISERVER": (cached("kube-apiserver", "KUBE_VERSION"), "`make e2e-tools`"),
        "KUBE_CONTROLLER_MANAGER": (
            cached("kube-controller-manager", "KUBE_VERSION"),
            "`make e2e-tools`",
        ),
        "HELM": (cached("helm", "HELM_VERSION"), "`make e2e-tools`"),
        "KUBECTL": (Path(kubectl_found or "kubectl"), "kubectl on PATH"),
    }
    paths = _locate(wanted)
    return Tools(
        etcd=paths["ETCD"],
        kube_apiserver=paths["KUBE_APISERVER"],
        kube_controller_manager=paths["KUBE_CONTROLLER_MANAGER"],
        helm=paths["HELM"],
        kubectl=paths["KUBECTL"],
        versions=versions,
    )


def find_node_tools() -> NodeTools:
    """Locate what a one-node cluster adds to the control plane: kubelet, kube-scheduler,
    kube-proxy, containerd (with containerd-shim-runc-v2 and ctr beside it) and crictl,
    built by ``make e2e-tools``, and runc on PATH (env vars override each path)."""
    versions = read_versions()
    built = "`make e2e-tools`"
    runc_found = shutil.which("runc")
    wanted = {
        "KUBELET": (_cached(versions, "kubelet", "KUBE_VERSION"), built),
        "KUBE_SCHEDULER": (_cached(versions, "kube-scheduler", "KUBE_VERSION"), built),
        "KUBE_PROXY": (_cached(versions, "kube-proxy", "KUBE_VERSION"), built),
        "CONTAINERD": (_cached(versions, "containerd", "CONTAINERD_VERSION"), built),
        "CONTAINERD_SHIM": (
            _cached(versions, "containerd", "CONTAINERD_VERSION", "containerd-shim-runc-v2"),
            built,
        ),
        "CTR": (_cached(versions, "containerd", "CONTAINERD_VERSION", "ctr"), built),
        "CRICTL": (_cached(versions, "crictl", "CRICTL_VERSION"), built),
        "RUNC": (Path(runc_found or "runc"), "runc on PATH (apt-get install runc)"),
    }
    paths = _locate(wanted)
    return NodeTools(
        kubelet=paths["KUBELET"],
        kube_scheduler=paths["KUBE_SCHEDULER"],
        kube_proxy=paths["KUBE_PROXY"],
        containerd=paths["CONTAINERD"],
        containerd_shim=paths["CONTAINERD_SHIM"],
        ctr=paths["CTR"],
        crictl=paths["CRICTL"],
        runc=paths["RUNC"],
        versions=versions,
    )


def find_oras() -> Path:
    """oras, which attaches the SBOMs to the pushed images (``make images`` builds it alone:
    ``e2e/tools.sh --oras``)."""
    versions = read_versions()
    wanted = {"ORAS": (_cached(versions, "oras", "ORAS_VERSION"), "`bash e2e/tools.sh --oras`")}
    return _locate(wanted)["ORAS"]
