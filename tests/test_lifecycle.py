"""Containers that outlive the command: run -d, create, start, stop, kill, restart, wait, logs, rm -f.

A detached container runs under a monitor of its own (final/monitor.py), not
under the CLI, so the leak fixture, which looks for our own children, cannot
see one left running: every test here ends with `no_process_of` its --root.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import failure_code

LOOP = "trap 'echo got-term; exit 7' TERM; trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done"


def run_d(dockyard, rootfs, *args):
    """run -d, which must print the full id and return while the container runs."""
    result = dockyard("run", "-d", *args[:-1], "--rootfs", rootfs, *args[-1])
    assert result.returncode == 0, result.stderr
    container_id = result.stdout.strip()
    assert len(container_id) == 64 and int(container_id, 16) >= 0
    return container_id


def status_of(dockyard, name):
    """The STATUS column of `ps -a` for container `name`."""
    result = dockyard("ps", "-a")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    start, end = header.index("STATUS"), header.index("PORTS")  # PORTS may be empty: cut by the header
    for line in lines:
        if line.split()[-1] == name:
            return line[start:end].strip()
    return None


def state(dockyard, name):
    result = dockyard("inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]["State"]


def wait_until(check, what, timeout=60):
    """Poll `check` until it is true; a loaded machine may take long, so the bound is generous."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def logs(dockyard, *args):
    result = dockyard("logs", *args)
    assert result.returncode == 0, result.stderr
    return result


def processes_of(root):
    """Live processes that name `root` (monitors) or run inside one of its containers' cgroups."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                state_letter = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if root in cmdline and "pytest" not in cmdline:
            found.append(f"{pid} ({state_letter}): {cmdline}")
    return found


def reap_exited_monitors():
    """Reap the monitors that exited as zombies of ours: the suite is a subreaper, so they come to us."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and fields[1] == str(os.getpid()):
            os.waitpid(int(pid), 0)


@pytest.fixture
def no_process_of(dockyard):
    """After the test: remove every container, then no monitor of this --root may be left."""
    yield
    ids = dockyard("ps", "-aq").stdout.split()
    if ids:
        dockyard("rm", "-f", *ids)
    deadline = time.monotonic() + 30
    while processes_of(dockyard.root) and time.monotonic() < deadline:
        time.sleep(0.05)  # a monitor whose container was just removed is finishing
    left = processes_of(dockyard.root)
    for line in left:
        os.kill(int(line.split()[0]), signal.SIGKILL)
    time.sleep(0.05)
    reap_exited_monitors()
    assert not left, f"processes left running: {left}"


pytestmark = pytest.mark.usefixtures("no_process_of")


# --- run -d, ps, logs, stop ------------------------------------------------------------

def test_run_d_prints_the_full_id_and_returns_while_the_container_runs(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, "--name", "web", ["sh", "-c", "echo hello; echo oops >&2; sleep 100"])
    assert status_of(dockyard, "web").startswith("Up")
    assert dockyard("ps", "-q").stdout.split() == [container_id[:12]]
    wait_until(lambda: "hello" in dockyard("logs", "web").stdout, "the container's output in its log")
    result = logs(dockyard, "web")
    assert result.stdout == "hello\n" and result.stderr == "oops\n"


def test_the_log_is_dockers_json_file_format(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, ["sh", "-c", "echo one; echo two >&2"])
    assert dockyard("wait", container_id).stdout.strip() == "0"
    path = os.path.join(dockyard.root, "containers", container_id, f"{container_id}-json.log")
    records = [json.loads(line) for line in open(path)]
    assert sorted((r["log"], r["stream"]) for r in records) == [("one\n", "stdout"), ("two\n", "stderr")]
    assert all(r["time"].endswith("Z") and len(r["time"]) == len("2024-01-01T00:00:00.123456789Z") for r in records)


def test_stop_sends_the_stop_signal_and_waits_for_the_container_to_exit(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "trap", ["sh", "-c", LOOP])
    wait_until(lambda: "ready" in dockyard("logs", "trap").stdout, "the trap to be set")
    result = dockyard("stop", "-t", "60", "trap")
    assert result.returncode == 0 and result.stdout == "trap\n", result.stderr
    assert status_of(dockyard, "trap").startswith("Exited (7)")
    assert "got-term" in logs(dockyard, "trap").stdout


