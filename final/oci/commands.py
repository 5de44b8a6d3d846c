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
import sys

from .. import config as engine_config
from ..errors import DockyardError
from . import bundle as bundles
from . import features, hooks, state
from .state import State


def dispatch(args: argparse.Namespace) -> int:
    if args.version:
        print(f"dockyard-runtime version {engine_config.VERSION}\nspec: {state.OCI_VERSION}")
        return 0
    if args.systemd_cgroup:
        raise DockyardError("--systemd-cgroup is not supported: this runtime manages cgroupfs directly",
                            hint="configure containerd with SystemdCgroup = false for this runtime")
    if not args.command:
        raise DockyardError("no command given", hint="see 'python3 -m final.oci --help'")
    return COMMANDS[args.command](args)


def create(args: argparse.Namespace) -> int:
    """Build the container and leave its process waiting for `start`."""
    from .. import runtime
    bundle = os.path.abspath(args.bundle)
    config = bundles.load(bundle)
    spec = bundles.to_spec(args.id, bundle, config)
    directory = state.make(args.root, args.id)
    try:
        record = State(id=args.id, bundle=bundle, rootfs=spec.root.path, created=state.now_rfc3339(),
                       annotations=config.get("annotations") or {},
                       poststop=(config.get("hooks") or {}).get("poststop", []))
        state.save(args.root, record)
        record.pid = runtime.create(spec, directory, console_socket=args.console_socket)
        record.pid_start = state.start_time(record.pid)
        state.save(args.root, record)
        hooks.run(config, "prestart", state.spec_state(args.root, record))
        hooks.run(config, "createRuntime", state.spec_state(args.root, record))
        if args.pid_file:
            write_pid_file(args.pid_file, record.pid)
    except BaseException:
        destroy(args.root, args.id)  # nothing half-made: no process, no cgroup, no directory
        raise
    return 0


def start(args: argparse.Namespace) -> int:
    """Let a created container exec its command."""
    from .. import runtime
    record = state.load(args.root, args.id)
    status = state.status(args.root, record)
    if status != "created":
        raise DockyardError(f"cannot start a container that is {status}",
                            hint="only a created container starts; make a new one with create")
    runtime.start(state.container_dir(args.root, args.id), record.pid)
    hooks.run(load_config(record), "poststart", state.spec_state(args.root, record))
    return 0


def run(args: argparse.Namespace) -> int:
    """create + start, then (without --detach) wait and return the command's exit code."""
    create(args)
    start(args)
    if args.detach:
        return 0
    record = state.load(args.root, args.id)
    from .. import runtime
    code = runtime.wait_exit(record.pid)
    destroy(args.root, args.id)
    return code


def show_state(args: argparse.Namespace) -> int:
    print(json.dumps(state.spec_state(args.root, state.load(args.root, args.id)), indent=2))
    return 0


def kill(args: argparse.Namespace) -> int:
    record = state.load(args.root, args.id)
    signum = parse_signal(args.signal)
    if state.status(args.root, record) == "stopped":
        raise DockyardError(f"container {args.id} is not running", hint="its process has exited")
    if args.all:
        from .. import runtime
        runtime.signal_all(record.id, record.pid, signum)
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
    from .. import runtime
    try:
        record = state.load(root, container_id)
    except DockyardError:
        state.remove(root, container_id)
        return
    if state.alive(record):
        state.signal_process(record, signal.SIGKILL)
    runtime.destroy(container_id, record.pid if state.alive(record) else 0)
    if record.poststop:
        hooks.run({"hooks": {"poststop": record.poststop}}, "poststop", state.spec_state(root, record), fatal=False)
    state.remove(root, container_id)


def exec_process(args: argparse.Namespace) -> int:
    from .. import runtime
    record = state.load(args.root, args.id)
    if state.status(args.root, record) not in ("running",):
        raise DockyardError(f"container {args.id} is not running", hint="exec needs a running container")
    process = read_process(args)
    pid, code = runtime.exec_into(record.pid, process, detach=args.detach, console_socket=args.console_socket)
    if args.pid_file:
        write_pid_file(args.pid_file, pid)
    return code


def read_process(args: argparse.Namespace):
    if args.process:
        try:
            with open(args.process) as f:
                return bundles.to_process(json.load(f))
        except (OSError, ValueError) as err:
            raise DockyardError(f"cannot read {args.process}: {err}", hint="give a JSON process object") from None
    if not args.command:
        raise DockyardError("exec needs --process or a command", hint="exec ID COMMAND [ARG...]")
    uid, _, gid = (args.user or "0:0").partition(":")
    return bundles.to_process({"args": args.command, "env": args.env, "cwd": args.cwd or "/",
                               "terminal": args.tty, "user": {"uid": int(uid), "gid": int(gid or 0)}})


def ps(args: argparse.Namespace) -> int:
    from .. import runtime
    record = state.load(args.root, args.id)
    pids = runtime.pids_of(record.id, record.pid) if state.alive(record) else []
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
    from .. import runtime
    record = state.load(args.root, args.id)
    if state.status(args.root, record) != "running":
        raise DockyardError(f"container {args.id} is not running", hint="only a running container pauses")
    runtime.freeze(record.id, record.pid, True)
    return 0


def resume(args: argparse.Namespace) -> int:
    from .. import runtime
    record = state.load(args.root, args.id)
    if state.status(args.root, record) != "paused":
        raise DockyardError(f"container {args.id} is not paused", hint="only a paused container resumes")
    runtime.freeze(record.id, record.pid, False)
    return 0


def show_features(args: argparse.Namespace) -> int:
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
        return signal.Signals(name if name.startswith("SIG") else f"SIG{name}").value
    except ValueError:
        raise DockyardError(f"unknown signal {text!r}", hint="use a name (TERM, KILL, SIGUSR1) or a number") from None


def write_pid_file(path: str, pid: int) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(str(pid))
    os.rename(temporary, path)


def load_config(record: State) -> dict:
    try:
        with open(os.path.join(record.bundle, "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


COMMANDS = {"create": create, "start": start, "run": run, "state": show_state, "kill": kill,
            "delete": delete, "exec": exec_process, "ps": ps, "list": list_containers, "pause": pause,
            "resume": resume, "features": show_features, "spec": write_spec}
