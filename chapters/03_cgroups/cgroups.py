"""Chapter 3: cgroups, or limiting what a container may use.

Namespaces decide what a container can *see*; control groups decide how much
it may *use*. A cgroup is a directory in a filesystem of its own. Every
process belongs to one cgroup, which its children inherit; writing a pid into
a cgroup's `cgroup.procs` moves it there, and the controllers (memory, cpu,
pids, ...) hold every process inside to the limits written in its files.

cgroup v2 is a single tree, mounted at /sys/fs/cgroup:

    /sys/fs/cgroup/                cgroup.controllers: what this kernel offers
    └── dockyard/                  cgroup.subtree_control: +memory +cpu +pids
        └── 3f2a...e1/             one container
            ├── cgroup.procs       the pids inside it
            ├── memory.max         memory.current   memory.events (oom_kill N)
            ├── cpu.max            cpu.weight       cpu.stat (usage_usec)
            └── pids.max           pids.current

cgroup v1, the older layout, mounts one tree per controller at
/sys/fs/cgroup/<controller>, with other file names (see cgroups_v1.py). Many
machines have both, "hybrid": v1 controllers, plus a cgroup2 tree at
/sys/fs/cgroup/unified that holds none of them.

The engine makes the cgroup before the container's child exists and moves
the child in while it still waits for "go", so the command never runs one
instruction unlimited. The child then unshares a cgroup namespace: from
inside, its own cgroup is "/".

New here:  cgroupfs (mkdir, write, rmdir), CLONE_NEWCGROUP, flock(2), the OOM killer
Try it:    sudo python3 -m chapters.03_cgroups run -i --memory 64m --rootfs ROOTFS sh
Not yet:   every container writes into its rootfs for all to see; see chapter 4.
"""

import errno
import functools
import os
import signal
import time

from . import cgroups_v1, config, libc, liveness
from .cgroupfs import Layout, Setting, Usage, read_int, read_keyed, read_text
from .errors import DockyardError
from .limits import Limits, refuse_without_cgroup

V2_CONTROLLERS = ("memory", "cpu", "pids")


class OOMKilled(DockyardError):
    """The kernel's OOM killer ended the container: exit 137, as in Docker."""

    exit_code = 137


# --- where the controllers live ----------------------------------------------------

@functools.cache
def detect() -> Layout:
    """Learn the layout from the mount table: a cgroup2 mount at /sys/fs/cgroup means v2."""
    with open("/proc/self/mountinfo") as f:
        return layout_of(f.read(), kernel_controllers())


def layout_of(mountinfo: str, v1_names: list[str]) -> Layout:
    """The layout that a mountinfo text describes; v1_names: controller names the kernel knows."""
    v1: dict[str, str] = {}
    v2: list[str] = []
    for line in mountinfo.splitlines():
        mount_fields, _, tail = line.partition(" - ")
        mount_point = mount_fields.split()[4].replace("\\040", " ")
        fstype, _source, options = tail.split()[:3]
        if fstype == "cgroup2":
            v2.append(mount_point)
        elif fstype == "cgroup":  # v1: the super options name the controllers of this tree
            v1.update({name: mount_point for name in options.split(",") if name in v1_names})
    if config.CGROUP_MOUNT in v2:
        available = read_words(os.path.join(config.CGROUP_MOUNT, "cgroup.controllers"))
        return Layout(2, {name: config.CGROUP_MOUNT for name in available})
    return Layout(1 if v1 else 0, v1, unified=v2[0] if v2 else None)


def cgroup_dirs(layout: Layout, container_id: str) -> dict[str, str]:
    """The container's cgroup in each tree we use: controller -> directory."""
    if layout.version == 2:
        # One directory for all; "" stands for the core files (cgroup.procs, cpu.stat).
        return {name: os.path.join(config.CGROUP_MOUNT, config.CGROUP_PARENT, container_id)
                for name in ("", *V2_CONTROLLERS)}
    return cgroups_v1.cgroup_dirs(layout, container_id)