def test_stop_kills_a_container_that_ignores_its_stop_signal_after_the_timeout(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "deaf", ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"])
    wait_until(lambda: "ready" in dockyard("logs", "deaf").stdout, "the trap to be set")
    assert dockyard("stop", "-t", "0.2", "deaf").returncode == 0
    assert status_of(dockyard, "deaf").startswith("Exited (137)")


def test_kill_sends_the_signal_asked_for_and_sigkill_by_default(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "kk", ["sh", "-c", LOOP])
    wait_until(lambda: "ready" in dockyard("logs", "kk").stdout, "the trap to be set")
    assert dockyard("kill", "-s", "USR1", "kk").returncode == 0
    wait_until(lambda: "got-usr1" in dockyard("logs", "kk").stdout, "the USR1 trap to run")
    assert status_of(dockyard, "kk").startswith("Up")
    assert dockyard("kill", "kk").returncode == 0
    assert dockyard("wait", "kk").stdout.strip() == "137"


def test_create_leaves_the_container_created_and_start_runs_it_detached(dockyard, rootfs):
    result = dockyard("create", "--name", "later", "--rootfs", rootfs, "sh", "-c", "echo ran; exit 3")
    assert result.returncode == 0 and len(result.stdout.strip()) == 64, result.stderr
    assert status_of(dockyard, "later") == "Created"
    assert logs(dockyard, "later").stdout == ""
    # PID 1 exists already, set up in namespaces of its own, and waits: it has not exec'd the command.
    pid = state(dockyard, "later")["Pid"]
    assert pid and os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert not f.read().startswith(b"sh\0"), "PID 1 ran its command before start"
    started = dockyard("start", "later")
    assert started.returncode == 0 and started.stdout == "later\n", started.stderr
    assert dockyard("wait", "later").stdout.strip() == "3"
    assert status_of(dockyard, "later").startswith("Exited (3)")
    assert logs(dockyard, "later").stdout == "ran\n"


def test_create_t_leaves_pid1_waiting_with_its_terminal_and_start_runs_it(dockyard, rootfs):
    dockyard("create", "-t", "--name", "tty", "--rootfs", rootfs, "sh", "-c", "tty; exit 6")
    assert status_of(dockyard, "tty") == "Created" and state(dockyard, "tty")["Pid"]
    assert dockyard("start", "tty").returncode == 0
    assert dockyard("wait", "tty").stdout.strip() == "6"
    assert logs(dockyard, "tty").stdout.strip() == "/dev/pts/0"


@pytest.mark.parametrize("force", [[], ["-f"]], ids=["rm", "rm -f"])
def test_rm_of_a_created_container_ends_its_waiting_pid1_and_monitor_and_leaves_nothing(dockyard, rootfs, force):
    container_id = dockyard("create", "--name", "waits", "--rootfs", rootfs, "sh", "-c", "echo ran").stdout.strip()
    pid, monitor = pid1_and_monitor(dockyard, container_id)
    result = dockyard("rm", *force, "waits")
    assert result.returncode == 0 and result.stdout == "waits\n", result.stderr
    wait_until(lambda: is_gone(pid) and is_gone(monitor), "PID 1 and its monitor to end")
    wait_until(lambda: processes_of(dockyard.root) == [], "every process of the container to be gone")
    assert dockyard("ps", "-aq").stdout == "" and not os.listdir(os.path.join(dockyard.root, "containers"))
    past = dockyard("events", "--since", "1h", "--until", "0s", "--format", "{{.Action}}").stdout.split()
    assert past == ["create", "destroy"]  # it never ran, so it never died


def test_stop_leaves_a_created_container_created_and_restart_starts_it(dockyard, rootfs):
    dockyard("create", "--name", "later", "--rootfs", rootfs, "sh", "-c", "echo ran; exit 5")
    assert dockyard("stop", "later").returncode == 0
    assert status_of(dockyard, "later") == "Created"
    assert dockyard("restart", "later").returncode == 0
    assert dockyard("wait", "later").stdout.strip() == "5"
    assert logs(dockyard, "later").stdout == "ran\n"


def test_start_a_runs_it_in_the_foreground_with_its_exit_code(dockyard, rootfs):
    dockyard("create", "--name", "fg", "--rootfs", rootfs, "sh", "-c", "echo here; exit 4")
    result = dockyard("start", "-a", "fg")
    assert result.returncode == 4 and result.stdout == "here\n"


def test_start_of_a_running_container_and_stop_of_a_stopped_one_succeed_quietly(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "qq", ["sleep", "100"])
    result = dockyard("start", "qq")
    assert result.returncode == 0 and result.stderr == ""
    assert dockyard("stop", "-t", "0", "qq").returncode == 0
    again = dockyard("stop", "qq")
    assert again.returncode == 0 and again.stderr == ""


def test_restart_runs_the_container_again(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "again", ["sh", "-c", "echo run; sleep 100"])
    first = state(dockyard, "again")["StartedAt"]
    assert dockyard("restart", "-t", "0", "again").returncode == 0
    assert status_of(dockyard, "again").startswith("Up")
    assert state(dockyard, "again")["StartedAt"] > first
    wait_until(lambda: dockyard("logs", "again").stdout == "run\nrun\n", "the second run's output")


def test_rm_f_removes_a_running_container_and_leaves_no_process(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "doomed", "--restart", "always", ["sleep", "100"])
    result = dockyard("rm", "-f", "doomed")
    assert result.returncode == 0, result.stderr
    assert dockyard("ps", "-aq").stdout == ""
    assert processes_of(dockyard.root) == []


def test_run_d_rm_removes_the_container_when_it_exits(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, "--rm", ["true"])
    wait_until(lambda: dockyard("ps", "-aq").stdout == "", "the container to remove itself")
    assert not os.path.exists(os.path.join(dockyard.root, "containers", container_id))


def test_a_rm_containers_state_emptied_by_a_machine_crash_reads_as_dead_and_rm_removes_it(dockyard, rootfs):
    # A --rm container's state.json is written without fsync: after a power cut it may come back empty.
    result = dockyard("create", "--rm", "--name", "torn", "--rootfs", rootfs, "true")
    assert result.returncode == 0, result.stderr
    assert status_of(dockyard, "torn") == "Created"
    pid, monitor = pid1_and_monitor(dockyard, result.stdout.strip())
    os.kill(monitor, signal.SIGKILL)  # the crash ends every process: the monitor, and the PID 1 waiting under it
    wait_until(lambda: is_gone(pid), "the waiting PID 1 to die with its monitor")
    open(os.path.join(dockyard.root, "containers", result.stdout.strip(), "state.json"), "w").close()
    assert status_of(dockyard, "torn") == "Dead"
    inspected = dockyard("inspect", "-f", "{{.State.Status}} {{.State.Dead}}", "torn")
    assert (inspected.returncode, inspected.stdout.strip()) == (0, "dead true"), inspected.stderr
    assert dockyard("rm", "torn").returncode == 0
    assert dockyard("ps", "-aq").stdout == ""


# --- restart policies ------------------------------------------------------------------

def test_on_failure_restarts_up_to_its_count_then_leaves_it_exited(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "flaky", "--restart", "on-failure:2", ["sh", "-c", "echo try; exit 1"])
    wait_until(lambda: dockyard("logs", "flaky").stdout.count("try") == 3 and
               not status_of(dockyard, "flaky").startswith(("Up", "Restarting")), "three tries")
    assert dockyard("wait", "flaky").stdout.strip() == "1"
    assert status_of(dockyard, "flaky").startswith("Exited (1)")


def test_always_restarts_a_container_that_exits_until_it_is_stopped(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "loop", "--restart", "always", ["sh", "-c", "echo up; sleep 0.2"])
    wait_until(lambda: dockyard("logs", "loop").stdout.count("up") >= 2, "a restart")
    assert dockyard("stop", "-t", "0", "loop").returncode == 0
    assert not status_of(dockyard, "loop").startswith(("Up", "Restarting"))


def test_a_bad_restart_policy_is_refused_with_a_hint(dockyard, rootfs):
    result = dockyard("run", "-d", "--restart", "sometimes", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and "error:" in result.stderr and "hint:" in result.stderr
    assert dockyard("ps", "-aq").stdout == ""


# --- logs ------------------------------------------------------------------------------

def test_logs_tail_timestamps_and_follow(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "lines", ["sh", "-c", "for i in 1 2 3 4; do echo line$i; done"])
    dockyard("wait", "lines")
    assert logs(dockyard, "--tail", "2", "lines").stdout == "line3\nline4\n"
    stamped = logs(dockyard, "-t", "--tail", "1", "lines").stdout
    assert stamped.endswith("Z line4\n") and stamped.startswith("20")
    assert logs(dockyard, "-f", "lines").stdout == "line1\nline2\nline3\nline4\n"  # -f ends with the container


def test_logs_follow_prints_what_comes_until_the_container_exits(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "slow", ["sh", "-c", "echo first; sleep 1; echo second"])
    result = logs(dockyard, "-f", "slow")
    assert result.stdout == "first\nsecond\n"


def test_logs_since_and_until_pick_lines_by_time(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "timed", ["sh", "-c", "echo old"])
    dockyard("wait", "timed")
    stamp = logs(dockyard, "-t", "timed").stdout.split()[0]
    assert logs(dockyard, "--since", "1h", "timed").stdout == "old\n"
    assert logs(dockyard, "--until", stamp, "timed").stdout == ""  # until is exclusive
    assert logs(dockyard, "--since", "2999-01-01T00:00:00Z", "timed").stdout == ""


def run_until_exit(dockyard, rootfs, how, *args):
    """run -d then wait, or a foreground run: the container's id, once it has exited."""
    if how == "run -d":
        container_id = run_d(dockyard, rootfs, *args)
        dockyard("wait", container_id)
        return container_id
    result = dockyard("run", "--name", "fg", *args[:-1], "--rootfs", rootfs, *args[-1])
    assert result.returncode == 0, result.stderr
    return state_and_id(dockyard, "fg")[1]


def state_and_id(dockyard, name):
    result = dockyard("inspect", name)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)[0]
    return record["State"], record["Id"]


@pytest.mark.parametrize("how", ["run -d", "run"])
def test_log_opt_max_size_rotates_into_max_file_files(dockyard, rootfs, how):
    container_id = run_until_exit(dockyard, rootfs, how, "--log-opt", "max-size=1k", "--log-opt", "max-file=2",
                                  ["sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done"])
    directory = os.path.join(dockyard.root, "containers", container_id)
    names = sorted(n for n in os.listdir(directory) if "-json.log" in n)
    assert names == [f"{container_id}-json.log", f"{container_id}-json.log.1"]
    assert all(os.path.getsize(os.path.join(directory, n)) <= 1024 for n in names)
    shown = logs(dockyard, container_id).stdout.splitlines()
    assert shown[-1] == "line199" and shown == [f"line{i}" for i in range(200 - len(shown), 200)]


def test_logs_of_a_container_without_a_log_is_an_error_with_a_hint(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, "--log-driver", "none", ["echo", "x"])
    result = dockyard("logs", container_id)
    assert result.returncode == failure_code(result) and "error:" in result.stderr and "hint:" in result.stderr
    shown = dockyard("run", "--name", "fg", "--log-driver", "none", "--rootfs", rootfs, "echo", "y")
    assert shown.returncode == 0 and shown.stdout == "y\n"  # the terminal still gets it; the log does not
    result = dockyard("logs", "fg")
    assert result.returncode == failure_code(result) and "--log-driver none" in result.stderr and "hint:" in result.stderr


# --- the log of a foreground run ------------------------------------------------------------

def test_logs_shows_what_a_foreground_run_printed_as_docker_logs_does(dockyard, rootfs):
    result = dockyard("run", "--name", "fg", "--rootfs", rootfs, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "hi\n", "oops\n")
    shown = logs(dockyard, "fg")
    assert (shown.stdout, shown.stderr) == ("hi\n", "oops\n")
    container_id = state_and_id(dockyard, "fg")[1]
    path = os.path.join(dockyard.root, "containers", container_id, f"{container_id}-json.log")
    assert sorted(json.loads(line)["stream"] for line in open(path)) == ["stderr", "stdout"]


def test_a_foreground_run_passes_binary_output_through_byte_for_byte(dockyard, rootfs):
    with open(os.path.join(rootfs, "bin", "busybox"), "rb") as f:
        expected = f.read()
    command = dockyard.command("run", "--name", "fg", "--rootfs", rootfs, "sh", "-c", "cat /bin/busybox; exit 4")
    result = __import__("subprocess").run(command, capture_output=True, env=dockyard.impl.env(),
                                          cwd=os.path.dirname(dockyard.impl.path), timeout=60)
    assert result.returncode == 4 and result.stdout == expected, result.stderr


def test_without_t_a_foreground_pid1_writes_into_pipes_as_under_docker(dockyard, rootfs, tmp_path):
    out = tmp_path / "out"
    command = dockyard.command("run", "--name", "fg", "--rootfs", rootfs, "sh", "-c",
                               "readlink /proc/self/fd/1; readlink /proc/self/fd/2")
    with open(out, "w") as f:  # our stdout is a file: what PID 1 has is the engine's pipe
        result = __import__("subprocess").run(command, stdout=f, stderr=f, env=dockyard.impl.env(),
                                              cwd=os.path.dirname(dockyard.impl.path), timeout=60)
    assert result.returncode == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("pipe:[") for line in lines), lines
    assert logs(dockyard, "fg").stdout.splitlines() == lines


