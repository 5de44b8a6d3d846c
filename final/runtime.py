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
# >>> chapter 02-03
# import shutil
# <<< chapter 02-03
import signal
# >>> chapter 04
import socket
# <<< chapter 04
from dataclasses import dataclass, field
from typing import NoReturn

from . import config, process
from .errors import DockyardError
# >>> chapter 01-01
# from . import chroot
# <<< chapter 01-01
# >>> chapter 02
from . import init, libc, mounts, namespaces
# <<< chapter 02
# >>> chapter 03
from . import cgroups
# <<< chapter 03
# >>> chapter 04
from . import containers, layers, volumes
from .layers import Channel
# <<< chapter 04
# >>> chapter final
from . import devices, network, security, terminal
from .network import Options as NetworkOptions
# <<< chapter final


@dataclass
class Spec:
    """Everything `run` was asked for, after the CLI has checked it."""
    rootfs: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    interactive: bool = False
    debug: bool = False
    # >>> chapter 02
    root: str = config.DEFAULT_ROOT
    id: str = field(default_factory=lambda: os.urandom(32).hex())
    hostname: str = ""
    network: str = "none"
    userns: bool = False
    init: bool = False
    # <<< chapter 02
    # >>> chapter final
    tty: bool = False
    terminal: "terminal.Terminal | None" = None
    security: "security.Profile" = field(default_factory=security.Profile)  # what root inside may do
    net: NetworkOptions = field(default_factory=NetworkOptions)  # -p, --dns, --add-host, --network-alias
    # <<< chapter final
    # >>> chapter 03
    limits: cgroups.Limits = field(default_factory=cgroups.Limits)
    # <<< chapter 03
    # >>> chapter 04
    name: str = ""
    remove: bool = False                                # --rm: no record once it exits
    storage_driver: str = "overlay"
    lowers: list[str] = field(default_factory=list)     # read-only layers, the top-most first
    volumes: list[str] = field(default_factory=list)    # -v SOURCE:DEST[:ro], checked
    idmapped: "Channel | None" = None                   # root with --userns: how the lowers reach the child
    # <<< chapter 04
    # >>> chapter 05
    image: str = ""                                     # as the user named it; "" for --rootfs
    image_id: str = ""
    user: str = ""                                      # -u, or the image's User
    stop_signal: str = ""
    container_config: dict = field(default_factory=dict)  # the image's config as run changed it
    # <<< chapter 05


# --8<-- [start:run]
def run(spec: Spec) -> int:
    """Run one container in the foreground and return its exit code."""
    check_request(spec)
    error_read, error_write = os.pipe2(os.O_CLOEXEC)
    try:
        # >>> chapter 02
        go_read, go_write = os.pipe2(os.O_CLOEXEC)
        etc_files = write_etc_files(spec)
        # <<< chapter 02
        # >>> chapter 03
        cgroups.create(spec.id, spec.limits)  # before the child exists, so it never runs unlimited
        devices.restrict(spec.id, spec.security.devices, spec.security.privileged)  # ch final
        # <<< chapter 03
        # >>> chapter 04
        if layers.needs_idmapped_lowers(spec.storage_driver, spec.userns):
            spec.idmapped = socket.socketpair()  # the engine's end, the child's end
        # <<< chapter 04
        # >>> chapter final
        spec.terminal = terminal.Terminal() if spec.tty else None
        if spec.tty:
            spec.env.setdefault("TERM", "xterm")
        # <<< chapter final
        with signals_held():
            # >>> chapter 01-01
            # pid = os.fork()
            # if pid == 0:
            #     os.close(error_read)
            #     container_main(spec, error_write)
            # <<< chapter 01-01
            # >>> chapter 02
            pid = libc_clone(namespaces.clone_flags(spec.network, spec.userns))
            if pid == 0:
                os.close(error_read)
                os.close(go_write)
                container_main(spec, error_write, go_read, etc_files)
            # <<< chapter 02
            forward_signals(pid)
        os.close(error_write)
        # >>> chapter 02
        os.close(go_read)
        prepare_child(spec, pid, go_write)
        # <<< chapter 02
        # >>> chapter final
        if spec.terminal:
            terminal.relay(spec.terminal)  # until the container closes its terminal
        # <<< chapter final
        # >>> chapter 01-02
        # return wait_for(pid, error_read)
        # <<< chapter 01-02
        # >>> chapter 03
        exit_code = wait_for(pid, error_read)
        cgroups.check_oom(spec.id, exit_code)  # SIGKILL does not say who sent it: the cgroup knows
        return exit_code
        # <<< chapter 03
    finally:
        clean_up(spec)  # also when a step above failed: nothing may outlive the request
# --8<-- [end:run]


def check_request(spec: Spec) -> None:
    """Refuse early, with a hint, what would otherwise fail deep in the child."""
    # >>> chapter 01-01
    # if os.geteuid() != 0:
    #     raise DockyardError("running a container needs root",
    #                         hint="run it with sudo (inside the Vagrant VM: vagrant ssh, then sudo ...)")
    # <<< chapter 01-01
    # >>> chapter 02
    if spec.userns:
        namespaces.check_userns_allowed()
    # <<< chapter 02
    if not os.path.isdir(spec.rootfs):
        raise DockyardError(f"rootfs {spec.rootfs!r} is not a directory",
                            hint="make one with: python3 -m tools.busybox_rootfs DIR")
    # >>> chapter 02
    if not os.path.isdir(os.path.join(spec.rootfs, "proc")):
        raise DockyardError(f"{spec.rootfs!r} does not look like a root filesystem: it has no /proc",
                            hint=f"is it the right directory? if so: mkdir {spec.rootfs}/proc")
    # <<< chapter 02


