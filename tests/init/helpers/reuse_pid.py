"""Main child that leaves an orphan behind, which takes its pid once it is free, then exits 3.

Run as the child of a PID 1 in a new PID namespace, as root (it writes the namespace's
ns_last_pid). The orphan ignores SIGTERM, waits until the main child has been reaped, forks
a process that gets the main child's pid and exits 7, prints 'reused PID' (or why not)
and exits, so that process is reparented to the init.
"""

import os
import signal
import sys
import time


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


main = os.getpid()
ready_r, ready_w = os.pipe()
if os.fork() == 0:
    os.close(ready_r)
    os.setpgid(0, 0)  # the main child's pid stays taken while it names our group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.close(ready_w)
    while os.path.exists(f"/proc/{main}"):
        time.sleep(0.01)
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(main - 1))
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    say(f"reused {pid}" if pid == main else f"not reused: got {pid}, not {main}")
    os._exit(0)
os.close(ready_w)
os.read(ready_r, 1)  # EOF once the orphan ignores SIGTERM
sys.exit(3)
