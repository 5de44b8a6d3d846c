"""Chapter 03 on: cgroups limit what a container may use, and vanish with it.

The tests look at the container from both sides: from inside with busybox,
and from the host through the cgroup files under /sys/fs/cgroup, on
whichever layout this machine has (cgroup v2, v1 or hybrid).
"""

import glob
import importlib
import os
import subprocess
import sys

import pytest

from conftest import needs_root, failure_code

pytestmark = needs_root
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
HOLD = "hostname; read x || true"  # say who we are, then stay until stdin is closed


# --- helpers --------------------------------------------------------------------------

class Running:
    """A container started in the background that holds until stop()."""

    def __init__(self, dockyard, rootfs: str, *flags: str, script: str = HOLD) -> None:
        self.engine = dockyard.popen("run", "-i", *flags, "--rootfs", rootfs, "sh", "-c", script,
                                     stdin=subprocess.PIPE)
        hostname = self.engine.stdout.readline().strip()  # by default, the short container id
        assert hostname, self.engine.communicate(timeout=30)[1]
        self.id = cgroup_ids(hostname)[0]

    def stop(self) -> tuple[int, str, str]:
        out, err = self.engine.communicate(input="", timeout=30)
        return self.engine.returncode, out, err


def cgroup_ids(prefix: str) -> list[str]:
    """The full ids of the containers that have a cgroup whose id starts with `prefix`."""
    return sorted({os.path.basename(d) for d in cgroup_dirs(prefix)})


def cgroup_dirs(prefix: str) -> list[str]:
    """Every directory that a container whose id starts with `prefix` has under /sys/fs/cgroup."""
    parent = os.environ["DOCKYARD_CGROUP_PARENT"]  # this test's own (see conftest.py)
    return glob.glob(f"/sys/fs/cgroup/{parent}/{prefix}*") + glob.glob(f"/sys/fs/cgroup/*/{parent}/{prefix}*")


def cgroup_file(container_id: str, v1: str, v2: str) -> str:
    """Read one file of the container's cgroup: `v1` is 'controller/file', `v2` is 'file'."""
    parent = os.environ["DOCKYARD_CGROUP_PARENT"]
    path = (f"/sys/fs/cgroup/{parent}/{container_id}/{v2}" if V2
            else f"/sys/fs/cgroup/{v1.replace('/', f'/{parent}/{container_id}/')}")
    with open(path) as f:
        return f.read().strip()


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def impl_module(impl, name: str):
    """Import one module of the implementation under test, for the edges the CLI cannot reach."""
    sys.path.insert(0, os.path.dirname(impl.path))
    try:
        return importlib.import_module(f"{impl.name}.{name}")
    finally:
        sys.path.pop(0)


# --- memory -----------------------------------------------------------------------------

def test_a_memory_hog_is_killed_with_exit_137_and_the_oom_kill_is_reported(dockyard, rootfs):
    # dd fills a 256 MiB buffer from /dev/zero: every page is touched.
    result = dockyard("run", "--memory", "32m", "--rootfs", rootfs, "dd", "if=/dev/zero", "of=/dev/null",
                      "bs=256M", "count=1")
    assert result.returncode == 137, result.stderr
    assert "OOM" in result.stderr and "hint:" in result.stderr


def test_a_process_within_its_memory_limit_runs_to_the_end(dockyard, rootfs):
    result = dockyard("run", "--memory", "64m", "--rootfs", rootfs, "dd", "if=/dev/zero", "of=/dev/null",
                      "bs=16M", "count=4")
    assert result.returncode == 0, result.stderr
    assert "OOM" not in result.stderr


# --- pids --------------------------------------------------------------------------------

def test_a_fork_bomb_stops_at_the_pids_limit_and_other_containers_can_still_fork(dockyard, rootfs):
    # The subshell forks sleepers until fork fails; the outer shell then holds on.
    bomb = "hostname; ( while :; do sleep 60 & done ) 2>/dev/null; echo full; read x || true"
    container = Running(dockyard, rootfs, "--pids-limit", "20", script=bomb)
    try:
        assert container.engine.stdout.readline() == "full\n"
        # The subshell has given up and exited: the outer shell and the sleepers fill the rest.
        assert 18 <= int(cgroup_file(container.id, "pids/pids.current", "pids.current")) <= 20
        assert cgroup_file(container.id, "pids/pids.events", "pids.events") != "max 0"  # forks were refused
        # The limit is this container's alone: another container (a sibling cgroup) forks 30 at once.
        sibling = dockyard("run", "--rootfs", rootfs, "sh", "-c",
                           "i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i+1)); done; ls /proc | grep -c '^[0-9]'")
        assert sibling.returncode == 0 and int(sibling.stdout) >= 31, sibling.stdout + sibling.stderr
    finally:
        code, _, err = container.stop()
    assert code == 0, err
    assert cgroup_dirs(container.id) == []


# --- cpu ----------------------------------------------------------------------------------

