"""The runtime half of the end-to-end story: run a stored pod with ``runc``.

There is no kubelet and no container engine here, so this module does the part of their
work that decides whether a mutated pod really runs: it lays out root filesystems by hand
(e2e.rootfs: ``busybox_rootfs`` from Debian's static busybox, ``init_image_rootfs`` like the
Dockerfile's FROM-scratch ``init`` stage), turns each container of the pod into an OCI
bundle (e2e.ocispec: argv with the kubelet's ``$(VAR)`` expansion, env, securityContext;
emptyDir volumes as host directories bind-mounted in) and runs it with the real ``runc``: the
init containers one after the other to completion, then the app containers.

Usage::

    runtime = find_runtime()                    # raises RuntimeMissing naming the packages
    with run_pod(stored_pod, PODINIT) as pod:   # copy container first, then the apps
        app = pod.app()                         # the (first) app container's handle
        result = app.stop(grace=3.0)            # `runc kill TERM`, then KILL after 3 s
        result.exit_code, result.seconds, result.killed
    with run_unmutated_pod(original) as pod:    # the same pod before our webhook saw it
        ...

Everything (bundles, runc's state, volumes, logs) lives under one temporary directory,
removed with the pod; containers get unique ids, so runs in parallel do not collide.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from e2e.ocispec import (
    NONROOT_UID,
    Image,
    PodFailed,
    Unsupported,
    oci_config,
)
from e2e.processes import wait_until as _wait_until
from e2e.rootfs import BUSYBOX, busybox_rootfs, init_image_rootfs

# --------------------------------------------------------------------------- tools

DEBIAN_PACKAGES = {"runc": "runc", "busybox": "busybox-static"}
# The webhook's default init image (webhook.core.InjectSettings().init_image); kept literal so
# that this module runs stored pods without importing the webhook.
DEFAULT_INIT_IMAGE = "docker.io/podinit/init:0.1.0"


class RuntimeMissing(Exception):
    """runc or a static busybox is not installed; the message names the Debian packages."""


@dataclass(frozen=True)
class Runtime:
    runc: Path
    busybox: Path


def find_runtime() -> Runtime:
    """The runc and static busybox to use, or RuntimeMissing naming what to install."""
    missing = []
    runc = shutil.which("runc")
    if runc is None:
        missing.append(DEBIAN_PACKAGES["runc"])
    # A dynamically linked busybox would need its libraries in every rootfs; Debian's
    # busybox-static installs /bin/busybox, which is static.
    if not BUSYBOX.is_file() or not _is_static(BUSYBOX):
        missing.append(DEBIAN_PACKAGES["busybox"])
    if missing:
        raise RuntimeMissing(f"needs the Debian package(s) {', '.join(missing)} (apt-get install)")
    assert runc is not None
    return Runtime(runc=Path(runc), busybox=BUSYBOX)


def _is_static(binary: Path) -> bool:
    """No dynamic loader named in the ELF headers (PT_INTERP sits in the first page)."""
    with binary.open("rb") as f:
        head = f.read(4096)
    return head.startswith(b"\x7fELF") and b"/ld-" not in head


def busybox_image(runtime: Runtime | None = None) -> Image:
    """The `busybox` image: root, CMD ["sh"]."""
    busybox = (runtime or find_runtime()).busybox
    return Image(build=lambda d: busybox_rootfs(d, busybox), cmd=("sh",))


def init_image(podinit_binary: Path) -> Image:
    """The `init` image: USER 65532:65532, ENTRYPOINT ["/podinit"], CMD ["--help"]."""
    binary = Path(podinit_binary)
    return Image(
        build=lambda d: init_image_rootfs(d, binary),
        entrypoint=("/podinit",),
        cmd=("--help",),
        user=(NONROOT_UID, NONROOT_UID),
    )


# --------------------------------------------------------------------------- containers


class Proc(NamedTuple):
    """One process of a container, as the host's /proc shows it."""

    pid: int
    ppid: int
    state: str
    comm: str


class StopResult(NamedTuple):
    exit_code: int
    seconds: float  # from just before `runc kill TERM` to the container's exit
    killed: bool  # True when TERM was not enough and the SIGKILL fallback was sent


