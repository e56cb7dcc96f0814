"""containerd for the node: its own root, state, socket and runc root, so it never shares
state with another containerd on the machine, and the CRI settings this VM needs."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from e2e.node.network import CNI_BIN_DIR

RUNC = "/usr/sbin/runc"  # Debian runc


def _toml_string(value: str | Path) -> str:
    return "'" + str(value).replace("'", "") + "'"


@dataclass(frozen=True)
class Containerd:
    binary: Path  # containerd; containerd-shim-runc-v2 lies beside it
    state: Path
    v1: bool = False  # containerd 1.x: its configuration's version 2 (CONFIG_TEMPLATE_V1)

    @property
    def root(self) -> Path:
        return self.state / "containerd" / "root"

    @property
    def run_dir(self) -> Path:
        return self.state / "containerd" / "state"

    @property
    def socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def runc_root(self) -> Path:
        return self.state / "containerd" / "runc"

    @property
    def certs_dir(self) -> Path:
        return self.state / "containerd" / "certs.d"

    def trust_registry(self, host: str, ca_file: Path) -> None:
        """Pull from https://host with its CA (containerd's hosts.toml layout)."""
        directory = self.certs_dir / host
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(ca_file, directory / "ca.crt")
        (directory / "hosts.toml").write_text(
            f"server = 'https://{host}'\n\n"
            f"[host.'https://{host}']\n"
            "  capabilities = ['pull', 'resolve']\n"
            f"  ca = {_toml_string(directory / 'ca.crt')}\n"
        )

    def write_config(self, *, sandbox_image: str, cni_conf_dir: Path) -> Path:
        values = {
            "root": _toml_string(self.root),
            "state": _toml_string(self.run_dir),
            "socket": _toml_string(self.socket),
            "sandbox": _toml_string(sandbox_image),
            "certs": _toml_string(self.certs_dir),
            "runc_root": _toml_string(self.runc_root),
            "runc": _toml_string(RUNC),
            "cni_bin": _toml_string(CNI_BIN_DIR),
            "cni_conf": _toml_string(cni_conf_dir),
            "opt": _toml_string(self.state / "containerd" / "opt"),
        }
        config = (CONFIG_TEMPLATE_V1 if self.v1 else CONFIG_TEMPLATE).format(**values)
        path = self.state / "containerd" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        return path

    def argv(self, config: Path) -> list[str]:
        return [str(self.binary), "--config", str(config)]

    def env(self) -> dict[str, str]:
        """The shim is found on PATH, next to containerd."""
        path = f"{self.binary.parent}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        return {**os.environ, "PATH": path}

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(self.socket))
        except OSError:
            return False
        return True


# restrict_oom_score_adj: this VM has no CAP_SYS_RESOURCE, so lowering a container's
# oom_score_adj (what the kubelet asks for the pause container) fails in runc with "can't
# get final child's PID from pipe"; the CRI then clamps it to containerd's own.
# Root: runc's state under ours, never shared with another containerd's /run/containerd/runc.
CONFIG_TEMPLATE = """\
version = 3
root = {root}
state = {state}
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = {socket}

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = {sandbox}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = {certs}

  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_unprivileged_ports = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = {runc}
          Root = {runc_root}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [{cni_bin}]
      conf_dir = {cni_conf}

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.internal.v1.opt']
    path = {opt}
"""

# The same settings for containerd 1.7 (the older node, e2e.node.oldnode), in the
# configuration format it reads (version 2: one CRI plugin, the sandbox image in it).
CONFIG_TEMPLATE_V1 = """\
version = 2
root = {root}
state = {state}
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = {socket}

[plugins]
  [plugins.'io.containerd.grpc.v1.cri']
    sandbox_image = {sandbox}
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_unprivileged_ports = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
    [plugins.'io.containerd.grpc.v1.cri'.containerd]
      snapshotter = 'overlayfs'
      default_runtime_name = 'runc'
      [plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc.options]
          BinaryName = {runc}
          Root = {runc_root}
          SystemdCgroup = false
    [plugins.'io.containerd.grpc.v1.cri'.cni]
      bin_dir = {cni_bin}
      conf_dir = {cni_conf}
    [plugins.'io.containerd.grpc.v1.cri'.registry]
      config_path = {certs}

  [plugins.'io.containerd.internal.v1.opt']
    path = {opt}
"""
