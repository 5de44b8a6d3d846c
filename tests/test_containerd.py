"""containerd runs Dockyard containers: `ctr` with Dockyard as its OCI runtime.

A private containerd (its own root, state and socket in a temp directory; no
system service) is started for this module. containerd's runc shim then calls
a wrapper around `python3 -m final.oci` exactly as it would call runc.
"""

import os
import pty
import shutil
import subprocess
import sys
import time

import pytest

from conftest import DAEMONS, needs_root
from oci_runtime_helpers import read_until

pytestmark = [needs_root, pytest.mark.skipif(not shutil.which("containerd") and not os.environ.get("CI"),
                                             reason="containerd is not installed: sudo apt-get install containerd")]

IMAGE = "docker.io/library/busybox:latest"
# A subreaper stands between pytest and containerd, so the shims that
# containerd starts (and that daemonize) become its children, not pytest's.
LAUNCHER = """
import ctypes, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
daemon = subprocess.Popen(sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: daemon.terminate())
daemon.wait()
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    try:
        if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid()):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


class Containerd:
    def __init__(self, directory: str, namespace: str, runtime: str) -> None:
        self.directory, self.namespace, self.runtime = directory, namespace, runtime
        self.socket = os.path.join(directory, "containerd.sock")

    def ctr(self, *args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        return subprocess.run(["ctr", "--address", self.socket, "--namespace", self.namespace, *args],
                               text=True, timeout=timeout, **kwargs)

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """`ctr run` with Dockyard's runtime in place of runc."""
        return self.ctr("run", "--runc-binary", self.runtime, *args, **kwargs)

    def tasks(self) -> dict[str, str]:
        """`ctr task ls` as task -> status."""
        rows = [line.split() for line in self.ctr("task", "ls").stdout.splitlines()[1:]]
        return {row[0]: row[2] for row in rows if len(row) >= 3}

    def wait_for(self, name: str, status: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (now := self.tasks().get(name)) != status and time.monotonic() < deadline:
            time.sleep(0.1)
        return now

    def remove(self, name: str) -> None:
        """Kill a container's task, then delete the task and the container, as a user would."""
        self.ctr("task", "kill", "-s", "SIGKILL", name)
        self.wait_for(name, "STOPPED")
        self.ctr("task", "delete", "--force", name)
        self.ctr("containers", "rm", name)


def write_config(directory: str) -> str:
    path = os.path.join(directory, "config.toml")
    with open(path, "w") as f:
        f.write(f'version = 2\nroot = "{directory}/root"\nstate = "{directory}/state"\n'
                f'[grpc]\n  address = "{directory}/containerd.sock"\n'
                f'[ttrpc]\n  address = "{directory}/containerd.sock.ttrpc"\n'
                '[plugins."io.containerd.grpc.v1.cri"]\n  disable = true\n')
    return path


def write_runtime_wrapper(impl, directory: str) -> str:
    """What containerd is pointed at: runc's command line, answered by the implementation."""
    path = os.path.join(directory, "dockyard-runtime")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nPYTHONPATH={os.path.dirname(impl.path)} exec {sys.executable} -m {impl.name}.oci "$@"\n')
    os.chmod(path, 0o755)
    return path


def wait_for_socket(path: str, daemon: subprocess.Popen, log: str) -> None:
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"containerd did not start: {open(log).read()[-2000:]}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def containerd(impl, tmp_path_factory, busybox_rootfs):
    directory = str(tmp_path_factory.mktemp("containerd"))
    namespace = f"dockyard-test-{os.getpid()}"
    log = os.path.join(directory, "containerd.log")
    with open(log, "w") as out:
        daemon = subprocess.Popen([sys.executable, "-c", LAUNCHER, "containerd", "--config", write_config(directory)],
                                  stdout=out, stderr=out)
    DAEMONS.add(daemon.pid)
    try:
        wait_for_socket(os.path.join(directory, "containerd.sock"), daemon, log)
        ctd = Containerd(directory, namespace, write_runtime_wrapper(impl, directory))
        import_busybox(ctd, impl, directory, busybox_rootfs)
        yield ctd
        for name in ctd.ctr("containers", "ls", "-q").stdout.split():
            ctd.remove(name)
        ctd.ctr("images", "rm", IMAGE)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        DAEMONS.discard(daemon.pid)
        subprocess.run(["umount", "-R", "-l", directory], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(f"/run/containerd/runc/{namespace}", ignore_errors=True)
        for base in ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{c}" for c in os.listdir("/sys/fs/cgroup"))):
            if os.path.isdir(f"{base}/{namespace}"):
                os.rmdir(f"{base}/{namespace}")


def import_busybox(ctd: Containerd, impl, directory: str, busybox_rootfs: str) -> None:
    """Make busybox with the engine itself, save it as an archive, and let containerd import it."""
    engine = [sys.executable, "-m", impl.name, "--root", os.path.join(directory, "engine")]
    env, cwd = impl.env(), os.path.dirname(impl.path)
    archive = os.path.join(directory, "busybox.tar")
    for args in (["import", "-c", 'CMD ["sh"]', busybox_rootfs, IMAGE], ["save", "-o", archive, IMAGE]):
        subprocess.run([*engine, *args], env=env, cwd=cwd, check=True, capture_output=True)
    result = ctd.ctr("images", "import", archive)
    assert result.returncode == 0, result.stderr
    shutil.rmtree(os.path.join(directory, "engine"), ignore_errors=True)


def cgroup_of(container: str, ctd: Containerd) -> list[str]:
    """Where the container's cgroup directories would be, in every hierarchy."""
    bases = ("/sys/fs/cgroup", *(f"/sys/fs/cgroup/{c}" for c in os.listdir("/sys/fs/cgroup")))
    return [f"{base}/{ctd.namespace}/{container}" for base in bases if os.path.isdir(f"{base}/{ctd.namespace}/{container}")]


# --- ctr run, exec, kill, delete ---------------------------------------------------

def test_ctr_run_rm_gives_output_and_exit_code(containerd):
    result = containerd.run("--rm", IMAGE, "fg1", "sh", "-c", "echo hello from $$; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from 1\n"
    assert containerd.ctr("containers", "ls", "-q").stdout.split() == []
    assert cgroup_of("fg1", containerd) == []


def test_ctr_run_detached_then_kill_and_delete(containerd):
    result = containerd.run("-d", IMAGE, "bg1", "sleep", "300")
    assert result.returncode == 0, result.stderr
    assert containerd.tasks()["bg1"] == "RUNNING"
    assert containerd.ctr("task", "kill", "-s", "SIGKILL", "bg1").returncode == 0
    assert containerd.wait_for("bg1", "STOPPED") == "STOPPED"
    assert containerd.ctr("task", "delete", "bg1").returncode == 0
    assert containerd.ctr("containers", "rm", "bg1").returncode == 0
    assert cgroup_of("bg1", containerd) == []


def test_ctr_task_exec_and_ps(containerd):
    assert containerd.run("-d", IMAGE, "ex1", "sleep", "300").returncode == 0
    try:
        result = containerd.ctr("task", "exec", "--exec-id", "e1", "ex1", "sh", "-c", "echo in; cat /proc/1/cmdline; exit 4")
        assert result.returncode == 4, result.stderr
        assert result.stdout == "in\nsleep\0" "300\0"  # PID 1 is the container's own command
        ps = containerd.ctr("task", "ps", "ex1").stdout.split("\n")
        pid = next(line.split()[1] for line in containerd.ctr("task", "ls").stdout.splitlines() if line.startswith("ex1 "))
        assert any(line.split()[:1] == [pid] for line in ps[1:]), ps
    finally:
        containerd.remove("ex1")


def test_ctr_run_with_a_terminal(containerd):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("ctr", ["ctr", "--address", containerd.socket, "--namespace", containerd.namespace, "run",
                          "--runc-binary", containerd.runtime, "-t", "--rm", IMAGE, "tty1", "sh", "-c", "tty; exit 6"])
    output = read_until(fd, None)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 6, output
    assert "/dev/pts/0" in output


def test_ctr_memory_limit_reaches_the_cgroup(containerd):
    assert containerd.run("-d", "--memory-limit", str(64 * 1024 * 1024), IMAGE, "mem1", "sleep", "300").returncode == 0
    try:
        directories = cgroup_of("mem1", containerd)
        limits = [open(os.path.join(d, name)).read() for d in directories
                  for name in ("memory.limit_in_bytes", "memory.max") if os.path.exists(os.path.join(d, name))]
        assert limits == [f"{64 * 1024 * 1024}\n"]
    finally:
        containerd.remove("mem1")


def test_two_containers_run_side_by_side(containerd):
    assert containerd.run("-d", IMAGE, "two1", "sleep", "300").returncode == 0
    try:
        result = containerd.run("--rm", IMAGE, "two2", "sh", "-c", "echo second")
        assert result.returncode == 0 and result.stdout == "second\n", result.stderr
        assert containerd.tasks()["two1"] == "RUNNING"
    finally:
        containerd.remove("two1")