def test_a_foreground_run_t_logs_what_its_terminal_showed(dockyard, rootfs):
    result = dockyard("run", "-t", "--name", "fg", "--rootfs", rootfs, "sh", "-c", "tty; exit 2")
    assert result.returncode == 2 and result.stdout.strip() == "/dev/pts/0"
    assert logs(dockyard, "fg").stdout.strip() == "/dev/pts/0"


# --- bad names ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["stop"], ["kill"], ["start"], ["wait"], ["logs"], ["restart"]])
def test_an_unknown_container_is_an_error_with_a_hint(dockyard, command):
    result = dockyard(*command, "nosuchthing")
    assert result.returncode == failure_code(result)
    assert "error: no such container" in result.stderr and "hint:" in result.stderr


def test_an_ambiguous_id_prefix_is_an_error_naming_the_matches(dockyard, rootfs):
    seen = {}
    while True:  # at most 17 containers: two of them share a first hex digit
        result = dockyard("create", "--rootfs", rootfs, "true")
        container_id = result.stdout.strip()
        if container_id[0] in seen:
            break
        seen[container_id[0]] = container_id
    result = dockyard("start", container_id[0])
    assert result.returncode == failure_code(result) and "more than one container" in result.stderr and "hint:" in result.stderr


def test_kill_of_a_stopped_container_is_an_error(dockyard, rootfs):
    dockyard("create", "--name", "idle", "--rootfs", rootfs, "true")
    result = dockyard("kill", "idle")
    assert result.returncode == failure_code(result) and "not running" in result.stderr and "hint:" in result.stderr


