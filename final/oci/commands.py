# chapter: final
"""One function per runc command; each is a step of the runtime spec's lifecycle.

    create ──▶ created ──start──▶ running ──(exit or kill)──▶ stopped ──delete──▶ gone

`create` does all the work that can fail (bundle, namespaces, mounts,
cgroup) and leaves the container's process blocked on exec.fifo; `start`
only opens that fifo, so the process execs the user's command at once.
That is why containerd can create a container, wire its network, and only
then start it.
"""

import argparse
import json
import os
import signal
import socket

from ..errors import DockyardError
from . import state
from .state import State


def dispatch(args: argparse.Namespace) -> int:
    from .. import config as engine_config
    if args.version:
        print(f"dockyard-runtime version {engine_config.VERSION}\nspec: {state.OCI_VERSION}")
        return 0
    if args.systemd_cgroup:
        raise DockyardError("--systemd-cgroup is not supported: this runtime manages cgroupfs directly",
                            hint="configure containerd with SystemdCgroup = false for this runtime")
    if not args.verb:
        raise DockyardError("no command given", hint="see 'python3 -m final.oci --help'")
    return COMMANDS[args.verb](args)


def create(args: argparse.Namespace) -> int:
    """Build the container and leave its process waiting for `start`."""
    master = make_container(args)
    if master is not None:
        os.close(master)
    return 0


def make_container(args: argparse.Namespace) -> int | None:
    """create's work; returns the pty master when the process has a terminal and no console socket."""
    from .. import exec_fifo, process as processes, runtime
    from . import bundle as bundles, cgroup, hooks
    bundle = os.path.abspath(args.bundle)
    config = bundles.load(bundle)
    cgroups_path = (config.get("linux") or {}).get("cgroupsPath", "")
    spec = bundles.to_spec(cgroup.use(cgroups_path, args.id), bundle, config)
    cgroup.check_free(spec.id)
    spec.process.stdin = True  # the caller's stdin is the container's, as its stdout and stderr are
    if spec.process.terminal and not args.console_socket and args.verb == "create":
        raise DockyardError("process.terminal is true but no --console-socket was given",
                            hint="pass --console-socket SOCKET, or set process.terminal to false")
    directory = state.make(args.root, args.id)
    record = State(id=args.id, bundle=bundle, rootfs=spec.root.path, created=state.now_rfc3339(),
                   cgroup=cgroups_path, annotations=config.get("annotations") or {},
                   poststop=(config.get("hooks") or {}).get("poststop", []))
    try:
        state.save(args.root, record)
        spec.exec_fifo = exec_fifo.make(directory)
        processes.close_inherited_files(3 + args.preserve_fds)  # runc closes them too
        bundles.set_rlimits(config["process"])  # inherited by the container's process
        bundles.set_oom_score_adj(config["process"])
        record.pid, master = runtime.create(spec)
        cgroup.hand_over(spec.id)
        record.pid_start = state.start_time(record.pid)
        state.save(args.root, record)
        for point in ("prestart", "createRuntime"):
            hooks.run(config, point, state.spec_state(args.root, record))
        if args.pid_file:
            write_pid_file(args.pid_file, record.pid)
        if master is not None and args.console_socket:
            send_console(args.console_socket, master)
            return None
        return master
    except BaseException:
        destroy(args.root, args.id)  # nothing half-made: no process, no cgroup, no directory
        raise


def start(args: argparse.Namespace) -> int:
    """Let a created container exec its command."""
    from .. import exec_fifo
    from . import hooks
    record = state.load(args.root, args.id)
    status = state.status(args.root, record)
    if status != "created":
        raise DockyardError(f"cannot start a container that is {status}",
                            hint="only a created container starts; make a new one with create")
    fifo = os.path.join(state.container_dir(args.root, args.id), exec_fifo.NAME)
    exec_fifo.release(fifo, lambda: state.alive(record))
    hooks.run(load_config(record), "poststart", state.spec_state(args.root, record), fatal=False)
    return 0


