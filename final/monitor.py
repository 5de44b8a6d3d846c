# chapter: final
"""A monitor per container: what lets a container outlive the command that started it.

Until now a container lived as long as `run`: the engine was its parent,
held its lock and cleaned up after it. `run -d` and `start` hand that job to
a small process of its own, as Docker hands it to containerd's shim and
Podman to conmon:

    CLI (run -d, start)              monitor                          container
    ───────────────────              ───────                          ─────────
    fork ─▶ setsid, fork ─▶          take the container's lock
    wait for its word      ◀─┐       runtime.run ── clone ────────▶  PID 1
                             └────── "running" once PID 1 has exec'd
    print the id, exit               its output into the log and to attach's clients,
                                     their keys into its stdin (attach_server.py)
                                     PID 1 exits: record ExitCode, FinishedAt
                                     restart it, as --restart says, or
                                     clean up (--rm), drop the lock, exit

`create` spawns the monitor too, gated: PID 1 is made, set up (namespaces,
mounts, cgroup, network) and left waiting at its exec fifo (exec_fifo.py);
the monitor records "created", answers "created", and waits for `start` on
its start socket (start_socket.py) to let it go. A restart, and `start` of
an exited container, make a fresh PID 1 at once.

The double fork and setsid make the monitor nobody's child and no terminal's
member: killing the CLI, or closing its terminal, never reaches it. The
monitor is PID 1's parent (and a subreaper, so nothing of the container
escapes it), and PID 1 dies with the monitor (its parent-death signal): a
monitor killed with SIGKILL takes its container along, and the next command,
finding the lock free, shows the container as dead.

The log is Docker's json-file format (jsonlog.py).
"""

import gc
import json
import os
import signal
import time
from dataclasses import dataclass
from typing import NoReturn

from . import container, containers, exec_fifo, faults, libc, runtime, start_socket
from .errors import DockyardError, UsageError
from .jsonlog import open_log
from .request import Request, runtime_spec

# --- the restart policy ------------------------------------------------------------

@dataclass
class RestartPolicy:
    """--restart: no, on-failure[:N], always or unless-stopped."""
    name: str = "no"
    maximum: int = 0    # on-failure:N; 0 means no limit

    def wants(self, exit_code: int, restarts: int, stopped: bool) -> bool:
        """Whether PID 1 should run again after exiting with `exit_code`."""
        if stopped or self.name == "no":
            return False  # stop, kill and rm -f are the user's word: keep it stopped
        if self.name == "on-failure":
            return exit_code != 0 and (not self.maximum or restarts < self.maximum)
        return True  # always, unless-stopped (no daemon restarts here, so they are the same)


def parse_restart(text: str) -> RestartPolicy:
    """Check --restart as Docker spells it."""
    name, _, count = text.partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped") or (count and name != "on-failure"):
        raise UsageError(f"invalid restart policy {text!r}",
                         hint="use no, on-failure[:N], always or unless-stopped")
    if count and not count.isdigit():
        raise UsageError(f"invalid restart count {count!r}", hint="on-failure:N takes a number: on-failure:3")
    return RestartPolicy(name, int(count or 0))


# --- starting a monitor ---------------------------------------------------------------

def spawn(request: Request, gated: bool = False, client: "socket.socket | None" = None) -> int:
    """Run the container under a monitor of its own; return once its command runs (`gated`: once
    PID 1 waits for start), or raise why not. Its pid.

    `client` (start -a) is the monitor's end of a socket pair, its first attach client; then the
    monitor stays our child (one fork, not two), so start -a can wait for its end."""
    report_read, report_write = os.pipe2(os.O_CLOEXEC)
    gc.freeze()  # what the CLI holds now lives until it exits: spare its exit, and the monitor, collecting it all
    pid = os.fork()
    if pid == 0:
        os.close(report_read)
        try:
            os.setsid()  # a session of its own: the CLI's terminal and its signals stay behind
            if client or os.fork() == 0:
                monitor_main(request, report_write, gated, client)
        finally:
            os._exit(0)  # the middle process: its exit leaves the monitor to init
    os.close(report_write)
    if not client:
        os.waitpid(pid, 0)
    faults.fault_point("monitor-spawned")
    with open(report_read, "rb") as f:
        report = f.read()
    if client and report != b"running":
        os.waitpid(pid, 0)  # our own child: it cleans up and ends
    start_socket.check_report(report, b"created" if gated else b"running")
    return pid


