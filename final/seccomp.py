# chapter: final
"""seccomp: a small program, run by the kernel on every system call, says yes or no.

Capabilities guard what root may do; seccomp guards which system calls may be
made at all, whoever makes them. A filter is a classic BPF program (the one
tcpdump uses) that the kernel runs on a `struct seccomp_data` at each call:

    offset 0   nr         the syscall number       (differs per architecture)
    offset 4   arch       AUDIT_ARCH_X86_64, ...   (the same number can mean two calls)
    offset 16  args[6]    64-bit arguments, read as two 32-bit halves

and whose return value is the verdict: ALLOW, ERRNO(n) (the call fails with
errno n, never entering the kernel proper), KILL ... Once loaded, a filter can
never be removed, only stacked, and children inherit it across fork and exec.

Dockyard writes its profile in Docker's JSON format (`default_profile`), so a
user's `--security-opt seccomp=FILE` and our default go through one compiler:

    rules    pick the entries that apply (includes/excludes: caps, arch, kernel)
    ranges   every syscall number gets a verdict; neighbours with the same one merge
    tree     a binary search over the ranges (~8 comparisons, not ~350)
    leaves   a verdict, or a few argument checks (clone's flags, personality ...)

The filter checks the architecture first: a 64-bit process may still make
32-bit calls (int 0x80, or x32's numbers with bit 30 set), which index other
tables; those are denied whole.
"""

import errno
import functools
import json
import os
import struct

from . import libc, syscalls
from .errors import DockyardError

# --- the default profile -----------------------------------------------------------
# Docker's default allowlist (moby's profiles/seccomp/default.json), less io_uring,
# whose rings reach many kernel paths that seccomp never sees.
ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown clock_adjtime
clock_getres clock_gettime clock_nanosleep close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd
eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod
fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
fstatfs fsync ftruncate futex futex_requeue futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents
getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresuid getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area
gettid gettimeofday getuid getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents ioprio_get ioprio_set io_setup io_submit ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lgetxattr link linkat listen listxattr
listxattrat llistxattr lremovexattr lseek lsetxattr lstat madvise map_shadow_stack membarrier memfd_create
memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect mq_getsetattr mq_notify
mq_open mq_timedreceive mq_timedsend mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2
pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg recvmsg remap_file_pages
removexattr removexattrat rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
select semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid setgroups
setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 socketpair splice stat statfs statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_settime timerfd_create
timerfd_gettime timerfd_settime times tkill truncate umask uname unlink unlinkat utime utimensat utimes vfork
vmsplice wait4 waitid write writev
process_vm_readv process_vm_writev ptrace
"""
# Calls allowed only when the container holds the capability that the kernel checks for them anyway.
CAPABILITY_GATED = {
    "CAP_SYS_ADMIN": "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount "
                     "mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname "
                     "sethostname setns syslog umount2 unshare",
    "CAP_SYS_BOOT": "reboot", "CAP_SYS_CHROOT": "chroot", "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct", "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise",
    "CAP_SYS_RAWIO": "iopl ioperm", "CAP_SYS_TIME": "settimeofday clock_settime",
    "CAP_SYS_TTY_CONFIG": "vhangup", "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog", "CAP_BPF": "bpf", "CAP_PERFMON": "perf_event_open",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
}
CLONE_NAMESPACE_FLAGS = 0x7E020000   # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
AF_VSOCK = 40                        # sockets to the hypervisor: outside every container boundary
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # LINUX, UNAME26 bits, and the query


def default_profile() -> dict:
    """Dockyard's default profile, in Docker's JSON format."""
    no_sys_admin = {"caps": ["CAP_SYS_ADMIN"]}
    rules = [{"names": ALLOWED.split(), "action": "SCMP_ACT_ALLOW"},
             {"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
             {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
              "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]},
             {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": no_sys_admin,
              "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
             # ENOSYS, not EPERM: glibc then falls back to clone, whose flags we can read (clone3's sit in memory).
             {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS, "excludes": no_sys_admin}]
    rules += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]} for value in PERSONALITIES]
    rules += [{"names": names.split(), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}
              for cap, names in CAPABILITY_GATED.items()]
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EPERM, "syscalls": rules}


def read_profile(path: str) -> dict:
    """Read a profile for --security-opt seccomp=FILE, checking it compiles."""
    try:
        with open(path) as f:
            profile = json.load(f)
        compile_profile(profile, [])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DockyardError(f"cannot use seccomp profile {path}: {err}",
                            hint="give a JSON profile in Docker's format, e.g. moby's profiles/seccomp/default.json")
    return profile


# --- choosing the rules ---------------------------------------------------------------

SECCOMP_RET = {"SCMP_ACT_KILL": 0, "SCMP_ACT_KILL_THREAD": 0, "SCMP_ACT_KILL_PROCESS": 0x80000000,
               "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
               "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000}
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}   # the names Docker's includes/excludes use
ARG_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
           "SCMP_CMP_MASKED_EQ")


def verdict(action: str, errno_ret: int | None, profile: dict) -> int:
    """The filter's return value for a Docker action name."""
    if action not in SECCOMP_RET:
        raise ValueError(f"unknown action {action!r}")
    data = errno_ret if errno_ret is not None else profile.get("defaultErrnoRet", errno.EPERM)
    return SECCOMP_RET[action] | (data & 0xFFFF if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else 0)


