"""final/ only: `attach` to a detached container's monitor, and detaching from it.

A client proves that it is attached by reading a line that the container
prints over and over; the test then lets the container go on by creating a
file inside it (exec), never by sleeping.
"""

import fcntl
import os
import signal
import struct
import subprocess
import termios

import pytest

from conftest import needs_root, failure_code
from test_lifecycle import no_process_of, status_of, wait_until  # noqa: F401  (no monitor outlives a test)

pytestmark = [needs_root, pytest.mark.usefixtures("no_process_of")]

# Prints `tick` on stdout (or stderr) until /tmp/go exists, then does the rest.
UNTIL_GO = "while [ ! -e /tmp/go ]; do echo tick{}; sleep 0.05; done; "


def run_d(dockyard, rootfs, name, *args):
    result = dockyard("run", "-d", "--network", "none", "--name", name, *args[:-1], "--rootfs", rootfs, *args[-1])
    assert result.returncode == 0, result.stderr


def go(dockyard, name):
    result = dockyard("exec", name, "touch", "/tmp/go")
    assert result.returncode == 0, result.stderr


def read_until(fd, wanted):
    """Read the pty master `fd` until `wanted` has come (or the client closed its terminal)."""
    output = b""
    while wanted not in output:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the client has exited and closed the terminal
            break
        if not chunk:
            break
        output += chunk
    return output


