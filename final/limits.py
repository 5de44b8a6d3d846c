# chapter: 03
"""Resource limits as Docker spells them: --memory 64m, --cpus 0.5, --pids-limit 100.

The flags are parsed here, once, into numbers in the kernel's units (bytes,
cores, processes), and anything no kernel would take is refused before a
cgroup exists; cgroups.py then writes the numbers into the files of
whichever cgroup layout the machine has.

    --memory 64m          bytes, with k, m, g, t, p as powers of 1024; at least 6m
    --memory-swap 128m    memory plus swap, at least --memory; -1: swap unlimited
    --cpus 0.5            a share of the cores: quota per 100 ms period
    --cpu-shares 512      a weight under contention: 1024 is the default
    --pids-limit 100      processes (and threads) at once; 0 or -1: no limit
"""

import os
import re
from dataclasses import dataclass, fields

from . import config
from .errors import DockyardError, UsageError


@dataclass
class Limits:
    """What `run` may use; None means no limit."""
    memory: int | None = None        # bytes
    memory_swap: int | None = None   # memory plus swap, bytes; -1: swap unlimited
    cpus: float | None = None        # cores' worth of CPU time
    cpu_shares: int | None = None    # relative weight, 1024 by default
    pids_limit: int | None = None    # processes and threads

    def flags(self) -> list[str]:
        """The command-line flags that asked for these limits."""
        return ["--" + f.name.replace("_", "-") for f in fields(self) if getattr(self, f.name) is not None]


SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp]?)(?:i?b)?$", re.IGNORECASE)


def parse_size(text: str, flag: str) -> int:
    """Docker's sizes: bytes, or a number with k, m, g, t, p (powers of 1024)."""
    # >>> exercise 3.1: Docker's sizes: 64m is 67108864 bytes
    # hint: SIZE matches a number and an optional unit (k, m, g, t, p; any case, "b"/"ib" after it);
    # hint: the unit is a power of 1024 (k = 1024**1 ... p = 1024**5), so 1.5g is int(1.5 * 1024**3).
    # hint: Anything SIZE does not match is a UsageError naming the flag, with a hint.
    # test: test_cgroups.py::test_each_limit_is_written_to_its_cgroup_file_in_the_kernels_units[memory]
    # test: test_cgroups.py::test_a_process_within_its_memory_limit_runs_to_the_end
    # test: test_exercises.py::test_memory_sizes_in_dockers_units_reach_the_kernel_in_bytes
    # stops: every run with --memory or --memory-swap
    match = SIZE.match(text.strip())
    if not match:
        raise UsageError(f"invalid {flag} {text!r} (a memory controller limit)",
                         hint="write a number with an optional unit: 64m, 512k, 1.5g")
    return int(float(match.group(1)) * 1024 ** "bkmgtp".index((match.group(2) or "b").lower()))
    # <<< exercise 3.1


def parse_number(text: str, flag: str, kind: type) -> int | float:
    """An int or float flag value, refused with a hint when it is neither."""
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"invalid {flag} {text!r}", hint=f"{flag} takes a number, e.g. {flag} 2") from None


def parse_limits(memory: str | None = None, memory_swap: str | None = None, cpus: str | None = None,
                 cpu_shares: str | None = None, pids_limit: str | None = None) -> Limits:
    """Turn Docker's flags into Limits, refusing what no kernel would take."""
    limits = Limits()
    if memory is not None and (size := parse_size(memory, "--memory")):  # 0: no limit, as in Docker
        if size < config.MIN_MEMORY:
            raise UsageError(f"--memory {memory} is below the memory controller's usable minimum (6MiB)",
                             hint="a container cannot even start in less: ask for --memory 6m or more")
        limits.memory = size
    if memory_swap is not None:
        limits.memory_swap = parse_swap(memory_swap, limits.memory)
    if cpus is not None and (value := parse_number(cpus, "--cpus", float)):
        limits.cpus = check_cpus(value)
    if cpu_shares is not None and (shares := parse_number(cpu_shares, "--cpu-shares", int)):
        low, high = config.CPU_SHARES_RANGE
        if not low <= shares <= high:
            raise UsageError(f"--cpu-shares {shares} is outside what the cpu controller takes ({low} to {high})",
                             hint="1024 is the default weight; 512 gets half as much CPU under contention")
        limits.cpu_shares = shares
    if pids_limit is not None:
        limits.pids_limit = parse_pids_limit(pids_limit)
    return limits


def parse_swap(text: str, memory: int | None) -> int:
    """--memory-swap: memory plus swap, at least --memory; -1 lets swap grow unlimited."""
    if memory is None:
        raise UsageError("--memory-swap needs --memory", hint="it is memory plus swap: --memory 64m --memory-swap 128m")
    total = -1 if text.strip() == "-1" else parse_size(text, "--memory-swap")
    if total != -1 and total < memory:
        raise UsageError(f"--memory-swap {text} is smaller than --memory",
                         hint="--memory-swap counts memory plus swap: make it at least --memory, or -1")
    return total


def check_cpus(value: float) -> float:
    """--cpus is a share of this machine's cores: more than 0, at most all of them."""
    cores = len(os.sched_getaffinity(0))
    if not 0 < value <= cores:
        raise UsageError(f"--cpus {value} is out of range for the cpu controller (0 to {cores} on this machine)",
                         hint=f"--cpus 0.5 is half a core; this machine has {cores}")
    return value


def parse_pids_limit(text: str) -> int | None:
    """--pids-limit: a positive count; 0 or -1 means no limit, as in Docker."""
    value = parse_number(text, "--pids-limit", int)
    if value < -1:
        raise UsageError(f"--pids-limit {value} is not a limit the pids controller takes",
                         hint="give a positive number of processes, or -1 for no limit")
    return value if value > 0 else None



def refuse_without_cgroup(limits: Limits, layout: str) -> None:
    """A container without a cgroup runs unlimited; asking for a limit there is an error."""
    if not limits.flags():
        return
    asked = ", ".join(limits.flags())
    if os.geteuid() != 0:
        raise DockyardError(f"cannot apply {asked}: a rootless container gets no cgroup ({layout})",
                            hint="run as root to set limits, or leave them out; rootless limits need cgroup v2 "
                                 "with a subtree delegated to your user (systemd Delegate=yes)")
    raise DockyardError(f"cannot apply {asked}: {layout}",
                        hint=f"mount one: mount -t cgroup2 none {config.CGROUP_MOUNT}")