def run(args: argparse.Namespace) -> int:
    """create + start, then (without --detach) wait and return the command's exit code."""
    from .. import process, terminal
    master = make_container(args)
    start(args)
    if args.detach:
        if master is not None:
            os.close(master)
        return 0
    if master is not None:
        terminal.relay_master(master)  # runc spec's default: a terminal, and no console socket
    pid = state.load(args.root, args.id).pid
    _, status = os.waitpid(pid, 0)  # we cloned it, so it is our child
    destroy(args.root, args.id)
    return process.exit_code_of(status)


def show_state(args: argparse.Namespace) -> int:
    print(json.dumps(state.spec_state(args.root, state.load(args.root, args.id)), indent=2))
    return 0


def kill(args: argparse.Namespace) -> int:
    from . import cgroup
    record = state.load(args.root, args.id)
    signum = parse_signal(args.signal)
    if state.status(args.root, record) == "stopped":
        raise DockyardError(f"container {args.id} is not running", hint="its process has exited")
    if args.all:
        for pid in cgroup.pids(cgroup.use(record.cgroup, record.id)):
            try:
                os.kill(pid, signum)  # each a process of the container's own cgroup, read just now
            except ProcessLookupError:
                pass
    else:
        state.signal_process(record, signum)
    return 0


def delete(args: argparse.Namespace) -> int:
    record = state.load(args.root, args.id)
    status = state.status(args.root, record)
    if status not in ("stopped", "created") and not args.force:
        raise DockyardError(f"cannot delete container {args.id}: it is {status}",
                            hint=f"stop it first (kill {args.id} KILL), or use delete --force")
    destroy(args.root, args.id)
    return 0


def destroy(root: str, container_id: str) -> None:
    """Kill whatever is left of the container, remove its cgroup and state, run poststop hooks."""
    from . import cgroup, hooks
    try:
        record = state.load(root, container_id)
    except DockyardError:
        state.remove(root, container_id)
        return
    if state.alive(record):
        state.signal_process(record, signal.SIGKILL)
    cgroup.remove(cgroup.use(record.cgroup, record.id))
    if record.poststop:
        hooks.run({"hooks": {"poststop": record.poststop}}, "poststop", state.spec_state(root, record), fatal=False)
    state.remove(root, container_id)


def exec_process(args: argparse.Namespace) -> int:
    """Run another process in the container's namespaces and cgroup, under its profile."""
    from .. import exec as execs, process as processes
    from . import bundle as bundles, cgroup
    record = state.load(args.root, args.id)
    if state.status(args.root, record) != "running":
        raise DockyardError(f"container {args.id} is not running", hint="exec needs a running container")
    spec_process, raw = read_process(args)
    bundles.set_rlimits(raw)  # inherited by the new process
    processes.close_inherited_files(3 + args.preserve_fds)
    request = execs.Exec(container_id=cgroup.use(record.cgroup, record.id), name=args.id, argv=spec_process.args,
                         env=spec_process.env, workdir=spec_process.cwd, user=spec_process.user,
                         interactive=True, tty=spec_process.terminal or args.tty, debug=args.debug,
                         security=spec_process.security.to_dict())
    if not args.detach and not args.console_socket:
        return execs.exec_in(request, record.pid)
    pid, error_read = execs.spawn(request, record.pid)
    if request.terminal:
        master = terminal_master(request.terminal)
        send_console(args.console_socket, master) if args.console_socket else os.close(master)
    processes.raise_child_error(error_read)  # its command has started, or could not
    if args.pid_file:
        write_pid_file(args.pid_file, pid)
    if args.detach:
        return 0  # it goes on without us: our subreaper above inherits it
    _, status = os.waitpid(pid, 0)
    return processes.exit_code_of(status)