# --- pidfds and the crash matrix ----------------------------------------------------------

def pid1_and_monitor(dockyard, container_id):
    with open(os.path.join(dockyard.root, "containers", container_id, "state.json")) as f:
        pid = json.load(f)["pid"]
    with open(f"/proc/{pid}/stat") as f:
        return pid, int(f.read().rsplit(")", 1)[1].split()[1])


def test_a_pid_that_the_container_no_longer_owns_is_never_signalled(dockyard, rootfs, tmp_path):
    container_id = run_d(dockyard, rootfs, "--name", "gone", ["sleep", "100"])
    pid, monitor = pid1_and_monitor(dockyard, container_id)
    os.kill(monitor, signal.SIGKILL)  # PID 1 dies with it; its number is free for anyone
    wait_until(lambda: is_gone(pid), "PID 1 to die with its monitor")
    reap_exited_monitors()  # it may come to us, the suite being a subreaper
    stranger = __import__("subprocess").Popen(["sleep", "100"])
    try:
        path = os.path.join(dockyard.root, "containers", container_id, "state.json")
        record = json.load(open(path))
        json.dump({**record, "pid": stranger.pid}, open(path, "w"))  # as if the number came back
        assert dockyard("kill", "gone").returncode == 1
        assert dockyard("stop", "-t", "0", "gone").returncode == 0
        assert dockyard("rm", "-f", "gone").returncode == 0
        assert stranger.poll() is None, "the engine signalled a process that is not the container's"
    finally:
        stranger.kill()
        stranger.wait()


