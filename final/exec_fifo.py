# chapter: final
"""create and start: PID 1 is made, set up, and then waits at a fifo.

A foreground `run` sets a container up and execs its command in one go. An
OCI runtime's `create` must stop just short of the exec, and return, so that
its caller (containerd's shim, or Dockyard's own monitor) can do more before
anything of the user's runs; `start`, a separate command, then lets it go.
runc does this with a fifo, and so do we:

    create                                   PID 1
    ──────                                   ─────
    mkfifo exec.fifo (0622)
    clone, set up, "go" ───────────────────▶ open exec.fifo O_PATH (the host's path is still visible)
                                             mounts, pivot_root, user, capabilities, seccomp
                                             look the command up (a missing one fails create)
    EOF on the error pipe ◀───────────────── close the error pipe: "ready"
    exit                                     open /proc/self/fd/N for writing: blocks ...
    start
    ─────
    open exec.fifo for reading ────────────▶ ... until a reader comes; write one byte
    read the byte, unlink exec.fifo          exec the command

The fifo's existence is also the container's "created" status: `start`
removes it. Under the OCI CLI, PID 1 outlives `create`, so it does not ask
to die with its parent (PR_SET_PDEATHSIG): the process that reaps it is a
subreaper above. Under the engine's monitor, which stays PID 1's parent
from create to exit, it keeps dying with it.
"""

import os
import select
import time
from typing import Callable

from . import libc, process
from .errors import DockyardError

NAME = "exec.fifo"
POLL_MS = 100


def make(directory: str) -> str:
    """Create the fifo in `directory`; any user may write it (PID 1 may be no longer root then)."""
    path = os.path.join(directory, NAME)
    os.mkfifo(path, 0o622)
    os.chmod(path, 0o622)  # mkfifo's mode passes through the umask
    return path


def open_gate(path: str, orphan: bool) -> int | None:
    """Keep a handle on the fifo before pivot_root hides it; `orphan`: our parent leaves. Call in PID 1."""
    if not path:
        return None
    if orphan:
        libc.prctl(libc.PR_SET_PDEATHSIG, 0)  # we outlive `create`: our reaper is a subreaper above it
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def wait_for_start(gate: int | None, argv: list[str], env: dict[str, str], error_fd: int) -> None:
    """Tell `create` we are ready, then block until `start`. Call in PID 1 just before exec."""
    if gate is None:
        return
    process.find_executable(argv[0], env.get("PATH", ""))  # a missing command fails create, as in runc
    # Closing the error pipe's only writer is the "ready" that create waits for;
    # stderr takes its number, so a later failure is still reported somewhere.
    os.dup2(2, error_fd, inheritable=False)
    close_exec_fds(gate, error_fd)
    fifo = os.open(f"/proc/self/fd/{gate}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fifo, b"0")
    os.close(fifo)
    os.close(gate)


def close_exec_fds(*keep: int) -> None:
    """Close now what exec would close: its creator's locks, pipes and sockets must not wait with us."""
    # PID 1 may wait at the fifo for days. A monitor's lock held by it would outlive the monitor, and
    # a pipe its creator reads to the end (run -d's report) would never end. Inheritable fds stay:
    # they are meant for the command (the OCI CLI's --preserve-fds).
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # as another user now, our /proc/self/fd may be closed to us: try every number
        fds = list(range(3, os.sysconf("SC_OPEN_MAX")))
    for fd in fds:
        try:
            if fd > 2 and fd not in keep and not os.get_inheritable(fd):
                os.close(fd)
        except OSError:
            continue  # not open (listdir's own fd, closed by now)


def release(path: str, alive: Callable[[], bool]) -> None:
    """Let the process waiting at `path` exec its command. Call from `start`."""
    fifo = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        while True:
            if poll_readable(fifo) and os.read(fifo, 1):
                break
            if not alive():
                raise DockyardError("the container's process exited before it could start",
                                    hint="see the container's output, or create it again")
    finally:
        os.close(fifo)
    os.unlink(path)


def poll_readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    events = poller.poll(POLL_MS)
    if not events:
        return False
    if events[0][1] & select.POLLIN:
        return True
    time.sleep(POLL_MS / 1000)  # POLLHUP alone: no writer at the moment
    return False
