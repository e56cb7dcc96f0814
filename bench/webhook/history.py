"""The webhook benchmark's numbers over runs: one line per measured run in
docs/webhook-bench-runs.jsonl, and from the last RANGE_RUNS of them both the "across runs"
table of docs/performance.md and the webhook row of README's Performance table, so the two
quote the same range and a test (tests/bench) can check that they do.

One run on a shared machine is one sample: the throughput ratio moved between 72% and 85%
of the no-op's on quiet machines, and further under other load; server CPU per admission
moves less. So the README leads with the CPU ratio, quotes every number as a range over the
recorded runs and says how loaded the machine was before them (the table shows each run's).
A run that started on a busy machine (1-minute load average above BUSY_LOAD: the bench
itself needs both cores) is listed but left out of the range, unless no run was quiet.

Standard library only: imported as ``bench.webhook.history`` by the benchmark and the tests.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS_FILE = ROOT / "docs" / "webhook-bench-runs.jsonl"
RANGE_RUNS = 10  # the range covers the most recent runs only
README_LABEL = "webhook admission, 3-container pod, one worker"
BUSY_LOAD = 1.0


@dataclass
class RunSummary:
    """The headline of one `bench_webhook.py` run: per server the least disturbed round at
    saturation, the lowest server CPU per admission of all rounds, and at the fixed rate the
    p99 of the round closest to the rate."""

    date: str
    commit: str
    rounds: int
    duration_s: float
    podinit_adm_s: float
    noop_adm_s: float
    podinit_cpu_us: float
    noop_cpu_us: float
    rate: int
    podinit_p99_ms: float
    podinit_rounds_adm_s: list[int] = field(default_factory=list)
    noop_rounds_adm_s: list[int] = field(default_factory=list)
    podinit_rate_achieved: float = 0.0  # of the round whose p99 is quoted; 0: not recorded
    load_before: str = ""  # the machine's load average before the run
    note: str = ""

    @property
    def load(self) -> float | None:
        """The 1-minute load average before the run."""
        return float(self.load_before.split()[0]) if self.load_before else None

    @property
    def rate_reached(self) -> bool:
        """The p99 means something only if the server kept up with the rate (an overloaded
        machine shows as the rate not reached and a p99 of the queue)."""
        return not self.podinit_rate_achieved or self.podinit_rate_achieved >= 0.99 * self.rate

    @property
    def throughput_ratio(self) -> float:
        return self.podinit_adm_s / self.noop_adm_s

    @property
    def cpu_ratio(self) -> float:
        return self.podinit_cpu_us / self.noop_cpu_us


def commit() -> str:
    """HEAD's short hash, with ``+`` when webhook/ has uncommitted changes (measured too)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--", "webhook") else "")


def append(path: Path, run: RunSummary) -> None:
    with path.open("a") as f:
        f.write(json.dumps(asdict(run), ensure_ascii=False) + "\n")


