# chapter: 02
"""The container's filesystem: its rootfs as the root mount, and what goes on it.

Inside its own mount namespace the child builds the container's mount tree
and then makes it the root, in this order:

    make every mount private        nothing we do propagates back to the host
    bind the rootfs onto itself     pivot_root needs the new root to be a mount
    mount /proc, /sys, /dev, ...    kernel views and device nodes of its own
    bind /etc/hostname, hosts ...   the spec's mounts: files the engine wrote, volumes
    pivot_root(".", ".")            the rootfs becomes "/", the host's root
    umount2(".", MNT_DETACH)        stacked beneath it is detached: no way back

Every mount target is resolved inside the rootfs, as the container will see
it, so a rootfs whose /dev is a symlink to /dev gets its own /dev, never a
mount over the host's. The spec's mounts are resolved with openat2(2) and
RESOLVE_IN_ROOT: every symlink, even an absolute one or "..", resolves as if
the rootfs were "/"; we mount onto the file descriptor that lookup returned
(/proc/self/fd/N), so nothing can swap the path in between.
"""

import os
from typing import TYPE_CHECKING, Callable

from . import libc, namespaces
from .errors import DockyardError

if TYPE_CHECKING:  # spec.py imports security.py (final), which imports this module
    from .spec import Mount

NOSUID_NODEV_NOEXEC = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC

# Device nodes a container gets, bound from the host's /dev (mknod(2) is not
# allowed in a user namespace; a bind mount of the host's node is).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
# Parts of /proc that reach the host's kernel: read-only, or hidden (under
# /dev/null for a file, an empty read-only tmpfs for a directory).
PROC_READ_ONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "acpi", "scsi")
# Flags that a mount in a user namespace inherits locked; a read-only
# remount must repeat them or the kernel refuses it (statvfs ST_* = MS_*).
LOCKED_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC | 1024 | 2048  # MS_NOATIME, MS_NODIRATIME


def make_mounts_private() -> None:
    """Stop mount events from propagating between our namespace and the host's."""
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)


def inside(rootfs: str, path: str) -> str:
    """The host path of `path` as the container will see it: symlinks resolve within the rootfs."""
    # As after a chroot: an absolute link starts again at the rootfs, and ".."
    # stops there, so a link such as /etc/resolv.conf -> /run/x stays inside.
    resolved, parts, hops = rootfs, [p for p in path.split("/") if p], 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            resolved = os.path.dirname(resolved) if resolved != rootfs else rootfs
        elif part != "." and os.path.islink(candidate := os.path.join(resolved, part)):
            hops += 1
            if hops > 40:
                raise DockyardError(f"{path} in the rootfs is a loop of symlinks",
                                    hint=f"fix the links along {path} in the rootfs")
            link = os.readlink(candidate)
            resolved = rootfs if link.startswith("/") else resolved
            parts = [p for p in link.split("/") if p] + parts
        elif part != ".":
            resolved = candidate
    return resolved


# --8<-- [start:build_root]
def build_root(rootfs: str, userns: bool) -> None:
    """Assemble the container's mount tree on `rootfs`; call before mount_all and pivot."""
    libc.mount(rootfs, rootfs, None, libc.MS_BIND | libc.MS_REC)
    mount_proc(inside(rootfs, "/proc"))
    mount_sys(inside(rootfs, "/sys"), userns)
    mount_dev(inside(rootfs, "/dev"))


def pivot(rootfs: str) -> None:
    """Make `rootfs` the root mount and detach the host's root from under it."""
    # >>> exercise 2.2: the pivot_root sequence
    # hint: stand in the rootfs (os.chdir), then libc.pivot_root(".", "."): the new root is "/" and the
    # hint: old one is stacked beneath it, at "/" too; libc.umount(".", libc.MNT_DETACH) detaches that
    # hint: old root, so no path leads back to the host; finish with os.chdir("/").
    # test: test_namespaces.py::test_the_host_cannot_be_reached_through_the_old_root
    # test: test_namespaces.py::test_a_mount_made_inside_is_invisible_on_the_host_before_during_and_after
    # stops: every run
    os.chdir(rootfs)
    # pivot_root(".", ".") stacks the old root beneath the new one, at "/";
    # detaching "." then removes the old root without needing a directory for it.
    libc.pivot_root(".", ".")
    libc.umount(".", libc.MNT_DETACH)
    os.chdir("/")
    # <<< exercise 2.2
# --8<-- [end:build_root]


def mount_proc(target: str) -> None:
    """A /proc of the container's PID namespace, with the host's knobs made read-only."""
    libc.mount("proc", target, "proc", NOSUID_NODEV_NOEXEC)
    for name in PROC_READ_ONLY:
        path = os.path.join(target, name)
        if os.path.exists(path):
            libc.mount(path, path, None, libc.MS_BIND)
            libc.mount(None, path, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | NOSUID_NODEV_NOEXEC)
    for name in PROC_MASKED:
        path = os.path.join(target, name)
        if os.path.isdir(path):
            libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY | NOSUID_NODEV_NOEXEC)
        elif os.path.exists(path):
            libc.mount("/dev/null", path, None, libc.MS_BIND)