def parent_dirs(layout: Layout) -> list[str]:
    """The `dockyard` parent in each tree we use."""
    return sorted({os.path.dirname(d) for d in cgroup_dirs(layout, "x").values()})


# --- a container's cgroup: create, join, remove ----------------------------------------

# --8<-- [start:v2_settings]
def v2_settings(limits: Limits) -> list[Setting]:
    """The cgroup v2 files that carry these limits."""
    settings = []
    if limits.memory is not None:
        settings.append(Setting("memory", "memory.max", str(limits.memory), "--memory"))
        # memory.swap.max counts swap alone; Docker's default lets a container swap as much as --memory.
        swap = limits.memory if limits.memory_swap is None else limits.memory_swap - limits.memory
        settings.append(Setting("memory", "memory.swap.max", "max" if limits.memory_swap == -1 else str(swap),
                                "--memory-swap", optional=limits.memory_swap is None))
    if limits.cpus is not None:
        quota = round(limits.cpus * config.CPU_PERIOD_US)
        settings.append(Setting("cpu", "cpu.max", f"{quota} {config.CPU_PERIOD_US}", "--cpus"))
    if limits.cpu_shares is not None:
        settings.append(Setting("cpu", "cpu.weight", str(shares_to_weight(limits.cpu_shares)), "--cpu-shares"))
    if limits.pids_limit is not None:
        settings.append(Setting("pids", "pids.max", str(limits.pids_limit), "--pids-limit"))
    return settings
# --8<-- [end:v2_settings]


def shares_to_weight(shares: int) -> int:
    """Map v1's cpu.shares (2..262144) onto v2's cpu.weight (1..10000), as runc does."""
    return 1 + (shares - 2) * 9999 // 262142


# --8<-- [start:create]
def create(container_id: str, limits: Limits) -> bool:
    """Make the container's cgroup and write its limits; False when it gets none (rootless)."""
    layout = detect()
    if os.geteuid() != 0 or layout.version == 0:
        refuse_without_cgroup(limits, layout.describe())
        return False
    with liveness.engine_lock():
        remove_leftovers(layout)
        liveness.hold(container_id)
    try:
        with liveness.engine_lock():
            make_cgroup(layout, container_id)
        apply(layout, container_id, settings_for(layout, limits))
    except BaseException:
        remove(container_id)  # no cgroup may outlive a refused request
        raise
    return True
# --8<-- [end:create]


def settings_for(layout: Layout, limits: Limits) -> list[Setting]:
    """The files to write on this layout."""
    if layout.version == 2:
        return v2_settings(limits)
    return cgroups_v1.settings(limits)


def make_cgroup(layout: Layout, container_id: str) -> None:
    """mkdir the container's cgroup in every tree; on v2, hand the controllers down first."""
    if layout.version == 2:
        parent = parent_dirs(layout)[0]
        os.makedirs(parent, exist_ok=True)
        # v2 controllers work only in a child whose parent lists them in cgroup.subtree_control.
        wanted = [name for name in V2_CONTROLLERS if name in layout.trees]
        enable_controllers(config.CGROUP_MOUNT, wanted)
        enable_controllers(parent, wanted)
    for directory in sorted(set(cgroup_dirs(layout, container_id).values())):
        os.makedirs(directory)


def enable_controllers(directory: str, names: list[str]) -> None:
    """Write +name to cgroup.subtree_control for each name not there yet."""
    path = os.path.join(directory, "cgroup.subtree_control")
    for name in set(names) - set(read_words(path)):
        try:
            write(path, f"+{name}")
        except OSError:
            pass  # this controller stays off; a limit that needs it is refused in apply()


