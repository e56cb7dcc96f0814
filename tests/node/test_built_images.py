"""The images as built from the Dockerfile and pushed: what they hold, how they run under
the node's runtime (and, for arm64, under qemu-user without binfmt), and what their SBOMs and
lock files say."""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import httpx
import jsonpatch
import pytest
from packaging.requirements import Requirement

from e2e.images import referrers
from e2e.images.build import ROOT
from e2e.images.buildah import Buildah
from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.pki import CertAuthority
from e2e.processes import free_port
from e2e.reviews import pod_review
from e2e.serve import running
from e2e.tools import find_oras
from tests.unavailable import require_tool

LOCK = ROOT / "requirements" / "webhook.lock"
PLATFORMS = ["amd64", "arm64"]
ELF_MACHINE = {"amd64": 62, "arm64": 183}  # e_machine: EM_X86_64, EM_AARCH64


def _pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (names normalised as pip does)."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock.read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_init_image_holds_exactly_one_file_for_each_platform(
    cluster: Cluster, arch: str
) -> None:
    buildah = Buildah.default()
    pushed = cluster.images["init"]
    assert arch in pushed.platforms
    local = f"localhost/podinit/init:build-{arch}"
    config = buildah.config(local)
    assert config["architecture"] == arch
    assert config["config"]["Entrypoint"] == ["/podinit"]
    assert config["config"]["User"] == "65532:65532"
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = buildah.export_rootfs(local, Path(tmp) / "rootfs")
        files = [p for p in rootfs.rglob("*") if not p.is_dir()]
        assert [str(p.relative_to(rootfs)) for p in files] == ["podinit"]
        assert elf_machine(files[0]) == ELF_MACHINE[arch]


def elf_machine(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[18:20], "little")


def test_the_webhook_image_is_an_index_of_amd64_and_arm64(cluster: Cluster) -> None:
    assert cluster.images["webhook"].platforms == PLATFORMS
    assert len(cluster.images["webhook"].sboms) == len(PLATFORMS)


