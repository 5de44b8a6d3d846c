# chapter: final
"""A copy as a stream of tar members: how `cp` and `export` move files without trusting them.

Both directions of `cp`, and `export`, are the same pipeline: a source of
(member, opener) pairs, a few filters that decide owners and what is kept,
and a sink. A member is a tarformat.Member; its opener opens the regular
file's data when, and only if, the sink wants it. The sources:

- walk_inside: a container's tree, one directory fd at a time. Each entry is
  looked at through its parent's fd (`/proc/self/fd/N/NAME`: the kernel
  holds N's directory, so only NAME is looked up, never followed), and a
  directory is entered with O_NOFOLLOW: a directory that the container swaps
  for a symlink mid-walk makes the open fail (ELOOP), it never leads out.
- a tar read from stdin (tarformat.members), and the caller's own host files
  (tarwrite.walk).

The sinks: write_archive (tarwrite's LayerWriter, uncompressed) and unpack
(tar.py's Unpacker, which creates everything below one directory fd and
never follows a symlink there: the same code that unpacks hostile layers;
for a copy it may replace a file, but never a directory with a file or a
file with a directory, as in Docker).

New here:  a tar member stream as the one currency of cp and export
"""

import contextlib
import os
import secrets
import stat
from typing import BinaryIO, Callable, Iterator

from . import libc, tar, tarformat, tarwrite, vfs
from .errors import DockyardError
from .tarformat import Member

FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# The kernel's own filesystems in a running container (statfs(2)'s magic numbers): /proc, /sys, cgroups,
# /dev/pts, /dev/mqueue. A copy or an export leaves their content behind, as Docker's does: it is not the
# container's to copy, and reading it as the host's root could be endless (/proc/kcore) or do something.
KERNEL_FILESYSTEMS = {0x9FA0: "proc", 0x62656572: "sysfs", 0x27E0EB: "cgroup", 0x63677270: "cgroup2",
                      0x1CD1: "devpts", 0x19800202: "mqueue", 0x64626720: "debugfs", 0x74726163: "tracefs",
                      0x73636673: "securityfs", 0xCAFE4A11: "bpf"}
MAX_DEPTH = 512  # directories in a copy's path: the unpacker walks them with recursion
Opener = Callable[[], int]  # opens a regular file's data for reading
Stream = Iterator[tuple[Member, Opener | None]]


# --- a container's tree ----------------------------------------------------------------

def reopen(path_fd: int) -> int:
    """A readable fd of the file that the O_PATH fd `path_fd` holds (through its magic link: no lookup)."""
    return os.open(f"/proc/self/fd/{path_fd}", FILE_READ & ~os.O_NOFOLLOW)


# --8<-- [start:walk_inside]
def walk_inside(top_fd: int, prefix: str, seen: dict) -> Stream:
    """Members for everything below the open directory `top_fd`, each looked at from its parent's fd;
    depth first, with a stack of open directories rather than recursion: the container picks the depth."""
    levels = [(top_fd, prefix, names_in(top_fd))]
    try:
        while levels:
            dir_fd, prefix, names = levels[-1]
            name = next(names, None)
            if name is None:
                levels.pop()
                if dir_fd != top_fd:
                    os.close(dir_fd)
                continue
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            # /proc/self/fd/N is the directory we hold, whatever the container renames: only `name` is looked up.
            member = tarwrite.member_of(f"/proc/self/fd/{dir_fd}/{name}", prefix + name, st, None, seen)
            if member is None:
                continue
            yield member, lambda name=name, dir_fd=dir_fd: os.open(name, FILE_READ, dir_fd=dir_fd)
            if member.type == tarformat.DIRECTORY:
                fd = os.open(name, DIR_READ, dir_fd=dir_fd)  # swapped for a symlink meanwhile: ELOOP, never a door
                if kernel_filesystem(fd):
                    os.close(fd)
                else:
                    levels.append((fd, member.name, names_in(fd)))
    finally:
        for dir_fd, _, _ in levels:
            if dir_fd != top_fd:
                os.close(dir_fd)
