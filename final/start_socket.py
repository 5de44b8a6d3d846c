# chapter: final
"""The start socket: how `start` asks a created container's monitor to let PID 1 go.

`create` leaves PID 1 waiting at its exec fifo (exec_fifo.py), under its
monitor. Opening the fifo would let it go, but the monitor, the holder of
the container's lock, is the one who writes "running" into its record; so
`start` asks the monitor, as `docker start` asks containerd's shim, which
then runs `runc start`:

    start                          monitor                              PID 1
    ─────                          ───────                              ─────
                                   listens on start.sock                waits at exec.fifo
    connect ─────────────────────▶ accept (or sees PID 1 die: rm)
                                   read the fifo's byte ──────────────▶ exec the command
                                   record "running"
    "running", or the error ◀───── answer, close

The answer is the monitor's word as `create` and `run -d` get it too, over a
pipe (monitor.spawn): "created", "running", or the error as JSON, which
check_report raises again in the CLI (start itself imports no monitor).

The socket lives in the container's run dir, beside its lock (0700: only its
owner may start it). A sun_path holds 108 bytes, fewer than the run dir's
path, so both sides name the socket through /proc/self/fd/N of the directory
(attach_protocol.short_path, as for the attach socket beside it).
"""

import contextlib
import json
import os
import select
import socket

from . import libc
from .attach_protocol import short_path  # sun_path is too short for the run dir: through /proc/self/fd
from .errors import DockyardError

NAME = "start.sock"


def listen(directory: str) -> socket.socket:
    """Listen for `start` in `directory` (the container's run dir)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with short_path(os.path.join(directory, NAME)) as path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a monitor killed before left it
        server.bind(path)
    server.listen(8)
    return server


def wait_for_start(server: socket.socket, pid: int) -> socket.socket | None:
    """Block until `start` connects (its connection), or until process `pid` dies (None)."""
    pidfd = libc.pidfd_open(pid)  # readable once the process has exited
    try:
        poller = select.poll()
        poller.register(server.fileno(), select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            ready = dict(poller.poll())
            if pidfd in ready:
                return None
            if server.fileno() in ready:
                return server.accept()[0]
    finally:
        os.close(pidfd)


def close(server: socket.socket, directory: str) -> None:
    """Stop listening: once started, or given up, the container takes no more starts."""
    with short_path(os.path.join(directory, NAME)) as path, contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server.close()


def request(directory: str) -> bytes:
    """Ask the monitor listening in `directory` to start PID 1; return its answer (empty if it died)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with client:
        with short_path(os.path.join(directory, NAME)) as path:
            client.connect(path)  # FileNotFoundError, ConnectionRefusedError: no monitor listens
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        return answer


def check_report(report: bytes, expected: bytes) -> None:
    """Raise the error a monitor reported, or say that it died without a word."""
    if report == expected:
        return
    if report:
        from .process import _ERRORS
        message = json.loads(report)
        raise _ERRORS.get(message["kind"], DockyardError)(message["problem"], message["hint"])
    raise DockyardError("the container's monitor died before the container ran",
                        hint="run it in the foreground (without -d) to see why, or with --debug")
