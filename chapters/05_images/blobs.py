"""Chapter 5: blobs, files named by the sha256 of their content.

A blob is written to tmp/, hashed on the way, fsync'd, and renamed to its
digest only if that is the digest expected: a file under blobs/ is either
complete and right or absent, whatever moment the engine is killed at.
Reading hashes again, so a blob damaged on disk is caught and named rather
than run. The same temp-fsync-rename recipe replaces any small file
atomically (index.json, container state).
"""

import atexit
import hashlib
import os
from typing import BinaryIO, Callable

from . import files, imagespec, reference
from .files import Lock
from .errors import DockyardError

CHUNK = 1 << 20


class CorruptBlob(DockyardError):
    """A blob's bytes do not match its digest."""

    def __init__(self, digest: str, path: str, actual: str) -> None:
        super().__init__(f"blob {digest} is corrupted: its content hashes to {actual} ({path})",
                         hint="remove the image (rmi -f) and pull or load it again")


class HashingReader:
    """A file object that hashes what is read and checks the digest at the end."""

    def __init__(self, file: BinaryIO, digest: str, path: str) -> None:
        self.file, self.digest, self.path = file, digest, path
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(n)
        self.hash.update(data)
        if not data or n < 0:
            self.check()
        return data

    def check(self) -> None:
        actual = "sha256:" + self.hash.hexdigest()
        if actual != self.digest:
            raise CorruptBlob(self.digest, self.path, actual)

    def __enter__(self) -> "HashingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


class BlobStore:
    """The blobs and temp files under one --root."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.layout = os.path.join(root, "images")
        self.blobs = os.path.join(self.layout, "blobs", "sha256")
        self.tmp = os.path.join(root, "tmp")
        self.writer: Lock | None = None

    def ensure(self) -> None:
        """Create the directories on first use."""
        for path in (self.blobs, self.tmp):
            os.makedirs(path, exist_ok=True)

    # --- atomic files -------------------------------------------------------------

    def temp_path(self) -> str:
        """A fresh name in tmp/, marked as this process's: prune leaves it while we live (see owner)."""
        return os.path.join(self.tmp, f"{owner(self.tmp)}-{os.urandom(8).hex()}")

    def write_file(self, path: str, data: bytes) -> None:
        """Replace `path` with `data` atomically: temp file, fsync, rename."""
        temp = self.temp_path()
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, path)
        fsync_dir(os.path.dirname(path))

    def locked(self) -> "Lock":
        return Lock(os.path.join(self.root, "images.lock"))

    # A pull, build, load or commit stores its blobs first and names them last (the manifest, in
    # index.json): in between, nothing reaches them, and `image prune` would take them for garbage.
    # So a writer holds writers.lock shared from its first blob until it exits, and prune holds it
    # exclusively: it waits for the writers, and new writers wait for it.
    def join_writers(self) -> None:
        """Count this process among the store's writers until it exits."""
        if self.writer is None:
            self.writer = Lock(os.path.join(self.root, "writers.lock"), shared=True)
            self.writer.take()

    def leave_writers(self) -> None:
        """Stop counting as a writer (before this process goes on to other work, such as running a container)."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    def exclude_writers(self, waiting: Callable[[], None]) -> Lock:
        """Wait until no writer is left (calling `waiting` first if one is); return the lock to release."""
        os.makedirs(self.root, exist_ok=True)
        lock = Lock(os.path.join(self.root, "writers.lock"))
        if not lock.take(wait=False):
            waiting()
            lock.take()
        return lock

    # --- blobs ---------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        if not reference.is_digest(digest):
            raise DockyardError(f"invalid digest {digest!r}", hint="a digest is sha256: and 64 hex digits")
        return os.path.join(self.blobs, digest.split(":", 1)[1])

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def put_blob(self, stream: BinaryIO, digest: str | None = None, size: int | None = None) -> str:
        """Copy `stream` into a blob, checking its digest (and size); return the digest."""
        return self.put_blob_with(lambda out: copy_stream(stream, out), digest, size)

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store a small blob (a config, a manifest); one that is already here is not written again."""
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest in (None, actual):
            self.ensure()
            self.join_writers()  # from here on, prune cannot take the blob we are about to name
            if self.has_blob(actual):  # content-addressed: the same bytes (a read checks them anyway)
                return actual
        return self.put_blob_with(lambda out: out.write(data), digest)

    def put_blob_with(self, write: Callable[[BinaryIO], object], digest: str | None = None,
                      size: int | None = None) -> str:
        """Let `write(file)` produce a blob; keep it under its digest if that is the expected one."""
        self.ensure()
        self.join_writers()
        temp = self.temp_path()
        try:
            with open(temp, "wb") as f:
                out = HashingWriter(f)
                write(out)
                f.flush()
                os.fsync(f.fileno())
            actual = "sha256:" + out.hash.hexdigest()
            if digest is not None and actual != digest:
                raise DockyardError(f"blob {digest} arrived with the wrong content (it hashes to {actual})",
                                    hint="the download or archive is damaged; try again")
            if size is not None and out.size != size:
                raise DockyardError(f"blob {actual} has {out.size} bytes, not the {size} expected",
                                    hint="the download or archive is damaged; try again")
            os.rename(temp, self.blob_path(actual))
            fsync_dir(self.blobs)
            return actual
        finally:
            if os.path.exists(temp):
                os.unlink(temp)

    def open_blob(self, digest: str) -> HashingReader:
        """Open a blob for reading; reading it to the end checks its digest."""
        path = self.blob_path(digest)
        try:
            return HashingReader(open(path, "rb"), digest, path)
        except FileNotFoundError:
            raise DockyardError(f"blob {digest} is missing from the store ({path})",
                                hint="remove the image (rmi -f) and pull or load it again") from None

    def read_blob(self, digest: str, limit: int = imagespec.MAX_JSON) -> bytes:
        """A small blob's bytes, checked against its digest."""
        with self.open_blob(digest) as f:
            data = f.file.read(limit + 1)
            if len(data) > limit:
                raise DockyardError(f"blob {digest} is too large to be a manifest or config",
                                    hint="the image is damaged or hostile")
            f.hash.update(data)
            f.check()
        return data

