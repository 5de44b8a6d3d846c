# chapter: 02
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
from . import faults  # ch final


def run_as_init(argv: list[str], env: dict[str, str], error_fd: int) -> NoReturn:
    """Fork the command, then reap and forward until it exits. Call as PID 1."""
    close_inherited(error_fd)  # ch final
    # >>> exercise 2.4: a tiny init: fork the command, forward signals, reap every child
    # hint: block config.FORWARDED_SIGNALS and SIGCHLD (signal.pthread_sigmask) before you fork. The child
    # hint: unblocks them and runs process.exec_command(argv, env), sending any error with
    # hint: process.report_to_parent(error_fd, err). The parent closes error_fd, then loops on
    # hint: signal.sigwait(): a forwarded signal goes on to the child (os.kill); SIGCHLD means reap every
    # hint: child that has exited (os.waitpid(-1, os.WNOHANG), orphans too) until the command itself
    # hint: has: os._exit with its exit code.
    # test: test_namespaces.py::test_init_reaps_a_zombie_that_the_command_leaves_behind
    # test: test_namespaces.py::test_init_passes_on_the_commands_exit_code
    # test: test_namespaces.py::test_init_forwards_sigterm_to_a_command_that_has_no_handler_for_it
    # test: test_rootless.py::test_rootless_with_init_reaps_and_exits_with_the_commands_code
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
    faults.init_late()  # a test's: the command is signalled before we go on (faults.py)  # ch final
    while True:
        signum = signal.sigwait(waited)
        if signum != signal.SIGCHLD:
            os.kill(child, signum)  # until we reap it, its pid stays its own
            continue
        while (reaped := os.waitpid(-1, os.WNOHANG))[0]:  # the command, and any orphan left to us
            if reaped[0] == child:
                os._exit(process.exit_code_of(reaped[1]))
    # <<< exercise 2.4


# >>> chapter final
def close_inherited(keep: int) -> None:
    """Close every fd but stdio and `keep`: this PID 1 never execs, so even close-on-exec ones stay open."""
    # A detached container's monitor has its lock and the pipe that `run -d` waits on open: kept
    # here, the lock would outlive the monitor and `run -d` would wait for the pipe's end forever.
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
# <<< chapter final
