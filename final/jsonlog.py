# chapter: final
"""The json-file log, and how a foreground run writes it too.

A container's output is kept as Docker keeps it with its default driver,
one JSON object a line, for `logs` to read back:

    {"log":"hello\\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}

rotated at --log-opt max-size into at most --log-opt max-file files;
--log-driver none keeps nothing. A detached container's monitor writes it
(monitor.py, attach_server.py). A foreground `run` writes it itself, through
a tee: without -t, PID 1's stdout and stderr are pipes (as under Docker),
whose every byte the engine copies, unchanged, to its own stdout or stderr
and into the log; with -t, what the pty shows goes to the terminal and into
the log. So `docker run --name x alpine echo hi; docker logs x` prints hi here too.
"""

import json
import os
import time

from .errors import UsageError

LOG_DRIVERS = ("json-file", "none")


def parse_log_options(driver: str, options: list[str]) -> dict[str, str]:
    """Check --log-driver and --log-opt max-size=10m / max-file=3."""
    from .limits import parse_size
    if driver not in LOG_DRIVERS:
        raise UsageError(f"unknown log driver {driver!r}", hint=f"use one of: {', '.join(LOG_DRIVERS)}")
    parsed = {"driver": driver}
    for option in options:
        key, sep, value = option.partition("=")
        if key == "max-size" and sep:
            parsed[key] = str(parse_size(value, "--log-opt max-size"))
        elif key == "max-file" and value.isdigit() and int(value) >= 1:
            parsed[key] = value
        else:
            raise UsageError(f"invalid --log-opt {option!r}", hint="json-file takes max-size=10m and max-file=3")
    return parsed


# --- the json-file log ---------------------------------------------------------------

def log_path(c: "container.Container") -> str:
    return c.path(f"{c.id}-json.log")


def open_log(c: "container.Container", options: dict[str, str]) -> "JsonLog | None":
    """The container's log, as its --log-driver asks: None for none."""
    return JsonLog(log_path(c), options) if options.get("driver", "json-file") != "none" else None


def timestamp() -> str:
    """Docker's log time: RFC 3339 with nanoseconds, UTC."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


class JsonLog:
    """The container's output as json-file lines, rotated by size: a record a line, each stream cut apart."""

    def __init__(self, path: str, options: dict[str, str]) -> None:
        self.path = path
        self.max_size = int(options.get("max-size", 0))
        self.max_file = int(options.get("max-file", 1))
        self.pending: dict[str, bytes] = {}  # per stream: a line begun, not yet ended
        self.file = open(path, "ab")

    def write(self, data: bytes, stream: str) -> None:
        """Log a chunk of `stream`'s output: each complete line becomes a record."""
        *lines, self.pending[stream] = (self.pending.get(stream, b"") + data).split(b"\n")
        for line in lines:
            self.record(line + b"\n", stream)

    def end(self, stream: str) -> None:
        """`stream` has ended: a last line without its newline is kept, as Docker keeps it."""
        if self.pending.get(stream):
            self.record(self.pending.pop(stream), stream)

    def record(self, data: bytes, stream: str) -> None:
        record = (json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream, "time": timestamp()},
                             separators=(",", ":")) + "\n").encode()
        if self.max_size and self.file.tell() and self.file.tell() + len(record) > self.max_size:
            self.rotate()
        self.file.write(record)
        self.file.flush()

    def rotate(self) -> None:
        """log -> log.1 -> log.2 ...: keep max-file files in all, the oldest dropped."""
        self.file.close()
        for number in range(self.max_file - 1, 0, -1):
            older = f"{self.path}.{number - 1}" if number > 1 else self.path
            if os.path.exists(older):
                os.rename(older, f"{self.path}.{number}")
        self.file = open(self.path, "wb")  # with max-file 1, the one file starts again

    def close(self) -> None:
        self.file.close()


# --- a foreground run's output: the terminal and the log ------------------------------------

class Tee:
    """A foreground run's output: on to our stdout and stderr as it comes, byte for byte, and into the log."""

    def __init__(self, log: JsonLog | None, tty: bool, hooks) -> None:
        self.log = log
        self.pipes: dict[int, tuple[str, int]] = {}  # read end -> (stream, 1 or 2: where it goes on)
        self.saved: dict[int, int] = {}               # 1 or 2 -> a copy of what it was, until restored
        if log is None:
            return  # --log-driver none: PID 1 writes to our stdout and stderr, as before logs existed
        if tty:
            hooks.relay = lambda master: self.relay(master)
            return
        if not all(is_open(fd) for fd in (1, 2)):
            return  # run ... >&-: PID 1 gets what we have (nothing), as before
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            self.saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)  # inheritable: PID 1 is cloned with it as its own stdout or stderr
            os.close(write_end)
            self.pipes[read_end] = (stream, fd)
        self.hooks_started, self.hooks_running = hooks.started, hooks.running
        hooks.started, hooks.running = self.started, self.running

    def started(self, pid: int) -> None:
        """PID 1 has its pipes: ours are the terminal again (nothing else may inherit them)."""
        self.restore()
        self.hooks_started(pid)

    def running(self) -> None:
        """PID 1 has exec'd: copy its output until it (and all it started) closed it."""
        self.hooks_running()
        self.copy()

    def copy(self) -> None:
        from .process import wait_readable  # not a bare poll: a signal to forward must wake us (process.py)
        while self.pipes:
            for fd in wait_readable(list(self.pipes)):
                self.copy_chunk(fd)

    def copy_chunk(self, fd: int) -> None:
        """One chunk from a pipe to the terminal and the log; at its end, the pipe is closed."""
        stream, target = self.pipes[fd]
        data = os.read(fd, 65536)
        try:
            write_all(target, data)
        except BrokenPipeError:
            data = b""  # our reader left (run ... | head): close the pipe, so PID 1 learns it too (SIGPIPE)
        if data:
            self.log.write(data, stream)
            return
        self.log.end(stream)
        os.close(fd)
        del self.pipes[fd]

    def relay(self, master: int) -> None:
        """-t: the pty's output to the terminal and into the log."""
        from . import terminal
        terminal.relay_master(master, lambda data: self.log.write(data, "stdout"))
        self.log.end("stdout")

    def restore(self) -> None:
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self.saved = {}

    def close(self) -> None:
        """After the run: what is left in the pipes (PID 1 failed to exec, say), then the log."""
        self.restore()
        if self.pipes:
            self.copy()  # PID 1 is gone: every pipe ends
        if self.log:
            self.log.close()


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
