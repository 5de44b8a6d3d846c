"""final/ only: `exec` runs one more process inside a running container, and
`-t` gives a process a terminal from the container's own devpts."""

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import termios
import time

import pytest

from conftest import become_nobody, needs_root, failure_code
from test_lifecycle import no_process_of  # noqa: F401  (a fixture: no monitor outlives the test)

pytestmark = needs_root


@contextlib.contextmanager
def running(dockyard, rootfs, name, *flags, command=("sleep", "1000")):
    """A container running `command` in the foreground, until the `with` ends."""
    engine = dockyard.popen("run", "--network", "none", "--name", name, *flags, "--rootfs", rootfs,
                            "sh", "-c", f'echo ready; exec {" ".join(command)}', stdin=subprocess.DEVNULL)
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        yield name
    finally:
        dockyard("rm", "-f", name)
        engine.communicate(timeout=60)


def wait_until(check, what: str, tries: int = 600):
    """Poll `check` until it is true (a loaded machine may be slow; no time is asserted)."""
    for _ in range(tries):
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"never happened: {what}")


def test_exec_runs_in_the_containers_namespaces_beside_its_first_process(dockyard, rootfs):
    with running(dockyard, rootfs, "box", "--hostname", "inside"):
        result = dockyard("exec", "box", "sh", "-c", "hostname; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'")
        assert result.returncode == 0, result.stderr
        hostname, pid1, processes = result.stdout.splitlines()
        assert hostname == "inside"
        assert pid1 == "sleep"
        assert int(processes) <= 4  # its own PID namespace: sleep, sh, ls, grep


