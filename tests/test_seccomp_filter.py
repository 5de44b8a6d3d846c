"""final/ only: the seccomp compiler's output, run by a small classic-BPF interpreter.

The black-box tests (test_security.py) see the filter on this machine only.
These run the compiled program for both architectures Dockyard knows, and
check the 64-bit argument comparisons against Python's own, value by value.
"""

import errno
import json
import os
import random
import struct
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOW, ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = ERRNO | errno.EPERM, ERRNO | errno.ENOSYS
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17


def compiled(profile: dict | None, caps: list[str], machine: str) -> tuple[bytes, dict, int]:
    """(program, syscall table, audit arch), compiled by final/ in a subprocess (its own import path)."""
    code = f"""
import json, sys
sys.path.insert(0, {REPO!r})
from final import capabilities, seccomp, syscalls
profile = json.loads(sys.stdin.read()) or seccomp.default_profile()
program = seccomp.compile_profile(profile, {caps!r}, {machine!r})
arch, table = syscalls.ARCHES[{machine!r}]
print(json.dumps({{"program": program.hex(), "table": table, "arch": arch}}))
"""
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(profile or {}), capture_output=True,
                         text=True, check=True).stdout
    data = json.loads(out)
    return bytes.fromhex(data["program"]), data["table"], data["arch"]


def run_filter(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Run a classic BPF seccomp program on struct seccomp_data; return its verdict."""
    args = (tuple(args) + (0,) * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    a, pc = 0, 0
    code = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x20:                                   # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif op == 0x54:                                 # and #k
            a &= k
        elif op == 0x05:                                 # ja
            pc += k
        elif op in (0x15, 0x25, 0x35):                   # jeq, jgt, jge
            taken = {0x15: a == k, 0x25: a > k, 0x35: a >= k}[op]
            pc += jt if taken else jf
        elif op == 0x06:                                 # ret
            return k
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_default_filter_decides_as_dockers_profile_on_both_architectures(machine):
    program, table, arch = compiled(None, ["CAP_CHOWN", "CAP_SETUID"], machine)
    def verdict(name: str, *args: int) -> int:
        return run_filter(program, table[name], arch, args)
    assert verdict("openat") == verdict("getpid") == verdict("execve") == ALLOW
    assert verdict("mount") == verdict("unshare") == verdict("bpf") == verdict("keyctl") == EPERM
    assert verdict("io_uring_setup") == verdict("kexec_load") == EPERM
    assert verdict("clone3") == ENOSYS
    assert verdict("clone", SIGCHLD) == ALLOW and verdict("clone", CLONE_NEWUSER | SIGCHLD) == EPERM
    assert verdict("personality", 0xFFFFFFFF) == verdict("personality", 8) == ALLOW
    assert verdict("personality", 6) == EPERM
    assert verdict("socket", 2) == ALLOW and verdict("socket", 40) == EPERM  # AF_INET yes, AF_VSOCK no
    assert verdict("socket", 40 | 1 << 32) == ALLOW  # the whole 64-bit argument is compared
    assert run_filter(program, table["getpid"], arch ^ 1) == EPERM  # another architecture: denied whole
    assert run_filter(program, max(table.values()) + 100, arch) == EPERM  # an unknown number: the default


def test_x32_numbers_are_denied_on_x86_64():
    program, table, arch = compiled(None, [], "x86_64")
    assert run_filter(program, table["getpid"], arch) == ALLOW
    assert run_filter(program, table["getpid"] | 0x40000000, arch) == EPERM


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_a_capability_opens_exactly_the_calls_it_gates(machine):
    without, table, arch = compiled(None, [], machine)
    with_admin, _, _ = compiled(None, ["CAP_SYS_ADMIN"], machine)
    changed = {name for name, nr in table.items()
               if run_filter(without, nr, arch, (CLONE_NEWUSER,)) != run_filter(with_admin, nr, arch, (CLONE_NEWUSER,))}
    assert changed == {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                       "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                       "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount2",
                       "unshare"} & set(table)


OPS = {"SCMP_CMP_NE": lambda a, v, w: a != v, "SCMP_CMP_LT": lambda a, v, w: a < v,
       "SCMP_CMP_LE": lambda a, v, w: a <= v, "SCMP_CMP_EQ": lambda a, v, w: a == v,
       "SCMP_CMP_GE": lambda a, v, w: a >= v, "SCMP_CMP_GT": lambda a, v, w: a > v,
       "SCMP_CMP_MASKED_EQ": lambda a, v, w: a & v == w}


@pytest.mark.parametrize("op", sorted(OPS))
def test_each_argument_comparison_matches_64_bit_arithmetic(op):
    value, value_two = 0x0000_0001_8000_0000, 0x0000_0001_0000_0000
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                             "args": [{"index": 2, "value": value, "valueTwo": value_two, "op": op}]}]}
    program, table, arch = compiled(profile, [], "x86_64")
    rng = random.Random(op)
    edges = [0, 1, value - 1, value, value + 1, value_two, 0xFFFF_FFFF, 1 << 32, value ^ 1 << 32,
             0xFFFF_FFFF_FFFF_FFFF]
    for arg in edges + [rng.getrandbits(64) for _ in range(200)] + [rng.getrandbits(33) for _ in range(200)]:
        expected = ERRNO | 99 if OPS[op](arg, value, value_two) else ALLOW
        assert run_filter(program, table["getpid"], arch, (0, 0, arg)) == expected, hex(arg)