class Reporter:
    """The monitor's one message to the CLI that started it: "created" or "running", or the error.

    A gated monitor has two: "created" to `create`, then "running" (or the error) to `start`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: bytes) -> None:
        if self.fd >= 0:
            try:
                os.write(self.fd, message)
            except OSError:
                pass  # the CLI is gone (killed, say): the container runs on regardless
            os.close(self.fd)
            self.fd = -1

    def error(self, err: BaseException) -> None:
        if isinstance(err, DockyardError):
            message = {"kind": type(err).__name__, "problem": err.problem, "hint": err.hint}
        else:
            message = {"kind": "DockyardError", "problem": f"the monitor failed: {err}",
                       "hint": "run it in the foreground (without -d), with --debug, to see where"}
        self.send(json.dumps(message).encode())


def monitor_main(request: Request, report_fd: int, gated: bool, client: "socket.socket | None" = None) -> NoReturn:
    """Hold the container's lock, run PID 1, restart it as the policy says, then clean up."""
    reporter = Reporter(report_fd)
    try:
        # run -it, start -a -t: stdin stays the CLI's terminal until PID 1 is set up, so its pty gets that size.
        null_stdio(1, 2) if client and request.tty else null_stdio()
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)  # orphans of the container come to us, not to init
        c = container.Container(request.root, request.id)
        if not c.take_lock():
            raise DockyardError(f"container {c.name} is already running", hint=f"stop it first: stop {c.name}")
        if not gated:  # (a new container has no last stop: a stop word now is rm's, come while we make it)
            clear_stop(c)  # a new start: the last stop is forgotten
        supervise(request, c, reporter, gated, client)
    except BaseException as err:
        reporter.error(err)
    finally:
        os._exit(0)


def supervise(request: Request, c: "container.Container", reporter: Reporter, gated: bool,
              client: "socket.socket | None" = None) -> None:
    """Run PID 1 again and again while the restart policy asks for it; then clean up."""
    policy = parse_restart(request.restart)
    restarts = 0
    try:
        while True:
            exit_code = run_once(request, c, reporter, Gate(c) if gated and not restarts else None, client)
            client = None  # start -a follows the first run only, as Docker's
            if not policy.wants(exit_code, restarts, os.path.exists(c.stop_path())):
                break
            restarts += 1
            c.move("restarting")
            time.sleep(min(0.1 * 2 ** restarts, 10))  # Docker's back-off: 100ms, doubling
            if os.path.exists(c.stop_path()):
                c.move("exited")
                break  # stopped while it waited to restart
    finally:
        if request.remove:
            from . import volumes
            containers.remove(request.root, request.id)
            volumes.remove_anonymous(request.root, request.volumes)
        c.lock.release()


