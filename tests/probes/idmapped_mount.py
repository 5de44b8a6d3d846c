"""Exit 0 if this kernel and filesystem can make an idmapped mount of argv[1].

The suite asks this question itself rather than trusting the engine's
answer: a test that skipped whenever the engine *said* idmapped mounts were
unsupported would skip silently the day the engine broke. Needs Linux 5.19
or later and a filesystem that supports idmapping (ext4, xfs, btrfs, tmpfs).
Run as root, in a process of its own (it forks).
"""

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000
# The new mount API has the same syscall numbers on every architecture.
SYS_OPEN_TREE, SYS_MOUNT_SETATTR = 428, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
MOUNT_ATTR_IDMAP = 0x00100000

libc = ctypes.CDLL(None, use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def user_namespace() -> tuple[int, int]:
    """A child in a new user namespace mapping 0 to 100000 (as --userns does): (pid, ns fd)."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = libc.unshare(CLONE_NEWUSER)
        os.write(ready_w, b"1" if status == 0 else b"0")
        os.read(done_r, 1)
        os._exit(0)
    if os.read(ready_r, 1) != b"1":
        sys.exit("unshare(CLONE_NEWUSER) failed")
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("0 100000 65536\n")
    fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
    os.write(done_w, b"1")
    return pid, fd


def idmap(path: str, userns: int) -> None:
    """Clone the mount at `path` and idmap the clone (closing it frees it again)."""
    tree = libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(path), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    if tree < 0:
        sys.exit(f"open_tree: {os.strerror(ctypes.get_errno())}")
    attr = MountAttr(attr_set=MOUNT_ATTR_IDMAP, userns_fd=userns)
    if libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        sys.exit(f"mount_setattr(MOUNT_ATTR_IDMAP): {os.strerror(ctypes.get_errno())}")
    os.close(tree)


if __name__ == "__main__":
    child, userns = user_namespace()
    try:
        idmap(sys.argv[1], userns)
    finally:
        os.waitpid(child, 0)
