"""Counts signals until each SIG=COUNT of argv is reached or 30 s pass quietly.

Prints 'ready' first and the counts ('SIG=COUNT ...') last.
"""

import collections
import os
import signal
import sys


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


expected = {int(k): int(v) for k, v in (arg.split("=") for arg in sys.argv[1:])}
waited = set(expected)
signal.pthread_sigmask(signal.SIG_BLOCK, waited)
say("ready")
counts: collections.Counter[int] = collections.Counter()
while any(counts[sig] < n for sig, n in expected.items()):
    info = signal.sigtimedwait(waited, 30)
    if info is None:
        break
    counts[info.si_signo] += 1
say(" ".join(f"{sig}={counts[sig]}" for sig in sorted(expected)))
