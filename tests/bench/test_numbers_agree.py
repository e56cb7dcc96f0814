"""README's Performance row and docs/performance.md quote the webhook benchmark's range over
the same recorded runs (docs/webhook-bench-runs.jsonl, written by `make bench-webhook`), and
the shared docs-section writer keeps what it must. No benchmark runs here."""

from __future__ import annotations

import re
from pathlib import Path

from bench.docsection import replace_section
from bench.webhook import history

ROOT = Path(__file__).resolve().parents[2]


def numbers(text: str) -> list[str]:
    return re.findall(r"(?<![\w.,])\d[\d,]*(?:\.\d+)?", text)  # not the 99 of "p99"


def test_the_readme_row_is_the_one_the_recorded_runs_give() -> None:
    runs = history.load()
    assert runs, "no recorded webhook benchmark run"
    rows = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith(f"| {history.README_LABEL} |")
    ]
    assert rows == [history.readme_row(runs)], "run `make bench-webhook` (or its --from-json)"


def test_performance_md_shows_the_same_runs_and_range() -> None:
    runs = history.load()
    doc = (ROOT / "docs" / "performance.md").read_text()
    assert history.runs_table(runs) in doc


def test_every_number_of_the_readme_row_stands_in_the_docs_range_row() -> None:
    """Read from the two files themselves, not from the runs file."""
    readme = (ROOT / "README.md").read_text().splitlines()
    row = next(line for line in readme if line.startswith(f"| {history.README_LABEL} |"))
    doc = (ROOT / "docs" / "performance.md").read_text().splitlines()
    range_row = next(line for line in doc if line.startswith("| **range, "))
    quoted = numbers("|".join(row.split("|")[2:]))
    assert quoted and set(quoted) <= set(numbers(range_row)), (row, range_row)


def test_a_section_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n## A\n\nold a\n\n## B\n\nold b\n")
    replace_section(doc, "A", "## A\n\nnew a\n")
    replace_section(doc, "C", "## C\n\nnew c\n")
    assert doc.read_text() == "# Performance\n\n## A\n\nnew a\n\n## B\n\nold b\n\n## C\n\nnew c\n"


def test_the_hand_written_part_after_the_marker_is_kept(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    keep = "<!-- kept -->"
    doc.write_text(f"# P\n\n## W\n\nold table\n\n{keep}\n\nanalysis\n\n## X\n\nx\n")
    replace_section(doc, "W", "## W\n\nnew table\n", keep=keep)
    assert doc.read_text() == f"# P\n\n## W\n\nnew table\n\n{keep}\n\nanalysis\n\n## X\n\nx\n"
    replace_section(doc, "W", "## W\n\nnewer\n", keep=keep)
    assert "analysis" in doc.read_text() and "new table" not in doc.read_text()
