"""Benchmarks rewrite their own section of docs/performance.md and keep the rest."""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(path: Path, heading: str, section: str) -> None:
    """Replace the ``## heading`` section (up to the next ``## ``) with ``section``, or
    append it; everything else in the file stays as it is."""
    text = path.read_text() if path.exists() else "# Performance\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section.rstrip() + "\n\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n")
