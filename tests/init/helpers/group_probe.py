"""A main process and a grandchild in one process group, each printing the
signals it gets ('main N', 'grandchild N').

On SIGUSR1 the main process sends SIGUSR2 to the grandchild and both exit. A
SIGUSR1 sent to the whole group is pending at the grandchild before that
SIGUSR2, and the lower number is taken first, so the grandchild's lines tell
whether the group got the signal.
"""

import os
import signal


def say(line: object) -> None:
    """One write per line, so lines of several processes never mix."""
    os.write(1, f"{line}\n".encode())


waited = {signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, waited)
grandchild = os.fork()
if grandchild == 0:
    while True:
        sig = signal.sigwaitinfo(waited).si_signo
        say(f"grandchild {sig}")
        if sig == signal.SIGUSR2:
            os._exit(0)
say("ready")
while True:
    sig = signal.sigwaitinfo(waited).si_signo
    say(f"main {sig}")
    if sig == signal.SIGUSR1:
        os.kill(grandchild, signal.SIGUSR2)
        os.waitpid(grandchild, 0)
        break
