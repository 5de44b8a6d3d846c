"""Chapter 01 on: `run --rootfs DIR CMD` runs CMD inside DIR and returns its status."""

import os
import signal
import subprocess

import pytest
from conftest import needs_root, failure_code

pytestmark = needs_root


def test_a_command_runs_inside_the_rootfs_and_its_output_reaches_the_user(dockyard, rootfs):
    with open(os.path.join(rootfs, "marker"), "w") as f:
        f.write("inside\n")
    result = dockyard("run", "--rootfs", rootfs, "cat", "/marker")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "inside\n"


def test_the_exit_code_is_the_commands_own(dockyard, rootfs):
    assert dockyard("run", "--rootfs", rootfs, "sh", "-c", "exit 3").returncode == 3


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(dockyard, rootfs):
    engine = dockyard.popen("run", "--rootfs", rootfs, "sh", "-c", "echo ready; exec sleep 30")
    assert engine.stdout.readline() == "ready\n"
    for child in children_of(engine.pid):
        os.kill(child, signal.SIGKILL)
    engine.communicate(timeout=20)
    assert engine.returncode == 137


def test_a_missing_command_exits_127_with_an_error_and_a_hint(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "no-such-command")
    assert result.returncode == 127
    assert result.stderr.startswith("error: no-such-command")
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


def test_a_command_that_is_not_executable_exits_126(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "/etc/passwd")
    assert result.returncode == 126
    assert "error:" in result.stderr and "hint:" in result.stderr


def test_the_environment_has_docker_defaults_and_the_users_variables(dockyard, rootfs):
    result = dockyard("run", "-e", "GREETING=hello world", "-e", "EMPTY=", "--rootfs", rootfs, "env")
    env = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root" and env["HOSTNAME"]
    assert env["GREETING"] == "hello world" and env["EMPTY"] == ""
    assert "TERM" not in env  # no terminal attached


def test_the_engines_own_environment_does_not_leak_in(dockyard, rootfs, impl):
    env = {**impl.env(), "SECRET_OF_THE_HOST": "1"}
    result = dockyard("run", "--rootfs", rootfs, "env", env=env)
    assert result.returncode == 0 and "HOSTNAME=" in result.stdout, result.stderr  # env ran inside
    assert "SECRET_OF_THE_HOST" not in result.stdout


