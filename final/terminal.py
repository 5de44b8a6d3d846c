# chapter: final
"""`run -t`: a pseudo-terminal for the container, as `docker run -t` gives it.

A program that finds a terminal on its stdin edits lines, shows prompts and
colours, and gets Ctrl-C as a signal. A pty is a pair: the process gets the
slave end as its controlling terminal (stdin, stdout and stderr), and the
engine relays bytes between its own terminal, put in raw mode so every key
goes through, and the master end.

    your terminal ⇄ engine (raw mode) ⇄ pty master ⇄ pty slave = container's stdio

The pair must come from the container's own devpts instance (mounted with
`newinstance` on its /dev/pts), not the host's: only then does `tty` inside
print /dev/pts/0 rather than a path that exists only on the host. So the
process opens /dev/ptmx itself, once it is inside the container, and hands
the master back to the engine over a unix socket: a file descriptor sent with
SCM_RIGHTS arrives as a new descriptor for the same open file.
"""

import fcntl
import os
import signal
import socket
import sys
import termios
import tty
from typing import Callable

from . import process

TIOCSPTLCK = 0x40045431   # unlock the slave of a new master (what unlockpt(3) does)
TIOCGPTPEER = 0x5441      # open the slave through the master: no path to look up


class Terminal:
    """How a pty made inside the container reaches the engine: a socketpair, and the window size."""

    def __init__(self) -> None:
        self.engine_end, self.container_end = socket.socketpair()  # both close-on-exec
        self.size = window_size(sys.stdin.fileno())


def window_size(fd: int) -> bytes | None:
    """The rows and columns of the terminal `fd`, if it is one."""
    try:
        return fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None  # the engine itself has no terminal: keep the kernel's default


def copy_window_size(source: int, target: int) -> None:
    """Give `target` the rows and columns of the terminal `source`, if it is one."""
    size = window_size(source)
    if size:
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)


# --8<-- [start:attach]
def attach(terminal: Terminal) -> None:
    """Open a pty in the container's devpts, send its master out, make the slave our stdio. Call inside."""
    terminal.engine_end.close()
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)  # -> pts/ptmx, this /dev's instance
    fcntl.ioctl(master, TIOCSPTLCK, b"\0\0\0\0")
    slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    if terminal.size:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, terminal.size)  # before the command can ask
    socket.send_fds(terminal.container_end, [b"pty"], [master])
    os.close(master)
    terminal.container_end.close()
    os.setsid()  # a new session, so the pty can become its controlling terminal
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)
# --8<-- [end:attach]


def receive_master(terminal: Terminal) -> int | None:
    """The pty master that the container's process sends; None if it failed first. Call in the engine."""
    terminal.container_end.close()  # else a child that dies before sending would leave us waiting
    try:
        _, fds, _, _ = socket.recv_fds(terminal.engine_end, 16, 1)
    finally:
        terminal.engine_end.close()
    return fds[0] if fds else None


def relay(terminal: Terminal, take: Callable[[int], None] | None = None) -> None:
    """Copy keys in and output out until the container closes its terminal (or hand the master to `take`)."""
    master = receive_master(terminal)
    if master is not None:
        (take or relay_master)(master)  # a monitor takes it: it serves the pty to attach's clients


def relay_master(master: int, record: Callable[[bytes], None] | None = None) -> None:
    """Relay between our stdin/stdout and the pty `master` (its output to `record` too), then close it."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    if saved:
        tty.setraw(stdin)
        signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin, master))
    sources = [master, stdin]
    try:
        while True:
            ready = process.wait_readable(sources)  # a signal to forward wakes it too
            if master in ready and not copy(master, stdout, record):
                return  # EIO: every process of the container has closed the slave
            if stdin in ready and not copy(stdin, master):
                sources.remove(stdin)  # our stdin ended; the container's output still flows
    finally:
        if saved:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(master)


def copy(source: int, target: int, record: Callable[[bytes], None] | None = None) -> bool:
    """Move one chunk from `source` to `target` (and to `record`); False at the end of `source`."""
    try:
        data = os.read(source, 65536)
    except OSError:
        return False  # EIO: a master whose slave every process has closed
    if not data:
        return False
    if record:
        record(data)
    while data:
        data = data[os.write(target, data):]
    return True
