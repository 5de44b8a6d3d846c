# chapter: final
"""`exec`: one more process inside a running container.

A container is not a thing the kernel knows: it is a set of namespaces and a
cgroup that its first process was cloned into. To add a process to it, we
join the same ones, then become the command the same way PID 1 did:

    engine                        helper (a child)               the process (its child)
    ──────                        ────────────────               ───────────────────────
    pidfd_open(PID 1)
    fork ───────────────────────▶ join the cgroup (host's view; on v2 the fork,
                                  a clone3, starts it there)
                                  setns(pidfd, every namespace
                                        that PID 1 has and we lack)
                                  fork ────────────────────────▶ inside the PID namespace:
                                  report its pid, exit           cwd, user, terminal,
    wait for it (a subreaper) ◀──────────────────────────────── the final step, exec

setns(2) through a pidfd enters all the namespaces at once, the user
namespace first, so that the others are joined with the capabilities it
grants. Entering a mount or user namespace needs a single-threaded process,
which a freshly forked child is. Joining a PID namespace moves only the
children made afterwards, hence the second fork; the helper exits, and the
engine, a "child subreaper", inherits the process and waits for it.
"""

import gc
import os
import signal
from dataclasses import dataclass, field
from typing import NoReturn

from . import cgroups, faults, libc, namespaces, process, security, terminal
from .errors import DockyardError

PR_SET_CHILD_SUBREAPER = 36  # orphaned descendants come to us, not to init
# The namespaces a container may have, in the order /proc/PID/ns names them.
NAMESPACES = {"user": libc.CLONE_NEWUSER, "mnt": libc.CLONE_NEWNS, "uts": libc.CLONE_NEWUTS,
              "ipc": libc.CLONE_NEWIPC, "net": libc.CLONE_NEWNET, "pid": libc.CLONE_NEWPID,
              "cgroup": libc.CLONE_NEWCGROUP}


@dataclass
class Exec:
    """The process to start: the container's defaults, then exec's own flags."""
    container_id: str
    name: str                         # as the user called it, for messages
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    debug: bool = False
    terminal: "terminal.Terminal | None" = None
    security: dict = field(default_factory=dict)  # the container's security.Profile, as its record holds it


# --8<-- [start:exec_in]
def exec_in(request: Exec, pid1: int) -> int:
    """Run `request` inside the container whose first process is `pid1`; return its exit code."""
    pid, error_read = spawn(request, pid1)
    if request.terminal:
        terminal.relay(request.terminal)
    if request.detach:
        process.raise_child_error(error_read)  # its command has started, or could not
        os.waitpid(pid, 0)  # it left the command to a grandchild: see detach()
        return 0
    try:
        process.raise_child_error(error_read)  # its command has started, or could not
        process.wait_for_exit(pid)  # not in waitpid: a signal that comes now must wake us (process.py)
    finally:
        os.close(error_read)
        _, status = os.waitpid(pid, 0)
    return process.exit_code_of(status)


def spawn(request: Exec, pid1: int) -> tuple[int, int]:
    """Start `request` inside the container; return its pid and the read end of its error pipe."""
    pidfd, flags = open_pid1(request.name, pid1)
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    pid_read, pid_write = os.pipe2(os.O_CLOEXEC)
    request.terminal = terminal.Terminal() if request.tty and not request.detach else None
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    gc.freeze()  # what we hold now lives until we exit: spare the exit a collection of it all (runtime.launch)
    faults.signals_astray()  # a test's: signals that land outside a wait (faults.py)
    with process.signals_held(), cgroups.opened_for_clone(request.container_id) as cgroup:
        helper = libc.clone(0, cgroup)  # a fork; on v2 born in the container's cgroup
        if helper == 0:
            os.close(error_read)
            os.close(pid_read)
            enter_container(request, pidfd, flags, error_write, pid_write)
        os.close(pidfd)
        os.close(pid_write)
        os.close(error_write)
        pid = process_pid(helper, pid_read)
        process.forward_signals(pid)
    return pid, error_read
# --8<-- [end:exec_in]