def test_cpus_half_holds_a_busy_loop_to_about_half_a_core(dockyard, rootfs):
    script = "hostname; while :; do :; done & read x; kill $!"
    container = Running(dockyard, rootfs, "--cpus", "0.5", script=script)
    try:
        stats = dockyard("stats", "--no-stream", container.id[:12])
    finally:
        container.stop()
    assert stats.returncode == 0, stats.stderr
    cpu = float(stats.stdout.splitlines()[1].split()[1].rstrip("%"))
    # Unlimited, the loop would take a whole core (100%); the quota allows 50%.
    assert 15 <= cpu <= 75, stats.stdout


@pytest.mark.parametrize("flags, v1, v2, expected", [
    (["--memory", "64m"], "memory/memory.limit_in_bytes", "memory.max", ("67108864", "67108864")),
    (["--memory", "64m", "--memory-swap", "96m"], "memory/memory.memsw.limit_in_bytes", "memory.swap.max",
     ("100663296", "33554432")),
    (["--cpus", "0.5"], "cpu/cpu.cfs_quota_us", "cpu.max", ("50000", "50000 100000")),
    (["--cpu-shares", "512"], "cpu/cpu.shares", "cpu.weight", ("512", "20")),
    (["--pids-limit", "7"], "pids/pids.max", "pids.max", ("7", "7")),
    (["-m", "64m"], "memory/memory.limit_in_bytes", "memory.max", ("67108864", "67108864")),
    (["-c", "512"], "cpu/cpu.shares", "cpu.weight", ("512", "20")),
    (["--memory", "64m", "--memory-swap", "-1"], "memory/memory.memsw.limit_in_bytes", "memory.swap.max",
     ("9223372036854771712", "max")),
    (["--pids-limit", "-1"], "pids/pids.max", "pids.max", ("max", "max")),
], ids=["memory", "memory-swap", "cpus", "cpu-shares", "pids-limit", "m", "c", "memory-swap-unlimited",
        "pids-limit-unlimited"])
def test_each_limit_is_written_to_its_cgroup_file_in_the_kernels_units(dockyard, rootfs, flags, v1, v2, expected):
    if not V2 and "memsw" in v1 and not glob.glob("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        pytest.skip("this kernel does not account swap (swapaccount=0)")
    container = Running(dockyard, rootfs, *flags)
    try:
        value = cgroup_file(container.id, v1, v2)
    finally:
        container.stop()
    assert value == expected[V2]


# --- one cgroup per container, gone when it is --------------------------------------------

def test_a_container_runs_in_a_cgroup_of_its_own_that_is_removed_when_it_exits(dockyard, rootfs):
    container = Running(dockyard, rootfs)
    try:
        dirs = cgroup_dirs(container.id)
        assert dirs, "no cgroup under /sys/fs/cgroup/.../PARENT/"
        pid = children_of(container.engine.pid)[0]
        with open(f"/proc/{pid}/cgroup") as f:
            assert f"/{os.environ['DOCKYARD_CGROUP_PARENT']}/{container.id}" in f.read()
    finally:
        code, _, err = container.stop()
    assert code == 0, err
    assert cgroup_dirs(container.id) == []


def test_inside_the_container_its_own_cgroup_is_the_root(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "cat", "/proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    paths = [line.split(":", 2)[2] for line in result.stdout.splitlines()]
    assert paths and all(path == "/" for path in paths), result.stdout


def test_after_the_engine_is_killed_the_next_command_removes_what_it_left(dockyard, rootfs):
    container = Running(dockyard, rootfs)
    orphan = children_of(container.engine.pid)[0]
    container.engine.kill()
    container.engine.wait()
    assert cgroup_dirs(container.id), "the cgroup should outlive a SIGKILLed engine until the next command"
    result = dockyard("run", "--rootfs", rootfs, "true")
    assert result.returncode == 0, result.stderr
    assert cgroup_dirs(container.id) == []
    # The container's process was ours to reap (the suite is a subreaper); it must have been killed.
    _, status = os.waitpid(orphan, 0)
    assert os.WIFSIGNALED(status)
    container.engine.stdin.close()
    container.engine.stdout.close()
    container.engine.stderr.close()


def test_the_next_command_leaves_the_cgroup_of_a_running_container_alone(dockyard, rootfs):
    container = Running(dockyard, rootfs)
    try:
        assert dockyard("run", "--rootfs", rootfs, "true").returncode == 0
        assert cgroup_dirs(container.id)
        assert container.engine.poll() is None
    finally:
        code, _, err = container.stop()
    assert code == 0, err


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [
    ["--memory", "1x"], ["--memory", "1m"], ["--memory-swap", "32m", "--memory", "64m"],
    ["--memory-swap", "64m"], ["--cpus", "abc"], ["--cpus", "1000"], ["--cpu-shares", "1"],
    ["--pids-limit", "-5"],
], ids=lambda flags: " ".join(flags))
def test_an_invalid_limit_is_refused_with_exit_125_and_a_hint(dockyard, rootfs, flags):
    result = dockyard("run", *flags, "--rootfs", rootfs, "echo", "ran")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error:") and "hint:" in result.stderr and "Traceback" not in result.stderr
    assert "ran" not in result.stdout


def test_a_limit_the_kernel_refuses_names_the_controller_and_the_layout_and_leaves_no_cgroup(dockyard, rootfs):
    # 0.005 of a 100 ms period is 500 us: below the 1 ms quota that the kernel accepts.
    result = dockyard("run", "--cpus", "0.005", "--rootfs", rootfs, "echo", "ran")
    assert result.returncode == failure_code(result)
    assert "cpu controller" in result.stderr and "cgroup v" in result.stderr and "hint:" in result.stderr
    assert "ran" not in result.stdout  # and the suite's leak check finds no cgroup


def test_a_missing_controller_is_named_with_its_layout_and_a_hint(impl):
    cgroups = impl_module(impl, "cgroups")
    layout = cgroups.Layout(1, {"memory": "/sys/fs/cgroup/memory"})  # no pids tree mounted
    limits = impl_module(impl, "limits").parse_limits(pids_limit="10")
    settings = cgroups.settings_for(layout, limits)
    with pytest.raises(cgroups.DockyardError) as refused:
        cgroups.apply(layout, "no-such-container", settings)
    assert "pids controller" in refused.value.problem and "cgroup v1" in refused.value.problem
    assert "mount" in refused.value.hint


def test_the_layout_is_read_from_the_mount_table(impl):
    cgroups = impl_module(impl, "cgroups")
    line = "30 25 0:26 / {point} rw,relatime shared:9 - {fstype} cgroup rw,{options}"
    names = ["cpu", "cpuacct", "memory", "pids"]
    hybrid = "\n".join([line.format(point="/sys/fs/cgroup/cpu,cpuacct", fstype="cgroup", options="cpu,cpuacct"),
                        line.format(point="/sys/fs/cgroup/memory", fstype="cgroup", options="memory"),
                        line.format(point="/sys/fs/cgroup/unified", fstype="cgroup2", options="nsdelegate")])
    layout = cgroups.layout_of(hybrid, names)
    assert (layout.version, layout.unified) == (1, "/sys/fs/cgroup/unified")
    assert layout.trees == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                            "memory": "/sys/fs/cgroup/memory"}
    pure = line.format(point="/sys/fs/cgroup", fstype="cgroup2", options="nsdelegate")
    assert cgroups.layout_of(pure, names).version == 2


