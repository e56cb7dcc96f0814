"""Main child for the drain tests: leaves an orphan behind, then exits 3.

The orphan lives in its own session, so only the drain can signal it. It prints
'orphan ready PID', and then by MODE:
  handler  on SIGTERM prints 'orphan got TERM', lingers LINGER s, prints
           'orphan finished' and exits
  ignore   ignores SIGTERM and lives on
With --wait the main child prints 'main waiting' once the orphan is ready, and
waits for SIGTERM before it exits.
"""

import argparse
import os
import signal
import sys
import time


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["handler", "ignore"])
parser.add_argument("--linger", type=float, default=0.0)
parser.add_argument("--wait", action="store_true")
args = parser.parse_args()


def on_term(signum: int, frame: object) -> None:
    say("orphan got TERM")
    time.sleep(args.linger)
    say("orphan finished")
    os._exit(0)


if args.wait:  # from the start, so no SIGTERM comes too early for sigwait
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
ready_r, ready_w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(ready_r)
        action = on_term if args.mode == "handler" else signal.SIG_IGN
        signal.signal(signal.SIGTERM, action)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        say(f"orphan ready {os.getpid()}")
        os.close(ready_w)
        while True:
            time.sleep(1)
    os._exit(0)
os.close(ready_w)
os.wait()
os.read(ready_r, 1)  # EOF once the orphan has its handler
if args.wait:
    say("main waiting")
    signal.sigwait({signal.SIGTERM})
sys.exit(3)
