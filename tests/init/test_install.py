"""podinit install DEST: how the init image puts podinit into a volume."""

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BIN, need_tool

NOBODY = 65532


def is_static(path: Path) -> bool:
    return b"/ld-" not in path.read_bytes()[:4096]


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory uid 65532 can pass through (pytest's own tmp_path lies under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="podinit-install-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path)


def test_install_copies_the_binary_with_mode_0755(run: Any, tmp_path: Path) -> None:
    dest = tmp_path / "podinit"
    init = run(["install", str(dest)], pid1=False)
    assert init.wait() == 0
    assert dest.read_bytes() == BIN.read_bytes()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert os.listdir(tmp_path) == ["podinit"]


def test_install_replaces_an_existing_file_and_leaves_no_temp_file(
    run: Any, tmp_path: Path
) -> None:
    dest = tmp_path / "podinit"
    dest.write_text("old")
    init = run(["install", str(dest)], pid1=False)
    assert init.wait() == 0
    assert dest.read_bytes() == BIN.read_bytes()
    assert os.listdir(tmp_path) == ["podinit"]


def test_install_into_an_unwritable_directory_exits_1_naming_it(run: Any, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    init = run(["install", str(locked / "podinit")], pid1=False, user=NOBODY)
    assert init.wait() == 1
    assert len(init.err_lines) == 1
    assert str(locked) in init.err_lines[0]
    assert os.listdir(locked) == []


def test_install_into_a_missing_directory_exits_1(run: Any, tmp_path: Path) -> None:
    init = run(["install", str(tmp_path / "nowhere" / "podinit")], pid1=False)
    assert init.wait() == 1
    assert init.err_lines[0].startswith("podinit: install: ")


def test_install_works_as_nonroot_on_a_readonly_root_without_proc_or_tmp(tmp_path: Path) -> None:
    """What the webhook's initContainer does: FROM scratch, /podinit install /target/podinit."""
    if not is_static(BIN):
        pytest.skip("the image needs a static build; this one is dynamic")
    unshare = need_tool("unshare", "util-linux")
    chroot = need_tool("chroot", "coreutils")
    root, target = tmp_path / "root", tmp_path / "target"
    (root / "target").mkdir(parents=True)
    target.mkdir()
    shutil.copy(BIN, root / "podinit")
    os.chown(target, NOBODY, NOBODY)
    for d in (tmp_path, root):
        d.chmod(0o755)
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
        'mount --bind "$2" "$1/target" && '
        f'exec {chroot} --userspec={NOBODY}:{NOBODY} "$1" /podinit install /target/podinit'
    )
    done = subprocess.run(
        [unshare, "--mount", "sh", "-c", script, "sh", str(root), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    installed = target / "podinit"
    assert installed.read_bytes() == BIN.read_bytes()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    assert installed.stat().st_uid == NOBODY
    assert os.listdir(target) == ["podinit"]
    assert os.listdir(root / "target") == []


def test_install_as_pid1_succeeds_over_a_temp_file_that_a_killed_copy_left(
    run: Any, tmp_path: Path
) -> None:
    """The copy container's podinit is always PID 1: a fixed .podinit.1.tmp would fail for good."""
    stale = tmp_path / ".podinit.1.tmp"
    stale.write_text("half a copy")
    init = run(["install", str(tmp_path / "podinit")])
    assert init.wait() == 0, init.err_lines
    assert (tmp_path / "podinit").read_bytes() == BIN.read_bytes()
    assert sorted(os.listdir(tmp_path)) == [".podinit.1.tmp", "podinit"]


def test_install_succeeds_into_a_directory_it_may_write_but_not_read(
    run: Any, reachable: Path
) -> None:
    target = reachable / "target"
    target.mkdir()
    os.chown(target, NOBODY, NOBODY)
    target.chmod(0o300)
    init = run(["install", str(target / "podinit")], pid1=False, user=NOBODY)
    assert init.wait() == 0, init.err_lines
    assert init.err_lines == []
    assert (target / "podinit").read_bytes() == BIN.read_bytes()
    assert os.listdir(target) == ["podinit"]
