"""Orphans N processes at once and reports the zombies its init leaves.

A child forks N grandchildren that exit at once, then exits itself, so the
init inherits N zombies together. Prints 'zombies K' once the init (our
parent) has none left, or when TIMEOUT seconds (argv[2]) have passed.
"""

import os
import sys
import time


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


n, timeout = int(sys.argv[1]), float(sys.argv[2])
init = os.getppid()


def zombies() -> int:
    count = 0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        count += state == "Z" and int(ppid) == init
    return count


generator = os.fork()
if generator == 0:
    for _ in range(n):
        if os.fork() == 0:
            os._exit(0)
    os._exit(0)
os.waitpid(generator, 0)
deadline = time.monotonic() + timeout
while (left := zombies()) and time.monotonic() < deadline:
    time.sleep(0.05)
say(f"zombies {left}")