def read_process(args: argparse.Namespace):
    """exec's process: a process.json, or the command line's own."""
    from . import bundle as bundles, schema
    if args.process:
        try:
            with open(args.process) as f:
                raw = json.load(f)
        except (OSError, ValueError) as err:
            raise DockyardError(f"cannot read {args.process}: {err}", hint="give a JSON process object") from None
    elif args.command:
        uid, _, gid = (args.user or "0:0").partition(":")
        raw = {"args": args.command, "env": args.env, "cwd": args.cwd or "/", "terminal": args.tty,
               "user": {"uid": int(uid), "gid": int(gid or 0)}}
    else:
        raise DockyardError("exec needs --process or a command", hint="exec ID COMMAND [ARG...]")
    schema.check(raw, schema.PROCESS, "process")
    return bundles.to_process(raw, None), raw


def ps(args: argparse.Namespace) -> int:
    from . import cgroup
    record = state.load(args.root, args.id)
    pids = cgroup.pids(cgroup.use(record.cgroup, record.id)) if state.alive(record) else []
    if args.format == "json":
        print(json.dumps(pids))
    else:
        print("PID")
        for pid in pids:
            print(pid)
    return 0


def list_containers(args: argparse.Namespace) -> int:
    records = [state.load(args.root, i) for i in state.all_ids(args.root)]
    if args.quiet:
        print("\n".join(r.id for r in records))
    elif args.format == "json":
        print(json.dumps([{**state.spec_state(args.root, r), "owner": "root"} for r in records]))
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED'}")
        for r in records:
            s = state.spec_state(args.root, r)
            print(f"{r.id:<20}{s['pid']:<10}{s['status']:<10}{r.bundle:<40}{r.created}")
    return 0


def pause(args: argparse.Namespace) -> int:
    return set_frozen(args, want="running", frozen=True)


def resume(args: argparse.Namespace) -> int:
    return set_frozen(args, want="paused", frozen=False)


def set_frozen(args: argparse.Namespace, want: str, frozen: bool) -> int:
    from . import cgroup
    record = state.load(args.root, args.id)
    if state.status(args.root, record) != want:
        raise DockyardError(f"container {args.id} is not {want}",
                            hint="pause a running container, resume a paused one")
    cgroup.freeze(cgroup.use(record.cgroup, record.id), frozen)
    return 0


def show_features(args: argparse.Namespace) -> int:
    from . import features
    print(json.dumps(features.document(), indent=4))
    return 0


def write_spec(args: argparse.Namespace) -> int:
    from . import default_spec
    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise DockyardError(f"{path} already exists", hint="remove it first, or pick another --bundle")
    with open(path, "w") as f:
        json.dump(default_spec.config(rootless=args.rootless), f, indent=4)
    return 0


# --- small helpers -----------------------------------------------------------------

def parse_signal(text: str) -> int:
    name = text.upper()
    if name.isdigit():
        return int(name)
    try:
        return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"].value
    except KeyError:
        raise DockyardError(f"unknown signal {text!r}", hint="use a name (TERM, KILL, SIGUSR1) or a number") from None


def write_pid_file(path: str, pid: int) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(str(pid))
    os.rename(temporary, path)


def send_console(path: str, master: int) -> None:
    """Hand the pty's master end to whoever listens on the console socket (containerd's shim)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as console:
            console.connect(path)
            socket.send_fds(console, [b"/dev/ptmx"], [master])
    except OSError as err:
        raise DockyardError(f"cannot send the terminal to {path}: {err.strerror}",
                            hint="--console-socket must name a listening unix socket") from err
    finally:
        os.close(master)


def terminal_master(terminal) -> int:
    from .. import terminal as terminals
    master = terminals.receive_master(terminal)
    if master is None:
        raise DockyardError("the process failed before it had a terminal", hint="run again with --debug")
    return master


def load_config(record: State) -> dict:
    try:
        with open(os.path.join(record.bundle, "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


COMMANDS = {"create": create, "start": start, "run": run, "state": show_state, "kill": kill,
            "delete": delete, "exec": exec_process, "ps": ps, "list": list_containers, "pause": pause,
            "resume": resume, "features": show_features, "spec": write_spec}
