"""cgroup v1, the older layout: one tree per controller.

v1 mounts each controller (or a few together) as a tree of its own,
/sys/fs/cgroup/memory, /sys/fs/cgroup/cpu, /sys/fs/cgroup/pids, ... so a
container gets a directory in each tree and its pid is written into each.
The ideas are v2's; the file names are not:

    cgroup v2                        cgroup v1
    memory.max                       memory/memory.limit_in_bytes
    memory.swap.max (swap alone)     memory/memory.memsw.limit_in_bytes (memory + swap)
    memory.current                   memory/memory.usage_in_bytes
    memory.events: oom_kill N        memory/memory.oom_control: oom_kill N
    cpu.max: "quota period"          cpu/cpu.cfs_quota_us and cpu/cpu.cfs_period_us
    cpu.weight (1 to 10000)          cpu/cpu.shares (2 to 262144)
    cpu.stat: usage_usec             cpuacct/cpuacct.usage (nanoseconds)
    pids.max, pids.current           pids/pids.max, pids/pids.current
"""

import os

from . import config
from .cgroupfs import Layout, Setting, Usage, read_int, read_keyed
from .limits import Limits

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
# v1 writes "no limit" as the largest page-aligned number; anything this big means none.
UNLIMITED = 1 << 62


def cgroup_dirs(layout: Layout, container_id: str) -> dict[str, str]:
    """The container's directory in the tree of each controller we use."""
    return {name: os.path.join(layout.trees[name], config.CGROUP_PARENT, container_id)
            for name in V1_CONTROLLERS if name in layout.trees}


# --8<-- [start:v1_settings]
def settings(limits: Limits) -> list[Setting]:
    """The cgroup v1 files that carry these limits, in an order the kernel accepts."""
    settings = []
    if limits.memory is not None:
        settings.append(Setting("memory", "memory.limit_in_bytes", str(limits.memory), "--memory"))
        # memsw counts memory plus swap, so it must not be below limit_in_bytes: written second.
        total = 2 * limits.memory if limits.memory_swap is None else limits.memory_swap
        settings.append(Setting("memory", "memory.memsw.limit_in_bytes", str(total), "--memory-swap",
                                optional=limits.memory_swap is None))
    if limits.cpus is not None:
        settings.append(Setting("cpu", "cpu.cfs_period_us", str(config.CPU_PERIOD_US), "--cpus"))
        quota = round(limits.cpus * config.CPU_PERIOD_US)
        settings.append(Setting("cpu", "cpu.cfs_quota_us", str(quota), "--cpus"))
    if limits.cpu_shares is not None:
        settings.append(Setting("cpu", "cpu.shares", str(limits.cpu_shares), "--cpu-shares"))
    if limits.pids_limit is not None:
        settings.append(Setting("pids", "pids.max", str(limits.pids_limit), "--pids-limit"))
    return settings
# --8<-- [end:v1_settings]


def missing_hint(setting: Setting) -> str:
    """What to do when a v1 controller, or one of its files, is missing."""
    if setting.file.startswith("memory.memsw"):
        return "this kernel does not account swap: boot it with swapaccount=1, or leave out --memory-swap"
    tree = f"{config.CGROUP_MOUNT}/{setting.controller}"
    return f"mount its tree: mkdir -p {tree} && mount -t cgroup -o {setting.controller} cgroup {tree}"


def usage(dirs: dict[str, str]) -> Usage:
    """Read the counters of a container from its directories in the v1 trees."""
    memory = dirs.get("memory", "/nonexistent")
    limit = read_int(os.path.join(memory, "memory.limit_in_bytes"))
    inactive = read_keyed(os.path.join(memory, "memory.stat")).get("total_inactive_file", 0)
    return Usage(memory=read_int(os.path.join(memory, "memory.usage_in_bytes")) - inactive,
                 memory_limit=None if limit == 0 or limit >= UNLIMITED else limit,
                 cpu_ns=read_int(os.path.join(dirs.get("cpuacct", "/nonexistent"), "cpuacct.usage")),
                 pids=read_int(os.path.join(dirs.get("pids", "/nonexistent"), "pids.current")))


def oom_kills(dirs: dict[str, str]) -> int:
    """OOM kills in the container's memory cgroup (memory.oom_control has them since Linux 4.13)."""
    memory = dirs.get("memory", "/nonexistent")
    control = read_keyed(os.path.join(memory, "memory.oom_control"))
    if "oom_kill" in control:
        return control["oom_kill"]
    return read_int(os.path.join(memory, "memory.failcnt"))  # older kernels: it hit the limit, at least


def warnings(layout: Layout) -> list[tuple[str, str]]:
    """`info` warnings for what this v1 machine cannot limit."""
    found = [("WARNING", f"no {name} controller: limits that need it are refused")
             for name in V1_CONTROLLERS if name not in layout.trees]
    memory = layout.trees.get("memory")
    if memory and not os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):
        found.append(("WARNING", "No swap limit support (boot with swapaccount=1)"))
    return found