def in_a_terminal(dockyard, *args, rows=33, columns=101):
    """Run the CLI with a pty of its own (of that size) as stdin, stdout and stderr: the process and the master."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    client = dockyard.popen(*args, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    return client, master


def finish_in_a_terminal(client, master):
    """Everything the client still shows until it exits, and its exit status."""
    output = read_until(master, b"never printed")
    status = client.wait(timeout=60)
    os.close(master)
    return output, status


# --- output and exit status -------------------------------------------------------------

def test_an_attached_client_gets_the_output_with_stdout_and_stderr_apart_and_the_exit_status(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", ["sh", "-c", UNTIL_GO.format("") + "echo out; echo err >&2; exit 3"])
    client = dockyard.popen("attach", "box", stdin=subprocess.DEVNULL)
    assert client.stdout.readline() == "tick\n"
    go(dockyard, "box")
    out, err = client.communicate(timeout=60)
    assert client.returncode == 3, err
    assert out.splitlines()[-1] == "out" and "err" not in out
    assert err == "err\n"


def test_two_clients_attached_at_once_both_get_the_output_and_the_exit_status(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", ["sh", "-c", UNTIL_GO.format("") + "echo done; exit 6"])
    clients = [dockyard.popen("attach", "box", stdin=subprocess.DEVNULL) for _ in range(2)]
    for client in clients:
        assert client.stdout.readline() == "tick\n"
    go(dockyard, "box")
    for client in clients:
        out, err = client.communicate(timeout=60)
        assert (client.returncode, out.splitlines()[-1]) == (6, "done"), err


def test_a_client_that_stops_reading_is_dropped_and_the_container_goes_on(dockyard, rootfs):
    # Its stdout is a pipe nobody reads: the monitor queues a bounded amount for it, then lets it go.
    run_d(dockyard, rootfs, "box", "--log-driver", "none",
          ["sh", "-c", UNTIL_GO.format(" >&2") + "head -c 8000000 /dev/zero; exit 4"])
    client = dockyard.popen("attach", "box", stdin=subprocess.DEVNULL)
    try:
        assert client.stderr.readline() == "tick\n"
        go(dockyard, "box")
        assert dockyard("wait", "box").stdout == "4\n"
    finally:
        client.kill()
        client.communicate()


# --- stdin ------------------------------------------------------------------------------------

def test_run_d_i_keeps_stdin_open_and_attach_passes_what_is_piped_in(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", "-i", ["sh", "-c", "read x; echo got $x; exit 4"])
    result = dockyard("attach", "box", input="hello\n")
    assert (result.returncode, result.stdout) == (4, "got hello\n"), result.stderr


def test_attach_no_stdin_passes_no_input(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", "-i", ["sh", "-c", UNTIL_GO.format("") + "read x; echo got $x; exit 2"])
    client = dockyard.popen("attach", "--no-stdin", "box", stdin=subprocess.PIPE)
    assert client.stdout.readline() == "tick\n"
    client.stdin.write("ignored\n")
    client.stdin.close()
    go(dockyard, "box")
    result = dockyard("attach", "box", input="typed\n")  # a second client's input is what it reads
    assert (result.returncode, result.stdout.splitlines()[-1]) == (2, "got typed"), result.stderr
    out = client.stdout.read()
    assert client.wait(timeout=60) == 2 and "ignored" not in out


# --- detaching -------------------------------------------------------------------------------

def test_custom_detach_keys_detach_and_the_container_still_takes_input(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", "-i", ["sh", "-c", "read x; echo first $x; read y; echo second $y; exit 9"])
    result = dockyard("attach", "--detach-keys", "ctrl-x,y", "box", input="one\n\x18y")
    assert (result.returncode, result.stderr) == (1, "read escape sequence\n")
    assert status_of(dockyard, "box").startswith("Up")
    again = dockyard("attach", "box", input="two\n")
    assert (again.returncode, again.stdout) == (9, "second two\n"), again.stderr
    assert dockyard("logs", "box").stdout == "first one\nsecond two\n"


def test_a_key_that_only_begins_the_detach_sequence_reaches_the_container(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", "-i", ["sh", "-c", "read x; echo got $x; exit 0"])
    result = dockyard("attach", "--detach-keys", "q,q", "box", input="aqb\n")
    assert (result.returncode, result.stdout) == (0, "got aqb\n"), result.stderr


@pytest.mark.bad_input
@pytest.mark.parametrize("keys", ["ctrl-pp", "ctrl-1", "ab", "ctrl-p,,ctrl-q"])
def test_invalid_detach_keys_are_refused_with_a_hint(dockyard, rootfs, keys):
    run_d(dockyard, rootfs, "box", ["sleep", "100"])
    result = dockyard("attach", "--detach-keys", keys, "box", stdin=subprocess.DEVNULL)
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error: invalid detach keys") and "\nhint: " in result.stderr


# --- a terminal (-t) ---------------------------------------------------------------------

def test_attach_to_run_dit_relays_keys_window_size_and_exit_status(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", "-i", "-t", ["sh", "-c", UNTIL_GO.format("") + "exec sh"])
    client, master = in_a_terminal(dockyard, "attach", "box")
    assert b"tick" in read_until(master, b"tick")
    go(dockyard, "box")
    os.write(master, b"tty; stty size; exit 5\r")
    output, status = finish_in_a_terminal(client, master)
    assert status == 5, output
    assert b"/dev/pts/0" in output and b"33 101" in output


def test_ctrl_p_ctrl_q_detaches_and_leaves_the_container_running(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", "-i", "-t", ["sh", "-c", UNTIL_GO.format("") + "exec sh"])
    client, master = in_a_terminal(dockyard, "attach", "box")
    assert b"tick" in read_until(master, b"tick")
    os.write(master, b"\x10\x11")
    output, status = finish_in_a_terminal(client, master)
    assert status == 1 and b"read escape sequence" in output
    assert status_of(dockyard, "box").startswith("Up")


# --- run -it from a terminal: create + start + attach, as Docker's ------------------------

def test_run_it_from_a_terminal_keeps_its_tty_window_size_and_exit_status(dockyard, rootfs):
    client, master = in_a_terminal(dockyard, "run", "-it", "--rm", "--network", "none", "--rootfs", rootfs, "sh")
    assert b"# " in read_until(master, b"# ")
    os.write(master, b"tty; stty size; exit 5\r")
    output, status = finish_in_a_terminal(client, master)
    assert status == 5, output
    assert b"/dev/pts/0" in output and b"33 101" in output
    assert dockyard("ps", "-aq").stdout == ""  # --rm: gone by the time run returned


def test_run_it_detaches_with_ctrl_p_ctrl_q_and_the_container_runs_on(dockyard, rootfs):
    client, master = in_a_terminal(dockyard, "run", "-it", "--name", "box", "--network", "none", "--rootfs", rootfs, "sh")
    assert b"# " in read_until(master, b"# ")
    os.write(master, b"\x10\x11")
    output, status = finish_in_a_terminal(client, master)
    assert status == 0 and b"read escape sequence" not in output  # Docker's run detaches without a word
    assert status_of(dockyard, "box").startswith("Up")
    client, master = in_a_terminal(dockyard, "attach", "box")
    os.write(master, b"exit 4\r")
    assert finish_in_a_terminal(client, master)[1] == 4


def test_run_it_passes_a_new_window_size_and_sigterm_on_to_the_container(dockyard, rootfs):
    client, master = in_a_terminal(dockyard, "run", "-it", "--rm", "--network", "none", "--rootfs", rootfs, "sh", "-c",
                                   "trap 'echo got-term; exit 7' TERM; read x; stty size; echo ready; "
                                   "while :; do sleep 0.05; done")
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    client.send_signal(signal.SIGWINCH)  # what the kernel sends a terminal's foreground; ours has none
    os.write(master, b"go\r")
    assert b"40 120" in read_until(master, b"ready")
    client.send_signal(signal.SIGTERM)
    output, status = finish_in_a_terminal(client, master)
    assert status == 7 and b"got-term" in output, output


@pytest.mark.bad_input
def test_run_with_invalid_detach_keys_is_refused_before_a_container_is_made(dockyard, rootfs):
    result = dockyard("run", "-it", "--detach-keys", "ctrl-", "--rootfs", rootfs, "true")
    assert result.returncode == failure_code(result) and result.stderr.startswith("error: invalid detach keys")
    assert dockyard("ps", "-aq").stdout == ""


# --- signals ------------------------------------------------------------------------------

def test_a_signal_to_attach_reaches_the_container_unless_sig_proxy_is_false(dockyard, rootfs):
    run_d(dockyard, rootfs, "box", ["sh", "-c", "trap 'echo got-term; exit 7' TERM; " + UNTIL_GO.format("")])
    quiet = dockyard.popen("attach", "--sig-proxy=false", "box", stdin=subprocess.DEVNULL)
    assert quiet.stdout.readline() == "tick\n"
    quiet.send_signal(signal.SIGTERM)
    quiet.communicate(timeout=60)
    assert quiet.returncode == -signal.SIGTERM
    assert status_of(dockyard, "box").startswith("Up")
    proxy = dockyard.popen("attach", "box", stdin=subprocess.DEVNULL)
    assert proxy.stdout.readline() == "tick\n"
    proxy.send_signal(signal.SIGTERM)
    out, err = proxy.communicate(timeout=60)
    assert proxy.returncode == 7, err
    assert out.splitlines()[-1] == "got-term"


# --- refusals ---------------------------------------------------------------------------------

@pytest.mark.bad_input
def test_attach_to_a_stopped_container_is_refused_with_a_hint_and_exit_1(dockyard, rootfs):
    created = dockyard("create", "--network", "none", "--name", "box", "--rootfs", rootfs, "true")
    assert created.returncode == 0, created.stderr
    result = dockyard("attach", "box")
    assert result.returncode == failure_code(result)
    assert result.stderr.startswith("error: you cannot attach to a stopped container") and "\nhint: " in result.stderr
    assert dockyard("start", "-a", "box").returncode == 0
    assert dockyard("attach", "box").returncode == 1


@pytest.mark.bad_input
def test_attach_to_an_unknown_container_is_refused_with_a_hint(dockyard):
    result = dockyard("attach", "nothing-here")
    assert result.returncode == failure_code(result) and "\nhint: " in result.stderr


# --- start -a: run it under its monitor, attached from the first byte ---------------------

def test_start_a_gets_every_byte_even_when_it_reads_slower_than_the_container_writes(dockyard, rootfs):
    created = dockyard("create", "--network", "none", "--name", "box", "--rootfs", rootfs,
                       "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; exit 2")
    assert created.returncode == 0, created.stderr
    result = dockyard("start", "-a", "box")
    assert result.returncode == 2, result.stderr
    assert result.stdout == "x" * 3000000 + "\n"


def test_start_a_i_detaches_with_detach_keys_and_the_container_runs_on(dockyard, rootfs):
    created = dockyard("create", "-i", "--network", "none", "--name", "box", "--rootfs", rootfs,
                       "sh", "-c", "read x; echo got $x; read y; echo then $y; exit 3")
    assert created.returncode == 0, created.stderr
    result = dockyard("start", "-a", "-i", "--detach-keys", "ctrl-x,y", "box", input="one\n\x18y")
    assert result.returncode == 0 and result.stderr == ""  # Docker's start says nothing when detached
    assert status_of(dockyard, "box").startswith("Up")
    again = dockyard("attach", "box", input="two\n")
    assert (again.returncode, again.stdout) == (3, "then two\n"), again.stderr


def test_killing_start_a_leaves_the_container_running_under_its_monitor(dockyard, rootfs):
    created = dockyard("create", "--network", "none", "--name", "box", "--rootfs", rootfs,
                       "sh", "-c", UNTIL_GO.format("") + "exit 5")
    assert created.returncode == 0, created.stderr
    client = dockyard.popen("start", "-a", "box", stdin=subprocess.DEVNULL)
    assert client.stdout.readline() == "tick\n"
    client.kill()
    client.communicate()
    assert status_of(dockyard, "box").startswith("Up")
    go(dockyard, "box")
    assert dockyard("wait", "box").stdout == "5\n"
