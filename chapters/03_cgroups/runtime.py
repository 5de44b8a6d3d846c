"""Running a container: the sequence that every chapter adds a step to.

    engine (parent)                      container (child)
    ───────────────                      ─────────────────
    check the request
    start the child ───────────────────▶ enter its root, mount /proc, ...
    forward signals                      exec the command (or report why not)
    wait for exec, or its error  ◀──────
    wait for exit
    clean up, return the exit code

The runtime reads one description of the container, a RuntimeSpec (spec.py),
and knows nothing of the engine that wrote it. Chapter 1 forks and chroots;
from chapter 2 on the child is cloned into new namespaces and waits for a
"go" while the engine sets it up from outside (chapter 3 adds its cgroup).
"""

import os
import signal
from dataclasses import dataclass, field
from typing import Callable, NoReturn

from . import process
from .errors import DockyardError
from .spec import RuntimeSpec
from . import init, libc, mounts, namespaces
from . import cgroups


def pipe() -> tuple[int, int]:
    return os.pipe2(os.O_CLOEXEC)


@dataclass
class Child:
    """What the engine and the container's process share across the fork: pipes and handles."""
    error: tuple[int, int] = field(default_factory=pipe)   # the child's error report, if exec fails
    go: tuple[int, int] = field(default_factory=pipe)      # the engine's "go", once it set the child up
    pid: int = 0
    closed: set[int] = field(default_factory=set)

    def close(self, *fds: int) -> None:
        """Close `fds`, or with none every pipe end still open; each fd is closed once."""
        for fd in set(fds or (*self.error, *self.go)) - self.closed:
            os.close(fd)  # closing a number twice could close a file opened meanwhile
            self.closed.add(fd)


@dataclass
class Hooks:
    """The moments an engine that keeps records is told of, in its own process."""
    started: Callable[[int], None] = lambda pid: None   # PID 1 is set up, not yet let go
    running: Callable[[], None] = lambda: None          # its command has been exec'd
    exited: Callable[[int], None] = lambda code: None   # it exited, not yet reaped: its pid is still its own


# --8<-- [start:run]
def run(spec: RuntimeSpec, hooks: Hooks = Hooks()) -> int:
    """Run one container in the foreground and return its exit code, telling `hooks` of each moment."""
    check_request(spec)
    child = Child()
    try:
        set_up(spec, child, hooks.started)
        child.closed.add(child.error[0])  # wait_for closes it
        exit_code = wait_for(child.pid, child.error[0], hooks)
        cgroups.check_oom(spec.id, exit_code)  # SIGKILL does not say who sent it: the cgroup knows
        return exit_code
    finally:
        child.close()
        clean_up(spec)  # also when a step above failed: nothing may outlive the request


def set_up(spec: RuntimeSpec, child: Child, started: Callable[[int], None]) -> None:
    """Make the container's process and everything it needs from outside, then let it go on."""
    cgroups.create(spec.id, spec.resources)  # before the child exists, so it never runs unlimited
    with process.signals_held():
        child.pid = launch(spec, child)
        process.forward_signals(child.pid)
    child.close(child.error[1])
    prepare_child(spec, child, started)
# --8<-- [end:run]


def check_request(spec: RuntimeSpec) -> None:
    """Refuse early, with a hint, what would otherwise fail deep in the child."""
    if "user" in spec.namespaces:
        namespaces.check_userns_allowed()
    check_rootfs(spec.root.path)


def check_rootfs(rootfs: str) -> None:
    """Refuse a rootfs that is no directory, or has no /proc to mount over."""
    if not os.path.isdir(rootfs):
        raise DockyardError(f"rootfs {rootfs!r} is not a directory",
                            hint="make one with: python3 -m tools.busybox_rootfs DIR")
    if not os.path.isdir(os.path.join(rootfs, "proc")):
        raise DockyardError(f"{rootfs!r} does not look like a root filesystem: it has no /proc",
                            hint=f"is it the right directory? if so: mkdir {rootfs}/proc")