def test_exec_sees_and_changes_the_containers_files(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        assert dockyard("exec", "box", "sh", "-c", "echo written > /tmp/mark").returncode == 0
        assert dockyard("exec", "box", "cat", "/tmp/mark").stdout == "written\n"
        assert not os.path.exists(f"{rootfs}/tmp/mark")  # the container's own layer, not its base


def test_exec_joins_the_containers_cgroup(dockyard, rootfs):
    with running(dockyard, rootfs, "box", "--pids-limit", "50"):
        result = dockyard("exec", "box", "sh", "-c", "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup")
        mine, pid1 = result.stdout.split("--\n")
        assert mine.strip() == pid1.strip()


def test_exec_returns_the_commands_exit_code(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        assert dockyard("exec", "box", "sh", "-c", "exit 7").returncode == 7


def test_exec_of_a_missing_command_exits_127_and_of_a_non_executable_file_126(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        missing = dockyard("exec", "box", "no-such-command")
        assert missing.returncode == 127
        assert missing.stderr.startswith("error: ") and "hint: " in missing.stderr
        assert dockyard("exec", "box", "/etc/passwd").returncode == 126


def test_exec_takes_the_containers_env_workdir_and_user_and_its_flags_override_them(dockyard, rootfs):
    os.chmod(rootfs, 0o755)  # a tmp_path copy is 0700: user 1000 could not enter "/"
    with running(dockyard, rootfs, "box", "-e", "COLOUR=red", "-w", "/tmp", "-u", "1000"):
        defaults = dockyard("exec", "box", "sh", "-c", "echo $COLOUR; pwd; id -u")
        assert defaults.stdout.split() == ["red", "/tmp", "1000"], defaults.stderr
        given = dockyard("exec", "-e", "COLOUR=blue", "-w", "/etc", "-u", "0", "box", "sh", "-c", "echo $COLOUR; pwd; id -u")
        assert given.stdout.split() == ["blue", "/etc", "0"], given.stderr


def test_exec_i_passes_stdin_to_the_command(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        assert dockyard("exec", "-i", "box", "tr", "a-z", "A-Z", input="shout\n").stdout == "SHOUT\n"


def test_exec_d_returns_while_the_command_goes_on_inside(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        result = dockyard("exec", "-d", "box", "sh", "-c", "sleep 0.2; echo done > /tmp/mark")
        assert (result.returncode, result.stdout) == (0, "")
        wait_until(lambda: dockyard("exec", "box", "cat", "/tmp/mark").stdout == "done\n", "exec -d's command ran")


def test_with_init_what_exec_d_leaves_behind_is_reaped(dockyard, rootfs):
    with running(dockyard, rootfs, "box", "--init"):
        assert dockyard("exec", "-d", "box", "sh", "-c", "exit 0").returncode == 0
        # The detached shell is orphaned inside: only an init as PID 1 reaps it.
        wait_until(lambda: " Z " not in dockyard("exec", "box", "ps", "-o", "pid,stat,comm").stdout
                   and "sh" not in dockyard("exec", "box", "ps", "-o", "comm").stdout.split()[1:],
                   "the exited shell was reaped")


def test_exec_into_a_stopped_container_is_refused_with_a_hint(dockyard, rootfs):
    assert dockyard("run", "--network", "none", "--name", "done", "--rootfs", rootfs, "true").returncode == 0
    result = dockyard("exec", "done", "true")
    assert result.returncode == failure_code(result)
    assert result.stderr == "error: container done is not running\nhint: start it first (start done), or see ps -a\n"


def test_exec_into_an_unknown_container_is_refused_with_a_hint(dockyard, rootfs):
    result = dockyard("exec", "nobody-by-that-name", "true")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error: no such container") and "\nhint: " in result.stderr


def test_exec_with_an_ambiguous_id_prefix_is_refused_with_a_hint(dockyard, rootfs):
    firsts: set[str] = set()
    while True:  # ids are random: 17 containers are sure to share a first digit
        dockyard("run", "--network", "none", "--rootfs", rootfs, "true")
        ids = dockyard("ps", "-a", "-q").stdout.split()
        shared = next((i[0] for i in ids if [j[0] for j in ids].count(i[0]) > 1), None)
        if shared:
            break
    result = dockyard("exec", shared, "true")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error: more than one container matches") and "\nhint: " in result.stderr


def test_exec_into_a_user_namespace_container_is_root_inside_it(dockyard, rootfs):
    with running(dockyard, rootfs, "box", "--userns"):
        result = dockyard("exec", "box", "sh", "-c", "id -u; cat /proc/self/uid_map")
        uid, uid_map = result.stdout.split("\n", 1)
        assert uid == "0" and uid_map.split()[:2] == ["0", "100000"], result.stderr


def test_an_ordinary_user_can_exec_into_its_rootless_container(nobody):
    engine = subprocess.Popen(nobody.command("run", "--network", "none", "--name", "box", "--rootfs", nobody.rootfs,
                                             "sh", "-c", "echo ready; exec sleep 1000"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              preexec_fn=become_nobody, cwd="/",
                              env={**nobody.impl.env(), "HOME": "/", "USER": "nobody"})
    try:
        assert engine.stdout.readline() == "ready\n", engine.stderr.read()
        result = nobody("exec", "box", "sh", "-c", "id -u; cat /proc/1/cmdline")
        assert result.stdout.startswith("0\nsleep"), result.stderr
    finally:
        nobody("rm", "-f", "box")
        engine.communicate(timeout=60)


# --- terminals from the container's own devpts -------------------------------------

def test_run_t_gives_a_terminal_of_the_containers_own_devpts(dockyard, rootfs):
    result = dockyard("run", "--network", "none", "-t", "--rootfs", rootfs, "sh", "-c", "tty; readlink /proc/self/fd/0")
    assert result.stdout.split() == ["/dev/pts/0", "/dev/pts/0"], result.stderr


def test_exec_t_gives_a_terminal_of_the_containers_own_devpts(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        result = dockyard("exec", "-t", "box", "tty")
        assert result.stdout.strip() == "/dev/pts/0", result.stderr
        assert dockyard("exec", "box", "tty").stdout.strip() == "not a tty"


def test_exec_it_relays_keys_and_the_exit_code(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        result = dockyard("exec", "-i", "-t", "box", "sh", input="echo typed-$((6*7))\nexit 4\n")
        assert result.returncode == 4
        assert "typed-42" in result.stdout


def test_exec_w_with_a_relative_path_is_refused_with_a_hint(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        result = dockyard("exec", "-w", "tmp", "box", "pwd")
        assert result.returncode == failure_code(result) and result.stderr.startswith("error: the working directory 'tmp' is not")
        assert "\nhint: " in result.stderr


def test_a_signal_to_exec_reaches_the_command_inside(dockyard, rootfs):
    with running(dockyard, rootfs, "box"):
        client = dockyard.popen("exec", "box", "sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; "
                                "while :; do sleep 0.1; done", stdin=subprocess.DEVNULL)
        assert client.stdout.readline() == "ready\n"
        client.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=60)
        assert (client.returncode, out) == (5, "got-term\n")


def test_a_signal_to_exec_that_comes_while_it_is_between_waits_still_reaches_the_command(dockyard, rootfs, impl):
    # DOCKYARD_FAULT=signals-astray (final/faults.py): the signal comes as if just before exec's main thread
    # fell asleep waiting for its command, as in test_run.py's test of the same name for run.
    env = {**impl.env(), "DOCKYARD_FAULT": "signals-astray"}
    with running(dockyard, rootfs, "box"):
        client = dockyard.popen("exec", "box", "sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; "
                                "while :; do sleep 0.1; done", stdin=subprocess.DEVNULL, env=env)
        assert client.stdout.readline() == "ready\n"
        client.send_signal(signal.SIGTERM)
        try:
            out, _ = client.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            client.kill()
            dockyard("rm", "-f", "box")  # its command, still running, holds our pipe open
            client.communicate()
            raise AssertionError("exec did not pass SIGTERM on: its command still ran a minute later")
        assert (client.returncode, out) == (5, "got-term\n")


def test_exec_t_gives_the_command_the_callers_window_size(dockyard, rootfs):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    with running(dockyard, rootfs, "box"):
        client = dockyard.popen("exec", "-t", "box", "stty", "size", stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        output = b""
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:  # EIO: the client closed the terminal
                break
            if not chunk:
                break
            output += chunk
        client.wait(timeout=60)
        os.close(master)
    assert b"33 101" in output, output


# --- detached containers (a monitor is PID 1's parent) ----------------------------------

@pytest.mark.usefixtures("no_process_of")
def test_exec_into_a_detached_container(dockyard, rootfs):
    started = dockyard("run", "-d", "--network", "none", "--name", "box", "--rootfs", rootfs, "sleep", "1000")
    assert started.returncode == 0, started.stderr
    try:
        result = dockyard("exec", "box", "sh", "-c", "cat /proc/1/comm; exit 3")
        assert (result.returncode, result.stdout) == (3, "sleep\n"), result.stderr
        assert dockyard("exec", "-t", "box", "tty").stdout.strip() == "/dev/pts/0"
    finally:
        dockyard("rm", "-f", "box")


@pytest.mark.usefixtures("no_process_of")
def test_with_run_d_init_what_exec_d_leaves_behind_is_reaped(dockyard, rootfs):
    started = dockyard("run", "-d", "--init", "--network", "none", "--name", "box", "--rootfs", rootfs, "sleep", "1000")
    assert started.returncode == 0, started.stderr
    try:
        assert dockyard("exec", "-d", "box", "sh", "-c", "exit 0").returncode == 0
        wait_until(lambda: " Z " not in dockyard("exec", "box", "ps", "-o", "pid,stat,comm").stdout
                   and "sh" not in dockyard("exec", "box", "ps", "-o", "comm").stdout.split()[1:],
                   "the exited shell was reaped")
    finally:
        dockyard("rm", "-f", "box")
