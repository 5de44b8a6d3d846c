"""The OCI runtime CLI (`python3 -m final.oci`): runc's commands over a bundle.

Each test makes a bundle (a busybox rootfs and a config.json shaped like the
one containerd writes) and drives the runtime as containerd's shim does:
create, start, state, kill, delete, exec, ps, pause and resume.
"""

import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from conftest import needs_root
from oci_runtime_helpers import OciRuntime, read_until, write_bundle

pytestmark = needs_root


@pytest.fixture
def oci(impl, tmp_path) -> OciRuntime:
    """The runtime; the test runner plays containerd's shim, the subreaper that reaps containers."""
    runtime = OciRuntime(impl, str(tmp_path / "oci-state"))
    yield runtime
    for container_id in os.listdir(runtime.root) if os.path.isdir(runtime.root) else []:
        runtime("delete", "--force", container_id)
    reap_exited()


def reap_exited() -> None:
    """Reap the containers' processes that exited: after `create` exits, they are the runner's children."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@pytest.fixture
def bundle(tmp_path, rootfs) -> str:
    """A bundle directory whose rootfs is this test's busybox copy."""
    path = str(tmp_path / "bundle")
    os.makedirs(path)
    os.rename(rootfs, os.path.join(path, "rootfs"))
    os.chmod(os.path.join(path, "rootfs"), 0o755)  # a copy of a temp dir is 0700: no "/" for a non-root user
    return path


def make(bundle: str, args: list[str], container_id: str = "c1", **changes) -> dict:
    parent = os.environ["DOCKYARD_CGROUP_PARENT"]  # the leak check looks there
    changes.setdefault("linux__cgroupsPath", f"/{parent}/{container_id}")
    return write_bundle(bundle, os.path.join(bundle, "rootfs"), args, **changes)


