# chapter: final
"""cp's and export's rules: files between a container and the host, as Docker copies them.

    cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-      out of the container (`-`: a tar archive on stdout)
    cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH      into it (`-`: a tar archive from stdin)
    export [-o FILE] CONTAINER                       its whole filesystem as a tar (stdout by default)

Docker's rules for what lands where:

    SRC a file       DEST missing: the file is saved as DEST (DEST's parent must exist;
                     a DEST ending in / must be an existing directory)
                     DEST a file: overwritten;   DEST a directory: copied into it
    SRC a directory  DEST missing: made, with SRC's content;   DEST a file: an error
                     DEST a directory: SRC copied into it, or, with SRC ending in /.,
                     SRC's content
    SRC a symlink    copied as a symlink; -L copies what it points to

Owners: into a container, files belong to its root (uid 0, or the mapped root
with --userns); out of one, to the caller. -a keeps the source's uid and gid
instead. A copy out without -a is also a copy the host can trust: setuid and
setgid bits, device nodes and xattrs other than user.* stay behind (Docker
copies them; a container should not be able to plant a setuid-root file or a
raw-disk device in the caller's directory). `-` archives keep everything, with
owners as the container sees them.

`export` writes what the container has as its own files: its layers, read
through a read-only overlay of them, without its volumes and without /proc,
/sys or /dev (as Docker's); owners as the container sees them.

Where the files are and how they are reached safely is container_fs.py's
lesson; how they move (a stream of tar members, written as a tar or created
by the unpacker that refuses hostile layers) is copy_stream.py's. A name
starting with `.wh.` is refused either way: image layers read it as a
deletion (a `commit` would turn the file into one).
"""

import contextlib
import os
import stat
import sys
from typing import BinaryIO, Iterator, NamedTuple

from . import container_fs, libc, tarformat, tarwrite
from .copy_stream import (DIR_READ, FILE_READ, Stream, Tally, as_seen_inside, for_the_caller, kept_by_archive,
                          kernel_filesystem, owned_inside, reopen, unpack, walk_inside, write_archive)
from .errors import DockyardError, UsageError
from .vfs import Shift


# --- which way ------------------------------------------------------------------------

def split_argument(text: str) -> tuple[str | None, str]:
    """(container, path) of CONTAINER:PATH, or (None, path) of a local path, as Docker splits them."""
    if text == "-" or text.startswith(("/", ".")) or ":" not in text:
        return None, text  # an absolute or ./relative path is local even with a colon in it
    name, path = text.split(":", 1)
    return name, path


def copy(root: str, source: str, dest: str, archive: bool = False, follow: bool = False) -> int:
    """Copy between CONTAINER:PATH and a host path (or `-`), either way; return the size Docker reports."""
    (source_name, source_path), (dest_name, dest_path) = split_argument(source), split_argument(dest)
    if source_name is not None and dest_name is not None:
        raise UsageError("copying between containers is not supported", hint="copy out to the host, then in")
    if source_name is None and dest_name is None:
        raise UsageError("cp needs a container on one side: CONTAINER:PATH",
                         hint="cp CONTAINER:SRC_PATH DEST_PATH, or cp SRC_PATH CONTAINER:DEST_PATH")
    if not (source_path if source_name is not None else dest_path):
        raise UsageError("the path in the container is empty", hint="name it: CONTAINER:/path")
    how, tally = How(archive, follow), Tally()
    if source_name is not None:
        copy_out(root, source_name, source_path, dest_path, how, tally)
    else:
        copy_in(root, source_path, dest_name, dest_path, how, tally)
    return tally.size


class How(NamedTuple):
    archive: bool  # -a: keep the source's owners (and, out of a container, everything)
    follow: bool   # -L: follow a symlink named as the source


# --- out of a container ------------------------------------------------------------

class Source(NamedTuple):
    """What a copy starts from: an O_PATH fd of it (a symlink itself, unless -L), and its stat."""
    fd: int
    st: os.stat_result
    base: str         # its own name
    content: bool     # SRC_PATH ends in /. (or is /): what is in it, not it

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def copy_out(root: str, name: str, path: str, dest: str, how: "How", tally: Tally) -> None:
    """Copy `path` of container `name` to the host path `dest`, or as a tar to stdout."""
    with container_fs.opened(root, name, write=False) as root_fd:
        shift = container_shift(root, name)
        source = find_inside(root_fd, path, how.follow, name)
        try:
            if dest == "-":
                top = "." if source.content else source.base
                with output(None) as out:
                    write_archive(as_seen_inside(members_inside(source, top), shift), out)
                return
            target, top = host_target(dest, source)
            members = members_inside(source, top)
            members = kept_by_archive(members, shift) if how.archive else for_the_caller(members)
            unpack(tally.count(members), target, staged=top)
        except OSError as err:
            raise DockyardError(f"cannot copy {path} out of container {name}: {err.strerror or err}",
                                hint="is the destination's disk full, or not yours to write?") from err
        finally:
            os.close(source.fd)