@pytest.mark.parametrize("arch", PLATFORMS)
def test_the_webhook_image_is_non_root_with_podinit_as_its_entrypoint(
    cluster: Cluster, arch: str
) -> None:
    image = Buildah.default().config(f"localhost/podinit/webhook:build-{arch}")
    assert image["architecture"] == arch
    config = image["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["podinit"]
    assert config["Cmd"] == ["serve"]


# Run by the arm64 image's python: import every module of the webhook package (the CLI's
# included: `serve` is one of its commands) and uvicorn's uvloop and httptools parts, write
# which compiled extension modules were loaded and on what machine to argv[1], then run
# `podinit serve` with the remaining arguments in the same interpreter (one qemu start: each
# costs a minute or two here).
_IMPORT_ALL_THEN_SERVE = """
import importlib, json, pkgutil, platform, sys
import webhook
names = [m.name for m in pkgutil.walk_packages(webhook.__path__, "webhook.")]
for name in names:
    importlib.import_module(name)
import uvicorn.loops.uvloop, uvicorn.protocols.http.httptools_impl
native = sorted(
    name for name, module in sys.modules.items()
    if (getattr(module, "__file__", None) or "").endswith(".so")
)
found = {"machine": platform.machine(), "modules": len(names), "native": native}
with open(sys.argv[1], "w") as out:
    json.dump(found, out)
from webhook.cli.main import main
sys.exit(main(sys.argv[2:]))
"""
# The image's ENV (Dockerfile) and nothing of this machine's
_IMAGE_ENV = {
    "PATH": "/opt/podinit/bin:/usr/local/bin:/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "HOME": "/",
}


def _in_arm64_image(rootfs: Path, *argv: str, env: dict[str, str]) -> list[str]:
    """argv run in the image as its USER by its python under qemu-aarch64-static (copied to
    /qemu: with chroot it runs the image's own aarch64 interpreter, no binfmt registration
    needed), with only the image's environment and ``env``."""
    variables = [f"{k}={v}" for k, v in {**_IMAGE_ENV, **env}.items()]
    python = ["/qemu", "/opt/podinit/bin/python"]
    # found before `env -i` empties PATH
    chroot = [require_tool("chroot", "coreutils"), "--userspec=65532:65532", str(rootfs)]
    return ["env", "-i", *variables, *chroot, *python, *argv]


def test_the_arm64_webhook_image_imports_every_module_of_podinit_serve_and_serves_under_qemu(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The arm64 image's python imports what `podinit serve` runs, with aarch64 builds of the
    compiled wheels pip picked on this machine, answers /healthz and wraps a pod."""
    qemu = require_tool("qemu-aarch64-static", "qemu-user-static")
    rootfs = Buildah.default().export_rootfs(
        "localhost/podinit/webhook:build-arm64", tmp_path / "root"
    )
    assert elf_machine((rootfs / "usr/bin/python3.11").resolve()) == ELF_MACHINE["arm64"]
    libraries = [p for p in (rootfs / "opt/podinit").rglob("*.so") if p.is_file()]
    assert libraries and {elf_machine(p) for p in libraries} == {ELF_MACHINE["arm64"]}
    shutil.copy(qemu, rootfs / "qemu")
    ca = CertAuthority(tmp_path / "pki", "webhook")
    cert = ca.issue_server("webhook")
    shared = rootfs / "test"  # written by the test and by the image's uid
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    for source, name in ((cert.cert, "tls.crt"), (cert.key, "tls.key")):
        shutil.copy(source, shared / name)
        (shared / name).chmod(0o644)
    port = free_port()
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port),
             "--tls-cert-file", "/test/tls.crt", "--tls-key-file", "/test/tls.key"]  # fmt: skip
    # no cluster to ask: no Events, copy mode rather than `auto`
    settings = {"PODINIT_EVENTS": "false", "PODINIT_INJECTION_MODE": "copy"}
    argv = _in_arm64_image(
        rootfs, "-c", _IMPORT_ALL_THEN_SERVE, "/test/found.json", *serve, env=settings
    )
    context = ssl.create_default_context(cafile=str(ca.cert))
    url = f"https://127.0.0.1:{port}"
    with (
        running(argv, env={}, log_file=tmp_path / "serve.log", url=url, ca=context,
                ready_within=300),
        httpx.Client(base_url=url, verify=context, timeout=30) as client,
    ):  # fmt: skip
        health = client.get("/healthz")
        app = {"name": "app", "image": "example/app:1", "command": ["app"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [app]}}
        review = client.post("/mutate", json=pod_review(pod)).json()
    found = json.loads((shared / "found.json").read_text())
    assert found["machine"] == "aarch64"
    assert found["modules"] > 50
    for native in ("uvloop.loop", "httptools.parser.parser", "pydantic_core._pydantic_core",
                   "yaml._yaml", "orjson.orjson", "_cffi_backend"):  # fmt: skip
        assert native in found["native"], native
    assert health.status_code == 200, health.text
    patch = json.loads(base64.b64decode(review["response"]["patch"]))
    wrapped = jsonpatch.apply_patch(pod, patch)["spec"]["containers"][0]
    assert wrapped["command"] == ["/podinit/podinit", "--", "app"]


def test_the_webhook_image_starts_under_the_runtime_with_a_read_only_root(
    cluster: Cluster, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "help", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "webhook",
                    "image": cluster.images["webhook"].reference,
                    "args": ["serve", "--help"],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    cluster.cp.apply(pod)
    cluster.cp.kubectl(
        "wait",
        "-n",
        namespace,
        "pod/help",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=90s",
        timeout=100,
    )
    stored = cluster.cp.kubectl_json("get", "-n", namespace, "pod/help")
    assert stored["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "usage: podinit serve" in workloads.logs(cluster, namespace, "help")


@pytest.mark.parametrize("arch", PLATFORMS)
def test_the_webhook_venv_holds_exactly_the_locked_versions(cluster: Cluster, arch: str) -> None:
    pushed = cluster.images["webhook"]
    sbom_file = dict(zip(pushed.platforms, pushed.sboms, strict=True))[arch]
    document = json.loads(Path(sbom_file).read_text())
    assert document["spdxVersion"] == "SPDX-2.3"
    installed = {
        ref["referenceLocator"].removeprefix("pkg:pypi/").split("@")[0]: package["versionInfo"]
        for package in document["packages"]
        for ref in package.get("externalRefs", [])
        if ref["referenceLocator"].startswith("pkg:pypi/")
    }
    assert installed.pop("podinit") == re.search(
        r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M
    ).group(1)  # type: ignore[union-attr]
    pins = _pins(LOCK)
    pins.pop("setuptools")  # builds the project, then is removed from the venv
    assert installed == {name: pins[name] for name in installed}
    assert set(pins) >= set(installed)
    debian = [p for p in document["packages"] if "pkg:deb/" in json.dumps(p)]
    python = [p for p in debian if p["name"] == "python3.11-minimal"]
    assert python and f"arch={arch}" in json.dumps(python[0])


def test_the_init_sbom_lists_its_one_file_with_the_binarys_digest(cluster: Cluster) -> None:
    for path in cluster.images["init"].sboms:
        files = json.loads(Path(path).read_text())["files"]
        assert [f["fileName"] for f in files] == ["/podinit"]
        assert len(files[0]["checksums"][0]["checksumValue"]) == 64


@pytest.mark.parametrize("name", ["init", "webhook"])
def test_each_platform_images_sbom_is_attached_to_it_in_the_registry(
    cluster: Cluster, name: str
) -> None:
    """`oras discover` finds one SPDX referrer per platform image, and pulling it gives back
    the very SBOM file the build wrote."""
    pushed, oras, ca_file = cluster.images[name], find_oras(), cluster.registry.ca_file
    assert ca_file is not None
    attached = dict(zip(pushed.platforms, pushed.sbom_referrers, strict=True))
    for arch, sbom in zip(pushed.platforms, pushed.sboms, strict=True):
        found = referrers.sbom_referrers(oras, pinned=pushed.pinned, arch=arch, ca_file=ca_file)
        assert found == [attached[arch]], (arch, found)  # the very artifact the build pushed
        repository = pushed.reference.rsplit(":", 1)[0]
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    str(oras),
                    "pull",
                    f"{repository}@{found[0]}",
                    "-o",
                    tmp,
                    "--ca-file",
                    str(ca_file),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            assert (Path(tmp) / Path(sbom).name).read_bytes() == Path(sbom).read_bytes()


def test_the_lock_satisfies_every_dependency_of_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(LOCK)
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in {LOCK.name}: run make lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}: run make lock"
    for extra in ("uvloop", "httptools"):  # uvicorn[standard] on Linux
        assert extra in pins
