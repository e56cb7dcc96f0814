"""The one rule for tests that need a tool: skip by hand, fail under CI (never pass by skipping)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def require_tool(tool: str, package: str) -> str:
    """The tool's path (a name on PATH or a path); otherwise `unavailable`, naming the package."""
    found = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if found is None:
        unavailable(f"needs {tool} (Debian package {package})")
    return found


def found(find: Callable[[], T], missing: type[Exception]) -> T:
    """What ``find`` returns; if it raises ``missing`` (a tool or runtime is not here), then
    `unavailable` with its message (raised outside the ``except``, so the skip is not chained)."""
    try:
        return find()
    except missing as e:
        reason = str(e)
    unavailable(reason)
