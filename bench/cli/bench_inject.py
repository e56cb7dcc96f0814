"""`podinit inject -f` on a large real manifest: the whole CLI process, timed and measured.

The default manifest is argo-cd's install.yaml (1.9 MB, 59 documents, from the corpus beside
the checkout: ../shared/corpus/manifests). Each run is a fresh `podinit inject -f FILE
--offline` process; its wall time, CPU time (user + system) and peak RSS (`wait4`'s
ru_maxrss, what `/usr/bin/time -v` reports) are taken for two YAML paths in the same run:

- libyaml: PyYAML's C parser and emitter with podinit's go-yaml resolvers (the default when
  PyYAML is built with libyaml);
- pure-python: the same rules on PyYAML's pure-Python classes, as when libyaml is missing
  (the child sets `yaml.__with_libyaml__ = False` before podinit is imported);

and, as a floor, a process that only imports the CLI. Variants alternate run by run, so both
see the same machine load; the ratio is pure-python / libyaml on the medians. The outputs of
the two paths must decode to the same values (a difference fails the benchmark).

Run: .venv/bin/python bench/cli/bench_inject.py [--manifest PATH] [--runs 5]
     [--write-doc docs/performance.md]
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml

from bench.docsection import replace_section
from webhook.cli import kubeyaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT.parent / "shared" / "corpus" / "manifests" / "argo-cd-install.yaml"
SECTION = "CLI"

# argv[1]: the variant, argv[2]: the manifest.
CHILD = """
import sys
import yaml
if sys.argv[1] == "pure-python":
    yaml.__with_libyaml__ = False
from webhook.cli.main import main
if sys.argv[1] != "startup":
    sys.exit(main(["inject", "-f", sys.argv[2], "--offline"]))
"""
VARIANTS = ("libyaml", "pure-python", "startup")


@dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss_kb: int  # peak resident set size


def run_once(variant: str, manifest: Path, out: Path) -> Run:
    with out.open("wb") as stdout:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, variant, str(manifest)],
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{variant}: podinit inject exited {child.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def same_values(first: Path, second: Path) -> bool:
    def decoded(path: Path) -> list[object]:
        return list(kubeyaml.load_all(path.read_text(), kubeyaml.PURE_PYTHON))

    return decoded(first) == decoded(second)


def differing_lines(first: Path, second: Path) -> int:
    """Lines of `first` that a diff against `second` removes or changes."""
    diff = difflib.unified_diff(first.read_text().splitlines(), second.read_text().splitlines())
    return sum(line.startswith("-") and not line.startswith("---") for line in diff)


def markdown(manifest: Path, runs: dict[str, list[Run]], count: int, lines: int) -> str:
    def median(variant: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs[variant]))

    rows = [
        f"| {variant} | {median(variant, 'wall'):.2f} s "
        f"| {min(r.wall for r in runs[variant]):.2f}–{max(r.wall for r in runs[variant]):.2f} s "
        f"| {median(variant, 'cpu'):.2f} s | {max(r.rss_kb for r in runs[variant]) / 1024:.0f} MB |"
        for variant in VARIANTS
    ]
    wall = median("pure-python", "wall") / median("libyaml", "wall")
    cpu = median("pure-python", "cpu") / median("libyaml", "cpu")
    same = (
        "byte for byte the same"
        if lines == 0
        else f"the same values; {lines} lines of libyaml's differ in how long double-quoted strings "
        "are folded (libyaml breaks them at spaces only, PyYAML's emitter also before escapes)"
    )
    size = manifest.stat().st_size / 1e6
    return "\n".join(
        [
            f"## {SECTION}",
            "",
            f"`make bench-cli` (`bench/cli/bench_inject.py`): `podinit inject -f {manifest.name}"
            f" --offline` ({size:.1f} MB) as a fresh process, {count} runs per variant,"
            " variants alternating. libyaml is PyYAML's C parser and emitter under podinit's"
            " go-yaml rules (the default when PyYAML has libyaml); pure-python is the same rules"
            " on PyYAML's Python classes (the fallback); startup only imports the CLI.",
            "",
            "| variant | wall, median | min–max | CPU (user+sys), median | peak RSS |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"pure-python / libyaml: **{wall:.1f}x** wall, **{cpu:.1f}x** CPU. The two outputs"
            f" decode to {same}.",
            "",
            f"Measured {datetime.date.today()} on {os.cpu_count()} CPUs, Linux"
            f" {platform.release()}, Python {platform.python_version()},"
            f" PyYAML {yaml.__version__}.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write-doc", type=Path, help="rewrite the '## CLI' section of this file")
    args = parser.parse_args()
    if not args.manifest.is_file():
        print(f"bench-cli: {args.manifest} not found (pass --manifest)", file=sys.stderr)
        return 1
    if not yaml.__with_libyaml__:
        print("bench-cli: this PyYAML has no libyaml: nothing to compare", file=sys.stderr)
        return 1
    runs: dict[str, list[Run]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {variant: Path(tmp) / f"{variant}.yaml" for variant in VARIANTS}
        for number in range(args.runs):
            for variant in VARIANTS:
                run = run_once(variant, args.manifest, outputs[variant])
                runs[variant].append(run)
                print(
                    f"run {number + 1} {variant:12} wall {run.wall:.2f} s  cpu {run.cpu:.2f} s"
                    f"  rss {run.rss_kb / 1024:.0f} MB",
                    file=sys.stderr,
                )
        if not same_values(outputs["libyaml"], outputs["pure-python"]):
            print("bench-cli: the two YAML paths wrote different values", file=sys.stderr)
            return 1
        lines = differing_lines(outputs["libyaml"], outputs["pure-python"])
    section = markdown(args.manifest, runs, args.runs, lines)
    print(section)
    if args.write_doc:
        replace_section(args.write_doc, SECTION, section)
        print(f"wrote the {SECTION} section of {args.write_doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