def test_files_the_caller_left_open_do_not_reach_the_container(dockyard, rootfs, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    with open(secret) as leaked:  # inheritable, as a shell's `9<file` is
        fd = leaked.fileno()
        result = dockyard("run", "--rootfs", rootfs, "sh", "-c", f"cat /proc/self/fd/{fd} 2>/dev/null || echo closed",
                          pass_fds=(fd,))
    assert result.returncode == 0 and result.stdout == "closed\n", result.stdout + result.stderr


def test_workdir_sets_the_current_directory_and_is_created_if_missing(dockyard, rootfs):
    result = dockyard("run", "-w", "/srv/app", "--rootfs", rootfs, "pwd")
    assert result.stdout == "/srv/app\n"
    assert dockyard("run", "--rootfs", rootfs, "pwd").stdout == "/\n"


def test_proc_is_mounted_inside_the_container(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "cat", "/proc/self/status")
    assert "Pid:" in result.stdout


def test_stdin_is_attached_only_with_interactive(dockyard, rootfs):
    assert dockyard("run", "--rootfs", rootfs, "cat", input="typed\n").stdout == ""
    assert dockyard("run", "-i", "--rootfs", rootfs, "cat", input="typed\n").stdout == "typed\n"


def signal_reaches_the_container(dockyard, rootfs: str, sig: signal.Signals, code: int, *flags: str,
                                 **kwargs) -> None:
    """Send `sig` to the engine; the container's shell traps it and exits with `code`."""
    name = sig.name[3:]
    script = f'trap "echo got-{name}; exit {code}" {name}; echo ready; while :; do sleep 0.05; done'
    engine = dockyard.popen("run", *flags, "--rootfs", rootfs, "sh", "-c", script, **kwargs)
    assert engine.stdout.readline() == "ready\n"
    engine.send_signal(sig)
    try:
        out, _ = engine.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        engine.kill()  # its container dies with it (PR_SET_PDEATHSIG)
        engine.communicate()
        raise AssertionError(f"the engine did not pass SIG{name} on: the container still ran a minute later")
    assert engine.returncode == code
    assert f"got-{name}" in out


def test_sigterm_sent_to_the_engine_reaches_the_container(dockyard, rootfs):
    signal_reaches_the_container(dockyard, rootfs, signal.SIGTERM, 42)


@pytest.mark.parametrize("flags", [[], ["-t"], ["--log-driver", "none"]], ids=["tee", "tty", "no-log"])
def test_a_signal_that_comes_while_the_engine_is_between_waits_still_reaches_the_container(dockyard, rootfs, impl,
                                                                                          flags):
    # DOCKYARD_FAULT=signals-astray (final/faults.py): each signal reaches the engine as if it had come
    # just before its main thread fell asleep in a wait, a moment a loaded machine gives only rarely. Each
    # flag makes the engine wait for the container in a loop of its own: copying its output, relaying its
    # pty, or none (wait_for itself, as chapters 01-07 do).
    env = {**impl.env(), "DOCKYARD_FAULT": "signals-astray"}
    signal_reaches_the_container(dockyard, rootfs, signal.SIGTERM, 42, *flags, env=env, stdin=subprocess.DEVNULL)


def test_the_command_starts_with_no_signal_blocked_nor_those_python_ignores_ignored(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status")
    masks = {line.split(":")[0]: int(line.split()[1], 16) for line in result.stdout.splitlines()}
    assert masks["SigBlk"] == 0, result.stdout  # the engine blocks signals around the fork, never for the command
    python_ignores = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
    assert masks["SigIgn"] & python_ignores == 0, result.stdout


def test_arguments_after_the_command_belong_to_the_command(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs, "echo", "--help", "-e", "x")
    assert result.stdout == "--help -e x\n"


def test_a_missing_rootfs_is_refused_with_exit_125(dockyard, tmp_path):
    result = dockyard("run", "--rootfs", str(tmp_path / "nowhere"), "true")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error:") and "hint:" in result.stderr


def test_a_rootfs_that_is_a_file_is_refused_with_exit_125(dockyard, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    result = dockyard("run", "--rootfs", str(tmp_path / "file"), "true")
    assert result.returncode == failure_code(result) and "hint:" in result.stderr


def test_an_unknown_flag_is_refused_with_exit_125(dockyard, rootfs):
    result = dockyard("run", "--no-such-flag", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result)
    assert "error:" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def test_run_without_a_command_is_refused(dockyard, rootfs):
    result = dockyard("run", "--rootfs", rootfs)
    assert result.returncode == failure_code(result) and "hint:" in result.stderr


def test_debug_shows_the_traceback_behind_an_error(dockyard, tmp_path):
    result = dockyard("--debug", "run", "--rootfs", str(tmp_path / "nowhere"), "true")
    assert "Traceback" in result.stderr and "error:" in result.stderr


def test_help_lists_each_command_on_one_line(dockyard):
    result = dockyard("--help")
    assert result.returncode == 0
    assert any(line.split()[:1] == ["run"] for line in result.stdout.splitlines())


def test_running_as_an_ordinary_user_without_root_is_refused_with_a_hint(nobody):
    result = nobody("run", "--rootfs", nobody.rootfs, "true")
    assert result.returncode == failure_code(result)
    assert "error:" in result.stderr and "hint:" in result.stderr


def test_version_names_the_engine_the_implementation_and_the_kernel(dockyard, impl):
    result = dockyard("version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"Dockyard 0.1.0 ({impl.name})")
    assert os.uname().release in result.stdout


def test_ctrl_c_sent_to_the_engine_reaches_the_container(dockyard, rootfs):
    signal_reaches_the_container(dockyard, rootfs, signal.SIGINT, 41)


# --- the long forms and the smaller promises of docs/reference/cli.md ------------------

def test_the_long_flag_forms_mean_what_the_short_ones_do(dockyard, rootfs):
    result = dockyard("run", "--env", "A=long", "--workdir", "/srv", "--interactive", "--rootfs", rootfs,
                      "sh", "-c", 'echo "$A $(pwd)"; cat', input="from stdin\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "long /srv\nfrom stdin\n"


def test_e_with_a_name_alone_passes_the_engines_own_value_and_nothing_if_it_has_none(dockyard, rootfs, impl):
    env = {**impl.env(), "FROM_THE_ENGINE": "passed on"}
    env.pop("NOT_SET_ANYWHERE", None)
    result = dockyard("run", "-e", "FROM_THE_ENGINE", "-e", "NOT_SET_ANYWHERE", "--rootfs", rootfs, "env", env=env)
    assert result.returncode == 0, result.stderr
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert variables["FROM_THE_ENGINE"] == "passed on"
    assert "NOT_SET_ANYWHERE" not in variables  # as Docker: a name without a value anywhere is left out


def test_sighup_sent_to_the_engine_reaches_the_container(dockyard, rootfs):
    signal_reaches_the_container(dockyard, rootfs, signal.SIGHUP, 43)


def test_command_help_lists_the_commands_own_flags_and_exits_0(dockyard):
    result = dockyard("run", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and "--rootfs" in result.stdout and "--env" in result.stdout


def test_every_command_that_help_lists_answers_command_help(dockyard):
    listing = dockyard("--help").stdout.split("positional arguments:")[1].split("options:")[0]
    commands = [line.split()[0] for line in listing.splitlines() if line.startswith("    ") and line.split()
                and not line.startswith("     ")]  # a command's line, not a wrapped description
    assert "run" in commands, listing
    for command in commands:
        result = dockyard(command, "--help")
        assert result.returncode == 0 and result.stdout.startswith("usage:"), (command, result.stderr)
        assert f" {command} " in result.stdout.splitlines()[0] + " ", command
