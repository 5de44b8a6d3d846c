"""The system calls that Python's standard library does not offer, via ctypes.

Every declaration carries its C prototype and man page, sets `argtypes` and
`restype`, and goes through one `_check`, so a failing call raises the same
`OSError` subclass (`FileNotFoundError`, `PermissionError`, ...) that `os`
functions raise.
"""

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)  # never an absolute path


def _check(result: int, call: str, path: str | None = None) -> int:
    """Turn C's "return -1 and set errno" into a Python exception."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{call}: {os.strerror(err)}", path)
    return result


# int chroot(const char *path);                                  man 2 chroot
_libc.chroot.argtypes = [ctypes.c_char_p]
_libc.chroot.restype = ctypes.c_int


def chroot(path: str) -> None:
    """Make `path` this process's "/" (see chroot(2))."""
    _check(_libc.chroot(os.fsencode(path)), "chroot", path)


# int close_range(unsigned int first, unsigned int last, int flags);   man 2 close_range
_libc.close_range.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_int]
_libc.close_range.restype = ctypes.c_int

CLOSE_RANGE_CLOEXEC = 4


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """Close, or with CLOSE_RANGE_CLOEXEC mark close-on-exec, every descriptor from `first` to `last`."""
    _check(_libc.close_range(first, last, flags), "close_range")


# int mount(const char *source, const char *target, const char *fstype,
#           unsigned long flags, const void *data);              man 2 mount
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p]
_libc.mount.restype = ctypes.c_int

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24


def mount(source: str | None, target: str, fstype: str | None,
          flags: int = 0, data: str | None = None) -> None:
    """Attach a filesystem at `target` (see mount(2))."""
    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           "mount", target)


# int umount2(const char *target, int flags);                    man 2 umount
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int

MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8


def umount(target: str, flags: int = 0) -> None:
    """Detach the filesystem mounted at `target` (see umount(2))."""
    _check(_libc.umount2(os.fsencode(target), flags), "umount2", target)
