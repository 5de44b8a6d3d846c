# chapter: 02
"""The container's filesystem: its rootfs as the root mount, and what goes on it.

Inside its own mount namespace the child builds the container's mount tree
and then makes it the root, in this order:

    make every mount private        nothing we do propagates back to the host
    bind the rootfs onto itself     pivot_root needs the new root to be a mount
    mount /proc, /sys, /dev, ...    kernel views and device nodes of its own
    bind /etc/hostname, hosts ...   files the engine writes for the container
    pivot_root(".", ".")            the rootfs becomes "/", the host's root
    umount2(".", MNT_DETACH)        stacked beneath it is detached: no way back

Every mount target is resolved inside the rootfs, as the container will see
it (see `inside`), so a rootfs whose /dev is a symlink to /dev gets its own
/dev, never a mount over the host's.
"""

import errno
import os

from . import libc, namespaces
from .errors import DockyardError

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
def build_root(rootfs: str, etc_files: dict[str, str], userns: bool) -> None:
    """Assemble the container's mount tree on `rootfs`; call before pivot."""
    libc.mount(rootfs, rootfs, None, libc.MS_BIND | libc.MS_REC)
    mount_proc(inside(rootfs, "/proc"))
    mount_sys(inside(rootfs, "/sys"), userns)
    mount_dev(inside(rootfs, "/dev"))
    for path, source in etc_files.items():
        bind_file(source, mountpoint_file(rootfs, path))


def pivot(rootfs: str) -> None:
    """Make `rootfs` the root mount and detach the host's root from under it."""
    # >>> exercise 2.2: the pivot_root sequence
    # hint: stand in the rootfs (os.chdir), then libc.pivot_root(".", "."): the new root is "/" and the
    # hint: old one is stacked beneath it, at "/" too; libc.umount(".", libc.MNT_DETACH) detaches that
    # hint: old root, so no path leads back to the host; finish with os.chdir("/").
    # test: test_namespaces.py::test_the_host_cannot_be_reached_through_the_old_root
    # test: test_namespaces.py::test_a_mount_made_inside_is_invisible_on_the_host_before_during_and_after
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


def mountpoint_file(rootfs: str, path: str) -> str:
    """An empty file to bind over at `path`, created in the rootfs if it is missing."""
    target = inside(rootfs, path)
    if not os.path.lexists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "w").close()
    return inside(rootfs, path)


def bind_file(source: str, target: str) -> None:
    try:
        libc.mount(source, target, None, libc.MS_BIND)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise
        raise DockyardError(f"cannot provide {target}", hint="does the rootfs have an /etc directory?") from err