def applies(entry: dict, caps: list[str], machine: str) -> bool:
    """Whether a profile entry's includes hold and its excludes do not, on `machine` (uname -m)."""
    go_arch, kernel = GO_ARCH.get(machine, ""), kernel_version()
    def holds(cond: dict, every: bool) -> bool:
        combine = all if every else any
        tests = []
        if cond.get("caps"):
            tests.append(combine(cap in caps for cap in cond["caps"]))
        if cond.get("arches"):
            tests.append(go_arch in cond["arches"])
        if cond.get("minKernel"):
            tests.append(kernel >= version_tuple(cond["minKernel"]))
        return combine(tests)
    return holds(entry.get("includes") or {}, True) and not holds(entry.get("excludes") or {}, False)


@functools.cache  # asked once per rule: one uname(2) is enough
def kernel_version() -> tuple[int, ...]:
    return version_tuple(os.uname().release)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split(".")[:2] if part.isdigit())


def rules_by_number(profile: dict, caps: list[str], table: dict[str, int], machine: str) -> dict[int, list]:
    """syscall number -> [(conditions, verdict)], conditional rules first; names this arch lacks are skipped."""
    rules: dict[int, list] = {}
    for entry in profile.get("syscalls") or []:
        if not applies(entry, caps, machine):
            continue
        ret = verdict(entry["action"], entry.get("errnoRet"), profile)
        conditions = tuple(condition(arg) for arg in entry.get("args") or [])
        for name in entry.get("names") or [entry.get("name")]:
            if name in table:
                rules.setdefault(table[name], []).append((conditions, ret))
    return {nr: sorted(rs, key=lambda rule: not rule[0]) for nr, rs in rules.items()}


def condition(arg: dict) -> tuple[int, str, int, int]:
    """(index, op, value, valueTwo) of one argument check, validated."""
    if arg["op"] not in ARG_OPS or not 0 <= arg["index"] < 6:
        raise ValueError(f"bad argument rule {arg}")
    return arg["index"], arg["op"], int(arg.get("value", 0)), int(arg.get("valueTwo", 0))


# --- classic BPF ------------------------------------------------------------------------
# struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }: jt/jf are how many
# instructions to skip when a comparison is true/false, so jumps only go forward.

LD_ABS, AND_K, JA = 0x20, 0x54, 0x05                # BPF_LD|BPF_W|BPF_ABS, BPF_ALU|BPF_AND|BPF_K, BPF_JMP|BPF_JA
JEQ, JGT, JGE, RET = 0x15, 0x25, 0x35, 0x06         # BPF_JMP|BPF_J*|BPF_K, BPF_RET|BPF_K
NR, ARCH = 0, 4                                     # offsets in struct seccomp_data


def arg_offset(index: int, high: bool) -> int:
    return 16 + 8 * index + (4 if high else 0)      # little-endian: the low half comes first


