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

import gc  # ch final
import os
import signal
from dataclasses import dataclass, field
from typing import Callable, NoReturn

from . import process
from .errors import DockyardError
from .spec import RuntimeSpec
# from . import chroot  # ch 01-01
from . import init, libc, mounts, namespaces  # ch 02
from . import cgroups  # ch 03
from . import layers  # ch 04
# from . import users  # ch 05-07
from . import devices, exec_fifo, security, terminal  # ch final


def pipe() -> tuple[int, int]:
    return os.pipe2(os.O_CLOEXEC)


@dataclass
class Child:
    """What the engine and the container's process share across the fork: pipes and handles."""
    error: tuple[int, int] = field(default_factory=pipe)   # the child's error report, if exec fails
    go: tuple[int, int] = field(default_factory=pipe)      # the engine's "go", once it set the child up  # ch 02
    lowers: "layers.Channel | None" = None                 # idmapped layers, engine to child  # ch 04
    terminal: "terminal.Terminal | None" = None            # with -t: the pty  # ch final
    orphan: bool = False                                   # create: PID 1 outlives this process  # ch final
    pid: int = 0
    closed: set[int] = field(default_factory=set)

    def close(self, *fds: int) -> None:
        """Close `fds`, or with none every pipe end still open; each fd is closed once."""
        # for fd in set(fds or self.error) - self.closed:  # ch 01-01
        for fd in set(fds or (*self.error, *self.go)) - self.closed:  # ch 02
            os.close(fd)  # closing a number twice could close a file opened meanwhile
            self.closed.add(fd)


@dataclass
class Hooks:
    """The moments an engine that keeps records is told of, in its own process."""
    started: Callable[[int], None] = lambda pid: None   # PID 1 is set up, not yet let go
    running: Callable[[], None] = lambda: None          # its command has been exec'd
    exited: Callable[[int], None] = lambda code: None   # it exited, not yet reaped: its pid is still its own
    relay: Callable[[int], None] | None = None          # -t: who takes the pty master (None: our own stdio)  # ch final


# --8<-- [start:run]
def run(spec: RuntimeSpec, hooks: Hooks = Hooks()) -> int:
    """Run one container in the foreground and return its exit code, telling `hooks` of each moment."""
    check_request(spec)
    child = Child()
    try:
        set_up(spec, child, hooks.started)
        if child.terminal:  # ch final
            terminal.relay(child.terminal, hooks.relay)  # until the container closes its terminal  # ch final
        child.closed.add(child.error[0])  # wait_for closes it
        exit_code = wait_for(child.pid, child.error[0], hooks)
        cgroups.check_oom(spec.id, exit_code)  # SIGKILL does not say who sent it: the cgroup knows  # ch 03
        return exit_code
    finally:
        child.close()
        clean_up(spec)  # also when a step above failed: nothing may outlive the request


def set_up(spec: RuntimeSpec, child: Child, started: Callable[[int], None]) -> None:
    """Make the container's process and everything it needs from outside, then let it go on."""
    # >>> chapter 03
    cgroups.create(spec.id, spec.resources)  # before the child exists, so it never runs unlimited
    devices.restrict(spec.id, spec.process.security.devices, spec.process.security.privileged)  # ch final
    # <<< chapter 03
    child.lowers = layers.idmap_channel() if spec.root.idmapped else None  # ch 04
    child.terminal = terminal.Terminal() if spec.process.terminal else None  # ch final
    with process.signals_held():
        child.pid = launch(spec, child)
        process.forward_signals(child.pid)
    child.close(child.error[1])
    prepare_child(spec, child, started)  # ch 02
# --8<-- [end:run]


# >>> chapter final
def create(spec: RuntimeSpec) -> tuple[int, int | None]:
    """Set the container up and leave PID 1 waiting at spec.exec_fifo; return its pid (and pty master)."""
    check_request(spec)
    child = Child(orphan=True)
    try:
        set_up(spec, child, lambda pid: None)
        master = terminal.receive_master(child.terminal) if child.terminal else None
        process.raise_child_error(child.error[0])  # EOF: PID 1 is at the fifo (see exec_fifo.py)
        if os.waitpid(child.pid, os.WNOHANG)[0]:
            raise DockyardError("the container's process died while it was set up", hint="run again with --debug")
        return child.pid, master
    except BaseException:
        if child.pid:
            os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
        clean_up(spec)
        raise
    finally:
        child.close()
# <<< chapter final


def check_request(spec: RuntimeSpec) -> None:
    """Refuse early, with a hint, what would otherwise fail deep in the child."""
    # if os.geteuid() != 0:  # ch 01-01
    #     raise DockyardError("running a container needs root",  # ch 01-01
    #                         hint="run it with sudo (inside the Vagrant VM: vagrant ssh, then sudo ...)")  # ch 01-01
    if "user" in spec.namespaces:  # ch 02
        namespaces.check_userns_allowed()  # ch 02
    # check_rootfs(spec.root.path)  # ch 01-03
    check_rootfs(spec.root.lowers[0] if spec.root.lowers else spec.root.path)  # an overlay: its top layer  # ch 04


