"""How much work a test does. PODINIT_TEST_SCALE (default 1) shrinks it for runs that repeat
or slow down every test: the init's storms and loops under ASan (0.2) and valgrind (0.05),
the property tests' examples under `make mutation` (which runs every test that covers a
mutant once per mutant; docs/mutation.md)."""

from __future__ import annotations

import os

SCALE = float(os.environ.get("PODINIT_TEST_SCALE", "1"))


def scaled(count: int, *, least: int = 1) -> int:
    """`count` times the scale, at least `least`."""
    return max(least, int(count * SCALE))


def examples(count: int) -> int:
    """A property test's `max_examples`: `count` times the scale, at least 10."""
    return scaled(count, least=10)