def apply(layout: Layout, container_id: str, settings: list[Setting]) -> None:
    """Write each setting, turning the kernel's refusals into errors with hints."""
    dirs = cgroup_dirs(layout, container_id)
    for setting in settings:
        path = os.path.join(dirs.get(setting.controller, "/nonexistent"), setting.file)
        if not os.path.exists(path):
            if setting.optional:
                continue
            raise missing_controller(layout, setting)
        try:
            write(path, setting.value)
        except OSError as err:
            raise DockyardError(
                f"the {setting.controller} controller refused {setting.file} = {setting.value!r} "
                f"for {setting.flag} ({layout.describe()}): {err.strerror}",
                hint=REFUSAL_HINTS.get(setting.flag, f"try another value for {setting.flag}")) from err


REFUSAL_HINTS = {
    "--cpus": "the kernel grants at least 1ms of CPU per 100ms period: use --cpus 0.01 or more",
    "--memory": "the container may already use more than that: give it more memory",
}


def missing_controller(layout: Layout, setting: Setting) -> DockyardError:
    """The error for a limit whose controller (or file) this kernel does not offer."""
    if layout.version == 2:
        hint = (f"enable it: echo +{setting.controller} > {config.CGROUP_MOUNT}/cgroup.subtree_control "
                f"(or boot without cgroup_disable={setting.controller})")
    else:
        hint = cgroups_v1.missing_hint(setting)
    return DockyardError(f"cannot apply {setting.flag}: the {setting.controller} controller has no "
                         f"{setting.file} here ({layout.describe()})", hint=hint)


def join(container_id: str, pid: int) -> None:
    """Move `pid` into the container's cgroup; call before the child is let go."""
    if not liveness.holds(container_id):
        return  # this engine made no cgroup for it (rootless)
    for directory in sorted(set(cgroup_dirs(detect(), container_id).values())):
        write(os.path.join(directory, "cgroup.procs"), str(pid))


def enter_namespace() -> None:
    """Make the current cgroup this process's "/"; call in the child after join()."""
    liveness.close_inherited()
    libc.unshare(libc.CLONE_NEWCGROUP)


# --8<-- [start:remove]
def remove(container_id: str) -> None:
    """Kill what is left in the container's cgroup, remove it, and the parent once empty."""
    if not liveness.holds(container_id):
        return
    layout = detect()
    destroy(layout, container_id)
    with liveness.engine_lock():
        remove_empty_parents(layout)
        liveness.release(container_id)
# --8<-- [end:remove]


def destroy(layout: Layout, container_id: str) -> None:
    """Kill every process in the container's cgroup, then rmdir it in each tree."""
    for directory in sorted(set(cgroup_dirs(layout, container_id).values())):
        kill_all(directory)
        remove_dir(directory)


def kill_all(directory: str) -> None:
    """SIGKILL every process in a cgroup, again and again until none is left (a fork bomb fights back)."""
    if os.path.exists(os.path.join(directory, "cgroup.kill")):
        write(os.path.join(directory, "cgroup.kill"), "1")  # v2 (Linux 5.14+): the kernel does it at once
    deadline = time.monotonic() + 10
    while (pids := read_words(os.path.join(directory, "cgroup.procs"))) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def remove_dir(directory: str) -> None:
    """rmdir a cgroup, waiting out the moment in which its last processes are still exiting."""
    for _ in range(400):
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY:
                raise
            time.sleep(0.005)


def remove_empty_parents(layout: Layout) -> None:
    """rmdir the `dockyard` parents that hold no container any more; call under engine_lock."""
    for parent in parent_dirs(layout):
        try:
            os.rmdir(parent)
        except OSError:
            pass  # another container still lives there, or it is already gone


def remove_dead_engines_cgroups() -> None:
    """Remove the cgroups that engines killed mid-run left behind (rm calls this too)."""
    layout = detect()
    if os.geteuid() == 0 and layout.version != 0:
        with liveness.engine_lock():
            remove_leftovers(layout)