# >>> chapter 02
def libc_clone(flags: int) -> int:
    """clone(2) the child into new namespaces, with a hint if the kernel refuses."""
    try:
        return libc.clone(flags)
    except PermissionError as err:
        raise DockyardError("the kernel refused to create the container's namespaces",
                            hint="run as root, or rootless with --userns where user namespaces are enabled") from err


def container_dir(spec: Spec) -> str:
    return os.path.join(spec.root, "containers", spec.id)


def write_etc_files(spec: Spec) -> dict[str, str]:
    """Write the container's /etc/hostname, hosts and resolv.conf; return path -> source."""
    directory = container_dir(spec)
    os.makedirs(directory, exist_ok=True)
    files = {"/etc/hostname": f"{spec.hostname}\n",
             "/etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                           f"127.0.1.1\t{spec.hostname}\n",
             "/etc/resolv.conf": host_resolv_conf(spec.network)}
    sources = {}
    for path, text in files.items():
        sources[path] = os.path.join(directory, os.path.basename(path))
        with open(sources[path], "w") as f:
            f.write(text)
    return sources


def host_resolv_conf(network: str) -> str:
    """The host's resolv.conf, less servers on its loopback that a new netns cannot reach."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    if network != "host":
        lines = [line for line in lines if not line.startswith("nameserver 127.")]
    return "\n".join(lines) + "\n"


def prepare_child(spec: Spec, pid: int, go_fd: int) -> None:
    """Set up from outside what the child cannot do itself, then let it go on."""
    try:
        # >>> chapter 03
        cgroups.join(spec.id, pid)
        # <<< chapter 03
        network.attach(spec, pid)  # ch final
        if spec.userns:
            namespaces.write_id_maps(pid)
        # >>> chapter 04
        if spec.idmapped:
            layers.send_idmapped_lowers(spec.idmapped, pid, spec.lowers)
        containers.mark_running(spec, pid)
        # <<< chapter 04
        os.write(go_fd, b"go")
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # it never got "go": nothing of the user's has run
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(go_fd)


def wait_for_go(go_fd: int) -> None:
    """Block until the parent has set us up; a parent that died means no container."""
    # The container lives only as long as its engine: no one else would clean up after it.
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.read(go_fd, 2) != b"go":
        os._exit(125)
    os.close(go_fd)
# <<< chapter 02


# --8<-- [start:container_main]
def container_main(spec: Spec, error_fd: int,
                   # >>> chapter 02
                   go_fd: int, etc_files: dict[str, str],
                   # <<< chapter 02
                   ) -> NoReturn:
    """Become the container: enter its world and exec its command. Call in the child."""
    try:
        reset_signals()
        stdin = None if spec.interactive else os.open("/dev/null", os.O_RDONLY)
        # >>> chapter 01-01
        # chroot.enter_rootfs(spec.rootfs)
        # chroot.mount_proc()
        # <<< chapter 01-01
        # >>> chapter 02
        wait_for_go(go_fd)
        # <<< chapter 02
        # >>> chapter 03
        cgroups.enter_namespace()
        # <<< chapter 03
        # >>> chapter 02
        enter_namespaces(spec, etc_files)
        # <<< chapter 02
        enter_workdir(spec.workdir)
        # >>> chapter 05-07
        # if spec.user:
        #     from .image_run import switch_user
        #     switch_user(spec.user, spec.env)
        # <<< chapter 05-07
        if stdin is not None:
            os.dup2(stdin, 0)
            os.close(stdin)
        # >>> chapter final
        if spec.terminal:
            terminal.attach(spec.terminal)
        security.confine(spec.security, spec.user, spec.env)  # the final step, less exec (--init forks first)
        # <<< chapter final
        # >>> chapter 02
        if spec.init:
            init.run_as_init(spec.argv, spec.env, error_fd)
        # <<< chapter 02
        process.exec_command(spec.argv, spec.env)
    except BaseException as err:  # nothing may escape a forked child
        if spec.debug:
            import traceback
            traceback.print_exc()
        process.report_to_parent(error_fd, err)
# --8<-- [end:container_main]


# >>> chapter 02
# --8<-- [start:enter_namespaces]
def enter_namespaces(spec: Spec, etc_files: dict[str, str]) -> None:
    """Finish the container's world from inside its new namespaces."""
    network.join_shared_namespace(spec)  # ch final
    namespaces.set_hostname(spec.hostname)
    mounts.make_mounts_private()
    # >>> chapter 04
    # From here on the rootfs is the union of its read-only layers and the container's own.
    spec.rootfs = layers.mount(layers.Layers(spec.storage_driver, spec.lowers, container_dir(spec)), spec.userns,
                               spec.idmapped)
    # <<< chapter 04
    mounts.build_root(spec.rootfs, etc_files, spec.userns)
    # >>> chapter 04
    volumes.mount_all(spec.rootfs, spec.volumes, spec.root)
    # <<< chapter 04
    security.prepare_root(spec.rootfs, spec.security)  # ch final
    mounts.pivot(spec.rootfs)
    if spec.userns:
        namespaces.become_root()  # only now: the host's path to the rootfs may be closed to it
    if spec.network != "host":
        namespaces.bring_up_loopback()
# --8<-- [end:enter_namespaces]
# <<< chapter 02


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
    # >>> chapter 01-01
    # chroot.unmount_proc(spec.rootfs)
    # <<< chapter 01-01
    # >>> chapter 02-03
    # # Its mounts vanished with its mount namespace; only its files remain.
    # shutil.rmtree(container_dir(spec), ignore_errors=True)
    # <<< chapter 02-03
    # >>> chapter 03
    cgroups.remove(spec.id)
    # <<< chapter 03
    network.detach(spec)  # ch final


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
