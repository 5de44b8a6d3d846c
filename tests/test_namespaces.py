"""Chapter 02 on: each namespace gives the container a world of its own.

Every test here would fail if its namespace (or the mount that goes with it)
were missing: the container looks at itself with busybox, and the test
compares what it saw with what the host sees.
"""

import ctypes
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import needs_root, failure_code

pytestmark = needs_root
NAMESPACES = ("mnt", "uts", "ipc", "pid", "net")


def run_ok(dockyard, rootfs: str, *args: str) -> str:
    """Run a container that must succeed; return its stdout."""
    result = dockyard("run", "--rootfs", rootfs, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def namespaces_inside(dockyard, rootfs: str, *flags: str) -> dict[str, str]:
    names = " ".join(f"/proc/self/ns/{ns}" for ns in (*NAMESPACES, "user"))
    out = run_ok(dockyard, rootfs, *flags, "sh", "-c", f"for n in {names}; do readlink $n; done")
    return dict(zip((*NAMESPACES, "user"), out.split()))


def host_namespace(ns: str) -> str:
    return os.readlink(f"/proc/self/ns/{ns}")


def nothing_left_in(state: str) -> bool:
    """No container record: for requests refused before a container exists."""
    containers = os.path.join(state, "containers")
    return not os.path.isdir(containers) or not os.listdir(containers)


# --- PID ------------------------------------------------------------------------

def test_the_command_is_pid_1_and_sees_only_the_containers_processes(dockyard, rootfs):
    out = run_ok(dockyard, rootfs, "sh", "-c", "echo $$; ps -o pid,comm; exit 0")  # exit: no exec of ps
    lines = out.splitlines()
    assert lines[0] == "1"
    listed = {line.split()[1]: int(line.split()[0]) for line in lines[2:]}
    assert listed == {"sh": 1, "ps": listed["ps"]}, out


def test_all_of_the_containers_processes_die_when_its_pid_1_exits(dockyard, rootfs):
    marker = "987654.5"  # an argument no other process on the host has
    out = run_ok(dockyard, rootfs, "sh", "-c", f"sleep {marker} & echo started")
    assert out == "started\n"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                assert marker.encode() not in f.read(), f"process {pid} survived its container"
        except OSError:
            pass  # it exited while we looked


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def reap_within(pid: int, seconds: float) -> bool:
    """Wait (as the test runner, a subreaper) for an orphaned container process to die."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return False


def test_the_container_dies_with_its_engine_when_the_engine_is_killed(dockyard, rootfs):
    engine = dockyard.popen("run", "--rootfs", rootfs, "sh", "-c", "echo ready; sleep 1000")
    assert engine.stdout.readline() == "ready\n"
    [container] = children_of(engine.pid)
    engine.kill()
    engine.communicate(timeout=20)
    # The container's PID 1 is now our orphan: it must die without being told.
    assert reap_within(container, 20), "the container outlived its SIGKILLed engine"
    # The next command clears what the dead engine could not (its cgroup, from chapter 3 on).
    assert dockyard("run", "--rootfs", rootfs, "true").returncode == 0


# --- --init -------------------------------------------------------------------------
# A zombie needs an orphan whose new parent never calls wait(2). The orphan
# saves its pid and exits only once PID 1 has become `cat` (which never waits);
# a background shell watches it die, then lets `cat` end by writing to the fifo.
ORPHAN = ("mkfifo /tmp/end; "
          "(sh -c 'echo $$ > /tmp/orphan; until [ \"$(cat /proc/1/comm)\" != sh ]; do usleep 10000; done' &); "
          "(until [ -s /tmp/orphan ]; do usleep 10000; done; p=$(cat /tmp/orphan); {watch}; "
          "grep ^State /proc/$p/status 2>/dev/null || echo gone; echo > /tmp/end) & exec cat /tmp/end")
UNTIL_DEAD = 'while [ -e /proc/$p ] && ! grep -q "^State:.*Z" /proc/$p/status; do usleep 10000; done'
UNTIL_GONE = "i=0; while [ -e /proc/$p ] && [ $i -lt 500 ]; do usleep 20000; i=$((i+1)); done"


def test_without_init_an_orphan_that_exits_stays_a_zombie(dockyard, rootfs):
    out = run_ok(dockyard, rootfs, "sh", "-c", ORPHAN.format(watch=UNTIL_DEAD))
    assert "zombie" in out, out  # the control: the next test's check can fail


def test_init_reaps_a_zombie_that_the_command_leaves_behind(dockyard, rootfs):
    out = run_ok(dockyard, rootfs, "--init", "sh", "-c", ORPHAN.format(watch=UNTIL_GONE))
    assert out.split() == ["gone"], out


def test_init_forwards_sigterm_to_a_command_that_has_no_handler_for_it(dockyard, rootfs):
    # As PID 1, `sleep` would ignore SIGTERM; under our init it is PID 2 and dies of it.
    engine = dockyard.popen("run", "--init", "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 1000")
    assert engine.stdout.readline() == "ready\n"
    engine.send_signal(signal.SIGTERM)
    engine.communicate(timeout=20)
    assert engine.returncode == 128 + signal.SIGTERM


def test_init_forwards_a_signal_that_comes_before_it_is_ready_for_it(dockyard, rootfs, impl):
    # DOCKYARD_FAULT=init-late (final/faults.py): init goes on only once the command, already running,
    # has been signalled; a PID 1 that neither handles nor blocks a signal never gets it.
    env = {**impl.env(), "DOCKYARD_FAULT": "init-late"}
    engine = dockyard.popen("run", "--init", "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 1000", env=env)
    assert engine.stdout.readline() == "ready\n"
    engine.send_signal(signal.SIGTERM)
    try:
        engine.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        engine.kill()  # the container dies with it (PR_SET_PDEATHSIG)
        engine.communicate()
        raise AssertionError("init did not pass SIGTERM on: the command still ran a minute later")
    assert engine.returncode == 128 + signal.SIGTERM


def test_init_passes_on_the_commands_exit_code(dockyard, rootfs):
    result = dockyard("run", "--init", "--rootfs", rootfs, "sh", "-c", "echo $$; cat /proc/1/comm; exit 7")
    assert result.returncode == 7
    pid, init = result.stdout.split()
    assert int(pid) > 1 and init != "sh"  # the command is not PID 1: our init is


# --- UTS ------------------------------------------------------------------------------

def test_the_hostname_is_the_short_container_id_by_default(dockyard, rootfs):
    out = run_ok(dockyard, rootfs, "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME")
    name, from_file, from_env = out.split()
    assert len(name) == 12 and all(c in "0123456789abcdef" for c in name)
    assert name == from_file == from_env


def test_hostname_names_the_container_and_the_hosts_hostname_stays_unchanged(dockyard, rootfs):
    before = socket.gethostname()
    out = run_ok(dockyard, rootfs, "--hostname", "box.example", "sh", "-c", "hostname; hostname changed; hostname")
    assert out == "box.example\nchanged\n"
    assert socket.gethostname() == before


def test_etc_hostname_hosts_and_resolv_conf_are_provided(dockyard, rootfs):
    out = run_ok(dockyard, rootfs, "--hostname", "web", "sh", "-c",
                 "cat /etc/hostname; echo --; cat /etc/hosts; echo --; test -f /etc/resolv.conf && echo resolv")
    hostname, hosts, resolv = out.split("--\n")
    assert hostname == "web\n"
    assert "localhost" in hosts and "web" in hosts.split()
    assert resolv == "resolv\n"


# --- every namespace ---------------------------------------------------------------

def test_the_container_has_its_own_mount_uts_ipc_pid_and_network_namespaces(dockyard, rootfs):
    inside = namespaces_inside(dockyard, rootfs)
    for ns in NAMESPACES:
        assert inside[ns] != host_namespace(ns), f"the {ns} namespace is the host's"
    assert inside["user"] == host_namespace("user")  # root without --userns stays the host's root


def test_userns_gives_the_container_its_own_user_namespace(dockyard, rootfs):
    os.chmod(rootfs, 0o755)  # root inside is an ordinary user to the rootfs, as in any image's /
    inside = namespaces_inside(dockyard, rootfs, "--userns")
    for ns in (*NAMESPACES, "user"):
        assert inside[ns] != host_namespace(ns), f"the {ns} namespace is the host's"


def test_root_with_userns_maps_root_inside_to_the_configured_range(dockyard, rootfs):
    os.chmod(rootfs, 0o755)
    out = run_ok(dockyard, rootfs, "--userns", "sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map")
    uid, uid_map, gid_map = out.splitlines()
    assert uid == "0"
    assert uid_map.split() == gid_map.split() == ["0", "100000", "65536"]


# --- mounts ---------------------------------------------------------------------------

def host_mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if path in line]


def test_a_mount_made_inside_is_invisible_on_the_host_before_during_and_after(dockyard, rootfs, tmp_path):
    # The whole host table may change under other tests; ours is everything under tmp_path.
    before = host_mounts_under(str(tmp_path))
    engine = dockyard.popen("run", "-i", "--rootfs", rootfs, "sh", "-c",
                            "mount -t tmpfs inside /tmp && grep -c ' /tmp ' /proc/self/mountinfo && read line",
                            stdin=subprocess.PIPE)
    assert engine.stdout.readline() == "1\n"
    during = host_mounts_under(str(tmp_path))
    engine.communicate(input="\n", timeout=20)
    assert engine.returncode == 0
    assert before == during == host_mounts_under(str(tmp_path)) == []


def test_the_host_cannot_be_reached_through_the_old_root(dockyard, rootfs, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("host\n")
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c",
                      f"cat /proc/1/root{secret} || awk '$5 == \"/\"' /proc/self/mountinfo | wc -l")
    assert result.stdout == "1\n"  # the secret is unreadable and only one mount sits at /


def test_sys_is_read_only(dockyard, rootfs):
    # Writing lo's MTU back unchanged would be harmless even if /sys were writable.
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c", "cat /sys/class/net/lo/mtu > /sys/class/net/lo/mtu")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_proc_sys_is_read_only(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c",
                      "cat /proc/sys/net/ipv4/ip_forward > /proc/sys/net/ipv4/ip_forward")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_writing_proc_sysrq_trigger_fails(dockyard, rootfs):
    # 'h' only prints help to the kernel log, should the write ever succeed.
    result = dockyard("run", "--rootfs", rootfs, "sh", "-c", 'echo h > /proc/sysrq-trigger; echo "write: $?"')
    assert result.returncode == 0, result.stderr  # the shell ran inside the container ...
    assert result.stdout == "write: 1\n" and "sysrq-trigger" in result.stderr  # ... and its write failed


def test_proc_files_that_reveal_the_host_kernel_are_masked(dockyard, rootfs):
    present = [p for p in ("keys", "timer_list", "kcore", "sched_debug") if os.path.exists(f"/proc/{p}")]
    if not present:
        pytest.skip("this kernel has none of the masked /proc files")
    out = run_ok(dockyard, rootfs, "sh", "-c", "; ".join(f"wc -c < /proc/{p}" for p in present))
    assert out.split() == ["0"] * len(present)


def test_proc_directories_that_reveal_the_host_kernel_are_empty(dockyard, rootfs):
    present = [p for p in ("acpi", "scsi") if os.path.isdir(f"/proc/{p}")]
    if not present:
        pytest.skip("this kernel has none of the masked /proc directories")
    out = run_ok(dockyard, rootfs, "sh", "-c", "; ".join(f"ls -A /proc/{p}" for p in present))
    assert out == ""


# --- /dev -------------------------------------------------------------------------------

STANDARD_DEV = {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
                "ptmx", "fd", "stdin", "stdout", "stderr"}


def test_dev_holds_exactly_the_standard_nodes(dockyard, rootfs):
    os.mknod(os.path.join(rootfs, "dev", "sda"), 0o600)  # the rootfs's own /dev is hidden
    assert set(run_ok(dockyard, rootfs, "ls", "-A", "/dev").split()) == STANDARD_DEV


def test_the_standard_device_nodes_work(dockyard, rootfs):
    script = ("echo gone > /dev/null && head -c 4 /dev/zero | od -An -tx1 && head -c 16 /dev/urandom | wc -c"
              " && (echo x > /dev/full) 2>&1; readlink /dev/stdout; readlink /dev/ptmx")
    out = run_ok(dockyard, rootfs, "sh", "-c", script).splitlines()
    assert out[0].split() == ["00"] * 4
    assert out[1].strip() == "16"
    assert "No space left on device" in out[2]
    assert out[3:] == ["/proc/self/fd/1", "pts/ptmx"]


def test_dev_pts_is_an_instance_of_its_own(dockyard, rootfs):
    # The host's terminals (/dev/pts/0 ...) must not show through.
    assert run_ok(dockyard, rootfs, "ls", "/dev/pts").split() == ["ptmx"]


# --- network ------------------------------------------------------------------------------

def test_only_lo_exists_in_the_network_namespace_and_it_is_up(dockyard, rootfs):
    out = run_ok(dockyard, rootfs, "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags; ip -o link")
    interface, flags, link = out.splitlines()
    assert interface == "lo"
    assert int(flags, 16) & 0x1  # IFF_UP
    assert link.split()[1] == "lo:" and "UP" in link


def test_network_host_shares_the_hosts_interfaces(dockyard, rootfs):
    before = set(os.listdir("/sys/class/net"))
    out = run_ok(dockyard, rootfs, "--network", "host", "sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net")
    after = set(os.listdir("/sys/class/net"))
    ns, *interfaces = out.split()
    assert ns == host_namespace("net")
    # Other programs may add or remove links meanwhile: those that stayed must all be seen. Containers of
    # tests running beside this one make and remove bridges and veths (final/) in between: those may show.
    transient = {name for name in interfaces if name.startswith(("dockyard", "veth"))}
    assert before & after <= set(interfaces) <= before | after | transient


# --- IPC -----------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0


def test_a_message_queue_made_inside_is_invisible_on_the_host_and_to_another_container(dockyard, rootfs):
    name = f"dockyard-{os.getpid()}"
    first = dockyard.popen("run", "-i", "--rootfs", rootfs, "sh", "-c",
                           f"touch /dev/mqueue/{name} && ls /dev/mqueue && read line", stdin=subprocess.PIPE)
    try:
        assert first.stdout.readline() == f"{name}\n"
        assert run_ok(dockyard, rootfs, "ls", "-A", "/dev/mqueue") == ""
        assert _libc.mq_open(f"/{name}".encode(), os.O_RDONLY) == -1
        assert ctypes.get_errno() == 2  # ENOENT: the host has no such queue
    finally:
        first.communicate(input="\n", timeout=20)


def test_a_system_v_segment_of_the_host_is_invisible_inside(dockyard, rootfs):
    shmid = _libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600)
    assert shmid >= 0
    try:
        with open("/proc/sysvipc/shm") as f:
            assert len(f.readlines()) >= 2  # the control: the host lists it
        out = run_ok(dockyard, rootfs, "cat", "/proc/sysvipc/shm")
        assert len(out.splitlines()) == 1  # the header alone
    finally:
        _libc.shmctl(shmid, IPC_RMID, None)


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["bad_name", "-leading-dash", "a" * 64, "dot..dot"])
def test_an_invalid_hostname_is_refused_with_exit_125(dockyard, rootfs, name):
    result = dockyard("run", "--hostname", name, "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result), result.stderr
    assert result.stderr.startswith("error:") and "hint:" in result.stderr
    assert nothing_left_in(dockyard.root)


@pytest.mark.bad_input
def test_a_rootfs_without_proc_is_refused_with_exit_125_and_a_hint(dockyard, rootfs):
    os.rmdir(os.path.join(rootfs, "proc"))
    result = dockyard("run", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error:") and "hint:" in result.stderr
    assert nothing_left_in(dockyard.root)


@pytest.mark.bad_input
def test_an_empty_directory_as_rootfs_is_refused_with_exit_125_and_leaves_nothing(dockyard, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = dockyard("run", "--rootfs", str(empty), "sh")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error:") and "hint:" in result.stderr and "Traceback" not in result.stderr
    assert os.listdir(empty) == []
    assert nothing_left_in(dockyard.root)


@pytest.mark.bad_input
def test_a_workdir_that_is_a_file_fails_with_exit_125_and_leaves_no_mount_or_process(dockyard, rootfs):
    result = dockyard("run", "-w", "/etc/passwd", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error:") and "hint:" in result.stderr and "Traceback" not in result.stderr
    # (a record of the failed container may stay, as Docker keeps one; no mount or process may)


@pytest.mark.bad_input
def test_a_rootfs_whose_dev_links_to_the_hosts_dev_never_shows_the_hosts_devices(dockyard, rootfs):
    os.rmdir(os.path.join(rootfs, "dev"))
    os.symlink("/dev", os.path.join(rootfs, "dev"))
    result = dockyard("run", "--rootfs", rootfs, "ls", "-A", "/dev")
    if result.returncode == 0:  # the engine may also hide the link under a /dev of its own
        assert set(result.stdout.split()) == STANDARD_DEV
    else:
        assert result.returncode == failure_code(result) and "hint:" in result.stderr
    assert os.path.islink(os.path.join(rootfs, "dev"))


def test_an_absolute_symlink_in_the_rootfs_resolves_inside_it_not_on_the_host(dockyard, rootfs):
    resolv = os.path.join(rootfs, "etc", "resolv.conf")
    if os.path.lexists(resolv):
        os.unlink(resolv)
    os.symlink("/run/dockyard-test-stub/resolv.conf", resolv)  # as systemd-resolved images have it
    result = dockyard("run", "--rootfs", rootfs, "cat", "/etc/hosts", "/etc/resolv.conf")
    assert result.returncode == 0, result.stderr
    assert "localhost" in result.stdout
    assert not os.path.exists("/run/dockyard-test-stub")