class Program:
    """An assembler: instructions whose jumps may name labels, resolved at the end."""

    def __init__(self) -> None:
        self.code: list[tuple] = []
        self.labels: dict[str, int] = {}
        self.count = 0

    def op(self, code: int, k: int = 0, jt: int | str = 0, jf: int | str = 0) -> None:
        self.code.append((code, jt, jf, k & 0xFFFFFFFF))

    def label(self) -> str:
        self.count += 1
        return f"L{self.count}"

    def place(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def jump(self, name: str) -> None:
        self.code.append((JA, 0, 0, name))

    def assemble(self) -> bytes:
        out = bytearray()
        for at, (code, jt, jf, k) in enumerate(self.code):
            def offset(target: int | str) -> int:
                return target if isinstance(target, int) else self.labels[target] - at - 1
            jt, jf, k = offset(jt), offset(jf), (offset(k) if isinstance(k, str) else k)
            if not (0 <= jt < 256 and 0 <= jf < 256):
                raise ValueError("a conditional jump reaches too far")
            out += struct.pack("<HBBI", code, jt, jf, k)
        return bytes(out)


def compile_profile(profile: dict, caps: list[str], machine: str = "") -> bytes:
    """Compile a Docker-format profile, for a process holding `caps`, to a filter for this machine (or `machine`)."""
    machine = machine or os.uname().machine
    audit_arch, table = syscalls.ARCHES[machine] if machine in syscalls.ARCHES else syscalls.native()
    default = verdict(profile["defaultAction"], None, profile)
    deny = SECCOMP_RET["SCMP_ACT_ERRNO"] | errno.EPERM
    program = Program()
    program.op(LD_ABS, ARCH)
    program.op(JEQ, audit_arch, jt=1)                   # the architecture we have the table for ...
    program.op(RET, deny)                               # ... or nothing (i386's int 0x80 calls)
    program.op(LD_ABS, NR)
    if audit_arch == syscalls.AUDIT_ARCH_X86_64:
        program.op(JGE, syscalls.X32_SYSCALL_BIT, jf=1)  # x32: the same arch, numbers with bit 30
        program.op(RET, deny)
    emit_tree(program, ranges(rules_by_number(profile, caps, table, machine), default), default)
    return program.assemble()


def ranges(rules: dict[int, list], default: int) -> list[tuple[int, list]]:
    """[(first number, rules)]: each run of neighbouring numbers with the same rules, up to 2**32."""
    out: list[tuple[int, list]] = []
    for nr in range(max(rules, default=0) + 2):
        key = rules.get(nr, [])
        if not out or out[-1][1] != key:
            out.append((nr, key))
    return out


def emit_tree(program: Program, runs: list[tuple[int, list]], default: int) -> None:
    """A binary search on the syscall number (in A) down to the run it falls in."""
    if len(runs) == 1:
        emit_leaf(program, runs[0][1], default)
        return
    middle = len(runs) // 2
    upper = program.label()
    program.op(JGE, runs[middle][0], jf=1)  # nr >= split: take the jump to the upper half
    program.jump(upper)
    emit_tree(program, runs[:middle], default)
    program.place(upper)
    emit_tree(program, runs[middle:], default)


def emit_leaf(program: Program, rules: list, default: int) -> None:
    """Try each rule's argument checks in order; the first that passes gives its verdict."""
    for conditions, ret in rules:
        failed = program.label()
        for index, op, value, value_two in conditions:
            emit_check(program, index, op, value, value_two, failed)
        program.op(RET, ret)
        program.place(failed)
        if not conditions:
            return  # an unconditional rule ends the list
    program.op(RET, default)


def emit_check(program: Program, index: int, op: str, value: int, value_two: int, failed: str) -> None:
    """Fall through if args[index] `op` value holds, else jump to `failed`: 64 bits, as two halves."""
    hi, lo = value >> 32 & 0xFFFFFFFF, value & 0xFFFFFFFF
    passed = program.label()
    program.op(LD_ABS, arg_offset(index, high=True))
    if op == "SCMP_CMP_MASKED_EQ":
        program.op(AND_K, hi)
        program.op(JEQ, value_two >> 32 & 0xFFFFFFFF, jf=failed)
        program.op(LD_ABS, arg_offset(index, high=False))
        program.op(AND_K, lo)
        program.op(JEQ, value_two & 0xFFFFFFFF, jf=failed)
    elif op in ("SCMP_CMP_EQ", "SCMP_CMP_NE"):
        equal, differ = (0, failed) if op == "SCMP_CMP_EQ" else (0, passed)
        program.op(JEQ, hi, jt=equal, jf=differ)
        program.op(LD_ABS, arg_offset(index, high=False))
        program.op(JEQ, lo, jt=0 if op == "SCMP_CMP_EQ" else failed, jf=failed if op == "SCMP_CMP_EQ" else 0)
    else:  # an ordering: the high halves decide unless they are equal
        greater = op in ("SCMP_CMP_GT", "SCMP_CMP_GE")
        program.op(JGT, hi, jt=passed if greater else failed)
        program.op(JEQ, hi, jf=failed if greater else passed)
        program.op(LD_ABS, arg_offset(index, high=False))
        test = JGT if op in ("SCMP_CMP_GT", "SCMP_CMP_LE") else JGE
        program.op(test, lo, jt=0 if greater else failed, jf=failed if greater else 0)
    program.place(passed)


def load(profile: dict, caps: list[str]) -> None:
    """Compile `profile` and attach it to this process, for good. Call in the child, just before exec."""
    libc.seccomp_set_filter(compile_profile(profile, caps))
