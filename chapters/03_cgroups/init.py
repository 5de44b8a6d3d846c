"""A tiny init for `run --init`: PID 1 that forwards signals and reaps zombies.

PID 1 is special. The kernel delivers it only the signals it has a handler
for (so a shell as PID 1 ignores a plain `kill`), and every orphan in the
namespace is re-parented to it, to be reaped (waited for) or left a zombie.
Most programs are not written for that job. With --init the container's
first process stays ours: it forks the command, passes signals on to it, and
reaps whatever dies, until the command itself exits.
"""

import os
import signal
from typing import NoReturn

from . import config, process


def run_as_init(argv: list[str], env: dict[str, str], error_fd: int) -> NoReturn:
    """Fork the command, then reap and forward until it exits. Call as PID 1."""
    # PID 1 gets no signal it neither handles nor blocks, and a Python handler runs only between two
    # bytecodes, perhaps after os.wait() has put us to sleep. So we handle none: blocked from before
    # the fork, each signal waits for sigwait() below, and SIGCHLD says when a child has died.
    waited = {*(getattr(signal, name) for name in config.FORWARDED_SIGNALS), signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    child = os.fork()
    if child == 0:
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)
            process.exec_command(argv, env)
        except BaseException as err:
            process.report_to_parent(error_fd, err)
    os.close(error_fd)  # the engine waits for every copy of this pipe to close
    while True:
        signum = signal.sigwait(waited)
        if signum != signal.SIGCHLD:
            os.kill(child, signum)  # until we reap it, its pid stays its own
            continue
        while (reaped := os.waitpid(-1, os.WNOHANG))[0]:  # the command, and any orphan left to us
            if reaped[0] == child:
                os._exit(process.exit_code_of(reaped[1]))