class HashingWriter:
    """A file wrapper that hashes and counts what is written."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.hash, self.size = file, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.file.write(data)


# Which temporary files belong to a live writer: not a pid in their name (pids are reused),
# but a lock. A process takes `<token>.lock` in tmp-owners/ on its first temporary file and
# holds it until it exits; its files in tmp/ are named `<token>-...`. At a normal exit it
# removes its lock file; prune removes the temporary files whose owner's lock nobody holds,
# and the lock files of owners that died.
_owners: dict[str, tuple[str, Lock]] = {}


def owner(tmp: str) -> str:
    """This process's token in `tmp`, its lock taken on first use."""
    if tmp not in _owners:
        os.makedirs(tmp, exist_ok=True)
        os.makedirs(f"{tmp}-owners", exist_ok=True)
        token = os.urandom(6).hex()
        # Locked under a hidden name, then renamed: prune never sees our lock file unlocked.
        lock = Lock(os.path.join(f"{tmp}-owners", f".{token}.new"))
        lock.take()
        os.rename(lock.path, os.path.join(f"{tmp}-owners", f"{token}.lock"))
        lock.path = os.path.join(f"{tmp}-owners", f"{token}.lock")
        if not _owners:
            atexit.register(drop_owners, os.getpid())
        _owners[tmp] = (token, lock)
    return _owners[tmp][0]


def drop_owners(pid: int) -> None:
    """At a normal exit, remove our lock files: our temporary files are gone by now."""
    if os.getpid() != pid:
        return  # a forked child exiting: the lock files are its parent's
    for _, lock in _owners.values():
        try:
            os.unlink(lock.path)
        except FileNotFoundError:
            pass
        lock.release()


def is_live_temp(tmp: str, name: str) -> bool:
    """Whether the temporary file `name` in `tmp` belongs to a writer still alive."""
    return files.is_locked(os.path.join(f"{tmp}-owners", name.split("-", 1)[0] + ".lock"))


def sweep_owners(tmp: str) -> None:
    """Remove the lock files of owners that are gone (after their temporary files)."""
    for name in os.listdir(f"{tmp}-owners") if os.path.isdir(f"{tmp}-owners") else []:
        if not name.startswith(".") and not files.is_locked(os.path.join(f"{tmp}-owners", name)):
            os.unlink(os.path.join(f"{tmp}-owners", name))


def copy_stream(source: BinaryIO, out: HashingWriter) -> None:
    while chunk := source.read(CHUNK):
        out.write(chunk)


def fsync_dir(path: str) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