def find_inside(root_fd: int, path: str, follow: bool, name: str) -> Source:
    """The source `path` inside the container, resolved by the kernel within its root."""
    content = path.rstrip("/") in ("", "/.") or path.endswith("/.")
    flags = libc.O_PATH | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = container_fs.open_inside(root_fd, path, flags)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise DockyardError(f"Could not find the file {path} in container {name}",
                            hint="list it with: exec CONTAINER ls -la DIR (or start it first)") from err
    st = os.fstat(fd)
    if path.endswith("/") and not stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise DockyardError(f"{path} in container {name} is not a directory", hint="drop the trailing /")
    kind = kernel_filesystem(fd)
    if kind:
        os.close(fd)
        raise DockyardError(f"{path} in container {name} is on the kernel's {kind} filesystem, which cp leaves alone",
                            hint=f"read it with: exec {name} cat {path}")
    return Source(fd, st, os.path.basename(path.rstrip("/")) or "/", content)


def members_inside(source: Source, top: str) -> Stream:
    """Members for the source named `top`, then for what is in it ("" names no top: the content only)."""
    prefix = ""
    if top:
        member = tarwrite.member_of(f"/proc/self/fd/{source.fd}", top, source.st, None, {})
        if member is None:
            return
        if member.type == tarformat.SYMLINK:  # the magic link would read as the fd's path: ask the fd itself
            member.linkname = os.readlink("", dir_fd=source.fd)
        member.xattrs = xattrs_of(source)
        yield member, lambda: reopen(source.fd)
        prefix = member.name
    if source.is_dir:
        fd = os.open(".", DIR_READ, dir_fd=source.fd)
        try:
            yield from walk_inside(fd, prefix, {})
        finally:
            os.close(fd)


def xattrs_of(source: Source) -> dict[str, bytes]:
    """The source's own xattrs, read through a real fd of it (an O_PATH fd has none to give)."""
    if not (source.is_dir or stat.S_ISREG(source.st.st_mode)):
        return {}  # opening a device, even to read its xattrs, may do something
    fd = reopen(source.fd)
    try:
        return {name: os.getxattr(fd, name) for name in sorted(os.listxattr(fd))
                if not name.startswith(("trusted.overlay.", "user.overlay."))}
    except OSError:
        return {}
    finally:
        os.close(fd)


def host_target(dest: str, source: Source) -> tuple[str, str]:
    """The host directory to create in, and the name to give the copy there ("": its content)."""
    if os.path.isdir(dest):
        return dest, "" if source.content else source.base
    if source.is_dir and os.path.lexists(dest):
        raise DockyardError(f"cannot copy a directory to a file: {dest}", hint="name a directory, or a new path")
    if dest.endswith(("/", "/.")):
        raise DockyardError(f"destination directory {dest} does not exist", hint="make it first, or drop the /")
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise DockyardError(f"no such directory: {parent}", hint="make it first: mkdir -p " + parent)
    return parent, os.path.basename(os.path.abspath(dest))


def container_shift(root: str, name: str) -> Shift:
    """How far the container's owners on disk are from those it sees (root with --userns)."""
    from . import containers, layers
    return layers.userns_shift(containers.load_spec(root, containers.find(root, name)).userns)


# --- into a container --------------------------------------------------------------

def copy_in(root: str, source: str, name: str, dest: str, how: "How", tally: Tally) -> None:
    """Copy the host path `source` (or a tar on stdin) to `dest` in container `name`."""
    host = None if source == "-" else host_source(source, how.follow)
    with container_fs.opened(root, name, write=True) as root_fd:
        shift = container_shift(root, name)
        target, top = inside_target(root_fd, dest, host, name)
        root_on_disk = (shift[0], shift[0]) if shift else (os.geteuid(), os.getegid())
        try:
            with container_fs.creating_as(*root_on_disk):
                if host is None:
                    with tarformat.TarStream(sys.stdin.buffer) as stream:
                        members = ((m, None) for m in tarformat.members(stream))
                        unpack(tally.count(owned_inside(members, shift, how.archive)), target, stream)
                else:
                    members = owned_inside(members_on_host(host, top), shift, how.archive)
                    unpack(tally.count(members), target, staged=top)
        except OSError as err:
            raise DockyardError(f"cannot copy into container {name}: {err.strerror or err}",
                                hint="is its filesystem read-only (--read-only), or full?") from err
        finally:
            os.close(target)


