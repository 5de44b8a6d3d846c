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
from . import chroot


def pipe() -> tuple[int, int]:
    return os.pipe2(os.O_CLOEXEC)


@dataclass
class Child:
    """What the engine and the container's process share across the fork: pipes and handles."""
    error: tuple[int, int] = field(default_factory=pipe)   # the child's error report, if exec fails
    pid: int = 0
    closed: set[int] = field(default_factory=set)

    def close(self, *fds: int) -> None:
        """Close `fds`, or with none every pipe end still open; each fd is closed once."""
        for fd in set(fds or self.error) - self.closed:
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
        return exit_code
    finally:
        child.close()
        clean_up(spec)  # also when a step above failed: nothing may outlive the request


def set_up(spec: RuntimeSpec, child: Child, started: Callable[[int], None]) -> None:
    """Make the container's process and everything it needs from outside, then let it go on."""
    with process.signals_held():
        child.pid = launch(spec, child)
        process.forward_signals(child.pid)
    child.close(child.error[1])
# --8<-- [end:run]


def check_request(spec: RuntimeSpec) -> None:
    """Refuse early, with a hint, what would otherwise fail deep in the child."""
    if os.geteuid() != 0:
        raise DockyardError("running a container needs root",
                            hint="run it with sudo (inside the Vagrant VM: vagrant ssh, then sudo ...)")
    check_rootfs(spec.root.path)


def check_rootfs(rootfs: str) -> None:
    """Refuse a rootfs that is no directory, or has no /proc to mount over."""
    if not os.path.isdir(rootfs):
        raise DockyardError(f"rootfs {rootfs!r} is not a directory",
                            hint="make one with: python3 -m tools.busybox_rootfs DIR")


def launch(spec: RuntimeSpec, child: Child) -> int:
    """Start the container's process: the child runs container_main and never returns."""
    pid = os.fork()
    if pid == 0:
        child.close(child.error[0])
        container_main(spec, child)
    return pid


# --8<-- [start:container_main]
def container_main(spec: RuntimeSpec, child: Child) -> NoReturn:
    """Become the container: enter its world and exec its command. Call in the child."""
    try:
        process.reset_signals()
        stdin = None if spec.process.stdin else os.open("/dev/null", os.O_RDONLY)
        chroot.enter_rootfs(spec.root.path)
        chroot.mount_proc()
        process.enter_workdir(spec.process.cwd)
        if stdin is not None:
            os.dup2(stdin, 0)
            os.close(stdin)
        process.exec_command(spec.process.args, spec.process.env)
    except BaseException as err:  # nothing may escape a forked child
        if spec.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(child.error[1], err)
# --8<-- [end:container_main]


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
    chroot.unmount_proc(spec.root.path)