def launch(spec: RuntimeSpec, child: Child) -> int:
    """Start the container's process: the child runs container_main and never returns."""
    pid = libc_clone(namespaces.clone_flags(spec.namespaces))
    if pid == 0:
        child.close(child.error[0])
        child.close(child.go[1])
        container_main(spec, child)
    return pid


def libc_clone(flags: int, cgroup: int = -1) -> int:
    """clone(2) the child into new namespaces, with a hint if the kernel refuses."""
    try:
        return libc.clone(flags, cgroup)
    except PermissionError as err:
        raise DockyardError("the kernel refused to create the container's namespaces",
                            hint="run as root, or rootless with --userns where user namespaces are enabled") from err


def prepare_child(spec: RuntimeSpec, child: Child, started: Callable[[int], None]) -> None:
    """Set up from outside what the child cannot do itself, then let it go on."""
    child.close(child.go[0])
    try:
        cgroups.join(spec.id, child.pid)
        if "user" in spec.namespaces:
            namespaces.write_id_maps(child.pid, spec.uid_map, spec.gid_map)
        started(child.pid)
        os.write(child.go[1], b"go")
    except BaseException:
        os.kill(child.pid, signal.SIGKILL)  # it never got "go": nothing of the user's has run
        os.waitpid(child.pid, 0)
        raise
    finally:
        child.close(child.go[1])


def wait_for_go(go_fd: int) -> None:
    """Block until the parent has set us up; a parent that died means no container."""
    # The container lives only as long as its engine: no one else would clean up after it.
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.read(go_fd, 2) != b"go":
        os._exit(125)
    os.close(go_fd)


# --8<-- [start:container_main]
def container_main(spec: RuntimeSpec, child: Child) -> NoReturn:
    """Become the container: enter its world and exec its command. Call in the child."""
    try:
        process.reset_signals()
        stdin = None if spec.process.stdin else os.open("/dev/null", os.O_RDONLY)
        wait_for_go(child.go[0])
        cgroups.enter_namespace()
        enter_namespaces(spec, child)
        process.enter_workdir(spec.process.cwd)
        if stdin is not None:
            os.dup2(stdin, 0)
            os.close(stdin)
        if spec.process.init:
            init.run_as_init(spec.process.args, spec.process.env, child.error[1])
        process.exec_command(spec.process.args, spec.process.env)
    except BaseException as err:  # nothing may escape a forked child
        if spec.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(child.error[1], err)
# --8<-- [end:container_main]


# --8<-- [start:enter_namespaces]
def enter_namespaces(spec: RuntimeSpec, child: Child) -> None:
    """Finish the container's world from inside its new namespaces."""
    namespaces.join_all(spec.join)
    namespaces.set_hostname(spec.hostname)
    mounts.make_mounts_private()
    rootfs = spec.root.path
    mounts.build_root(rootfs, "user" in spec.namespaces)
    mounts.mount_all(rootfs, spec.mounts)
    mounts.pivot(rootfs)
    if "user" in spec.namespaces:
        namespaces.become_root()  # only now: the host's path to the rootfs may be closed to it
    if "network" in spec.namespaces:
        namespaces.bring_up_loopback()
# --8<-- [end:enter_namespaces]


def wait_for(pid: int, error_fd: int, hooks: Hooks = Hooks()) -> int:
    """Wait until the child has exec'd (or failed to) and then exited; closes `error_fd`."""
    try:
        process.raise_child_error(error_fd)
        process.wait_for_exit(pid)  # not in waitpid: a signal that comes now must wake us (process.py)
    finally:
        os.close(error_fd)
        _, status = os.waitpid(pid, 0)
    return process.exit_code_of(status)


def clean_up(spec: RuntimeSpec) -> None:
    """Remove what the container needed only while it ran."""
    cgroups.remove(spec.id)
