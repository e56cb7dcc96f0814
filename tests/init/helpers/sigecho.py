"""Prints 'ready', then the number of each signal it gets, one a line.

Exits 0 after the signal given as argv[1] (default SIGTERM).
"""

import signal
import sys

last = int(sys.argv[1]) if len(sys.argv) > 1 else signal.SIGTERM
waited = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
signal.pthread_sigmask(signal.SIG_BLOCK, waited)
print("ready", flush=True)
while True:
    sig = signal.sigwaitinfo(waited).si_signo
    print(sig, flush=True)
    if sig == last:
        break
