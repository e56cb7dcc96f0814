"""Fixtures for running stored pods with runc (e2e/runtime.py).

Without Debian's `runc` and `busybox-static`, or without `make init`'s build/podinit,
the tests skip naming what is missing — unless CI is set, where they fail.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from webhook.core import InjectSettings, mutate

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from e2e.runtime import Runtime, RuntimeMissing, find_runtime  # noqa: E402
from tests.unavailable import found, unavailable  # noqa: E402

SETTINGS = InjectSettings()


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return found(find_runtime, RuntimeMissing)


@pytest.fixture(scope="session")
def podinit() -> Path:
    """The static init the copy container installs (PODINIT_BIN, default build/podinit)."""
    binary = Path(os.environ.get("PODINIT_BIN", ROOT / "build" / "podinit")).resolve()
    if not binary.is_file():
        unavailable(f"needs {binary} (make init)")
    return binary


def stored(original: dict[str, Any]) -> dict[str, Any]:
    """The pod as the apiserver stores it after our webhook: the real core's patch applied."""
    mutation = mutate(original, SETTINGS, {})
    assert [d.outcome.value for d in mutation.decisions] == ["injected"] * len(
        original["spec"]["containers"]
    ), mutation.decisions
    return jsonpatch.apply_patch(copy.deepcopy(original), mutation.patch)  # type: ignore[no-any-return]


def app_pod(command: list[str], **container: Any) -> dict[str, Any]:
    """An unmutated pod: one busybox container named app."""
    return {
        "metadata": {"name": "app"},
        "spec": {
            "containers": [{"name": "app", "image": "busybox", "command": command, **container}]
        },
    }
