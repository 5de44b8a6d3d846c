# chapter: final
"""The frames that `attach` and a container's monitor exchange, and where they meet.

Both ways go frames with the 8-byte header of Docker's API for a container
without a tty ("stdcopy"), and three streams of our own for the rest:

    [stream: 1 byte][0 0 0][length of the payload: 4 bytes, big-endian][payload]
    0 stdin       client -> monitor: keys for PID 1 (empty: the client's input has ended)
    1 stdout      monitor -> client      2 stderr   monitor -> client (kept apart, as they were)
    3 exit        monitor -> client: PID 1's exit status, as text, the last frame
    4 resize      client -> monitor: a struct winsize for the pty (-t)

With -t the pty has one output stream, and it comes as stdout.

They meet at attach.sock in the container's run dir. A unix socket's path
holds at most 107 bytes, and a run dir's is longer (its hash and the 64-digit
id): both sides reach it through a short alias, /proc/self/fd/N/attach.sock,
where N is the run dir opened with O_PATH.
"""

import contextlib
import os
import struct
from typing import Iterator

STDIN, STDOUT, STDERR, EXIT, RESIZE = range(5)
HEADER = struct.Struct(">B3xI")
MAX_FRAME = 1 << 20              # a longer frame is a broken (or hostile) peer


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


class Frames:
    """Cuts a byte stream into (stream, payload) frames, keeping a partial one for later."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames that `data` completes; ValueError for a frame no peer of ours would send."""
        self.buffer += data
        found = []
        while len(self.buffer) >= HEADER.size:
            stream, length = HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME:
                raise ValueError(f"a frame of {length} bytes")
            if len(self.buffer) < HEADER.size + length:
                break
            found.append((stream, self.buffer[HEADER.size:HEADER.size + length]))
            self.buffer = self.buffer[HEADER.size + length:]
        return found


def socket_path(c) -> str:
    """The attach socket of container `c`: in its run dir, beside its lock."""
    return os.path.join(os.path.dirname(c.lock.path), "attach.sock")


@contextlib.contextmanager
def short_path(path: str) -> Iterator[str]:
    """A path to `path` short enough for sun_path: through the directory's /proc/self/fd entry."""
    directory = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{directory}/{os.path.basename(path)}"
    finally:
        os.close(directory)