def wait_for_status(oci: OciRuntime, container_id: str, wanted: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while (state := oci.state(container_id))["status"] != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return state


# --- the lifecycle ---------------------------------------------------------------

def test_run_gives_the_containers_output_and_exit_code(oci, bundle):
    make(bundle, ["sh", "-c", "echo hello from $(hostname); exit 3"])
    result = oci("run", "--bundle", bundle, "c1")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "hello from oci-test\n"


def test_create_leaves_the_process_waiting_until_start(oci, bundle, tmp_path):
    make(bundle, ["sh", "-c", "echo started > /tmp/mark; sleep 30"])
    pid_file = str(tmp_path / "pid")
    result = oci.leaving_running("create", "--bundle", bundle, "--pid-file", pid_file, "c1")
    assert result.returncode == 0, result.stderr
    state = oci.state("c1")
    assert state["status"] == "created"
    assert state["pid"] == int(open(pid_file).read())
    assert state["bundle"] == bundle and state["id"] == "c1"
    mark = os.path.join(bundle, "rootfs", "tmp", "mark")
    assert not os.path.exists(mark), "the command ran before start"
    assert oci("start", "c1").returncode == 0
    assert wait_for_status(oci, "c1", "running")["status"] == "running"
    deadline = time.monotonic() + 10
    while not os.path.exists(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open(mark).read() == "started\n"


def test_kill_then_delete_leaves_no_container(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("create", "--bundle", bundle, "c1").returncode == 0
    pid = oci.state("c1")["pid"]
    assert oci("start", "c1").returncode == 0
    assert oci("kill", "c1", "KILL").returncode == 0
    assert wait_for_status(oci, "c1", "stopped")["status"] == "stopped"
    assert oci("delete", "c1").returncode == 0
    assert not os.path.exists(f"/proc/{pid}/stat") or "Z" in open(f"/proc/{pid}/stat").read().split(")")[1][:3]
    result = oci("state", "c1")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_kill_takes_signal_names_and_numbers(oci, bundle):
    make(bundle, ["sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.1; done"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    time.sleep(0.3)  # let the shell install its trap
    assert oci("kill", "c1", str(signal.SIGUSR1.value)).returncode == 0
    assert wait_for_status(oci, "c1", "stopped")["status"] == "stopped"


def test_the_process_is_pid_1_in_its_own_namespaces(oci, bundle):
    make(bundle, ["sh", "-c", "echo $$; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt"])
    result = oci("run", "--bundle", bundle, "c1")
    assert result.returncode == 0, result.stderr
    pid, pid_ns, mnt_ns = result.stdout.split()
    assert pid == "1"
    assert pid_ns != os.readlink("/proc/self/ns/pid") and mnt_ns != os.readlink("/proc/self/ns/mnt")


def test_exec_runs_a_process_json_in_a_running_container(oci, bundle, tmp_path):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    process = {"args": ["sh", "-c", "echo in $(hostname) as $(id -u); cat /proc/1/cmdline; exit 5"],
               "env": ["PATH=/bin:/usr/bin"], "cwd": "/tmp", "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    result = oci("exec", "--process", str(tmp_path / "process.json"), "c1")
    assert result.returncode == 5, result.stderr
    assert result.stdout.startswith("in oci-test as 0\nsleep")


def test_exec_into_a_stopped_container_is_refused(oci, bundle):
    make(bundle, ["true"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    assert wait_for_status(oci, "c1", "stopped")["status"] == "stopped"
    result = oci("exec", "c1", "true")
    assert result.returncode == 1 and "not running" in result.stderr


def test_ps_lists_the_containers_processes_as_json(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    result = oci("ps", "--format", "json", "c1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [oci.state("c1")["pid"]]


def test_pause_freezes_and_resume_thaws(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    assert oci("pause", "c1").returncode == 0
    assert oci.state("c1")["status"] == "paused"
    assert oci("resume", "c1").returncode == 0
    assert oci.state("c1")["status"] == "running"


def test_list_shows_every_container_with_its_status(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("create", "--bundle", bundle, "c1").returncode == 0
    result = oci("list", "--format", "json")
    assert [(c["id"], c["status"]) for c in json.loads(result.stdout)] == [("c1", "created")]


# --- what config.json asks for ---------------------------------------------------

def test_the_memory_limit_lands_in_the_containers_cgroup(oci, bundle):
    make(bundle, ["sleep", "30"], linux__resources__memory={"limit": 67108864})
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    pid = oci.state("c1")["pid"]
    limits = []
    for line in open(f"/proc/{pid}/cgroup"):
        _, controllers, path = line.rstrip("\n").split(":", 2)
        if controllers == "memory":
            limits.append(open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read())
        elif controllers == "" and os.path.exists(f"/sys/fs/cgroup{path}/memory.max"):
            limits.append(open(f"/sys/fs/cgroup{path}/memory.max").read())
    assert limits == ["67108864\n"]


def test_process_fields_are_honoured(oci, bundle):
    make(bundle, ["sh", "-c", "id -u; id -g; pwd; echo $GREETING; ulimit -n; cat /proc/self/status | grep NoNewPrivs"],
         process__user={"uid": 1000, "gid": 1000}, process__cwd="/tmp",
         process__env=["PATH=/bin", "GREETING=hi"],
         process__rlimits=[{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}])
    result = oci("run", "--bundle", bundle, "c1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:5] == ["1000", "1000", "/tmp", "hi", "256"]
    assert result.stdout.split()[-1] == "1"


def test_a_seccomp_filter_in_the_runtime_specs_form_is_loaded(oci, bundle):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    make(bundle, ["sh", "-c", "mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status"], linux__seccomp=seccomp)
    result = oci("run", "--bundle", bundle, "c1")
    assert "Operation not permitted" in result.stdout and "Seccomp:\t2" in result.stdout, result.stderr


def test_capabilities_are_the_configs(oci, bundle):
    caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    make(bundle, ["sh", "-c", "grep -E 'Cap(Eff|Bnd)' /proc/self/status"],
         process__capabilities={"bounding": caps, "effective": caps, "permitted": caps})
    result = oci("run", "--bundle", bundle, "c1")
    assert result.stdout.split() == ["CapEff:", "0000000000000420", "CapBnd:", "0000000000000420"], result.stderr


def test_no_descriptor_of_the_caller_leaks_into_the_container(oci, bundle, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    with open(secret) as leaked:  # passed on to the runtime, as a careless caller's would be
        fd = leaked.fileno()
        make(bundle, ["sh", "-c", f"ls /proc/self/fd; cat /proc/self/fd/{fd} 2>/dev/null || echo closed"])
        result = oci("run", "--bundle", bundle, "c1", pass_fds=(fd,))
    assert result.returncode == 0, result.stderr
    assert "host secret" not in result.stdout and result.stdout.endswith("closed\n")
    assert result.stdout.split()[:-1] == ["0", "1", "2", "3"]  # stdio, and ls's own directory


def test_a_readonly_root_cannot_be_written(oci, bundle):
    make(bundle, ["sh", "-c", "touch /x 2>/dev/null && echo wrote || echo refused"], root={"path": "rootfs", "readonly": True})
    result = oci("run", "--bundle", bundle, "c1")
    assert result.stdout == "refused\n", result.stderr


def test_masked_paths_hide_what_they_name(oci, bundle):
    make(bundle, ["sh", "-c", "wc -c < /proc/kcore 2>/dev/null || echo none; ls /sys/firmware | wc -l"])
    result = oci("run", "--bundle", bundle, "c1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() in (["0", "0"], ["none", "0"])


def test_bind_mounts_from_the_config_are_made(oci, bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the host\n")
    config = make(bundle, ["cat", "/data/hello"])
    mounts = config["mounts"] + [{"destination": "/data", "type": "bind", "source": str(shared),
                                  "options": ["rbind", "ro"]}]
    make(bundle, ["sh", "-c", "cat /data/hello; touch /data/x 2>/dev/null || echo ro"], mounts=mounts)
    result = oci("run", "--bundle", bundle, "c1")
    assert result.stdout == "from the host\nro\n", result.stderr


def test_runcs_own_default_spec_runs_unchanged(oci, bundle, tmp_path):
    """`runc spec` writes a config with a terminal and `sh`: it runs as it is."""
    spec_dir = tmp_path / "runc-spec"
    spec_dir.mkdir()
    subprocess.run(["runc", "spec"], cwd=spec_dir, check=True)
    config = json.loads((spec_dir / "config.json").read_text())
    config["root"]["path"] = os.path.join(bundle, "rootfs")
    (tmp_path / "bundle" / "config.json").write_text(json.dumps(config))
    pid, fd = pty.fork()
    if pid == 0:
        argv = oci.command("run", "--bundle", bundle, "c1")
        os.execvpe(argv[0], argv, {**oci.impl.env(), "PYTHONPATH": os.path.dirname(oci.impl.path)})
    try:
        prompt = read_until(fd, b"# ")  # type only once the shell reads: ash eats early input
        os.write(fd, b"echo $((6*7)); tty; exit 7\n")
        output = prompt + read_until(fd, None)
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7, output
    assert "42" in output and "/dev/pts/0" in output


def test_the_containers_own_cgroup_is_mounted_where_config_json_says(oci, bundle):
    config = make(bundle, ["true"])
    mounts = config["mounts"] + [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                                  "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}]
    make(bundle, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null;"
                  "mkdir /sys/fs/cgroup/memory/x /sys/fs/cgroup/x 2>/dev/null || echo ro"],
         mounts=mounts, linux__resources__memory={"limit": 50331648})
    result = oci("run", "--bundle", bundle, "c1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["50331648", "ro"]  # the container's own limit, at the root of its view


# --- bad input ---------------------------------------------------------------------

def test_a_bundle_without_config_json_is_refused(oci, tmp_path):
    result = oci.leaving_running("create", "--bundle", str(tmp_path), "c1")
    assert result.returncode == 1
    assert "config.json" in result.stderr and "hint:" in result.stderr
    assert not os.path.exists(os.path.join(oci.root, "c1"))


def test_an_unknown_field_is_refused_by_name(oci, bundle):
    make(bundle, ["true"], linux__intelRdt={"closID": "x"})
    result = oci.leaving_running("create", "--bundle", bundle, "c1")
    assert result.returncode == 1 and "linux.intelRdt" in result.stderr
    assert not os.path.exists(os.path.join(oci.root, "c1"))


def test_an_id_in_use_is_refused(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("create", "--bundle", bundle, "c1").returncode == 0
    result = oci.leaving_running("create", "--bundle", bundle, "c1")
    assert result.returncode == 1 and "exists" in result.stderr
    assert oci.state("c1")["status"] == "created"


def test_start_of_a_container_that_is_not_created_is_refused(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    result = oci("start", "c1")
    assert result.returncode == 1 and "running" in result.stderr


def test_delete_of_a_running_container_needs_force(oci, bundle):
    make(bundle, ["sleep", "30"])
    assert oci.leaving_running("run", "--detach", "--bundle", bundle, "c1").returncode == 0
    result = oci("delete", "c1")
    assert result.returncode == 1 and "--force" in result.stderr
    assert oci.state("c1")["status"] == "running"
    assert oci("delete", "--force", "c1").returncode == 0
    assert oci("state", "c1").returncode == 1


def test_errors_go_to_the_json_log_for_the_shim(oci, tmp_path):
    log = tmp_path / "log.json"
    result = oci("--log", str(log), "--log-format", "json", "create", "--bundle", str(tmp_path), "c1")
    assert result.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "config.json" in entry["msg"] and entry["time"]


def test_systemd_cgroups_are_refused_with_a_hint(oci, bundle):
    make(bundle, ["true"])
    result = oci("--systemd-cgroup", "create", "--bundle", bundle, "c1")
    assert result.returncode == 1 and "systemd" in result.stderr and "hint:" in result.stderr


def test_features_describe_what_the_runtime_supports(oci):
    result = oci("features")
    features = json.loads(result.stdout)
    assert features["ociVersionMin"] == "1.0.0"
    assert {"pid", "mount", "network", "uts", "ipc", "user", "cgroup"} <= set(features["linux"]["namespaces"])
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert "bind" in features["mountOptions"]


def test_version_names_the_runtime_and_the_spec(oci):
    result = oci("--version")
    assert result.returncode == 0 and "spec: 1." in result.stdout