# --8<-- [end:walk_inside]


def names_in(dir_fd: int) -> Iterator[str]:
    """The names in a directory, in bytewise order (the order commit's layers use)."""
    with os.scandir(dir_fd) as it:
        return iter(sorted((entry.name for entry in it), key=os.fsencode))


def kernel_filesystem(fd: int) -> str:
    """The name of the kernel filesystem (proc, sysfs ...) that `fd` is on; "" for any other."""
    return KERNEL_FILESYSTEMS.get(libc.filesystem_type(fd), "")


# --- owners and what a copy keeps --------------------------------------------------

def checked(stream: Stream) -> Stream:
    """Refuse `.wh.` names (image layers take them for deletions) and trees deeper than MAX_DEPTH."""
    for member, opener in stream:
        if member.name.rstrip("/").count("/") >= MAX_DEPTH:
            raise DockyardError(f"cannot copy {member.name[:60]!r}...: nested deeper than {MAX_DEPTH} directories",
                                hint="copy a part of it, or as a tar archive (-)")
        if os.path.basename(member.name.rstrip("/")).startswith(tar.WHITEOUT):
            raise DockyardError(f"cannot copy {member.name!r}: names starting with .wh. mean a deletion in "
                                "image layers", hint="rename it before you copy it")
        yield member, opener


def as_seen_inside(stream: Stream, shift: vfs.Shift) -> Stream:
    """Owners as the container sees them (its root is 0 even with --userns)."""
    for member, opener in stream:
        member.uid, member.gid = vfs.unshift_id(member.uid, shift), vfs.unshift_id(member.gid, shift)
        yield member, opener


def kept_by_archive(stream: Stream, shift: vfs.Shift) -> Stream:
    """-a out of the container: the owners it sees, and everything else, as they are."""
    return checked(as_seen_inside(stream, shift))


def for_the_caller(stream: Stream) -> Stream:
    """Out of the container without -a: the caller's files, and nothing a container may use to climb out."""
    uid, gid = os.geteuid(), os.getegid()
    for member, opener in checked(stream):
        if member.type in (tarformat.CHAR, tarformat.BLOCKDEV):
            continue
        member.uid, member.gid, member.mode = uid, gid, member.mode & ~0o6000
        member.xattrs = {k: v for k, v in member.xattrs.items() if k.startswith("user.")}
        yield member, opener


def owned_inside(stream: Stream, shift: vfs.Shift, archive: bool) -> Stream:
    """Into the container: its root's files (or, with -a, the source's owners), as ids on disk."""
    for member, opener in checked(stream):
        uid, gid = (member.uid, member.gid) if archive else (0, 0)
        member.uid, member.gid = vfs.shift_id(uid, shift), vfs.shift_id(gid, shift)
        yield member, opener


class Tally:
    """The bytes a tar of the members that pass takes: the size Docker's cp reports."""

    def __init__(self) -> None:
        self.size = 2 * tarformat.BLOCK  # the archive's end

    def count(self, stream: Stream) -> Stream:
        for member, opener in stream:
            data = member.size + tarformat.padding(member.size) if member.type == tarformat.REGULAR else 0
            self.size += tarformat.BLOCK + data
            yield member, opener


# --- writing and creating members ------------------------------------------------

class Feed:
    """A member's bytes, read from an open file: exactly `n`, or an error if it shrank meanwhile."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name

    def chunks(self, n: int) -> Iterator[bytes]:
        if n and not stat.S_ISREG(os.fstat(self.fd).st_mode):
            raise DockyardError(f"{self.name} changed while it was copied", hint="copy it again")
        while n > 0:
            chunk = os.read(self.fd, min(n, tarformat.CHUNK))
            if not chunk:
                raise DockyardError(f"{self.name} shrank while it was copied", hint="copy it again")
            n -= len(chunk)
            yield chunk

    def copy(self, n: int, out_fd: int) -> None:
        """What the Unpacker calls for a file's data."""
        for chunk in self.chunks(n):
            view = memoryview(chunk)
            while view:
                view = view[os.write(out_fd, view):]


