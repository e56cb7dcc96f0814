"""An app on a terminal: prints 'ready', then reads a line and prints 'got LINE' and exits 0.

With --sleep it sleeps after 'ready' instead of reading.
"""

import os
import sys
import time


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


say("ready")
if sys.argv[1:] == ["--sleep"]:
    while True:
        time.sleep(1)
say(f"got {sys.stdin.readline().strip()}")
