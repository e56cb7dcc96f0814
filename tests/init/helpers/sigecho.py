"""Prints 'ready', then the number of each signal it gets, one a line.

Exits 0 after the signal given as argv[1] (default SIGTERM).
"""

import os
import signal
import sys


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


last = int(sys.argv[1]) if len(sys.argv) > 1 else signal.SIGTERM
waited = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
signal.pthread_sigmask(signal.SIG_BLOCK, waited)
say("ready")
while True:
    sig = signal.sigwaitinfo(waited).si_signo
    say(sig)
    if sig == last:
        break
