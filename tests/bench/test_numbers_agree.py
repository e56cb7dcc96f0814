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


def run_with(*, load: str, podinit_cpu_us: float) -> history.RunSummary:
    return history.RunSummary(
        date="2026-12-01 10:00 UTC",
        commit="abc1234",
        rounds=5,
        duration_s=5,
        podinit_adm_s=4000,
        noop_adm_s=5000,
        podinit_cpu_us=podinit_cpu_us,
        noop_cpu_us=100,
        rate=1000,
        podinit_p99_ms=2.5,
        load_before=load,
    )


def test_a_run_started_on_a_busy_machine_is_listed_but_left_out_of_the_range() -> None:
    quiet = run_with(load="0.40 0.50 0.60", podinit_cpu_us=200)
    busy = run_with(load="5.00 3.00 2.00", podinit_cpu_us=300)
    table = history.runs_table([quiet, busy])
    assert "| 5.00 |" in table and "| 3.00 |" in table  # the busy run's row is shown
    range_row = table.splitlines()[-1]
    assert range_row.startswith("| **range, 1 run** | | 0.40 |") and "| 2.00 |" in range_row
    row = history.readme_row([quiet, busy])
    assert "server CPU per admission 2.00\u00d7 the no-op's" in row and "range over 1 run " in row


def test_when_no_run_was_quiet_the_range_covers_them_all() -> None:
    runs = [run_with(load="3.00", podinit_cpu_us=200), run_with(load="4.00", podinit_cpu_us=300)]
    assert "server CPU per admission 2.00\u20133.00\u00d7 the no-op's" in history.readme_row(runs)
