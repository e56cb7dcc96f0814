"""Build podinit's images (and a test node's) and push them to a registry.

Product images, from the repo's Dockerfile:
  ``<registry>/podinit/init:<version>``     index of amd64 + arm64, FROM scratch, only /podinit
  ``<registry>/podinit/webhook:<version>``  index of amd64 + arm64, the venv on a Python base
Test images (``test_images``), for a node with no public registry:
  ``<registry>/podinit-test/pause:1``       the sandbox image (static C, testapps/pause.c)
  ``<registry>/podinit-test/app:1``         busybox app with a shell-form ENTRYPOINT

Each pushed platform image gets an SPDX SBOM in ``out_dir``; ``out_dir/images.json`` maps
names to references and digests.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from e2e.images import sbom
from e2e.images.buildah import Buildah, BuildError

ROOT = Path(__file__).resolve().parents[2]
TESTAPPS = Path(__file__).resolve().parent / "testapps"
BUSYBOX = Path("/bin/busybox")
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
PLATFORMS = ("amd64", "arm64")
# Dockerfile targets whose build stage runs on the build machine and cross-compiles.
CROSS_COMPILED = frozenset({"init"})
# Targets whose files a stage prepares on the build machine for any platform, copied by the
# target from the image that build-arg names (the Dockerfile's FROM ${WEBHOOK_FILES}).
PREPARED = {"webhook": ("webhook-build", "WEBHOOK_FILES")}


@dataclass
class Pushed:
    name: str
    reference: str  # registry/repository:tag
    digest: str  # of what was pushed (an index for multi-platform images)
    platforms: list[str] = field(default_factory=list)
    sboms: list[str] = field(default_factory=list)
    sbom_referrers: list[str] = field(default_factory=list)  # digests, as sboms (referrers.py)

    @property
    def pinned(self) -> str:
        return f"{self.reference.rsplit(':', 1)[0]}@{self.digest}"


def project_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if not match:
        raise BuildError("pyproject.toml has no version")
    return match.group(1)


def _sbom_for(buildah: Buildah, local: str, *, reference: str, arch: str, out_dir: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="podinit-sbom-") as tmp:
        rootfs = buildah.export_rootfs(local, Path(tmp) / "rootfs")
        document = sbom.spdx(
            rootfs,
            image=reference,
            digest=buildah.image_id(local),
            arch=arch,
            created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tool=f"podinit-e2e-images-{project_version()}",
        )
    name = reference.rsplit("/", 1)[-1].replace(":", "-")
    return str(sbom.write(document, out_dir / f"{name}-{arch}.spdx.json"))


def _platform_image(
    buildah: Buildah, *, target: str, arch: str, bases: Mapping[str, str] | None
) -> str:
    """Build ``target`` for ``arch`` on this machine without running anything of ``arch``;
    returns the local tag."""
    local = f"localhost/podinit/{target}:build-{arch}"
    # stages that run here get this machine's base; the final stage gets arch's
    host_base = {"PYTHON_IMAGE": bases[HOST_ARCH]} if bases else {}
    target_base = {"PYTHON_IMAGE": bases[arch]} if bases else {}
    if target in CROSS_COMPILED and arch != HOST_ARCH:
        # buildah 1.28 looks a stage's base up for the target platform even when it says
        # FROM --platform=$BUILDPLATFORM: build on this platform for TARGETARCH instead, then
        # label the result (its one file is already the target's binary).
        args = {**host_base, "TARGETARCH": arch}
        buildah.build(
            ROOT, tag=local, platform=f"linux/{HOST_ARCH}", target=target, build_args=args
        )
        buildah.set_architecture(local, arch)
        return local
    args = dict(target_base)
    if target in PREPARED:
        # the same lookup: the stage is built for this platform with TARGETARCH and labelled
        # arch's, and the target, which only copies from it, names it
        stage, arg = PREPARED[target]
        files = f"localhost/podinit/{stage}:build-{arch}"
        stage_args = {**host_base, "TARGETARCH": arch}
        platform_ = f"linux/{HOST_ARCH}"
        buildah.build(ROOT, tag=files, platform=platform_, target=stage, build_args=stage_args)
        if arch != HOST_ARCH:
            buildah.set_architecture(files, arch)
        args[arg] = files
    buildah.build(ROOT, tag=local, platform=f"linux/{arch}", target=target, build_args=args)
    return local


def _dockerfile_image(
    buildah: Buildah,
    *,
    target: str,
    platforms: Sequence[str],
    destination: str,
    bases: Mapping[str, str] | None,
    cert_dir: Path | None,
    out_dir: Path,
) -> Pushed:
    locals_, sboms = [], []
    for arch in platforms:
        local = _platform_image(buildah, target=target, arch=arch, bases=bases)
        locals_.append(local)
        sboms.append(_sbom_for(buildah, local, reference=destination, arch=arch, out_dir=out_dir))
    digest = buildah.push_manifest_list(
        f"localhost/podinit/{target}:index", locals_, destination, cert_dir=cert_dir
    )
    return Pushed(target, destination, digest, list(platforms), sboms)


def product_images(
    buildah: Buildah,
    *,
    registry: str,
    bases: Mapping[str, str] | None,
    cert_dir: Path | None,
    out_dir: Path,
    init_platforms: Sequence[str] = PLATFORMS,
    webhook_platforms: Sequence[str] = PLATFORMS,
) -> list[Pushed]:
    """``bases``: PYTHON_IMAGE per platform (None: the Dockerfile's default, every platform's)."""
    version = project_version()
    common = {"bases": bases, "cert_dir": cert_dir, "out_dir": out_dir}
    return [
        _dockerfile_image(
            buildah,
            target="init",
            platforms=init_platforms,
            destination=f"{registry}/podinit/init:{version}",
            **common,  # type: ignore[arg-type]
        ),
        _dockerfile_image(
            buildah,
            target="webhook",
            platforms=webhook_platforms,
            destination=f"{registry}/podinit/webhook:{version}",
            **common,  # type: ignore[arg-type]
        ),
    ]


def _pause_binary(dest: Path) -> None:
    if shutil.which("musl-gcc") is None:
        raise BuildError("musl-gcc is not installed (Debian package musl-tools)")
    flags = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Os", "-static", "-s"]
    argv = ["musl-gcc", *flags, "-o", str(dest), str(TESTAPPS / "pause.c")]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"building the pause binary failed:\n{result.stderr}")


def test_images(buildah: Buildah, *, registry: str, cert_dir: Path | None) -> list[Pushed]:
    """The sandbox (pause) image and the shell-form app image, amd64 only."""
    if not BUSYBOX.is_file():
        raise BuildError(f"{BUSYBOX} is missing (Debian package busybox-static)")
    pushed = []
    with tempfile.TemporaryDirectory(prefix="podinit-testapps-") as tmp:
        context = Path(tmp)
        shutil.copy(BUSYBOX, context / "busybox")
        shutil.copy(TESTAPPS / "app.sh", context / "app.sh")
        _pause_binary(context / "pause")
        for name in ("pause", "app", "app-quit"):  # app-quit is FROM app
            local = f"localhost/podinit-test/{name}:1"
            containerfile = TESTAPPS / f"{name}.Containerfile"
            buildah.build(context, tag=local, platform="linux/amd64", containerfile=containerfile)
            destination = f"{registry}/podinit-test/{name}:1"
            digest = buildah.push(local, destination, cert_dir=cert_dir)
            pushed.append(Pushed(name, destination, digest, ["amd64"]))
    return pushed


def write_index(pushed: Sequence[Pushed], out_dir: Path) -> Path:
    path = out_dir / "images.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {p.name: {**asdict(p), "pinned": p.pinned} for p in pushed}
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path