def load(path: Path = RUNS_FILE) -> list[RunSummary]:
    """The most recent RANGE_RUNS runs, oldest first."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [RunSummary(**json.loads(line)) for line in lines][-RANGE_RUNS:]


def quoted(runs: list[RunSummary]) -> list[RunSummary]:
    """The runs the range is taken over: those that started on a quiet machine."""
    quiet = [r for r in runs if r.load is None or r.load <= BUSY_LOAD]
    return quiet or runs


def _span(values: list[float], fmt: str) -> str:
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}–{high}"


def _rounds_ratio(run: RunSummary) -> str:
    pairs = list(zip(run.podinit_rounds_adm_s, run.noop_rounds_adm_s, strict=False))
    return _span([p / n for p, n in pairs], "{:.2f}") if pairs else ""


def runs_table(runs: list[RunSummary]) -> str:
    """Every recorded run (the least disturbed round of each) and the range over the quoted."""
    lines = [
        "| run | commit | load before | rounds × s | podinit adm/s | no-op adm/s | × no-op "
        "| every round × no-op | podinit CPU µs/adm | no-op CPU µs/adm | CPU × no-op "
        "| podinit p99 ms at the fixed rate |",
        "|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.date}{f' ({run.note})' if run.note else ''} | {run.commit} "
            f"| {run.load_before.split()[0] if run.load_before else ''} | {run.rounds} × {run.duration_s:g} | {run.podinit_adm_s:,.0f} "
            f"| {run.noop_adm_s:,.0f} | {run.throughput_ratio:.2f} | {_rounds_ratio(run)} "
            f"| {run.podinit_cpu_us:,.0f} | {run.noop_cpu_us:,.0f} | {run.cpu_ratio:.2f} "
            f"| {_p99(run)} |"
        )
    runs = quoted(runs)
    lines.append(
        f"| **range, {len(runs)} run{'s' if len(runs) > 1 else ''}** | | {_load_span(runs)} | "
        f"| {_span([r.podinit_adm_s for r in runs], '{:,.0f}')} "
        f"| {_span([r.noop_adm_s for r in runs], '{:,.0f}')} "
        f"| {_span([r.throughput_ratio for r in runs], '{:.2f}')} | "
        f"| {_span([r.podinit_cpu_us for r in runs], '{:,.0f}')} "
        f"| {_span([r.noop_cpu_us for r in runs], '{:,.0f}')} "
        f"| {_span([r.cpu_ratio for r in runs], '{:.2f}')} "
        f"| {_p99_span(runs)} |"
    )
    return "\n".join(lines)


def _load_span(runs: list[RunSummary]) -> str:
    loads = [r.load for r in runs if r.load is not None]
    return _span(loads, "{:.2f}") if loads else ""


def _p99(run: RunSummary) -> str:
    if run.rate_reached:
        return f"{run.podinit_p99_ms:.2f} at {run.rate:,}/s"
    return f"{run.rate:,}/s not reached ({run.podinit_rate_achieved:,.0f}/s)"


def _p99_span(runs: list[RunSummary]) -> str:
    """The p99 over the runs that reached the rate (how many, if not all)."""
    kept = [r for r in runs if r.rate_reached]
    if not kept:
        return f"{_rates(runs)}/s not reached"
    of = "" if len(kept) == len(runs) else f" ({len(kept)} of {len(runs)} runs reached the rate)"
    return f"{_span([r.podinit_p99_ms for r in kept], '{:.2f}')} ms at {_rates(kept)}/s{of}"


def _rates(runs: list[RunSummary]) -> str:
    return "/".join(f"{r:,}" for r in sorted({r.rate for r in runs}))


def readme_row(runs: list[RunSummary]) -> str:
    """README's Performance row: the same ranges as the range row of ``runs_table``."""
    runs = quoted(runs)
    return (
        f"| {README_LABEL} | server CPU per admission "
        f"{_span([r.cpu_ratio for r in runs], '{:.2f}')}× the no-op's; throughput "
        f"{_span([r.throughput_ratio for r in runs], '{:.2f}')}× the no-op's; p99 "
        f"{_p99_span(runs)} "
        f"(range over {len(runs)} run{'s' if len(runs) > 1 else ''} of `make bench-webhook`, "
        f"load average before them {_load_span(runs)}) "
        f"| FastAPI no-op on the same stack "
        f"({_span([r.noop_cpu_us for r in runs], '{:,.0f}')} µs CPU per admission, "
        f"{_span([r.noop_adm_s for r in runs], '{:,.0f}')}/s) |"
    )


def write_readme_row(path: Path, row: str) -> None:
    """Replace the README table row whose first cell is README_LABEL."""
    lines = path.read_text().splitlines(keepends=True)
    found = [i for i, line in enumerate(lines) if line.startswith(f"| {README_LABEL} |")]
    if len(found) != 1:
        raise SystemExit(f"{path}: expected one row starting with '| {README_LABEL} |'")
    lines[found[0]] = row + "\n"
    path.write_text("".join(lines))
