# chapter: final
"""A container's files, reached from the host without trusting them (cp, export).

`cp` reads and writes a container's files from outside it, and the
container may be hostile: it owns every symlink in its tree and can change
them while we walk. Engines got this wrong twice in a famous way:
CVE-2018-15664 (a symlink swapped in between the check of a path and its
use sent `docker cp` to the host's files) and CVE-2019-14271 (cp ran code
from the container; ours never runs anything of the container's, nor enters
it). Two questions, two answers:

Which filesystem?
- A running container (or a created one, whose PID 1 waits at its gate):
  its PID 1's root, /proc/PID/root, opened once as a directory fd. What is
  below that fd is PID 1's mount namespace: volumes are there, as in Docker.
- A stopped container with the vfs driver: its copy, a plain directory.
- A stopped container with overlay: nothing is mounted, so we mount its
  layers again, as a *detached* mount (fsopen, fsconfig, fsmount): it is
  attached nowhere, no mount table lists it, and it goes away with its last
  fd. An error, a crash, a SIGKILL at any instant leaves nothing to clean
  up, where a mount on a path would need the crash recovery of faults.py.
  Resolving across the layers by hand instead would mean redoing overlay
  (whiteouts, opaque dirs, copy-up on write): mounting it is simpler and
  is what the container itself sees. We hold the container's lock
  meanwhile, so that no `start` mounts the same upper dir at the same time.
  With --userns, a copy in mounts the image's layers idmapped, as the
  container's own mount does, or what overlay copies up would belong to the
  host's root (65534 inside).
- `export` wants the container's own files, without volumes or /proc: its
  layers, read through a read-only overlay whose top layer is its upper dir
  (no upper of ours: a running container's own mount is left alone).

How to walk it? Never by joining strings: every path the user names is
resolved by openat2(2) with RESOLVE_IN_ROOT, from the root's fd. The kernel
walks it as if that fd were "/": an absolute symlink, or `..` at the top,
stays inside, whatever the container does meanwhile; RESOLVE_NO_MAGICLINKS
refuses /proc/self/root-style jumps. Below the path the user named,
copy_stream.py walks one directory fd at a time with O_NOFOLLOW, as the
unpacker does. A running container's overlay lives in its user namespace
(--userns), which refuses a file made by the host's root (EOVERFLOW): files
are made as the container's root there, with setfsuid(2).

New here:  fsopen(2), fsconfig(2), fsmount(2): detached mounts; /proc/PID/root; setfsuid(2)
"""

import contextlib
import os
from typing import Iterator

from . import config, container, containers, layers, libc
from .errors import DockyardError

RESOLVE = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS
DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@contextlib.contextmanager
def opened(root: str, text: str, write: bool) -> Iterator[int]:
    """An fd of the "/" of container `text`, running or not (see the lesson); closed on the way out."""
    c = container.load(root, text)
    if c.take_lock():  # nobody runs it: its layers are ours while we hold the lock
        try:
            with stopped_root(root, c.id, write) as fd:
                yield fd
        finally:
            c.lock.release()
        return
    fd = running_root(c)
    try:
        yield fd
    finally:
        os.close(fd)