def remove_leftovers(layout: Layout) -> None:
    """Remove the cgroups of engines that died without cleaning up; call under engine_lock."""
    for container_id in liveness.dead():
        destroy(layout, container_id)
        liveness.forget(container_id)
    remove_empty_parents(layout)


# --- reading a running container's cgroup ------------------------------------------------

def read_usage(container_id: str) -> Usage:
    """Read a container's memory, CPU and pids counters from its cgroup files."""
    layout = detect()
    dirs = cgroup_dirs(layout, container_id)
    if layout.version == 1:
        return cgroups_v1.usage(dirs)
    directory = dirs[""]
    limit = read_text(os.path.join(directory, "memory.max"), "max")
    return Usage(memory=read_int(os.path.join(directory, "memory.current"))
                 - read_keyed(os.path.join(directory, "memory.stat")).get("inactive_file", 0),
                 memory_limit=None if limit == "max" else int(limit),
                 cpu_ns=read_keyed(os.path.join(directory, "cpu.stat")).get("usage_usec", 0) * 1000,
                 pids=read_int(os.path.join(directory, "pids.current")))


def oom_kills(container_id: str) -> int:
    """How many processes the OOM killer has killed in the container's cgroup."""
    layout = detect()
    dirs = cgroup_dirs(layout, container_id)
    if layout.version == 1:
        return cgroups_v1.oom_kills(dirs)
    return read_keyed(os.path.join(dirs["memory"], "memory.events")).get("oom_kill", 0)


def check_oom(container_id: str, exit_code: int) -> None:
    """Raise OOMKilled if the kernel's OOM killer ended the container; call before remove()."""
    if liveness.holds(container_id) and exit_code == 137 and oom_kills(container_id):
        limit = read_usage(container_id).memory_limit
        raise OOMKilled(f"the container was killed by the OOM killer: it needed more than its "
                        f"--memory {human_size(limit) if limit else 'limit'}",
                        hint="give it more memory, e.g. --memory 256m, or make it use less")


def running_ids() -> list[str]:
    """The ids of the containers that have a cgroup now, on this machine."""
    parents = parent_dirs(detect()) if detect().version else []
    try:
        return sorted(e.name for e in os.scandir(parents[0]) if e.is_dir()) if parents else []
    except FileNotFoundError:
        return []


def find_container(prefix: str) -> str:
    """The id of the one running container whose id starts with `prefix`."""
    matches = [i for i in running_ids() if i.startswith(prefix)]
    if len(matches) != 1:
        problem = "no such running container" if not matches else "more than one container matches"
        raise DockyardError(f"{problem}: {prefix!r}", hint="give more of the container id (it is the hostname inside)")
    return matches[0]


def info_rows() -> list[tuple[str, str]]:
    """`info`'s lines about cgroups: driver, version, controllers, warnings."""
    layout = detect()
    version = {2: "2", 1: "1 (hybrid)" if layout.unified else "1", 0: "none"}[layout.version]
    driver = "cgroupfs" if os.geteuid() == 0 else "none (rootless: containers get no cgroup)"
    rows = [("Cgroup Driver", driver), ("Cgroup Version", version),
            ("Cgroup Controllers", " ".join(sorted(layout.trees)) or "none")]
    if layout.version == 1:
        rows += cgroups_v1.warnings(layout)
    return rows


# --- small helpers --------------------------------------------------------------------------

def human_size(size: float) -> str:
    """1048576 -> '1MiB', as docker stats prints sizes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}"
        size /= 1024
    raise AssertionError


def write(path: str, text: str) -> None:
    """Write one value into a cgroup file, in one write(2), as the kernel wants it."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_words(path: str) -> list[str]:
    """The whitespace-separated words of a file; [] if it is missing."""
    return read_text(path).split()


def kernel_controllers() -> list[str]:
    """Every controller this kernel knows: the first column of /proc/cgroups."""
    return [line.split()[0] for line in read_text("/proc/cgroups").splitlines() if not line.startswith("#")]
