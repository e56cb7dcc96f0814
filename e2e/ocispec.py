"""The kubelet's part of running a container, as e2e.runtime reproduces it: what a
container takes from its image (``Image``), the ``$(VAR)`` expansion of command, args and
env, the securityContext with its defaults, and the OCI runtime config (``oci_config``)
that runc runs; ``Unsupported`` names a pod feature this does not reproduce."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The environment a container starts with when its image sets none (Docker's default).
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# containerd's default capability set (what a pod gets without securityContext.capabilities).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip
NONROOT_UID = 65532


@dataclass(frozen=True)
class Image:
    """What a container takes from its image: the rootfs and the config's defaults."""

    build: Callable[[Path], Path]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # USER: the uid/gid when the pod's securityContext does not say.
    user: tuple[int, int] = (0, 0)
    env: tuple[str, ...] = (DEFAULT_PATH,)
    working_dir: str = "/"


# --------------------------------------------------------------------------- the kubelet's part


class Unsupported(Exception):
    """The pod uses a feature this runner does not reproduce (it says which)."""


class PodFailed(Exception):
    """An init container exited non-zero, so the kubelet would not start the apps."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion (k8s third_party/forked/golang/expansion).

    ``$(NAME)`` becomes the variable's value when NAME is defined and stays as written when
    not; ``$$`` is an escaped ``$``; any other ``$`` is kept.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(" and (close := text.find(")", i + 2)) != -1:
            name = text[i + 2 : close]
            out.append(env.get(name, f"$({name})"))
            i = close + 1
        else:
            # An unterminated "$(" or a lone "$": copied, and scanning goes on after it.
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's `env`, each value expanded against the ones defined before it."""
    if container.get("envFrom"):
        raise Unsupported("envFrom")
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if "valueFrom" in var:
            raise Unsupported(f"env {var['name']}: valueFrom")
        env[var["name"]] = expand(str(var.get("value", "")), env)
    return env


def container_argv(container: Mapping[str, Any], image: Image) -> list[str]:
    """``command or ENTRYPOINT`` then ``args or CMD``, expanded with the container's env.

    When `command` is set the image's CMD is dropped even without `args`, as the kubelet does.
    """
    command = container.get("command")
    args = container.get("args")
    argv = list(command) if command is not None else list(image.entrypoint)
    if args is not None:
        argv += list(args)
    elif command is None:
        argv += list(image.cmd)
    if not argv:
        raise Unsupported(f"container {container['name']}: no command and no image default")
    env = container_env(container)
    return [expand(str(a), env) for a in argv]


def security_context(pod_spec: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """The effective securityContext: the container's fields over the pod's."""
    pod_level = pod_spec.get("securityContext") or {}
    shared = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
    merged = {k: pod_level[k] for k in shared if k in pod_level}
    merged.update(container.get("securityContext") or {})
    return merged


def _capabilities(sc: Mapping[str, Any], uid: int) -> dict[str, list[str]]:
    caps = sc.get("capabilities") or {}
    drop = {_cap(c) for c in caps.get("drop") or []}
    keep = [] if "CAP_ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    keep += [c for c in map(_cap, caps.get("add") or []) if c not in keep]
    # A non-root process gets the bounding set only: it starts with no effective
    # capabilities, which is what containerd does for a non-zero uid.
    active = keep if uid == 0 else []
    return {"bounding": keep, "effective": active, "permitted": active}


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else f"CAP_{name}"


def oci_config(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    image: Image,
    mounts: Sequence[tuple[str, Path, bool]],
) -> dict[str, Any]:
    """The OCI runtime config for one container; ``mounts`` are (path, host dir, readOnly)."""
    spec = pod.get("spec") or {}
    sc = security_context(spec, container)
    uid = int(sc.get("runAsUser", image.user[0]))
    gid = int(sc.get("runAsGroup", image.user[1] if "runAsUser" not in sc else 0))
    if sc.get("runAsNonRoot") and uid == 0:
        # The kubelet refuses to start it (CreateContainerConfigError); so do we.
        raise PodFailed(f"container {container['name']}: runAsNonRoot but runs as uid 0")
    env = dict(e.split("=", 1) for e in image.env)
    env.update(container_env(container))
    env.setdefault("HOSTNAME", pod["metadata"].get("name", "pod"))
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": container_argv(container, image),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": container.get("workingDir") or image.working_dir,
            "capabilities": _capabilities(sc, uid),
            # allowPrivilegeEscalation: false is exactly no_new_privs.
            "noNewPrivileges": sc.get("allowPrivilegeEscalation") is False,
        },
        "root": {"path": "rootfs", "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "hostname": pod["metadata"].get("name", "pod"),
        "mounts": [*_SYSTEM_MOUNTS, *(_bind(path, src, ro) for path, src, ro in mounts)],
        "linux": {
            # A PID namespace per container (no shareProcessNamespace), as a pod has.
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
            ],
            "readonlyPaths": [
                "/proc/asound",
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


# The mounts every container gets (runc's `runc spec` defaults, less the cgroup mount).
_SYSTEM_MOUNTS: list[dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
]


def _bind(path: str, source: Path, read_only: bool) -> dict[str, Any]:
    return {
        "destination": path,
        "type": "bind",
        "source": str(source),
        "options": ["rbind", "ro" if read_only else "rw", "nosuid", "nodev"],
    }
