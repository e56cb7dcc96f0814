"""The copy initContainer and the shared emptyDir, run as the apiserver stored the pod."""

from __future__ import annotations

import copy
import stat
from pathlib import Path

import pytest

from e2e.ocispec import NONROOT_UID, PodFailed
from e2e.runtime import DEFAULT_INIT_IMAGE, Runtime, init_image_rootfs, run_pod

from .conftest import SETTINGS, app_pod, stored


def test_the_init_image_root_holds_nothing_but_podinit(tmp_path: Path, podinit: Path) -> None:
    root = init_image_rootfs(tmp_path / "rootfs", podinit)
    assert [p.name for p in root.iterdir()] == ["podinit"]
    assert stat.S_IMODE((root / "podinit").stat().st_mode) == 0o755


def test_the_copy_container_installs_podinit_into_the_shared_directory_as_uid_65532(
    runtime: Runtime, podinit: Path
) -> None:
    pod = stored(app_pod(["sleep", "1000"]))
    with run_pod(pod, podinit, runtime=runtime) as running:
        copier = running.init_containers[SETTINGS.copy_container_name]
        assert copier.wait(0) == 0
        process = copier.config["process"]
        # The restricted securityContext, as runc was told it.
        assert process["user"] == {"uid": NONROOT_UID, "gid": NONROOT_UID}
        assert copier.config["root"]["readonly"] is True
        assert process["noNewPrivileges"] is True
        assert all(caps == [] for caps in process["capabilities"].values())
        assert process["args"] == ["/podinit", "install", "/target/podinit"]

        installed = running.volumes[SETTINGS.volume_name] / "podinit"
        info = installed.stat()
        assert (info.st_uid, info.st_gid) == (NONROOT_UID, NONROOT_UID)
        assert stat.S_IMODE(info.st_mode) == 0o755
        assert installed.read_bytes() == podinit.read_bytes()


def test_the_copy_containers_root_filesystem_is_read_only(runtime: Runtime, podinit: Path) -> None:
    pod = stored(app_pod(["sleep", "1000"]))
    pod["spec"]["initContainers"][0]["command"][-1] = "/podinit.copy"
    with pytest.raises(PodFailed, match="Read-only file system"):
        run_pod(pod, podinit, runtime=runtime)


def test_the_app_runs_podinit_from_its_read_only_mount_and_cannot_write_there(
    runtime: Runtime, podinit: Path
) -> None:
    pod = stored(app_pod(["sh", "-c", "/podinit/podinit --version; touch /podinit/podinit"]))
    with run_pod(pod, podinit, runtime=runtime) as running:
        app = running.app()
        assert app.wait(60) == 1  # touch failed, and podinit passes its status on
        mount = next(m for m in app.config["mounts"] if m["destination"] == SETTINGS.mount_path)
        assert "ro" in mount["options"]
        assert "podinit 0.1.0" in app.output()
        assert "Read-only file system" in app.output()


def test_a_restricted_non_root_app_runs_wrapped_too(runtime: Runtime, podinit: Path) -> None:
    original = app_pod(
        ["sh", "-c", "id -u; echo ok"],
        securityContext={
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    )
    original["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000}
    with run_pod(stored(original), podinit, runtime=runtime) as running:
        app = running.app()
        assert app.wait(60) == 0, app.output()
        assert app.output().split() == ["1000", "ok"]


def test_everything_is_removed_even_when_an_init_container_fails(
    runtime: Runtime, podinit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    pod = stored(app_pod(["sleep", "1000"]))
    broken = copy.deepcopy(pod)
    broken["spec"]["initContainers"][0]["command"][-1] = "/missing/podinit"
    with pytest.raises(PodFailed, match="exited 1"):
        run_pod(broken, podinit, runtime=runtime)
    assert list(tmp_path.iterdir()) == []

    with run_pod(pod, podinit, runtime=runtime) as running:
        assert running.app().running()
    assert list(tmp_path.iterdir()) == []


def test_the_runner_treats_the_webhooks_default_init_image_as_the_init_image() -> None:
    assert SETTINGS.init_image == DEFAULT_INIT_IMAGE
