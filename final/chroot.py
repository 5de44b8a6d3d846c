# chapter: 01-01
"""Chapter 1: chroot, or changing what "/" means.

A container begins with a smaller filesystem: a directory holding a whole
Linux userland (here, busybox) that the container's process should take for
the entire machine. chroot(2) changes what "/" means for one process and its
children; every path they open is then looked up from that directory.

chroot is not a jail. It changes only path lookup: the process still sees
every other process, the host's mounts, its hostname and its network, and a
root process can walk back out (see `test_escape.py` and the lesson). Chapter
2 replaces chroot with namespaces and pivot_root, which close those doors.

New here:  chroot(2), chdir(2), mount(2) of /proc
Try it:    sudo python3 -m chapters.01_chroot run -i --rootfs ROOTFS /bin/sh
Not yet:   processes, mounts and the hostname are still shared; see chapter 2.
"""

import os

from . import libc


def enter_rootfs(rootfs: str) -> None:
    """Make `rootfs` this process's "/" and stand in it."""
    # >>> exercise 1.2: enter the rootfs
    # hint: libc.chroot(rootfs) changes what "/" means; it leaves the working directory where it
    # hint: was, outside the new root, so move into the new "/" with os.chdir right after.
    # test: test_run.py::test_a_command_runs_inside_the_rootfs_and_its_output_reaches_the_user
    # test: test_run.py::test_proc_is_mounted_inside_the_container
    # stops: every run
    libc.chroot(rootfs)
    # chroot(2) leaves the cwd outside the new root; chdir("/") closes that escape.
    os.chdir("/")
    # <<< exercise 1.2


def mount_proc() -> None:
    """Give the container a /proc, so ps and friends work. Call after enter_rootfs."""
    os.makedirs("/proc", exist_ok=True)
    libc.mount("proc", "/proc", "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)


def unmount_proc(rootfs: str) -> None:
    """Undo mount_proc from the host side: here it is a mount of the host's (chapter 2 gives each container its own)."""
    try:
        # NOFOLLOW: a rootfs whose /proc is a symlink must not make us unmount the host's.
        libc.umount(os.path.join(rootfs, "proc"), libc.MNT_DETACH | libc.UMOUNT_NOFOLLOW)
    except OSError:
        pass  # the child failed before it mounted /proc