def run_once(request: Request, c: "container.Container", reporter: Reporter, gate: "Gate | None",
             client: "socket.socket | None" = None) -> int:
    """Run PID 1 once, its streams served by attach_server (with a gate: once started); record how it ended."""
    from .cgroups import OOMKilled
    from . import attach_protocol, attach_server
    log = open_log(c, request.log)
    streams = attach_server.Streams(attach_protocol.socket_path(c), log, *give_stdio(request), first=client)

    def started(pid: int) -> None:
        gate.record_created(request, pid, c) if gate else containers.started(request, pid, c)
        null_stdio()  # PID 1 has its ends of the pipes: the monitor lets go, so the output ends with the container's
        if not request.tty:
            streams.start()

    def exited(exit_code: int) -> None:
        c.move("exited", exit_code=exit_code, pid=0, finished=container.now())

    def running() -> None:
        if gate:
            gate.wait_for_start(request, c, reporter)  # after this, `reporter` answers start
        reporter.send(b"running")

    exit_code = 125
    hooks = runtime.Hooks(started, running, exited)
    hooks.relay = lambda master: streams.start(master, request.interactive)  # -t: the monitor owns the pty
    try:
        spec = runtime_spec(request, c.directory)
        spec.exec_fifo = gate.fifo if gate else ""  # create: PID 1 waits there for start
        exit_code = runtime.run(spec, hooks)
    except OOMKilled:
        exit_code = 137
        c.move("exited", exit_code=137, oom_killed=True, pid=0, finished=container.now())
    except DockyardError as err:
        exit_code = err.exit_code
        reporter.error(err)
        c.move("exited", exit_code=exit_code, pid=0, finished=container.now())
    finally:
        if gate:
            gate.close()
        if gate and not gate.started:
            gate.never_started(request)  # rm of a created container: it never ran, so it never died
        else:
            containers.stopped(request, exit_code)
        null_stdio()
        streams.finish(exit_code)  # the output runs out into the log; attached clients get the exit status
        if log:
            log.close()
    return exit_code


def give_stdio(request: Request) -> tuple[dict[int, str], int | None]:
    """Pipes for PID 1's stdout and stderr (and stdin with -i) on fds 0-2, for it to inherit; our ends."""
    outputs = {}
    for fd, stream in ((1, "stdout"), (2, "stderr")):
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        os.dup2(write_end, fd)  # without O_CLOEXEC: PID 1 inherits it
        os.close(write_end)
        outputs[read_end] = stream
    stdin = None
    if request.interactive and not request.tty:  # -t: the pty is its stdin; -i alone: a pipe that stays open
        read_end, stdin = os.pipe2(os.O_CLOEXEC)
        os.dup2(read_end, 0)
        os.close(read_end)
    return outputs, stdin


class Gate:
    """create's gate: PID 1 waits at the exec fifo until `start` asks the monitor to let it go."""

    def __init__(self, c: "container.Container") -> None:
        self.directory = os.path.dirname(c.lock.path)  # the run dir: runtime state, gone with rm
        self.fifo = os.path.join(self.directory, exec_fifo.NAME)
        if os.path.exists(self.fifo):
            os.unlink(self.fifo)  # a monitor killed before left it
        exec_fifo.make(self.directory)
        self.server = start_socket.listen(self.directory)  # before the record says created: start finds it
        self.started = False

    def record_created(self, request: Request, pid: int, c: "container.Container") -> None:
        """PID 1 is set up: put it on its network now, as containerd does between create and start."""
        from .network import attach
        attach(request, pid)
        c.move("created", pid=pid)  # the pid is real: a waiting PID 1 holds the namespaces (as runc state)

    def wait_for_start(self, request: Request, c: "container.Container", reporter: Reporter) -> None:
        """PID 1 waits at the fifo: tell create, then let it go when start asks; return early if it dies."""
        reporter.send(b"created")
        faults.fault_point("container-created")
        pid = c.state.pid
        if os.path.exists(c.stop_path()):
            os.kill(pid, signal.SIGKILL)  # rm came before our record named PID 1: it could not kill it itself
        conn = start_socket.wait_for_start(self.server, pid)
        self.close()
        if conn is None:
            return  # killed while it waited (rm): runtime sees it exit
        reporter.fd = conn.detach()  # the answer now goes to start
        exec_fifo.release(self.fifo, lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None)
        containers.mark_running(request, pid, c)
        self.started = True

    def never_started(self, request: Request) -> None:
        from .network import detach
        detach(request)

    def close(self) -> None:
        if self.server.fileno() >= 0:
            start_socket.close(self.server, self.directory)


def null_stdio(*fds: int) -> None:
    """Point stdin, stdout and stderr (or just `fds`) at /dev/null: the monitor has no terminal."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in fds or (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def clear_stop(c: "container.Container") -> None:
    try:
        os.unlink(c.stop_path())
    except FileNotFoundError:
        pass