class HostSource(NamedTuple):
    path: str
    st: os.stat_result
    content: bool

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def base(self) -> str:
        return os.path.basename(os.path.abspath(self.path))


def host_source(path: str, follow: bool) -> HostSource:
    """The host file or directory to copy in (the caller's own: an ordinary lookup)."""
    try:
        st = os.stat(path) if follow else os.lstat(path.rstrip("/") or "/")
        if path.endswith("/") and not stat.S_ISDIR(os.stat(path).st_mode):
            raise NotADirectoryError
    except FileNotFoundError as err:
        raise DockyardError(f"no such file or directory: {path}", hint="check the host path") from err
    except NotADirectoryError as err:
        raise DockyardError(f"not a directory: {path}", hint="drop the trailing /") from err
    real = os.path.realpath(path) if follow else path
    return HostSource(real, st, path == "." or path.endswith("/.") or path.rstrip("/") == "")


def members_on_host(source: HostSource, top: str) -> Stream:
    """Members for a host file or tree, named from `top` ("": the directory's content only)."""
    seen: dict = {}
    prefix = ""
    if top:
        member = tarwrite.member_of(source.path, top, source.st, None, seen)
        if member is None:
            return
        yield member, lambda: os.open(source.path, FILE_READ & ~os.O_NOFOLLOW)
        prefix = member.name
    if source.is_dir:
        for member, path in tarwrite.walk(source.path, prefix, False, None, seen):
            yield member, lambda path=path: os.open(path, FILE_READ)


def inside_target(root_fd: int, dest: str, host: HostSource | None, name: str) -> tuple[int, str]:
    """An fd of the container's directory to create in, and the copy's name there ("": the content)."""
    fd, top = directory_and_name(root_fd, dest, host, name)
    kind = kernel_filesystem(fd)
    if kind:  # /proc/sys of a running container is the host kernel's: never written from outside
        os.close(fd)
        raise DockyardError(f"{dest} in container {name} is on the kernel's {kind} filesystem, which cp leaves alone",
                            hint="copy to a directory of the container's own")
    return fd, top


def directory_and_name(root_fd: int, dest: str, host: HostSource | None, name: str) -> tuple[int, str]:
    """The destination by Docker's rules: an existing directory (copy into it), or a new name in one."""
    try:
        fd = container_fs.open_dir_inside(root_fd, dest)
        return fd, "" if host is None or host.content else host.base
    except (FileNotFoundError, NotADirectoryError):
        pass
    if host is None:
        raise DockyardError(f"destination {dest} in container {name} is not a directory",
                            hint="a tar archive (-) is extracted into an existing directory")
    if host.is_dir and exists_inside(root_fd, dest):
        raise DockyardError(f"cannot copy a directory to a file: {dest}", hint="name a directory, or a new path")
    if dest.endswith(("/", "/.")):
        raise DockyardError(f"destination directory {dest} in container {name} does not exist",
                            hint="make it first (exec CONTAINER mkdir -p ...), or drop the /")
    parent, base = os.path.split(dest)
    try:
        return container_fs.open_dir_inside(root_fd, parent or "."), base
    except (FileNotFoundError, NotADirectoryError) as err:
        raise DockyardError(f"no such directory in container {name}: {parent}",
                            hint="make it first: exec CONTAINER mkdir -p " + parent) from err


def exists_inside(root_fd: int, path: str) -> bool:
    try:
        os.close(container_fs.open_inside(root_fd, path, libc.O_PATH | os.O_NOFOLLOW))
        return True
    except OSError:
        return False


# --- export: the whole filesystem as a tar ---------------------------------------

def export(root: str, name: str, path: str | None) -> None:
    """Write the container's own files (its layers: no volume, no /proc) as one tar to `path` (None: stdout),
    with owners as it sees them."""
    with container_fs.own_files(root, name) as root_fd:
        shift = container_shift(root, name)
        fd = os.open(".", DIR_READ, dir_fd=root_fd)
        try:
            with output(path) as out:
                write_archive(as_seen_inside(walk_inside(fd, "", {}), shift), out)
        finally:
            os.close(fd)


@contextlib.contextmanager
def output(path: str | None) -> Iterator[BinaryIO]:
    """stdout, or the file `path`, which appears only once it is whole (a device or pipe is written as it is)."""
    if not path:
        try:
            yield sys.stdout.buffer
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            raise DockyardError("the archive's reader closed stdout before its end",
                                hint="pipe it into a program that reads it whole (tar x, tar t)") from None
        return
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "wb") as out:
            yield out
        return
    temp = path + ".partial"
    try:
        with open(temp, "wb") as out:
            yield out
        os.rename(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
