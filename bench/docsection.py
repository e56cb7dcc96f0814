"""Benchmarks rewrite their own section of docs/performance.md and keep the rest.

replace_section(Path("docs/performance.md"), "Runtime", markdown)
replace_section(path, "Webhook", markdown, keep=KEEP)   # hand-written text after KEEP stays
"""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(path: Path, heading: str, section: str, *, keep: str | None = None) -> None:
    """Replace the ``## heading`` section (up to the next ``## ``) with ``section``, or
    append it; everything else in the file stays as it is.

    With ``keep`` (a marker line), only the generated part before the marker is replaced:
    the marker is written after ``section`` and whatever followed it in the old section (the
    analysis, written by hand) is kept after it."""
    text = path.read_text() if path.exists() else "# Performance\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    new = section.rstrip() + "\n"
    if keep is not None:
        kept = ""
        if found and keep in found.group(0):
            kept = found.group(0).split(keep, 1)[1].strip("\n")
        new += "\n" + keep + "\n" + (f"\n{kept}\n" if kept else "")
    if found:
        text = text[: found.start()] + new + "\n" + text[found.end() :].lstrip("\n")
    else:
        text = text.rstrip() + "\n\n" + new
    path.write_text(text.rstrip() + "\n")