@contextlib.contextmanager
def feed_of(member: Member, opener: Opener | None) -> Iterator[Feed]:
    """The member's data: opened only for a regular file that has some."""
    if member.type != tarformat.REGULAR or not member.size or opener is None:
        yield Feed(-1, member.name)
        return
    fd = opener()
    try:
        yield Feed(fd, member.name)
    finally:
        os.close(fd)


def write_archive(stream: Stream, out: BinaryIO) -> None:
    """The members as an uncompressed tar archive on `out`."""
    writer = tarwrite.LayerWriter(out, gzip=False)
    for member, opener in stream:
        writer.write(tarformat.header(member))
        with feed_of(member, opener) as feed:
            for chunk in feed.chunks(member.size if member.type == tarformat.REGULAR else 0):
                writer.write(chunk)
        if member.type == tarformat.REGULAR:
            writer.write(bytes(tarformat.padding(member.size)))
    writer.close()
    out.flush()


def unpack(stream: Stream, target: int | str, archive: "tarformat.TarStream | None" = None,
           staged: str = "") -> None:
    """Create the members below the directory `target` (an fd or a host path), following no symlink there;
    their data comes from each member's opener, or from the tar `archive` they were read from. `staged`:
    the one new name the stream makes there, made whole in a temp dir first (unless it merges into a
    directory), so that a copy that fails half-way leaves nothing, and an old file stays as it was."""
    fd = os.open(target, DIR_READ & ~os.O_NOFOLLOW) if isinstance(target, str) else target
    try:
        if staged and not is_directory(fd, staged):
            unpack_staged(stream, fd, archive, staged)
        else:
            unpack_into(stream, fd, archive)
    except tar.UnsafeLayer as err:
        raise DockyardError(err.problem.replace("layer", "copy"),
                            hint="a symlink in the destination stands where the copy goes: remove it") from err
    finally:
        if isinstance(target, str):
            os.close(fd)


def unpack_into(stream: Stream, fd: int, archive: "tarformat.TarStream | None") -> None:
    with working_directory(fd), NoClobber(".", whiteouts="oci") as unpacker:
        for member, opener in stream:
            if archive is not None:
                unpacker.add(member, archive)
                continue
            with feed_of(member, opener) as feed:
                unpacker.add(member, feed)


def unpack_staged(stream: Stream, fd: int, archive: "tarformat.TarStream | None", name: str) -> None:
    """Unpack into a new temp dir beside `name`, then rename the copy into place (one atomic step)."""
    temp = f".dockyard-cp-{secrets.token_hex(6)}"
    os.mkdir(temp, 0o700, dir_fd=fd)
    try:
        temp_fd = os.open(temp, DIR_READ, dir_fd=fd)
        try:
            unpack_into(stream, temp_fd, archive)
            os.rename(name, name, src_dir_fd=temp_fd, dst_dir_fd=fd)  # names in two held dirs: no lookup
        finally:
            os.close(temp_fd)
    finally:
        tar.remove_tree(fd, temp)


def is_directory(fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


class NoClobber(tar.Unpacker):
    """The layer unpacker, but a copy replaces files only: a directory never gives way to a file, nor a
    file (or symlink) to a directory, as in Docker (a layer may do both; a copy onto a tree must not)."""

    def make_room(self, parent: int, parts: list[str], keep_dir: bool = False) -> bool:
        try:
            is_dir = stat.S_ISDIR(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False
        if is_dir != keep_dir:
            there, coming = ("directory", "non-directory") if is_dir else ("non-directory", "directory")
            raise DockyardError(f"cannot overwrite {there} {'/'.join(parts)!r} with a {coming}",
                                hint="remove or rename it at the destination first")
        return super().make_room(parent, parts, keep_dir)


@contextlib.contextmanager
def working_directory(fd: int) -> Iterator[None]:
    """Make the directory `fd` the cwd for a while: the Unpacker then opens "." (no lookup at all)."""
    back = os.open(".", libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    os.fchdir(fd)
    try:
        yield
    finally:
        os.fchdir(back)
        os.close(back)
