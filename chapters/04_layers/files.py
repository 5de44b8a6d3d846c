"""Files that many processes share: replaced whole, and locked while in use.

Two engines may run at once, and either may be killed at any moment. Two
rules keep what they share readable:

    replace, never rewrite    write a temporary file beside the target, fsync it,
                              rename(2) it over the target: a reader, or the next
                              command after a crash, sees the old file or the new
                              one, never half of one
    lock, never trust a pid   flock(2) a file while you work; the kernel drops the
                              lock when its holder dies, however it died, while a
                              pid written in a file lies once the number is reused

The fsync is for a crash of the whole machine only: a killed process's
writes are already in the page cache, which every process reads. So a file
that means nothing after a reboot may skip it (durable=False), and the
wait for the disk with it: a --rm container's state, say (container.py).

Every record, index and store of the engine goes through these two helpers.
"""

import fcntl
import json
import os
from typing import Any


def write_atomic(path: str, data: bytes | str, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data`: a temporary file beside it, fsync'ed (if `durable`), renamed over it."""
    # A leading dot hides the temporary file from listings of names, tags and containers.
    temp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp-{os.urandom(6).hex()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with open(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.rename(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise


def write_json(path: str, data: Any, durable: bool = True) -> None:
    write_atomic(path, json.dumps(data, indent=2), durable=durable)


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


class Lock:
    """An flock(2) on `path`, held from take() until release() or the holder's death."""

    def __init__(self, path: str, shared: bool = False) -> None:
        self.path, self.shared, self.fd = path, shared, -1

    def take(self, wait: bool = True) -> bool:
        """Take the lock (waiting for it, or not); False if someone else holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        """Drop the lock (closing the file drops it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Lock":
        self.take()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(path: str) -> bool:
    """Whether some process holds an flock on `path` now (a missing file: no one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
