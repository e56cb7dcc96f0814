"""The images as built from the Dockerfile and pushed: what they hold, how they run under
the node's runtime, and what their SBOMs and lock files say."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from e2e.images import referrers
from e2e.images.build import ROOT
from e2e.images.buildah import Buildah
from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.tools import find_oras

LOCK = ROOT / "requirements" / "webhook.lock"


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
        header = files[0].read_bytes()[:20]
        assert int.from_bytes(header[18:20], "little") == {"amd64": 62, "arm64": 183}[arch]


def test_the_webhook_image_is_non_root_with_podinit_as_its_entrypoint(cluster: Cluster) -> None:
    config = Buildah.default().config("localhost/podinit/webhook:build-amd64")["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["podinit"]
    assert config["Cmd"] == ["serve"]


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


def test_the_webhook_venv_holds_exactly_the_locked_versions(cluster: Cluster) -> None:
    sbom_files = cluster.images["webhook"].sboms
    assert sbom_files, "an SBOM per platform image"
    document = json.loads(Path(sbom_files[0]).read_text())
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
    assert any(p["name"] == "python3.11-minimal" for p in debian)


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