@dataclass
class Container:
    """A running (or finished) container: `runc run` in the foreground, under our runc root.

    The foreground `runc run` exits with the container's status (128+N when its PID 1 died
    of signal N), which is how the kubelet reports it, so its exit code is ours.
    """

    name: str
    id: str
    bundle: Path
    config: dict[str, Any]
    runc: list[str]  # runc with --root
    proc: subprocess.Popen[bytes]
    log: Path
    _pid: int | None = None

    @property
    def pid(self) -> int:
        """The container's PID 1 as the host sees it (runc writes it once it has created it)."""
        if self._pid is None:
            pid_file = self.bundle / "pid"
            deadline = time.monotonic() + 30
            while not pid_file.exists() or not pid_file.read_text().strip():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} never started: {self.output()}")
                time.sleep(0.005)
            self._pid = int(pid_file.read_text())
        return self._pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int | str = signal.SIGTERM) -> bool:
        """`runc kill ID SIG`, as the kubelet's runtime does; False if it had already exited."""
        name = sig if isinstance(sig, str) else signal.Signals(sig).name.removeprefix("SIG")
        done = subprocess.run([*self.runc, "kill", self.id, name], capture_output=True, text=True)
        if done.returncode != 0:
            if (
                not self.running()
                or "not running" in done.stderr
                or "does not exist" in done.stderr
            ):
                return False
            raise RuntimeError(f"runc kill {self.id} {name}: {done.stderr.strip()}")
        return True

    def wait(self, timeout: float | None = None) -> int:
        """The container's exit code; TimeoutError if it is still running after `timeout`."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name} still running after {timeout} s") from None

    def stop(self, grace: float = 30.0) -> StopResult:
        """What the kubelet does on pod deletion: TERM, up to `grace` s, then KILL."""
        start = time.monotonic()
        self.kill(signal.SIGTERM)
        try:
            code = self.wait(grace)
            return StopResult(code, time.monotonic() - start, killed=False)
        except TimeoutError:
            self.kill(signal.SIGKILL)
            code = self.wait(30)
            return StopResult(code, time.monotonic() - start, killed=True)

    def processes(self) -> list[Proc]:
        """Every process in the container's PID namespace, zombies included.

        Matched by the namespace's inode on the host: that also finds processes that are
        no longer descendants of PID 1 (`runc exec`), and a zombie keeps its namespace.
        """
        try:
            ns = os.stat(f"/proc/{self.pid}/ns/pid").st_ino
        except FileNotFoundError:
            return []
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino != ns:
                    continue
                raw = Path(f"/proc/{entry}/stat").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # it exited (and was reaped) while we looked
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
            found.append(Proc(int(entry), int(ppid), state, comm))
        return found

    def zombies(self) -> int:
        """How many processes of the container are exited but not reaped (state Z)."""
        return sum(1 for p in self.processes() if p.state == "Z")

    def output(self) -> str:
        """What the container wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def delete(self) -> None:
        """`runc delete -f`: kills what is left and removes runc's state and cgroups."""
        subprocess.run([*self.runc, "delete", "-f", self.id], capture_output=True)
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Pod:
    """A pod's containers on this machine; a context manager that removes everything."""

    name: str
    workdir: Path
    runtime: Runtime
    volumes: dict[str, Path] = field(default_factory=dict)
    init_containers: dict[str, Container] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    _closed: bool = False

    @property
    def runc(self) -> list[str]:
        # Our own state directory: `runc list` elsewhere never sees these containers.
        return [str(self.runtime.runc), "--root", str(self.workdir / "runc")]

    def app(self, name: str | None = None) -> Container:
        """An app container by name; the first one by default."""
        return self.containers[name] if name else next(iter(self.containers.values()))

    def start(
        self, container: Mapping[str, Any], image: Image, pod: Mapping[str, Any]
    ) -> Container:
        """Builds the bundle for one container and starts it with `runc run`."""
        name = container["name"]
        cid = f"podinit-{uuid.uuid4().hex[:12]}-{name}"[:64]
        bundle = self.workdir / "bundles" / cid
        image.build(bundle / "rootfs")
        mounts = []
        for mount in container.get("volumeMounts") or []:
            if mount.get("subPath") or mount.get("subPathExpr"):
                raise Unsupported(f"volumeMount {mount['name']}: subPath")
            if mount["name"] not in self.volumes:
                raise Unsupported(f"volume {mount['name']}: only emptyDir volumes are supported")
            mounts.append(
                (mount["mountPath"], self.volumes[mount["name"]], bool(mount.get("readOnly")))
            )
        config = oci_config(pod, container, image, mounts)
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            # Its own session: a Ctrl-C on the test run reaches runc only through our cleanup.
            proc = subprocess.Popen(
                [
                    *self.runc,
                    "run",
                    "--bundle",
                    str(bundle),
                    "--pid-file",
                    str(bundle / "pid"),
                    cid,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Container(name, cid, bundle, config, self.runc, proc, log)

    def close(self) -> None:
        """Deletes every container and the whole work directory; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for c in [*self.containers.values(), *self.init_containers.values()]:
            c.delete()
        shutil.rmtree(self.workdir, ignore_errors=True)
        _PODS.pop(id(self), None)

    def __enter__(self) -> Pod:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Pods not closed when the interpreter exits (a crashed test) are removed then.
_PODS: dict[int, Pod] = {}


@atexit.register
def _close_leftovers() -> None:
    for pod in list(_PODS.values()):
        pod.close()


def run_pod(
    stored_pod: Mapping[str, Any],
    podinit_binary: Path | None = None,
    *,
    images: Mapping[str, Image] | None = None,
    init_image_name: str = DEFAULT_INIT_IMAGE,
    runtime: Runtime | None = None,
    init_timeout: float = 60.0,
) -> Pod:
    """Runs a pod as the apiserver stored it: init containers in order, then the apps.

    Images are looked up in ``images``; ``init_image_name`` (our copy container's image) is
    the FROM-scratch init image holding ``podinit_binary``, and any other image is busybox.
    Each emptyDir is a fresh host directory (mode 0777, as the kubelet makes it).
    Returns once the app containers are started; the caller closes the pod.
    """
    runtime = runtime or find_runtime()
    spec = stored_pod.get("spec") or {}
    if spec.get("shareProcessNamespace"):
        raise Unsupported("shareProcessNamespace")
    known: dict[str, Image] = dict(images or {})
    if podinit_binary is not None:
        known.setdefault(init_image_name, init_image(podinit_binary))
    default = busybox_image(runtime)

    pod = Pod(
        name=stored_pod.get("metadata", {}).get("name") or "pod",
        workdir=Path(tempfile.mkdtemp(prefix="podinit-runtime-")),
        runtime=runtime,
    )
    _PODS[id(pod)] = pod
    try:
        for volume in spec.get("volumes") or []:
            if "emptyDir" not in volume:
                raise Unsupported(f"volume {volume['name']}: only emptyDir volumes are supported")
            path = pod.workdir / "volumes" / volume["name"]
            path.mkdir(parents=True)
            path.chmod(0o777)  # the kubelet's emptyDir mode: any uid may write
            pod.volumes[volume["name"]] = path
        for container in spec.get("initContainers") or []:
            image = _image_for(container, known, default, init_image_name)
            handle = pod.start(container, image, stored_pod)
            pod.init_containers[container["name"]] = handle
            code = handle.wait(init_timeout)
            if code != 0:
                raise PodFailed(f"init container {handle.name} exited {code}: {handle.output()}")
        for container in spec.get("containers") or []:
            image = _image_for(container, known, default, init_image_name)
            handle = pod.start(container, image, stored_pod)
            pod.containers[container["name"]] = handle
            _ = handle.pid  # started (or failed) before we hand it out
        return pod
    except BaseException:
        pod.close()
        raise


def _image_for(
    container: Mapping[str, Any], known: Mapping[str, Image], default: Image, init_image_name: str
) -> Image:
    if container["image"] in known:
        return known[container["image"]]
    if container["image"] == init_image_name:
        raise ValueError(f"{container['name']} runs {init_image_name}: pass podinit_binary")
    return default


def run_unmutated_pod(
    pod: Mapping[str, Any],
    *,
    images: Mapping[str, Image] | None = None,
    runtime: Runtime | None = None,
) -> Pod:
    """The same pod as our webhook received it, run the same way: no copy container, no init.

    It refuses a pod that already carries our mutation, so that a comparison cannot
    silently compare two wrapped pods.
    """
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if "podinit.dev/status" in annotations:
        raise ValueError("this pod was mutated by podinit; pass the original")
    return run_pod(pod, None, images=images, runtime=runtime)


def mutate_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The pod as the apiserver stores it after our webhook: the real core's patch applied.

    For the demo and the benchmark; the webhook's default settings, no image lookups
    (the pods given here have a command, so none is needed).
    """
    import jsonpatch  # the webhook's dependencies are imported only when mutating

    from webhook.core import InjectSettings, mutate

    mutation = mutate(dict(pod), InjectSettings(), {})
    return jsonpatch.apply_patch(copy.deepcopy(dict(pod)), mutation.patch)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- waiting


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """e2e.processes.wait_until polling every 10 ms (container processes come and go
    fast): `check`'s first truthy value; StartupError naming `what` after `timeout`."""
    return _wait_until(what, check, timeout, interval=0.01)


__all__ = [
    "Container",
    "Pod",
    "Proc",
    "Runtime",
    "RuntimeMissing",
    "StopResult",
    "busybox_image",
    "busybox_rootfs",
    "find_runtime",
    "init_image",
    "init_image_rootfs",
    "mutate_pod",
    "run_pod",
    "run_unmutated_pod",
    "wait_until",
]
