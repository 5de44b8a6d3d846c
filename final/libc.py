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
# >>> chapter 02


# --- namespaces (chapter 2) ---------------------------------------------------

CLONE_NEWNS = 0x00020000      # mount
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000     # hostname
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_INTO_CGROUP = 0x200000000  # clone3 only: start in the cgroup v2 directory open at clone_args.cgroup

# int unshare(int flags);                                        man 2 unshare
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int


def unshare(flags: int) -> None:
    """Move this process into new namespaces of the kinds in `flags` (see unshare(2))."""
    _check(_libc.unshare(flags), "unshare")


# int setns(int fd, int nstype);                                 man 2 setns
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that `fd` (an open /proc/PID/ns/* file) refers to."""
    _check(_libc.setns(fd, nstype), "setns")


# int sethostname(const char *name, size_t len);                 man 2 sethostname
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.sethostname.restype = ctypes.c_int


def sethostname(name: str) -> None:
    """Set the hostname of this process's UTS namespace."""
    encoded = name.encode()
    _check(_libc.sethostname(encoded, len(encoded)), "sethostname")


# long syscall(long number, ...);                                man 2 syscall
# pivot_root and clone3 have no glibc wrapper; their numbers are the same on
# x86-64 and arm64 for clone3 (435), and differ for pivot_root.
_libc.syscall.restype = ctypes.c_long
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}[os.uname().machine]
SYS_CLONE3 = 435


def pivot_root(new_root: str, put_old: str) -> None:
    """Make `new_root` the root mount and move the old one to `put_old` (see pivot_root(2))."""
    _check(_libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), os.fsencode(new_root), os.fsencode(put_old)),
           "pivot_root", new_root)


class _CloneArgs(ctypes.Structure):
    """struct clone_args, from <linux/sched.h> (see clone3 in clone(2))."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
        "stack", "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]


# clone must run with the GIL held, exactly like os.fork(): through a PyDLL
# handle, between the interpreter's own before- and after-fork hooks.
_python = ctypes.PyDLL(None, use_errno=True)
_python.syscall.restype = ctypes.c_long


def clone(flags: int, cgroup: int = -1) -> int:
    """fork(2) into new namespaces: return 0 in the child and its pid in the parent."""
    # `cgroup`, a cgroup v2 directory open for reading, has the child born in it (CLONE_INTO_CGROUP).
    args = _CloneArgs(flags=flags, exit_signal=17)  # SIGCHLD, as fork sends
    if cgroup >= 0:
        args.flags, args.cgroup = flags | CLONE_INTO_CGROUP, cgroup
    _python.PyOS_BeforeFork()
    pid = _python.syscall(ctypes.c_long(SYS_CLONE3), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        _python.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _python.PyOS_AfterFork_Parent()
    if pid == -1:
        raise OSError(err, f"clone3: {os.strerror(err)}")
    return pid


# int prctl(int option, unsigned long arg2, ...);                man 2 prctl
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.restype = ctypes.c_int

PR_SET_PDEATHSIG = 1


def prctl(option: int, arg2: int = 0) -> None:
    """Change one attribute of this process, such as its parent-death signal."""
    _check(_libc.prctl(option, arg2, 0, 0, 0), "prctl")


# --- resolving paths inside a root (chapter 2) ------------------------------------

O_PATH = 0o10000000
RESOLVE_NO_MAGICLINKS = 0x02   # no /proc/self/fd/N-style jumps
RESOLVE_IN_ROOT = 0x10         # treat dirfd as "/": "..", and absolute symlinks, stay inside
SYS_OPENAT2 = 437              # the same on x86-64 and arm64


class _OpenHow(ctypes.Structure):
    """struct open_how, from <linux/openat2.h> (see openat2(2))."""
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
    """open(2) `path` relative to `dir_fd`, with the lookup limits in `resolve` (see openat2(2))."""
    how = _OpenHow(flags=flags | os.O_CLOEXEC, mode=0, resolve=resolve)
    return _check(_libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), os.fsencode(path),
                                ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))), "openat2", path)
# <<< chapter 02
# >>> chapter 04


# --- idmapped mounts (chapter 4) ---------------------------------------------------
# No glibc before 2.36 wraps these; their numbers are the same on x86-64 and arm64.

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
OPEN_TREE_CLONE = 0x1             # a detached copy of the mount, as a bind mount would make
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4     # the mount to move is the fd itself
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    """struct mount_attr, from <linux/mount.h> (see mount_setattr(2))."""
    _fields_ = [(name, ctypes.c_uint64) for name in ("attr_set", "attr_clr", "propagation", "userns_fd")]


# int open_tree(int dirfd, const char *path, unsigned int flags);    man 2 open_tree
def open_tree(path: str, flags: int) -> int:
    """An fd of the mount at `path`, or with OPEN_TREE_CLONE of a detached copy of it."""
    return _check(_libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), os.fsencode(path),
                                ctypes.c_uint(flags)), "open_tree", path)


# int mount_setattr(int dirfd, const char *path, unsigned int flags,
#                   struct mount_attr *attr, size_t size);           man 2 mount_setattr
def mount_setattr(mount_fd: int, attr_set: int, propagation: int = 0, userns_fd: int = 0) -> None:
    """Change the detached mount `mount_fd`: e.g. MOUNT_ATTR_IDMAP, through user namespace `userns_fd`."""
    attr = _MountAttr(attr_set=attr_set, propagation=propagation, userns_fd=userns_fd)
    _check(_libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(mount_fd), b"", ctypes.c_uint(AT_EMPTY_PATH),
                         ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")


# int move_mount(int from_dirfd, const char *from_path,
#                int to_dirfd, const char *to_path, unsigned int flags);  man 2 move_mount
def move_mount(mount_fd: int, target: str) -> None:
    """Attach the detached mount `mount_fd` at `target` in our mount namespace."""
    _check(_libc.syscall(ctypes.c_long(SYS_MOVE_MOUNT), ctypes.c_int(mount_fd), b"", ctypes.c_int(AT_FDCWD),
                         os.fsencode(target), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), "move_mount", target)


# --- pidfds: signals that cannot reach a recycled pid --------------------------------
# A pid is a number the kernel hands out again once its process is reaped. A pidfd
# refers to one process: after that process is gone, signalling through it fails
# with ESRCH instead of reaching whoever got the number next.

SYS_PIDFD_OPEN, SYS_PIDFD_SEND_SIGNAL = 434, 424   # the same on x86-64 and arm64
PR_SET_CHILD_SUBREAPER = 36


# int pidfd_open(pid_t pid, unsigned int flags);                  man 2 pidfd_open
def pidfd_open(pid: int) -> int:
    """A file descriptor that refers to process `pid` for as long as it is open."""
    return _check(_libc.syscall(ctypes.c_long(SYS_PIDFD_OPEN), ctypes.c_int(pid), ctypes.c_uint(0)),
                  "pidfd_open")


# int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags);   man 2 pidfd_send_signal
def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """Send `sig` to the process that `pidfd` refers to; ProcessLookupError once it has exited."""
    _check(_libc.syscall(ctypes.c_long(SYS_PIDFD_SEND_SIGNAL), ctypes.c_int(pidfd), ctypes.c_int(sig),
                         None, ctypes.c_uint(0)), "pidfd_send_signal")
# <<< chapter 04
# >>> chapter final


# --- confining a process: capabilities, no_new_privs, seccomp, bpf (final) ---------

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522   # two 32-bit words per set: capabilities 0-63


class _CapHeader(ctypes.Structure):
    """struct __user_cap_header_struct, from <linux/capability.h>."""
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    """struct __user_cap_data_struct: one 32-bit word of each set."""
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


# int capget(cap_user_header_t hdrp, cap_user_data_t datap);        man 2 capget
# int capset(cap_user_header_t hdrp, const cap_user_data_t datap);
_libc.capget.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
_libc.capget.restype = ctypes.c_int
_libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
_libc.capset.restype = ctypes.c_int


def capget() -> tuple[int, int, int]:
    """This process's (effective, permitted, inheritable) capability sets, as bit masks."""
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capget(header, data), "capget")
    def both_words(name: str) -> int:
        return getattr(data[0], name) | getattr(data[1], name) << 32
    return both_words("effective"), both_words("permitted"), both_words("inheritable")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this process's three capability sets (bit masks); they can only shrink."""
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    for word in (0, 1):
        data[word] = _CapData(*(s >> (32 * word) & 0xFFFFFFFF for s in (effective, permitted, inheritable)))
    _check(_libc.capset(header, data), "capset")


class _SockFprog(ctypes.Structure):
    """struct sock_fprog, from <linux/filter.h>: a classic BPF program."""
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


SECCOMP_SET_MODE_FILTER = 1
SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}[os.uname().machine]
SYS_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]


# int seccomp(unsigned int operation, unsigned int flags, void *args);   man 2 seccomp
def seccomp_set_filter(program: bytes) -> None:
    """Attach a classic BPF program (8 bytes an instruction) that judges every later syscall."""
    fprog = _SockFprog(len(program) // 8, program)
    _check(_libc.syscall(ctypes.c_long(SYS_SECCOMP), ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(0),
                         ctypes.byref(fprog)), "seccomp")


# int bpf(int cmd, union bpf_attr *attr, unsigned int size);             man 2 bpf
def bpf(command: int, attr: ctypes.Structure) -> int:
    """Run one bpf(2) command with `attr` (a filled union bpf_attr) and return its result."""
    return _check(_libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(command), ctypes.byref(attr),
                                ctypes.c_uint(ctypes.sizeof(attr))), "bpf")


# --- the filesystem user: whom new files belong to (final: cp) ----------------------
# Changing it from 0 drops CAP_CHOWN, CAP_DAC_OVERRIDE and the other file capabilities
# from the effective set (capabilities(7)); changing it back to 0 restores them.

# int setfsuid(uid_t fsuid);   int setfsgid(gid_t fsgid);            man 2 setfsuid
_libc.setfsuid.argtypes = [ctypes.c_uint]
_libc.setfsuid.restype = ctypes.c_int
_libc.setfsgid.argtypes = [ctypes.c_uint]
_libc.setfsgid.restype = ctypes.c_int


def setfsids(uid: int, gid: int) -> None:
    """Create files, and pass permission checks, as `uid`:`gid` (this thread only; see setfsuid(2))."""
    _libc.setfsgid(gid)  # returns the old id, never an error: the next call shows whether it took
    _libc.setfsuid(uid)
    if (_libc.setfsuid(0xFFFFFFFF), _libc.setfsgid(0xFFFFFFFF)) != (uid, gid):  # -1: change nothing, say the current
        raise PermissionError(f"setfsuid: not allowed to act as {uid}:{gid}")


# --- which filesystem a file is on (final: cp) ----------------------------------------

class _StatFs(ctypes.Structure):
    """struct statfs, from <sys/statfs.h>: its first field, the filesystem's magic number, and room for the rest."""
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 248)]


# int fstatfs(int fd, struct statfs *buf);                           man 2 fstatfs
_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.POINTER(_StatFs)]
_libc.fstatfs.restype = ctypes.c_int


def filesystem_type(fd: int) -> int:
    """The magic number of the filesystem that `fd` (O_PATH will do) is on: PROC_SUPER_MAGIC ... (statfs(2))."""
    buf = _StatFs()
    _check(_libc.fstatfs(fd, ctypes.byref(buf)), "fstatfs")
    return buf.f_type & 0xFFFFFFFF


# --- detached mounts: a filesystem held by an fd alone (final: cp) ------------------
# fsopen/fsconfig/fsmount build a mount that is attached nowhere: no mount table
# lists it, and it goes away when its last fd closes, even if the process is killed.

SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432   # the same on x86-64 and arm64
FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 0, 1, 6
MOUNT_ATTR_RDONLY = 0x1


# int fsopen(const char *fs_name, unsigned int flags);                 man 2 fsopen
def fsopen(fstype: str) -> int:
    """A filesystem context for `fstype`, to configure with fsconfig and mount with fsmount."""
    return _check(_libc.syscall(ctypes.c_long(SYS_FSOPEN), os.fsencode(fstype), ctypes.c_uint(1)), "fsopen", fstype)


# int fsconfig(int fs_fd, unsigned int cmd, const char *key, const void *value, int aux);   man 2 fsconfig
def fsconfig(fs_fd: int, key: str | None, value: str | None = None) -> None:
    """Set one option (a flag when `value` is None); with no `key`, create the filesystem."""
    command = FSCONFIG_CMD_CREATE if key is None else FSCONFIG_SET_FLAG if value is None else FSCONFIG_SET_STRING
    _check(_libc.syscall(ctypes.c_long(SYS_FSCONFIG), ctypes.c_int(fs_fd), ctypes.c_uint(command),
                         None if key is None else os.fsencode(key), None if value is None else os.fsencode(value),
                         ctypes.c_int(0)), "fsconfig", key)


# int fsmount(int fs_fd, unsigned int flags, unsigned int attr_flags);   man 2 fsmount
def fsmount(fs_fd: int, attr_flags: int = 0) -> int:
    """A detached mount of the created filesystem `fs_fd`: an fd of its root directory."""
    return _check(_libc.syscall(ctypes.c_long(SYS_FSMOUNT), ctypes.c_int(fs_fd), ctypes.c_uint(1),
                                ctypes.c_uint(attr_flags)), "fsmount")
# <<< chapter final