def open_pid1(name: str, pid: int) -> tuple[int, int]:
    """A pidfd for the container's PID 1, and the clone flags of the namespaces to join."""
    try:
        pidfd = os.pidfd_open(pid)
        is_init = len(nspid := read_nspid(pid)) > 1 and nspid[-1] == 1
        flags, pivoted = namespaces_of(pid), has_pivoted(pid)
        # A pidfd means the process it was opened for, even once its pid is reused:
        # if that process still lives, what /proc said above was about it.
        signal.pidfd_send_signal(pidfd, 0)
    except (ProcessLookupError, FileNotFoundError):
        raise not_running(name) from None
    if not is_init or not pivoted:
        os.close(pidfd)
        raise not_running(name) if not is_init else DockyardError(f"container {name} is still starting",
                                                                  hint="try again in a moment")
    return pidfd, flags


def has_pivoted(pid: int) -> bool:
    """Whether `pid` has made the container's rootfs its "/": joining it earlier would show us the host's."""
    theirs, ours = os.stat(f"/proc/{pid}/root"), os.stat("/")
    return (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino)


def read_nspid(pid: int) -> list[int]:
    """The pid of `pid` in each PID namespace it belongs to, outermost first."""
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("NSpid:"))
    return [int(n) for n in line.split()[1:]]


def not_running(name: str) -> DockyardError:
    return DockyardError(f"container {name} is not running",
                         hint=f"start it first (start {name}), or see ps -a")


def namespaces_of(pid: int) -> int:
    """The clone flags of every namespace that `pid` has and we do not share."""
    flags = 0
    for name, flag in NAMESPACES.items():
        if os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}"):
            flags |= flag
    return flags


def process_pid(helper: int, pid_fd: int) -> int:
    """Reap the helper and return the pid of the process it left us; raise its error if none."""
    data = os.read(pid_fd, 32)
    os.close(pid_fd)
    _, status = os.waitpid(helper, 0)
    if not data:
        raise DockyardError(f"cannot enter the container (helper exit code {process.exit_code_of(status)})",
                            hint="run again with --debug to see why")
    return int(data)


# --- in the helper -------------------------------------------------------------

def enter_container(request: Exec, pidfd: int, flags: int, error_fd: int, pid_fd: int) -> NoReturn:
    """Join PID 1's cgroup and namespaces, fork the process, report its pid. Call in the helper."""
    try:
        join_cgroup(request.container_id)
        libc.setns(pidfd, flags)  # every namespace at once, the user namespace first
        pid = os.fork()
        if pid == 0:
            os.close(pid_fd)
            become_process(request, error_fd, userns=bool(flags & libc.CLONE_NEWUSER))
        os.write(pid_fd, str(pid).encode())
        os._exit(0)
    except BaseException as err:
        if request.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(error_fd, err)


def join_cgroup(container_id: str) -> None:
    """Move ourselves into the container's cgroup in every v1 tree, while we still see the host's."""
    if os.geteuid() != 0 or cgroups.detect().version != 1:
        return  # rootless: the container has no cgroup of its own; v2: clone3 started us in it
    for directory in sorted(set(cgroups.cgroup_dirs(cgroups.detect(), container_id).values())):
        if os.path.isdir(directory):
            cgroups.write(os.path.join(directory, "cgroup.procs"), "0")  # 0: the writer itself


# --- in the process -------------------------------------------------------------

def become_process(request: Exec, error_fd: int, userns: bool) -> NoReturn:
    """The final step, as PID 1 takes it: cwd, user, stdio, then the command. Call inside."""
    try:
        process.reset_signals()
        if userns:
            namespaces.become_root()  # host root is no one inside until it takes uid 0 there
        if request.detach:
            detach()
        process.enter_workdir(request.workdir)
        if not request.interactive and not request.tty:
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        if request.terminal:
            terminal.attach(request.terminal)
        security.final_step(security.Profile.from_dict(request.security), request.user, request.argv, request.env)
    except BaseException as err:
        if request.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(error_fd, err)


def detach() -> None:
    """Go on in a grandchild that PID 1 inherits, so that the engine may exit at once."""
    if os.fork() != 0:
        os._exit(0)
    os.setsid()  # no terminal of the engine's, and no Ctrl-C from it
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


# --- the command ----------------------------------------------------------------

def merged_env(container_env: dict[str, str], tty: bool, given: list[str]) -> dict[str, str]:
    """The container's environment, then exec's -e; TERM for -t unless the container sets it."""
    parsed = process.default_env("", tty, given)  # checks -e as run does, adds the defaults
    named = {item.partition("=")[0] for item in given}
    return {**container_env, **{k: v for k, v in parsed.items() if k in named or k not in container_env}}