def is_gone(pid):
    """Whether `pid` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def fault_env(dockyard, point):
    return {**dockyard.impl.env(), "DOCKYARD_FAULT": point}


def crash_cli_during_create(dockyard, rootfs):
    result = dockyard("run", "-d", "--name", "victim", "--rootfs", rootfs, "sleep", "100",
                      env=fault_env(dockyard, "container-layers"))
    assert result.returncode == -signal.SIGKILL
    return None  # no container: it was never made


def crash_cli_during_create_of_a_waiting_pid1(dockyard, rootfs):
    result = dockyard("create", "--name", "victim", "--rootfs", rootfs, "sleep", "100",
                      env=fault_env(dockyard, "monitor-spawned"))
    assert result.returncode == -signal.SIGKILL
    return "Created"  # the monitor made PID 1 and keeps it waiting for start


def crash_monitor_of_a_created_container(dockyard, rootfs):
    result = dockyard("create", "--name", "victim", "--rootfs", rootfs, "sleep", "100",
                      env=fault_env(dockyard, "container-created"))
    assert result.returncode == 0, result.stderr  # the monitor answered, then died
    return "Dead"  # its waiting PID 1 died with it


def crash_cli_during_start(dockyard, rootfs):
    result = dockyard("run", "-d", "--name", "victim", "--rootfs", rootfs, "sleep", "100",
                      env=fault_env(dockyard, "monitor-spawned"))
    assert result.returncode == -signal.SIGKILL
    wait_until(lambda: (status_of(dockyard, "victim") or "").startswith("Up"), "the container to run")
    return "Up"  # killing the CLI never kills a detached container


def crash_cli_of_a_foreground_run(dockyard, rootfs):
    result = dockyard("run", "--name", "victim", "--rootfs", rootfs, "sleep", "100",
                      env=fault_env(dockyard, "container-running"))
    assert result.returncode == -signal.SIGKILL
    return "Dead"  # a foreground container is the CLI's child: it dies with it


def crash_cli_during_attach(dockyard, rootfs):
    run_d(dockyard, rootfs, "--name", "victim", "-i", ["sleep", "100"])
    result = dockyard("attach", "victim", env=fault_env(dockyard, "attach-connected"), stdin=subprocess.DEVNULL)
    assert result.returncode == -signal.SIGKILL
    return "Up"  # a client of the monitor: its end leaves the container as it was


def crash_monitor(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, "--name", "victim", ["sleep", "100"])
    os.kill(pid1_and_monitor(dockyard, container_id)[1], signal.SIGKILL)
    return "Dead"


def crash_pid1(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, "--name", "victim", ["sleep", "100"])
    os.kill(pid1_and_monitor(dockyard, container_id)[0], signal.SIGKILL)
    wait_until(lambda: status_of(dockyard, "victim").startswith("Exited"), "the monitor to record the exit")
    return "Exited (137)"


@pytest.mark.parametrize("crash", [crash_cli_during_create, crash_cli_during_create_of_a_waiting_pid1,
                                   crash_monitor_of_a_created_container, crash_cli_during_start,
                                   crash_cli_of_a_foreground_run,
                                   crash_cli_during_attach, crash_monitor, crash_pid1], ids=lambda f: f.__name__)
def test_after_a_crash_ps_tells_the_truth_and_rm_f_leaves_nothing(dockyard, rootfs, crash):
    expected = crash(dockyard, rootfs)
    if expected is None:
        assert dockyard("ps", "-aq").stdout == ""
        again = dockyard("run", "--name", "victim", "--rootfs", rootfs, "true")  # the name is free again
        assert again.returncode == 0, again.stderr
    else:
        wait_until(lambda: (status_of(dockyard, "victim") or "").startswith(expected), f"status {expected}")
    result = dockyard("rm", "-f", "victim")
    assert result.returncode == 0, result.stderr
    assert dockyard("ps", "-aq").stdout == ""
    wait_until(lambda: processes_of(dockyard.root) == [], "every process of the container to be gone")
    assert not os.listdir(os.path.join(dockyard.root, "containers"))


# --- what a container inherits -------------------------------------------------------------

@pytest.mark.parametrize("how", ["run", "run -d", "exec"])
def test_a_container_inherits_no_descriptor_of_the_caller_beyond_stdio(dockyard, rootfs, tmp_path, how):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    fd = os.open(secret, os.O_RDONLY)
    os.dup2(fd, 99, inheritable=True)
    os.close(fd)
    probe = ["sh", "-c", "cat /proc/self/fd/99 2>/dev/null; ls /proc/self/fd"]
    try:
        if how == "exec":
            container_id = run_d(dockyard, rootfs, ["sleep", "100"])
            result = dockyard("exec", container_id, *probe, pass_fds=(99,))
        elif how == "run -d":
            result = dockyard("run", "-d", "--rootfs", rootfs, *probe, pass_fds=(99,))
            assert result.returncode == 0, result.stderr
            dockyard("wait", result.stdout.strip())
            result = dockyard("logs", result.stdout.strip())
        else:
            result = dockyard("run", "--rm", "--rootfs", rootfs, *probe, pass_fds=(99,))
    finally:
        os.close(99)
    assert result.returncode == 0, result.stderr
    assert "host secret" not in result.stdout
    assert "99" not in result.stdout.split()


def test_run_d_t_logs_what_the_containers_terminal_shows(dockyard, rootfs):
    container_id = run_d(dockyard, rootfs, "-t", ["sh", "-c", "echo on-a-tty; tty"])
    assert dockyard("wait", container_id).stdout.strip() == "0"
    assert logs(dockyard, container_id).stdout.splitlines() == ["on-a-tty", "/dev/pts/0"]


def test_an_ordinary_user_creates_a_container_whose_pid1_waits_and_starts_it(nobody):
    created = nobody("create", "--name", "mine", "--rootfs", nobody.rootfs, "sh", "-c", "echo ran as $(id -u); exit 4")
    assert created.returncode == 0, created.stderr
    assert "Created" in nobody("ps", "-a").stdout
    started = nobody("start", "mine")
    assert started.returncode == 0, started.stderr
    assert nobody("wait", "mine").stdout.strip() == "4"
    assert nobody("logs", "mine").stdout == "ran as 0\n"
    assert nobody("rm", "mine").returncode == 0
    assert nobody("create", "--name", "waits", "--rootfs", nobody.rootfs, "sleep", "100").returncode == 0
    assert nobody("rm", "waits").returncode == 0  # its waiting PID 1 and monitor end with it
    wait_until(lambda: processes_of(nobody.root) == [], "the waiting PID 1 and its monitor to end")
    assert nobody("ps", "-aq").stdout == ""


def test_start_of_a_created_container_whose_monitor_died_makes_a_fresh_pid1(dockyard, rootfs):
    result = dockyard("create", "--name", "orphan", "--rootfs", rootfs, "sh", "-c", "echo again; exit 9",
                      env=fault_env(dockyard, "container-created"))
    assert result.returncode == 0, result.stderr
    wait_until(lambda: status_of(dockyard, "orphan") == "Dead", "the created container to read as dead")
    started = dockyard("start", "orphan")
    assert started.returncode == 0, started.stderr
    assert dockyard("wait", "orphan").stdout.strip() == "9"
    assert logs(dockyard, "orphan").stdout == "again\n"