def check_rootfs(rootfs: str) -> None:
    """Refuse a rootfs that is no directory, or has no /proc to mount over."""
    if not os.path.isdir(rootfs):
        raise DockyardError(f"rootfs {rootfs!r} is not a directory",
                            hint="make one with: python3 -m tools.busybox_rootfs DIR")
    # >>> chapter 02
    if not os.path.isdir(os.path.join(rootfs, "proc")):
        raise DockyardError(f"{rootfs!r} does not look like a root filesystem: it has no /proc",
                            hint=f"is it the right directory? if so: mkdir {rootfs}/proc")
    # <<< chapter 02


def launch(spec: RuntimeSpec, child: Child) -> int:
    """Start the container's process: the child runs container_main and never returns."""
    # pid = os.fork()  # ch 01-01
    # pid = libc_clone(namespaces.clone_flags(spec.namespaces))  # ch 02-07
    if not gc.get_freeze_count():  # the first launch only: a monitor that restarts PID 1 collects as usual  # ch final
        gc.freeze()  # what the engine holds now lives until it exits: spare its exit a collection of it all  # ch final
    with cgroups.opened_for_clone(spec.id) as cgroup:  # v2: born in its cgroup, no join to wait for  # ch final
        pid = libc_clone(namespaces.clone_flags(spec.namespaces), cgroup)  # ch final
    if pid == 0:
        child.close(child.error[0])
        child.close(child.go[1])  # ch 02
        container_main(spec, child)
    return pid


# >>> chapter 02
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
        cgroups.join(spec.id, child.pid)  # ch 03
        if "user" in spec.namespaces:
            namespaces.write_id_maps(child.pid, spec.uid_map, spec.gid_map)
        if child.lowers:  # ch 04
            layers.send_idmapped_lowers(child.lowers, child.pid, spec.root.idmapped)  # ch 04
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
# <<< chapter 02


# --8<-- [start:container_main]
def container_main(spec: RuntimeSpec, child: Child) -> NoReturn:
    """Become the container: enter its world and exec its command. Call in the child."""
    try:
        process.reset_signals()
        stdin = None if spec.process.stdin else os.open("/dev/null", os.O_RDONLY)
        # chroot.enter_rootfs(spec.root.path)  # ch 01-01
        # chroot.mount_proc()  # ch 01-01
        wait_for_go(child.go[0])  # ch 02
        gate = exec_fifo.open_gate(spec.exec_fifo, child.orphan)  # create: PID 1 will wait for start  # ch final
        cgroups.enter_namespace()  # ch 03
        enter_namespaces(spec, child)  # ch 02
        process.enter_workdir(spec.process.cwd)
        # if spec.process.user:  # ch 05-07
        #     users.switch_user(spec.process.user, spec.process.env)  # ch 05-07
        if stdin is not None:
            os.dup2(stdin, 0)
            os.close(stdin)
        if child.terminal:  # ch final
            terminal.attach(child.terminal)  # ch final
        security.confine(spec.process.security, spec.process.user, spec.process.env)  # the final step, less exec  # ch final
        exec_fifo.wait_for_start(gate, spec.process.args, spec.process.env, child.error[1])  # ch final
        if spec.process.init:  # ch 02
            init.run_as_init(spec.process.args, spec.process.env, child.error[1])  # ch 02
        process.exec_command(spec.process.args, spec.process.env)
    except BaseException as err:  # nothing may escape a forked child
        if spec.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(child.error[1], err)
# --8<-- [end:container_main]


# >>> chapter 02
# --8<-- [start:enter_namespaces]
def enter_namespaces(spec: RuntimeSpec, child: Child) -> None:
    """Finish the container's world from inside its new namespaces."""
    namespaces.join_all(spec.join)
    namespaces.set_hostname(spec.hostname)
    mounts.make_mounts_private()
    # rootfs = spec.root.path  # ch 02-03
    rootfs = layers.mount_root(spec.root, "user" in spec.namespaces, child.lowers)  # ch 04
    mounts.build_root(rootfs, "user" in spec.namespaces)
    mounts.mount_all(rootfs, spec.mounts)
    security.prepare_root(rootfs, spec.process.security)  # ch final
    mounts.pivot(rootfs)
    if spec.root.readonly:  # ch final
        mounts.make_root_read_only()  # ch final
    if "user" in spec.namespaces:
        namespaces.become_root()  # only now: the host's path to the rootfs may be closed to it
    if "network" in spec.namespaces:
        namespaces.bring_up_loopback()
# --8<-- [end:enter_namespaces]
# <<< chapter 02


def wait_for(pid: int, error_fd: int, hooks: Hooks = Hooks()) -> int:
    """Wait until the child has exec'd (or failed to) and then exited; closes `error_fd`."""
    try:
        process.raise_child_error(error_fd)
        hooks.running()  # ch 04
        process.wait_for_exit(pid)  # not in waitpid: a signal that comes now must wake us (process.py)
        hooks.exited(process.exit_code_unreaped(pid))  # ch 04
    finally:
        os.close(error_fd)
        _, status = os.waitpid(pid, 0)
    return process.exit_code_of(status)


def clean_up(spec: RuntimeSpec) -> None:
    """Remove what the container needed only while it ran."""
    # chroot.unmount_proc(spec.root.path)  # ch 01-01
    cgroups.remove(spec.id)  # ch 03
