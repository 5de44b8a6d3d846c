"""Running a container: the sequence that every chapter adds a step to.

    engine (parent)                      container (child)
    ───────────────                      ─────────────────
    check the request
    clone into new namespaces ─────────▶ wait for "go"
    map ids, join cgroups, ... ── go ──▶ build the mount tree, pivot_root
    forward signals                      mount /proc, bring up lo, ...
    wait for exec, or its error  ◀────── exec the command (or report why not)
    wait for exit
    clean up, return the exit code

Chapter 1 forks and chroots; chapter 2 clones into namespaces and pivots.
"""

import os
import signal
from dataclasses import dataclass, field
from typing import NoReturn

from . import config, process
from .errors import DockyardError
from . import chroot


@dataclass
class Spec:
    """Everything `run` was asked for, after the CLI has checked it."""
    rootfs: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    interactive: bool = False
    debug: bool = False


# --8<-- [start:run]
def run(spec: Spec) -> int:
    """Run one container in the foreground and return its exit code."""
    check_request(spec)
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    try:
        with signals_held():
            pid = os.fork()
            if pid == 0:
                os.close(error_read)
                container_main(spec, error_write)
            forward_signals(pid)
        os.close(error_write)
        return wait_for(pid, error_read)
    finally:
        clean_up(spec)  # also when a step above failed: nothing may outlive the request
# --8<-- [end:run]


def check_request(spec: Spec) -> None:
    """Refuse early, with a hint, what would otherwise fail deep in the child."""
    if os.geteuid() != 0:
        raise DockyardError("running a container needs root",
                            hint="run it with sudo (inside the Vagrant VM: vagrant ssh, then sudo ...)")
    if not os.path.isdir(spec.rootfs):
        raise DockyardError(f"rootfs {spec.rootfs!r} is not a directory",
                            hint="make one with: python3 -m tools.busybox_rootfs DIR")


# --8<-- [start:container_main]
def container_main(spec: Spec, error_fd: int,
                   ) -> NoReturn:
    """Become the container: enter its world and exec its command. Call in the child."""
    try:
        reset_signals()
        stdin = None if spec.interactive else os.open("/dev/null", os.O_RDONLY)
        chroot.enter_rootfs(spec.rootfs)
        chroot.mount_proc()
        enter_workdir(spec.workdir)
        if stdin is not None:
            os.dup2(stdin, 0)
            os.close(stdin)
        process.exec_command(spec.argv, spec.env)
    except BaseException as err:  # nothing may escape a forked child
        if spec.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(error_fd, err)
# --8<-- [end:container_main]


def enter_workdir(workdir: str) -> None:
    """chdir to -w DIR, creating it as Docker does when the image lacks it."""
    try:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    except OSError as err:
        raise DockyardError(f"cannot use {workdir} as the working directory: {err.strerror}",
                            hint="give -w a directory, or a path where one can be made") from err


def wait_for(pid: int, error_fd: int) -> int:
    """Wait until the child has exec'd (or failed to) and then exited."""
    try:
        process.raise_child_error(error_fd)
    finally:
        _, status = os.waitpid(pid, 0)
    return process.exit_code_of(status)


def clean_up(spec: Spec) -> None:
    """Remove what the container needed only while it ran."""
    chroot.unmount_proc(spec.rootfs)


# --- signals -----------------------------------------------------------------
# Ctrl-C or a `kill` aimed at the engine is meant for the container. We block
# these signals across fork(), so none can arrive before someone handles it:
# the parent installs forwarders, the child restores the defaults.

def _forwarded() -> list[signal.Signals]:
    return [getattr(signal, name) for name in config.FORWARDED_SIGNALS]


class signals_held:
    """Block the forwarded signals inside a `with`; pending ones arrive at exit."""

    def __enter__(self) -> None:
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _forwarded())

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def forward_signals(pid: int) -> None:
    """Pass every forwarded signal that the engine receives on to `pid`."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass  # it has just exited; wait_for will see that
    for sig in _forwarded():
        signal.signal(sig, forward)


def reset_signals() -> None:
    """Give the child default signal handling and an empty mask again."""
    for sig in _forwarded():
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
