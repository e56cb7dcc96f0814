"""buildah with its own storage outside the repo: build, inspect, push.

Storage is ``$PODINIT_IMAGES_CACHE`` (default ``~/.cache/podinit-images``), overlay on the
build machine's filesystem; ``--layers`` keeps intermediate steps, so a rebuild of an
unchanged Dockerfile stage is a cache hit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class BuildError(RuntimeError):
    """A buildah command failed; the message ends with its output."""


def images_cache() -> Path:
    return Path(os.environ.get("PODINIT_IMAGES_CACHE", Path.home() / ".cache" / "podinit-images"))


# Build-time trust of the build machine, mounted into RUN steps only (never committed):
# where egress goes through a TLS-inspecting proxy, pip and apt need its CA.
_BUILD_HOST_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf")


@dataclass(frozen=True)
class Buildah:
    storage: Path

    @classmethod
    def default(cls) -> Buildah:
        if shutil.which("buildah") is None:
            raise BuildError("buildah is not installed (Debian package buildah)")
        return cls(images_cache() / "storage")

    def run(self, *args: str, input: bytes | None = None) -> str:
        argv = [
            "buildah",
            "--root",
            str(self.storage / "root"),
            "--runroot",
            str(self.storage / "run"),
            "--storage-driver",
            "overlay",
            *args,
        ]
        result = subprocess.run(argv, capture_output=True, input=input, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")[-4000:]
            raise BuildError(f"{' '.join(argv[7:10])} … failed ({result.returncode}):\n{output}")
        return result.stdout.decode()

    def exists(self, image: str) -> bool:
        try:
            self.run("inspect", "--type", "image", image)
        except BuildError:
            return False
        return True

    def build(
        self,
        context: Path,
        *,
        tag: str,
        platform: str,
        target: str | None = None,
        containerfile: Path | None = None,
        build_args: Mapping[str, str] | None = None,
    ) -> str:
        """Build and tag; returns the image id."""
        args = ["build", "--layers", "--pull=false", "--isolation", "chroot", "--network", "host"]
        # zig builds musl with one process per file: more open files than the default
        args += ["--ulimit", "nofile=20000:20000", "--platform", platform, "-t", tag]
        for path in _BUILD_HOST_FILES:
            if Path(path).is_file():
                args += ["-v", f"{path}:{path}:ro"]
        if target:
            args += ["--target", target]
        if containerfile:
            args += ["-f", str(containerfile)]
        for key, value in (build_args or {}).items():
            args += ["--build-arg", f"{key}={value}"]
        before = self.containers()
        try:
            self.run(*args, str(context))
        finally:
            # buildah 1.28 leaves a stage's working container behind, mounted, when `--target`
            # names a stage whose every step is cached: one more overlay mount per build
            for leftover in self.containers() - before:
                self.run("rm", leftover)
        return self.image_id(tag)

    def containers(self) -> set[str]:
        """The ids of the working containers in this storage."""
        return set(self.run("containers", "--quiet", "--all").split())

    def set_architecture(self, image: str, arch: str) -> None:
        """Re-tag ``image`` as built for ``arch`` (its files already are), in one layer."""
        container = self.run("from", "--pull=false", image).strip()
        try:
            self.run("config", "--arch", arch, "--os", "linux", container)
            self.run("commit", "--quiet", "--squash", container, image)
        finally:
            self.run("rm", container)

    def image_id(self, image: str) -> str:
        return self.run("inspect", "--type", "image", "--format", "{{.FromImageID}}", image).strip()

    def config(self, image: str) -> dict[str, Any]:
        """The OCI image config (user, entrypoint, cmd, env, architecture…)."""
        data: dict[str, Any] = json.loads(self.run("inspect", "--type", "image", image))
        config: dict[str, Any] = json.loads(data["Config"])
        return config

    def export_rootfs(self, image: str, dest: Path) -> Path:
        """The image's root filesystem as files under ``dest`` (a copy, for inspection)."""
        container = self.run("from", "--pull=false", image).strip()
        try:
            mounted = Path(self.run("mount", container).strip())
            dest.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-a", f"{mounted}/.", str(dest)], check=True)
        finally:
            self.run("rm", container)
        return dest

    def commit_rootfs(self, tarball: Path, *, tag: str, config: Sequence[str]) -> str:
        """An image of one layer from a root filesystem tarball; ``config`` are
        ``buildah config`` options (``--entrypoint``, ``--env``…)."""
        container = self.run("from", "scratch").strip()
        try:
            self.run("add", container, str(tarball), "/")
            self.run("config", *config, container)
            self.run("commit", "--quiet", container, tag)
        finally:
            self.run("rm", container)
        return self.image_id(tag)

    def push(self, image: str, destination: str, *, cert_dir: Path | None = None) -> str:
        """Push to ``docker://destination``; returns the pushed manifest's digest."""
        digest_file = self.storage / "run" / "last-digest"
        args = ["push", "--quiet", "--digestfile", str(digest_file)]
        if cert_dir is not None:
            args += ["--cert-dir", str(cert_dir)]
        self.run(*args, image, f"docker://{destination}")
        return digest_file.read_text().strip()

    def push_manifest_list(
        self, name: str, images: Sequence[str], destination: str, *, cert_dir: Path | None = None
    ) -> str:
        """A multi-platform index of ``images`` pushed to ``destination``; returns its digest."""
        if self.exists(name):
            self.run("manifest", "rm", name)
        self.run("manifest", "create", name)
        for image in images:
            self.run("manifest", "add", name, f"containers-storage:{self._qualified(image)}")
        digest_file = self.storage / "run" / "last-digest"
        args = ["manifest", "push", "--all", "--quiet", "--digestfile", str(digest_file)]
        if cert_dir is not None:
            args += ["--cert-dir", str(cert_dir)]
        self.run(*args, name, f"docker://{destination}")
        return digest_file.read_text().strip()

    def _qualified(self, image: str) -> str:
        return image if "/" in image.split(":")[0] else f"localhost/{image}"
