# chapter: final
"""Commands for containers that outlive the command: run -d, create, start, stop, kill, restart, wait, logs.

    run -d ... / create ...        print the new container's full id (-d: it runs under its monitor)
    start [-a] [-i] CONTAINER...   run created or stopped ones under a monitor (-a: attached to it)
    stop [-t N] CONTAINER...       its stop signal (the image's StopSignal, or SIGTERM), SIGKILL after N s
    kill [-s SIG] CONTAINER...     one signal (default SIGKILL)
    restart [-t N] CONTAINER...    stop, then start
    wait CONTAINER...              block until each exits; print its exit code
    logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER
    attach [--no-stdin] [--sig-proxy=true|false] [--detach-keys KEYS] CONTAINER

Signals reach PID 1 through a pidfd (see container.py), never through a bare
pid that may have been handed to another process meanwhile.
"""

import argparse
import json
import os
import signal
import sys
import time

from .errors import DockyardError, UsageError, each


def add_run_options(p: argparse.ArgumentParser) -> None:
    """run's (and create's) options for a container that outlives the command."""
    p.add_argument("-d", "--detach", action="store_true", help="run it in the background; print its id")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="no (default), on-failure[:N], always, unless-stopped: while its monitor lives")
    p.add_argument("--log-driver", default="json-file", metavar="DRIVER", help="json-file (default) or none")
    p.add_argument("--log-opt", action="append", default=[], metavar="K=V", help="max-size=10m, max-file=3")
    p.add_argument("--detach-keys", metavar="KEYS", help="-it: the keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("--stop-signal", metavar="SIG", help="what stop sends first (default: the image's, or TERM)")
    p.add_argument("--stop-timeout", type=int, metavar="N", help="seconds stop waits before SIGKILL (default 10)")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE", help="a label for the container")
    p.add_argument("--label-file", action="append", default=[], metavar="FILE", help="labels, one KEY=VALUE a line")


def apply_run_options(request, args: argparse.Namespace) -> None:
    """Check --restart, the log options, --detach-keys and the labels, and keep them in the request."""
    if args.detach_keys:
        from .attach import parse_detach_keys
        parse_detach_keys(args.detach_keys)  # before the container is made: a typo leaves nothing behind
    if args.stop_signal:
        stop_signal(args.stop_signal)  # a typo refused now, not at the first stop
        request.stop_signal = args.stop_signal  # over the image's StopSignal (image_run.apply keeps it)
    request.stop_timeout = args.stop_timeout
    if args.label or args.label_file:
        from .ps import parse_labels
        request.labels = parse_labels(args.label, args.label_file)
    if args.restart != "no" or args.log_driver != "json-file" or args.log_opt:
        from . import jsonlog, monitor
        monitor.parse_restart(args.restart)
        request.restart = args.restart
        request.log = jsonlog.parse_log_options(args.log_driver, args.log_opt)
        if args.rm and request.restart != "no":
            raise UsageError("--restart and --rm cannot go together",
                             hint="a container removed when it exits cannot be restarted: choose one")


def created(request, start: bool) -> int:
    """After create (or run -d): print the id once its monitor has PID 1 waiting for start (or running)."""
    from . import monitor
    monitor.spawn(request, gated=not start)
    print(request.id)
    return 0


def run_attached(request, args: argparse.Namespace) -> int:
    """run -it from a terminal: create + start + attach, as Docker's, so Ctrl-P Ctrl-Q can detach."""
    from . import attach, container
    return attach.start_attached(container.Container(request.root, request.id), request, args)


# --- start, stop, kill, restart, wait -------------------------------------------------------

def cmd_start(args: argparse.Namespace) -> int:
    from . import container
    if args.attach and len(args.containers) > 1:
        raise UsageError("start -a takes one container", hint="start the others without -a")
    if args.attach:
        return start_one(args, args.containers[0])
    return each(args.containers, lambda text: start_one(args, text))


def start_one(args: argparse.Namespace, text: str) -> int:
    """Start one container under a monitor; with -a, attached to it, its exit code ours."""
    from . import container
    c = container.load(args.root, text)
    if c.is_running():
        return 0  # as Docker: starting a running container is no error
    if is_waiting(c) and not args.attach:
        start_waiting(c)  # its monitor lets PID 1 go
        print(text)
        return 0
    from . import containers, monitor, volumes  # a fresh PID 1: the monitor's machinery
    if is_waiting(c):
        containers.stop_for_removal(args.root, c.id, force=False).lock.release()  # -a: PID 1 anew, ours
    request = containers.load_spec(args.root, c.id)
    request.debug, request.interactive = args.debug, args.interactive
    volumes.prepare(request.root, request.volumes, request.userns)
    if args.attach:
        from . import attach
        return attach.start_attached(c, request, args)  # under its monitor, as run -d, and attached
    monitor.spawn(request)
    print(text)
    return 0


def start_waiting(c) -> None:
    """Ask the monitor of created container `c` to let its waiting PID 1 go; return once it runs."""
    from . import container, start_socket
    try:
        answer = start_socket.request(os.path.dirname(c.lock.path))
    except (FileNotFoundError, ConnectionRefusedError):
        answer = b""  # no monitor listens (any more)
    if not answer and container.Container(c.root, c.id).state.status in ("running", "exited"):
        return  # another start came first: the monitor answered it and stopped listening; it ran, as asked
    start_socket.check_report(answer, b"running")  # the error, or: its monitor died


def is_waiting(c) -> bool:
    """Whether a created container's PID 1 waits at its gate, under its monitor."""
    return c.status == "created" and c.is_running_now()


def add_start_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="run it in the foreground: its output, its exit code")
    p.add_argument("-i", "--interactive", action="store_true", help="with -a: attach stdin too")
    p.add_argument("--detach-keys", metavar="KEYS", help="with -a: the keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def stop(c, timeout: float | None) -> None:
    """The container's stop signal, then SIGKILL if it still runs after `timeout` seconds
    (None: its --stop-timeout, or 10)."""
    timeout = timeout if timeout is not None else c.config.get("stop_timeout") or DEFAULT_STOP_TIMEOUT
    if c.status == "created":
        return  # as Docker: a created container stays created (its PID 1, if any, waits for start)
    c.request_stop()
    if not c.signal(stop_signal(c.config.get("stop_signal", ""))) and not c.is_running_now():
        return  # it was not running: quiet, as Docker
    if not wait_for_exit(c, timeout):
        c.signal(signal.SIGKILL)
        wait_for_exit(c, None)
    from .events import record_container
    record_container(c, "stop")


DEFAULT_STOP_TIMEOUT = 10  # seconds, as Docker's


def stop_signal(name: str) -> int:
    """A signal by name (TERM, SIGTERM) or number; SIGTERM by default."""
    if not name:
        return signal.SIGTERM
    if name.isdigit():
        return int(name)
    try:
        return signal.Signals["SIG" + name.upper().removeprefix("SIG")]
    except KeyError:
        raise UsageError(f"invalid signal {name!r}", hint="name it as kill -l does (TERM, KILL, HUP ...) or by number") from None


def wait_for_exit(c, timeout: float | None) -> bool:
    """Wait until nobody holds the container's lock; False if `timeout` passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while c.is_running_now():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def cmd_stop(args: argparse.Namespace) -> int:
    from . import container

    def stop_one(text: str) -> None:
        stop(container.load(args.root, text), args.time)
        print(text)
    return each(args.containers, stop_one)


def add_stop_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", type=float, metavar="N",
                   help="seconds to wait before SIGKILL (default: the container's --stop-timeout, or 10)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_kill(args: argparse.Namespace) -> int:
    from . import container
    from .events import record_container
    sig = stop_signal(args.signal)

    def kill_one(text: str) -> None:
        c = container.load(args.root, text)
        if not c.is_running():
            raise DockyardError(f"cannot kill container {text!r}: it is not running",
                                hint=f"start it first: start {text}")
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            c.request_stop()  # the user ended it: no restart policy brings it back
        if not c.signal(sig):
            raise DockyardError(f"cannot kill container {text!r}: it is not running", hint="see ps -a")
        record_container(c, "kill", signal=str(int(sig)))
        print(text)
    return each(args.containers, kill_one)


def add_kill_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="KILL", metavar="SIG", help="the signal to send (default KILL)")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_restart(args: argparse.Namespace) -> int:
    from . import container, containers, monitor, volumes
    from .events import record_container

    def restart_one(text: str) -> None:
        c = container.load(args.root, text)
        stop(c, args.time)
        if is_waiting(c):
            start_waiting(c)
        else:
            request = containers.load_spec(args.root, c.id)
            request.debug = args.debug
            volumes.prepare(request.root, request.volumes, request.userns)
            monitor.spawn(request)
        record_container(c, "restart")
        print(text)
    return each(args.containers, restart_one)


def cmd_wait(args: argparse.Namespace) -> int:
    from . import container

    def wait_one(text: str) -> None:
        c = container.load(args.root, text)
        wait_for_exit(c, None)
        print(container.Container(args.root, c.id).state.exit_code or 0)
    return each(args.containers, wait_one)


def add_containers_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


# --- logs -------------------------------------------------------------------------------

def cmd_logs(args: argparse.Namespace) -> int:
    from . import container, jsonlog
    c = container.load(args.root, args.container)
    if (c.config.get("log") or {}).get("driver") == "none":
        raise DockyardError(f"container {args.container!r} keeps no logs: it was created with --log-driver none",
                            hint="run it again without --log-driver none (or with --log-driver json-file)")
    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    path = jsonlog.log_path(c)
    records = [r for r in read_records(path) if in_window(r, since, until)]
    for record in records[-args.tail:] if args.tail is not None and args.tail >= 0 else records:
        show(record, args.timestamps)
    if args.follow:
        follow(c, path, since, until, args.timestamps)
    return 0


def read_records(path: str) -> list[dict]:
    """Every record of the log, its rotated files first (oldest first)."""
    records = []
    rotated = sorted((n for n in os.listdir(os.path.dirname(path)) if n.startswith(os.path.basename(path) + ".")),
                     key=lambda n: -int(n.rsplit(".", 1)[1]))
    for name in [*rotated, os.path.basename(path)]:
        try:
            with open(os.path.join(os.path.dirname(path), name)) as f:
                records += [json.loads(line) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            continue
    return records


def follow(c, path: str, since: float | None, until: float | None, timestamps: bool) -> None:
    """Print what the log gains until the container stops and the log has no more."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    inode = os.stat(path).st_ino if os.path.exists(path) else 0
    while True:
        running = c.is_running_now()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st and st.st_ino != inode:
            size, inode = 0, st.st_ino  # rotated: the new file starts from its beginning
        if st and st.st_size > size:
            with open(path) as f:
                f.seek(size)
                text = f.read()
            complete = text[:text.rfind("\n") + 1]
            size += len(complete.encode())
            for line in complete.splitlines():
                record = json.loads(line)
                if in_window(record, since, until):
                    show(record, timestamps)
            continue
        if not running or (until is not None and time.time() >= until):
            return  # it stopped, or --until has come: as Docker's, the stream ends
        time.sleep(0.05)


def show(record: dict, timestamps: bool) -> None:
    """One record on stdout or stderr, as its stream was."""
    out = sys.stderr if record.get("stream") == "stderr" else sys.stdout
    out.write((record["time"] + " " if timestamps else "") + record["log"])
    out.flush()


def parse_time(text: str | None, flag: str) -> float | None:
    """--since/--until: an RFC 3339 time, a Unix time, or a duration back from now (10m, 1h30m, 45s)."""
    if not text:
        return None
    import re
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", text):
        units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
        return time.time() - sum(float(n) * units[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|ms|s|m|h)", text))
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        return rfc3339(text)
    except ValueError:
        raise UsageError(f"invalid {flag} {text!r}",
                         hint=f"give a time (2024-05-01T12:00:00Z), a Unix time, or a duration: {flag} 10m") from None


def rfc3339(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds cut to microseconds)."""
    from datetime import datetime, timezone
    stamp = stamp.replace("Z", "+00:00")
    if "." in stamp:
        head, _, tail = stamp.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        stamp = f"{head}.{tail[:min(digits, 6)]}{tail[digits:]}"
    moment = datetime.fromisoformat(stamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def in_window(record: dict, since: float | None, until: float | None) -> bool:
    if since is None and until is None:
        return True
    moment = rfc3339(record["time"])
    return (since is None or moment >= since) and (until is None or moment < until)


def add_logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="keep printing what it writes until it stops")
    p.add_argument("-n", "--tail", type=int, default=None, metavar="N", help="only the last N lines")
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    p.add_argument("--since", metavar="TIME", help="only lines since TIME (2024-05-01T12:00:00Z, or 10m ago)")
    p.add_argument("--until", metavar="TIME", help="only lines before TIME")
    p.add_argument("container", metavar="CONTAINER")


# --- attach ------------------------------------------------------------------------------

def cmd_attach(args: argparse.Namespace) -> int:
    from . import attach, container  # sockets and terminals: only when attach runs
    c = container.load(args.root, args.container)
    exit_code = attach.attach(c, args)
    if exit_code is None:
        print("read escape sequence", file=sys.stderr)  # Docker's words, and its status: 1
        return 1
    wait_for_exit(c, None)  # its monitor cleans up and lets go of the lock: the next command finds it stopped
    return exit_code


def add_attach_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("--sig-proxy", choices=("true", "false"), default="true", nargs="?", const="true",
                   help="pass the signals we get on to the container (default true; not with -t)")
    p.add_argument("--detach-keys", metavar="KEYS", help="the keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("container", metavar="CONTAINER")


COMMANDS = {
    "start": ("Start one or more stopped containers", add_start_arguments, cmd_start),
    "stop": ("Stop one or more running containers", add_stop_arguments, cmd_stop),
    "kill": ("Kill one or more running containers", add_kill_arguments, cmd_kill),
    "restart": ("Restart one or more containers", add_stop_arguments, cmd_restart),
    "wait": ("Block until containers stop, then print their exit codes", add_containers_argument, cmd_wait),
    "logs": ("Fetch the logs of a container", add_logs_arguments, cmd_logs),
    "attach": ("Attach to a running container's input and output", add_attach_arguments, cmd_attach),
}