def running_root(c: "container.Container") -> int:
    """An fd of the root of the running container `c`'s PID 1."""
    pid = c.state.pid
    if not pid or not c.still_runs_as(pid):
        raise DockyardError(f"container {c.name} is starting or stopping", hint="try again in a moment")
    fd = os.open(f"/proc/{pid}/root", libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if not c.still_runs_as(pid):  # the pid may have ended, and been reused, before we opened it
        os.close(fd)
        raise DockyardError(f"container {c.name} stopped meanwhile", hint="try again: it is copied from its layers")
    return fd


@contextlib.contextmanager
def stopped_root(root: str, container_id: str, write: bool) -> Iterator[int]:
    """An fd of the root of a stopped container: its vfs copy, or its overlay mounted detached."""
    request = containers.load_spec(root, container_id)
    if write and request.security.read_only:  # running, its "/" would refuse the write itself (EROFS)
        raise DockyardError("the container's root filesystem is read-only (--read-only)",
                            hint="copy into one of its volumes while it runs, or create it without --read-only")
    stack = layers.Layers(request.storage_driver, request.lowers, containers.directory(root, container_id))
    if request.storage_driver == "vfs" or not request.lowers:
        fd = os.open(stack.top() if request.lowers else request.rootfs, libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fd = mount_detached(stack, request.userns, write)
    try:
        yield fd
    finally:
        os.close(fd)


# --8<-- [start:mount_detached]
def mount_detached(stack: "layers.Layers", userns: bool, write: bool, lowers_only: bool = False) -> int:
    """The container's overlay as a detached mount: an fd of its root, the only way to reach it.
    `lowers_only`: its upper dir as one more read-only layer, which a running container may use meanwhile."""
    if os.geteuid() != 0:
        raise DockyardError("a stopped container's layers can be mounted only by root",
                            hint="start the container: cp then reads its files through its own process")
    fs = libc.fsopen("overlay")
    shown = idmapped(stack.lowers) if userns and write else []
    try:
        lowers = [stack.path("init"), *(f"/proc/self/fd/{fd}" for fd in shown)] if shown else stack.stack()
        for lower in [stack.path("upper")] * lowers_only + lowers:  # one at a time: a value has 256 bytes at most
            libc.fsconfig(fs, "lowerdir+", lower)
        if not lowers_only:
            libc.fsconfig(fs, "upperdir", stack.path("upper"))
            libc.fsconfig(fs, "workdir", stack.path("work"))
        libc.fsconfig(fs, "redirect_dir", "nofollow")  # the same options as the container's own mount
        if userns:
            libc.fsconfig(fs, "userxattr")
        libc.fsconfig(fs, None)
        return libc.fsmount(fs, 0 if write else libc.MOUNT_ATTR_RDONLY)
    except OSError as err:
        raise DockyardError(f"cannot mount the container's layers: {err.strerror or err}",
                            hint="a kernel older than 6.8 lacks lowerdir+: start the container, then cp") from err
    finally:
        for fd in (fs, *shown):
            os.close(fd)
# --8<-- [end:mount_detached]


def idmapped(lowers: list[str]) -> list[int]:
    """Detached copies of `lowers` seen through the --userns map, as the container's own mount sees them:
    a directory that overlay copies up must belong to the container's root, not to the host's."""
    start, count = config.USERNS_RANGE
    try:
        with layers.user_namespace(f"0 {start} {count}") as userns:
            if userns is None:
                raise PermissionError("the kernel gives no user namespace")
            return layers.idmapped_trees(lowers, userns)
    except OSError as err:
        raise DockyardError(f"cannot show the container's layers through its user namespace: {err.strerror or err}",
                            hint="start the container: cp then writes through its own mount") from err


@contextlib.contextmanager
def own_files(root: str, text: str) -> Iterator[int]:
    """An fd of what container `text` has as its own files, read-only: its layers, without the
    volumes and kernel filesystems mounted over them. Its lock is not needed: nothing it writes to is used."""
    c = container.load(root, text)
    request = containers.load_spec(root, c.id)
    stack = layers.Layers(request.storage_driver, request.lowers, containers.directory(root, c.id))
    if request.storage_driver == "vfs" or not request.lowers:
        fd = os.open(stack.top() if request.lowers else request.rootfs, libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fd = mount_detached(stack, request.userns, write=False, lowers_only=True)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def creating_as(uid: int, gid: int) -> Iterator[None]:
    """Create files as host `uid`:`gid` for a while: a container's root with --userns. A filesystem mounted
    in its user namespace (a running container's overlay) refuses to create a file for an owner it cannot
    map, such as the host's root (EOVERFLOW)."""
    if (uid, gid) == (os.geteuid(), os.getegid()):
        yield
        return
    effective, permitted, inheritable = libc.capget()
    libc.setfsids(uid, gid)
    libc.capset(permitted, permitted, inheritable)  # a fsuid other than 0 dropped CAP_CHOWN & co.: take them back
    try:
        yield
    finally:
        libc.setfsids(os.geteuid(), os.getegid())
        libc.capset(effective, permitted, inheritable)


def open_inside(root_fd: int, path: str, flags: int) -> int:
    """open(2) `path` as the container sees it: resolved by the kernel, never leaving `root_fd`."""
    try:
        return libc.openat2(root_fd, path, flags, RESOLVE)
    except (FileNotFoundError, NotADirectoryError):
        raise  # the callers say which rule of cp's that breaks
    except OSError as err:  # ELOOP: a symlink loop; EXDEV: a magic link (/proc/self/root ...)
        raise DockyardError(f"cannot follow {path} inside the container: {err.strerror}",
                            hint="a symlink on the way loops, or leads through /proc: name the path it means") from err


def open_dir_inside(root_fd: int, path: str) -> int:
    """A readable fd of the directory `path` inside the container."""
    return open_inside(root_fd, path, DIR_OPEN)
