"""The container's process: its environment, its command, its signals, its exit code.

The engine forks; the child prepares its world and then replaces itself with
the user's command through execve(2). If that fails, the parent must learn
why (a missing command exits 127, a non-executable one 126, as in Docker), so
the child writes the error into a close-on-exec pipe: a successful exec closes
the pipe unread, a failed one leaves a message in it.
"""

import json
import os
import select
import signal
import stat
from typing import NoReturn

from . import config, libc
from .errors import CommandError, DockyardError, NotExecutable, NotFound


def default_env(hostname: str, tty: bool, extra: list[str]) -> dict[str, str]:
    """The environment a container starts with, then the user's `-e K=V`."""
    env = {"PATH": config.DEFAULT_PATH, "HOSTNAME": hostname, "HOME": config.DEFAULT_HOME}
    if tty:
        env["TERM"] = "xterm"
    for item in extra:
        key, sep, value = item.partition("=")
        if not key:
            raise DockyardError(f"invalid environment variable: {item!r}",
                                hint="write it as -e KEY=VALUE")
        if sep:
            env[key] = value
        elif key in os.environ:  # `-e KEY` passes the engine's own value, as Docker does
            env[key] = os.environ[key]
    return env


def close_inherited_files(first: int = 3) -> None:
    """Let no file our caller left open reach the container: only stdin, stdout and stderr (and fds below `first`)."""
    # A descriptor opened without close-on-exec (a shell's `3<file`, a parent's
    # socket) stays open across fork and exec, so the container's command would
    # hold it: a door to the host. Marking them close-on-exec shuts it at exec.
    try:
        libc.close_range(first, flags=libc.CLOSE_RANGE_CLOEXEC)  # one system call (Linux 5.11)
        return
    except OSError:
        pass  # a kernel before 5.11: one descriptor at a time
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        if int(name) >= first:
            try:
                os.set_inheritable(int(name), False)
            except OSError:
                pass  # the directory listing's own descriptor, closed by now


def find_executable(name: str, path: str) -> str:
    """Find `name` on `path` as execvp(3) would; call after entering the rootfs."""
    # We search PATH ourselves: after chroot, os.execvp can fail on a lazy
    # import that the new root does not have.
    candidates = [name] if "/" in name else [os.path.join(d or ".", name) for d in path.split(":")]
    found_unexecutable = None
    for candidate in candidates:
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and os.access(candidate, os.X_OK):
            return candidate
        found_unexecutable = candidate
    if found_unexecutable:
        raise NotExecutable(f"{found_unexecutable}: permission denied",
                            hint="the file is not an executable program; check its mode (chmod +x) or the command")
    raise NotFound(f"{name}: executable file not found in $PATH",
                   hint="check the command's spelling, or that the rootfs contains it")


def enter_workdir(workdir: str) -> None:
    """chdir to -w DIR, creating it as Docker does when the image lacks it."""
    try:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    except OSError as err:
        raise DockyardError(f"cannot use {workdir} as the working directory: {err.strerror}",
                            hint="give -w a directory, or a path where one can be made") from err


# --8<-- [start:exec_command]
def exec_command(argv: list[str], env: dict[str, str]) -> NoReturn:
    """Replace this process with the container's command. Call in the child."""
    program = find_executable(argv[0], env.get("PATH", config.DEFAULT_PATH))
    # Python ignores SIGPIPE and SIGXFSZ, and exec keeps what is ignored: a shell pipeline in the
    # container expects SIGPIPE's default, a program over its file-size limit SIGXFSZ's.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execve(program, argv, env)
    except PermissionError as err:
        raise NotExecutable(f"{program}: permission denied", hint="check the file's mode") from err
    except OSError as err:
        raise CommandError(f"{program}: cannot execute: {err.strerror}",
                           hint="is it a program for this machine's architecture?") from err
# --8<-- [end:exec_command]


def report_to_parent(pipe_fd: int, err: BaseException) -> NoReturn:
    """Tell the parent why the child failed, then exit. Call in the child."""
    if isinstance(err, DockyardError):
        message = {"kind": type(err).__name__, "problem": err.problem, "hint": err.hint}
    else:
        message = {"kind": "DockyardError", "problem": f"container setup failed: {err}",
                   "hint": "run again with --debug to see where"}
    os.write(pipe_fd, json.dumps(message).encode())
    os._exit(125)


_ERRORS = {cls.__name__: cls for cls in (DockyardError, CommandError, NotFound, NotExecutable)}


def raise_child_error(pipe_fd: int) -> None:
    """Wait until the child has exec'd, or raise the error it reported."""
    chunks = []
    while chunk := os.read(pipe_fd, 65536):
        chunks.append(chunk)
    if chunks:
        message = json.loads(b"".join(chunks))
        raise _ERRORS.get(message["kind"], DockyardError)(message["problem"], message["hint"])


def exit_code_of(status: int) -> int:
    """Docker's exit code for a wait status: the code, or 128+N after signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


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
    wake_on_signals()  # each of our waits wakes to run `forward` (see below)


def reset_signals() -> None:
    """Give the child default signal handling and an empty mask again."""
    for sig in _forwarded():
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)  # the engine's wakeup pipe is the engine's
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


# --- waiting, awake to signals -----------------------------------------------------
# The engine forwards Ctrl-C and `kill` to the container from a Python signal
# handler (forward_signals, above). Python runs such a handler in the main
# thread, between two bytecodes; the C-level handler beneath only notes the
# signal. One that comes after the last of those checks and before a blocking
# call puts the engine to sleep waits for that call to return, and a wait for
# the container's exit never returns: the container waits for the signal. So
# the C handler also writes the signal's number into a pipe (set_wakeup_fd),
# and each of the engine's waits watches that pipe too.

_wakeup: list[int] = []  # the pipe's read end, once wake_on_signals made it


def wake_on_signals() -> None:
    """Have every signal with a Python handler wake wait_readable. Call in the main thread."""
    if not _wakeup:
        read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        _wakeup.append(read_end)


def wait_readable(fds: list[int]) -> list[int]:
    """Block until some of `fds` are readable (or ended) and return them, running signal handlers meanwhile."""
    poller = select.poll()
    for fd in [*fds, *_wakeup]:
        poller.register(fd, select.POLLIN)
    while True:
        ready = [fd for fd, _ in poller.poll()]  # Python runs the handlers as poll returns
        if _wakeup and _wakeup[0] in ready:
            os.read(_wakeup[0], 4096)  # the signals' numbers: their handlers have run
        if ready := [fd for fd in ready if fd not in _wakeup]:
            return ready


def wait_for_exit(pid: int) -> None:
    """Block until `pid` has exited, leaving it unreaped, running signal handlers meanwhile."""
    pidfd = os.pidfd_open(pid)  # readable once the process has exited
    try:
        wait_readable([pidfd])
    finally:
        os.close(pidfd)
