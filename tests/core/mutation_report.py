"""The score per file of a `mutmut run` (`make mutation`), read from its `mutants/` directory.

Run from the directory mutmut ran in: `python -m tests.core.mutation_report [--doc FILE]`.
With `--doc`, the mutants that FILE lists as equivalent (table rows starting with a mutant
name in backticks, docs/mutation.md) are counted apart: the score over the others is the one
compared run to run. Survivors not listed are printed, to be killed by a test or listed with
the reason they cannot be; listed ones that no longer survive are printed too (a stale list).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

KILLED = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout"}
KILLED |= {255: "timeout", 37: "type check"}
OTHER = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}
LISTED = re.compile(r"^\|\s*`(?P<name>[\w.]+__mutmut_\d+)`\s*\|", re.M)


def status(exit_code: int | None) -> str:
    if exit_code in KILLED:
        return KILLED[exit_code]
    return OTHER.get(exit_code, "suspicious")


def results(root: Path) -> dict[str, dict[str, str]]:
    """Per source file, mutant name -> status."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if codes:
            source = str(meta.relative_to(root / "mutants"))[: -len(".meta")]
            found[source] = {name: status(code) for name, code in codes.items()}
    return found


def report(found: dict[str, dict[str, str]], equivalent: set[str]) -> list[str]:
    lines = [
        f"{'file':34} {'mutants':>7} {'killed':>7} {'survived':>8} {'equiv.':>6} "
        f"{'other':>5} {'score':>7} {'non-eq.':>7}"
    ]
    totals: Counter[str] = Counter()
    survivors: list[str] = []
    stale: list[str] = []
    for source, by_name in found.items():
        counts: Counter[str] = Counter()
        for name, result in by_name.items():
            killed = result in {"killed", "timeout", "type check"}
            if name in equivalent and result == "survived":
                counts["equivalent"] += 1
                continue
            if name in equivalent and killed:
                stale.append(f"{name}: {result}")
            if killed:
                counts["killed"] += 1
            elif result == "survived":
                counts["survived"] += 1
                survivors.append(name)
            else:
                counts["other"] += 1
                if result != "not checked":  # an interrupted or narrowed run leaves many
                    survivors.append(f"{name} ({result})")
        counts["mutants"] = len(by_name)
        totals += counts
        lines.append(_row(source, counts))
    lines.append(_row("total", totals))
    if survivors:
        lines += ["", "survivors not listed as equivalent (mutmut show NAME):", *survivors]
    if stale:
        lines += ["", "listed as equivalent but not surviving (update the list):", *stale]
    return lines


def _row(source: str, counts: Counter[str]) -> str:
    mutants, killed, equivalent = counts["mutants"], counts["killed"], counts["equivalent"]
    score = killed / mutants if mutants else 1.0
    non_equivalent = killed / (mutants - equivalent) if mutants > equivalent else 1.0
    return (
        f"{source:34} {mutants:7} {killed:7} {counts['survived']:8} {equivalent:6} "
        f"{counts['other']:5} {score:7.1%} {non_equivalent:7.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="where mutmut ran")
    parser.add_argument("--doc", type=Path, help="the document listing equivalent mutants")
    args = parser.parse_args(argv)
    found = results(args.root)
    if not found:
        print(f"no mutmut results under {args.root / 'mutants'}", file=sys.stderr)
        return 1
    equivalent = set(LISTED.findall(args.doc.read_text())) if args.doc else set()
    print("\n".join(report(found, equivalent)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