def mount_sys(target: str, userns: bool) -> None:
    """A read-only /sys; in a user namespace sharing the host's network, a bind of it."""
    flags = libc.MS_RDONLY | NOSUID_NODEV_NOEXEC
    try:
        libc.mount("sysfs", target, "sysfs", flags)
    except PermissionError:
        if not userns:
            raise
        # sysfs may only be mounted by the owner of the network namespace.
        libc.mount("/sys", target, None, libc.MS_BIND | libc.MS_REC)
        libc.mount(None, target, None, libc.MS_BIND | libc.MS_REMOUNT | flags)


DEV_MOUNTS = (("pts", "devpts", "newinstance,ptmxmode=0666,mode=0620"),
              ("shm", "tmpfs", "mode=1777,size=65536k"),
              ("mqueue", "mqueue", None))


def mount_dev(target: str) -> None:
    """A small tmpfs /dev with the standard nodes, its own pty instance and /dev/shm."""
    # uid=0 is root of our user namespace: the tmpfs belongs to the container.
    libc.mount("tmpfs", target, "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME, "mode=755,size=65536k,uid=0,gid=0")
    dev = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        namespaces.as_root_inside(lambda: make_dev_entries(dev))
    finally:
        os.close(dev)
    for name in DEVICES:
        libc.mount(f"/dev/{name}", os.path.join(target, name), None, libc.MS_BIND)
    for name, fstype, options in DEV_MOUNTS:
        flags = libc.MS_NOSUID | libc.MS_NOEXEC | (libc.MS_NODEV if name != "pts" else 0)
        libc.mount(fstype, os.path.join(target, name), fstype, flags, options)


def make_dev_entries(dev: int) -> None:
    """Create /dev's mountpoints and links in the directory open as `dev`."""
    for name in DEVICES:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dev))
    for name, destination in DEV_LINKS.items():
        os.symlink(destination, name, dir_fd=dev)
    for name, _, _ in DEV_MOUNTS:
        os.mkdir(name, 0o755, dir_fd=dev)


# --8<-- [start:mount_all]
def mount_all(rootfs: str, entries: "list[Mount]") -> None:
    """Make each of the spec's mounts on the rootfs, in order; call after build_root, before pivot."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in entries:
            mount_inside(root_fd, entry)
    finally:
        os.close(root_fd)


def mount_inside(root_fd: int, entry: "Mount") -> None:
    """One mount, its destination resolved inside the root open as `root_fd`."""
    directory = entry.type != "bind" or os.path.isdir(entry.source)
    target = open_inside(root_fd, entry.destination, directory)
    try:
        mount_entry(entry, f"/proc/self/fd/{target}")
    finally:
        os.close(target)
    if entry.read_only:
        remount_read_only(root_fd, entry.destination)


def mount_entry(entry: "Mount", target: str) -> None:
    """One mount(2): a bind of a host path, or a filesystem of its own."""
    try:
        if entry.type == "bind":
            libc.mount(entry.source, target, None, libc.MS_BIND | libc.MS_REC | entry.flags)
        else:
            libc.mount(entry.source or entry.type, target, entry.type, entry.flags, entry.data or None)
    except OSError as err:
        raise DockyardError(f"cannot mount {entry.source or entry.type} on {entry.destination}: {err.strerror}",
                            hint="check that the source exists and the destination can hold it") from err


def open_inside(root_fd: int, path: str, directory: bool, hops: int = 0) -> int:
    """An O_PATH fd of `path` inside the root, made (mkdir -p, or an empty file) if missing."""
    try:
        return libc.openat2(root_fd, path, libc.O_PATH, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
    except FileNotFoundError:
        pass
    parent, name = os.path.split(os.path.normpath(path))
    parent_fd = open_inside(root_fd, parent, True, hops)
    try:
        link = os.readlink(name, dir_fd=parent_fd)  # a dangling link: make what it names, inside
    except OSError:
        link = None
    def make() -> None:
        if directory:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=parent_fd))
    try:
        if link is None:
            make_as_root_inside(make)
    finally:
        os.close(parent_fd)
    if link is not None:
        if hops >= 40:
            raise DockyardError(f"{path} in the rootfs is a loop of symlinks", hint=f"fix the links along {path}")
        return open_inside(root_fd, os.path.join(parent, link), directory, hops + 1)
    return open_inside(root_fd, path, directory, hops)
# --8<-- [end:mount_all]


def make_as_root_inside(make: Callable[[], None]) -> None:
    """Make a mountpoint as root of the user namespace, or else as we are."""
    try:
        namespaces.as_root_inside(make)  # an overlay's upper layer takes only owners it can map
    except OSError:
        make()  # a plain rootfs of the host's root: only the host's root may write there


def remount_read_only(root_fd: int, path: str) -> None:
    """Make the bind mount now at `path` read-only, keeping the flags it must keep."""
    fd = libc.openat2(root_fd, path, libc.O_PATH, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
    try:
        locked = os.statvfs(f"/proc/self/fd/{fd}").f_flag & LOCKED_FLAGS
        libc.mount(None, f"/proc/self/fd/{fd}", None,
                   libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | locked)
    finally:
        os.close(fd)
# >>> chapter final


def make_root_read_only() -> None:
    """--read-only: remount "/" read-only; call after pivot (the mounts on it stay as they are)."""
    locked = os.statvfs("/").f_flag & LOCKED_FLAGS
    libc.mount(None, "/", None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | locked)
# <<< chapter final
