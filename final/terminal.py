# chapter: final
"""`run -t`: a pseudo-terminal for the container, as `docker run -t` gives it.

A program that finds a terminal on its stdin edits lines, shows prompts and
colours, and gets Ctrl-C as a signal. The engine opens a pty pair: the
container's process gets the slave end as its controlling terminal (stdin,
stdout and stderr), and the engine relays bytes between its own terminal,
put in raw mode so every key goes through, and the master end.

    your terminal ⇄ engine (raw mode) ⇄ pty master ⇄ pty slave = container's stdio
"""

import fcntl
import os
import select
import signal
import sys
import termios
import tty


class Terminal:
    """A pty pair: `slave` for the container, `master` for the engine to relay."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        copy_window_size(sys.stdin.fileno(), self.slave)


def copy_window_size(source: int, target: int) -> None:
    """Give `target` the rows and columns of the terminal `source`, if it is one."""
    try:
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)
    except OSError:
        pass  # the engine itself has no terminal: keep the kernel's default


def attach(terminal: Terminal) -> None:
    """Make the slave this process's controlling terminal and stdio. Call in the child."""
    os.close(terminal.master)
    os.setsid()  # a new session, so the pty can become its controlling terminal
    fcntl.ioctl(terminal.slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(terminal.slave, fd)
    os.close(terminal.slave)


def relay(terminal: Terminal) -> None:
    """Copy keys in and output out until the container closes its terminal. Call in the parent."""
    os.close(terminal.slave)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    if saved:
        tty.setraw(stdin)
        signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin, terminal.master))
    sources = [terminal.master, stdin]
    try:
        while True:
            ready, _, _ = select.select(sources, [], [])
            if terminal.master in ready and not copy(terminal.master, stdout):
                return  # EIO: every process of the container has closed the slave
            if stdin in ready and not copy(stdin, terminal.master):
                sources.remove(stdin)  # our stdin ended; the container's output still flows
    finally:
        if saved:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(terminal.master)


def copy(source: int, target: int) -> bool:
    """Move one chunk from `source` to `target`; False at the end of `source`."""
    try:
        data = os.read(source, 65536)
    except OSError:
        return False  # EIO: a master whose slave every process has closed
    if not data:
        return False
    while data:
        data = data[os.write(target, data):]
    return True