# --- rootless --------------------------------------------------------------------------------

def test_a_rootless_container_runs_without_a_cgroup(nobody):
    result = nobody("run", "--rootfs", nobody.rootfs, "cat", "/proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    assert all(line.endswith(":/") for line in result.stdout.splitlines())


def test_a_rootless_container_that_asks_for_a_limit_is_refused_with_a_hint(nobody):
    result = nobody("run", "--memory", "64m", "--rootfs", nobody.rootfs, "echo", "ran")
    assert result.returncode == failure_code(result)
    assert "rootless" in result.stderr and "hint:" in result.stderr
    assert "ran" not in result.stdout


# --- info and stats -----------------------------------------------------------------------------

def test_info_shows_the_cgroup_version_driver_and_controllers(dockyard):
    result = dockyard("info")
    assert result.returncode == 0, result.stderr
    rows = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert rows["Cgroup Driver"] == "cgroupfs"
    assert rows["Cgroup Version"].split()[0] == ("2" if V2 else "1")
    assert {"memory", "cpu", "pids"} <= set(rows["Cgroup Controllers"].split())


def test_stats_shows_memory_use_and_limit_cpu_and_pids_of_a_running_container(dockyard, rootfs):
    script = "hostname; sleep 60 & sleep 60 & read x; kill %1 %2"
    container = Running(dockyard, rootfs, "--memory", "64m", script=script)
    try:
        result = dockyard("stats", "--no-stream", container.id[:12])
    finally:
        container.stop()
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["CONTAINER", "ID", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%", "PIDS"]
    cells = row.split()
    assert cells[0] == container.id[:12]
    assert cells[3:5] == ["/", "64MiB"] and cells[-1] == "3"


def test_stats_of_an_unknown_container_is_refused_with_a_hint(dockyard):
    result = dockyard("stats", "--no-stream", "no-such-container")
    assert result.returncode == failure_code(result)
    assert "error:" in result.stderr and "hint:" in result.stderr


def test_stats_without_no_stream_keeps_printing_fresh_samples_until_stopped(dockyard, rootfs):
    container = Running(dockyard, rootfs, "--memory", "64m")
    stats = dockyard.popen("stats", container.id[:12])
    try:
        rows = []
        while len(rows) < 2:  # a second sample proves it streams; --no-stream prints one and exits
            line = stats.stdout.readline()
            assert line, stats.communicate(timeout=30)[1]
            if container.id[:12] in line:
                rows.append(line.split())
        assert all(row[3:5] == ["/", "64MiB"] for row in rows), rows
        assert stats.poll() is None  # still running
    finally:
        stats.kill()
        stats.communicate(timeout=30)
        container.stop()
