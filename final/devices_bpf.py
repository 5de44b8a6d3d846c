# chapter: final
"""cgroup v2's device rules: an eBPF program, assembled here, that the kernel runs at each open.

cgroup v2 dropped v1's devices.allow and devices.deny. Instead a program of
type BPF_PROG_TYPE_CGROUP_DEVICE is attached to a cgroup; whenever a process
in it opens or makes a device node, the kernel calls the program with

    struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; };
    access_type = access << 16 | type     access: 1 mknod, 2 read, 4 write; type: 1 block, 2 char

and lets the operation through if it returns 1. The same rules as v1
("c 136:* rwm") become one block of compare-and-jump each; the first block
that matches returns 1, falling off the end returns 0.

    r2 = ctx->access_type     r3 = r2 & 0xffff  (type)     r4 = r2 >> 16  (access)
    r5 = ctx->major           r6 = ctx->minor
    rule: if r3 != TYPE goto next; r7 = r4 & ~ACCESS; if r7 != 0 goto next;
          if r5 != MAJOR goto next; if r6 != MINOR goto next; return 1
    return 0

eBPF, unlike seccomp's classic BPF, has ten 64-bit registers and signed 16-bit
jump offsets; bpf(2) loads the program (the kernel's verifier checks it first)
and attaches it to the cgroup's directory fd.
"""

import ctypes
import os
import struct

from . import libc

BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE = 15, 6
BPF_F_ALLOW_MULTI = 2                       # leave programs of parent cgroups (systemd's) in force
TYPES = {"b": 1, "c": 2}
ACCESS = {"m": 1, "r": 2, "w": 4}

# eBPF opcodes: class | operation | source
LDX_W = 0x61                                # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
MOV_REG, MOV_IMM = 0xBF, 0xB7               # BPF_ALU64 | BPF_MOV | BPF_X / BPF_K
AND_IMM, RSH_IMM = 0x57, 0x77               # BPF_ALU64 | BPF_AND / BPF_RSH | BPF_K
JNE_IMM, EXIT = 0x55, 0x95                  # BPF_JMP | BPF_JNE | BPF_K, BPF_JMP | BPF_EXIT


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """struct bpf_insn: u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm."""
    return struct.pack("<BBhi", code, src << 4 | dst, off, imm)


def parse_rule(rule: str) -> tuple[int | None, int | None, int | None, int]:
    """'c 136:* rwm' -> (type, major, minor, access bits); None is a wildcard."""
    kind, numbers, access = rule.split()
    major, minor = numbers.split(":")
    return (TYPES.get(kind), None if major == "*" else int(major), None if minor == "*" else int(minor),
            sum(ACCESS[letter] for letter in access))


def assemble(rules: list[str]) -> bytes:
    """The program that allows exactly `rules` (v1's syntax) and denies everything else."""
    code = [insn(LDX_W, 2, 1, 0), insn(MOV_REG, 3, 2), insn(AND_IMM, 3, imm=0xFFFF),
            insn(MOV_REG, 4, 2), insn(RSH_IMM, 4, imm=16), insn(LDX_W, 5, 1, 4), insn(LDX_W, 6, 1, 8)]
    for rule in rules:
        code += rule_block(rule)
    return b"".join(code + [insn(MOV_IMM, 0, imm=0), insn(EXIT)])


# --8<-- [start:rule_block]
def rule_block(rule: str) -> list[bytes]:
    """One rule: each check jumps past the block when it fails; passing them all returns 1."""
    kind, major, minor, access = parse_rule(rule)
    steps: list[tuple] = []                             # (code, dst, src, imm); JNE goes to the next rule
    if kind is not None:
        steps.append((JNE_IMM, 3, 0, kind))
    steps += [(MOV_REG, 7, 4, 0), (AND_IMM, 7, 0, ~access & 0xFFFF), (JNE_IMM, 7, 0, 0)]  # more than allowed?
    if major is not None:
        steps.append((JNE_IMM, 5, 0, major))
    if minor is not None:
        steps.append((JNE_IMM, 6, 0, minor))
    steps += [(MOV_IMM, 0, 0, 1), (EXIT, 0, 0, 0)]
    return [insn(code, dst, src, len(steps) - at - 1 if code == JNE_IMM else 0, imm)
            for at, (code, dst, src, imm) in enumerate(steps)]
# --8<-- [end:rule_block]


class _ProgLoad(ctypes.Structure):
    """The BPF_PROG_LOAD part of union bpf_attr (up to expected_attach_type)."""
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32)]


class _ProgAttach(ctypes.Structure):
    """The BPF_PROG_ATTACH part of union bpf_attr."""
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


def attach(cgroup_dir: str, rules: list[str]) -> None:
    """Load the program for `rules` and attach it to the cgroup v2 directory `cgroup_dir`."""
    program = ctypes.create_string_buffer(assemble(rules))
    license = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    load = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(program.raw) // 8,
                     insns=ctypes.addressof(program), license=ctypes.addressof(license), log_level=1,
                     log_size=len(log), log_buf=ctypes.addressof(log), prog_name=b"dockyard_dev",
                     expected_attach_type=BPF_CGROUP_DEVICE)
    try:
        program_fd = libc.bpf(BPF_PROG_LOAD, load)
    except OSError as err:
        raise OSError(err.errno, f"the kernel refused the device program: {log.value.decode(errors='replace')}")
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        libc.bpf(BPF_PROG_ATTACH, _ProgAttach(target_fd=cgroup_fd, attach_bpf_fd=program_fd,
                                              attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI))
    finally:
        os.close(cgroup_fd)
        os.close(program_fd)  # the cgroup holds the program now; it goes when the cgroup does
