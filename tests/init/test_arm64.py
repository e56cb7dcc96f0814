"""The arm64 build, run under qemu-user as PID 1: a smoke test."""

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, need_tool

ARM64 = Path(os.environ.get("PODINIT_ARM64_BIN", ROOT / "build" / "podinit-arm64"))
EM_AARCH64 = 183


@pytest.fixture
def qemu() -> list[str]:
    if not ARM64.exists():
        pytest.fail(f"{ARM64} is missing: run make init")
    return [need_tool("qemu-aarch64-static", "qemu-user-static")]


def test_the_arm64_build_is_a_static_aarch64_executable() -> None:
    head = ARM64.read_bytes()[:4096]
    assert head[:4] == b"\x7fELF"
    assert int.from_bytes(head[18:20], "little") == EM_AARCH64
    assert b"/ld-" not in head


def test_the_arm64_build_passes_exit_codes_as_pid1(run: Any, qemu: list[str]) -> None:
    init = run(["sh", "-c", "exit 7"], binary=ARM64, wrapper=qemu)
    assert init.wait() == 7


def test_the_arm64_build_forwards_sigterm_to_a_trapped_wrapper(run: Any, qemu: list[str]) -> None:
    init = run(["sh", "-c", 'trap "exit 4" TERM; echo ready; while :; do sleep 1; done'],
               binary=ARM64, wrapper=qemu)  # fmt: skip
    assert init.line() == "ready"
    init.kill(signal.SIGTERM)
    assert init.wait() == 4
