"""The commands that chapter 4's container records make possible.

    ps [-a] [-q]                     containers, as `docker ps` shows them
    rm [-f] CONTAINER...             remove stopped ones (-f: kill running ones first)
    start -a [-i] CONTAINER          run a stopped container again, on its own layer
    diff CONTAINER                   what it added (A), changed (C) and deleted (D)
    volume ls|create|rm|inspect      named volumes

Each handler imports its machinery when it runs, so that `run` does not pay
for the others at start.
"""

import argparse
import shlex
import time

from .errors import DockyardError, each


# --- ps -------------------------------------------------------------------------

def human_duration(seconds: float) -> str:
    """A duration as Docker words it: '5 seconds', 'About a minute', '3 hours'."""
    minutes, hours = seconds / 60, seconds / 3600
    steps = [(seconds < 1, "Less than a second"), (seconds < 60, f"{int(seconds)} second{'' if int(seconds) == 1 else 's'}"),
             (minutes < 2, "About a minute"), (minutes < 60, f"{int(minutes)} minutes"),
             (hours < 2, "About an hour"), (hours < 48, f"{int(hours)} hours"),
             (hours < 24 * 14, f"{int(hours / 24)} days"), (hours < 24 * 60, f"{int(hours / 24 / 7)} weeks"),
             (hours < 24 * 730, f"{int(hours / 24 / 30)} months")]
    return next((text for short, text in steps if short), f"{int(hours / 24 / 365)} years")


def ago(stamp: str) -> float:
    """Seconds since an RFC 3339 time that containers.now() wrote."""
    from datetime import datetime
    return time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def status_text(state) -> str:
    """ps's STATUS column: 'Up 5 seconds', 'Exited (3) 2 minutes ago', 'Created', 'Dead'."""
    if state.status == "running":
        return f"Up {human_duration(ago(state.started))}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {human_duration(ago(state.finished))} ago"
    return state.status.capitalize()


def command_text(argv: list[str], width: int = 20) -> str:
    """ps's COMMAND column: the command, quoted, cut to `width` characters."""
    text = shlex.join(argv)
    return f'"{text if len(text) <= width else text[:width - 1] + "…"}"'


def cmd_ps(args: argparse.Namespace) -> int:
    from . import containers
    containers.sweep(args.root)
    rows = []
    for container_id in containers.all_ids(args.root):
        try:
            config, state = containers.read_json(f"{containers.directory(args.root, container_id)}/config.json"), \
                containers.read_state(args.root, container_id)
        except FileNotFoundError:
            continue  # removed while we looked
        if args.all or state.status == "running":
            rows.append((state.created, container_id[:12], config.get("image") or config["rootfs"],
                         command_text(config["argv"]), f"{human_duration(ago(state.created))} ago",
                         status_text(state), config["name"]))
    rows.sort(reverse=True)  # newest first
    if args.quiet:
        print("".join(row[1] + "\n" for row in rows), end="")
        return 0
    print_table(("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"), [row[1:] for row in rows])
    return 0


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns as wide as their widest cell, three spaces apart, as Docker prints them."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def add_ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="show only the ids")


# --- rm, start, diff ----------------------------------------------------------------------

def cmd_rm(args: argparse.Namespace) -> int:
    return each(args.containers, lambda text: remove_one(args, text))


def remove_one(args: argparse.Namespace, text: str) -> None:
    """rm of one container: a running one only with -f (killed first); -v also takes its anonymous volumes."""
    from . import containers, volumes
    try:
        container_id = containers.find(args.root, text)
    except DockyardError:
        if args.force and not any(i.startswith(text) for i in containers.all_ids(args.root)):
            return  # -f: a container that is not there is no error, as with Docker's (and rm -f of a file)
        raise
    c = containers.stop_for_removal(args.root, container_id, args.force)
    if c is None:
        raise DockyardError(f"cannot remove container {text!r}: it is running",
                            hint=f"stop it first (stop {text}), or kill and remove it: rm -f {text}")
    try:
        anonymous = containers.load_spec(args.root, container_id).volumes if args.volumes else []
        containers.remove(args.root, container_id)
        volumes.remove_anonymous(args.root, anonymous)  # rm -v, as Docker's: named volumes stay
        print(text)
    finally:
        c.lock.release()


def add_rm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    p.add_argument("-v", "--volumes", action="store_true", help="also remove its anonymous volumes")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_start(args: argparse.Namespace) -> int:
    from . import containers, volumes
    if not args.attach:
        raise DockyardError("start without -a would run the container in the background, which needs a monitor",
                            hint=f"run it in the foreground: start -a {args.container}")
    spec = containers.load_spec(args.root, containers.find(args.root, args.container))
    spec.debug, spec.interactive = args.debug, args.interactive
    volumes.prepare(spec.root, spec.volumes, spec.userns)
    return containers.run(spec)


def add_start_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="attach its output and wait for it (required)")
    p.add_argument("-i", "--interactive", action="store_true", help="attach stdin too")
    p.add_argument("container", metavar="CONTAINER")


def cmd_diff(args: argparse.Namespace) -> int:
    from . import containers, layers
    container_id = containers.find(args.root, args.container)
    spec = containers.load_spec(args.root, container_id)
    stack = layers.Layers(spec.storage_driver, spec.lowers, containers.directory(args.root, container_id))
    for change in layers.changes(stack, spec.userns):
        print(change.kind, change.path)
    return 0


def add_container_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")


# --- volume ------------------------------------------------------------------------

def cmd_volume(args: argparse.Namespace) -> int:
    from . import volumes
    import json
    import secrets
    if args.action == "ls":
        names = volumes.names(args.root)
        lines = names if args.quiet else ["DRIVER    VOLUME NAME"] + [f"local     {n}" for n in names]
        print("".join(line + "\n" for line in lines), end="")
    elif args.action == "create":
        name = args.names[0] if args.names else secrets.token_hex(32)
        volumes.parse(f"{name}:/x", args.root)  # the same name rules as -v
        volumes.create(args.root, name)
        print(name)
    elif args.action == "inspect":
        print(json.dumps([volumes.inspect(args.root, name) for name in need_names(args)], indent=4))
    else:
        for name in need_names(args):
            volumes.remove(args.root, name)
            print(name)
    return 0


def need_names(args: argparse.Namespace) -> list[str]:
    if not args.names:
        raise DockyardError(f"volume {args.action} needs a volume name", hint="see volume ls")
    return args.names


def add_volume_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("ls", "create", "rm", "inspect"))
    p.add_argument("-q", "--quiet", action="store_true", help="ls: only the names")
    p.add_argument("names", nargs="*", metavar="NAME")


def info_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """`info`'s lines about containers and storage."""
    from . import container, volumes
    states = [c.status for c in container.all_containers(args.root)]
    running, paused = states.count("running"), states.count("paused")
    return [("Containers", str(len(states))), (" Running", str(running)), (" Paused", str(paused)),
            (" Stopped", str(len(states) - running - paused)),
            ("Storage Driver", args.storage_driver), ("Volumes", str(len(volumes.names(args.root))))]


COMMANDS = {
    "ps": ("List containers", add_ps_arguments, cmd_ps),
    "rm": ("Remove one or more containers", add_rm_arguments, cmd_rm),
    "start": ("Run a stopped container again", add_start_arguments, cmd_start),
    "diff": ("Show what a container changed in its filesystem", add_container_argument, cmd_diff),
    "volume": ("Manage named volumes: ls, create, rm, inspect", add_volume_arguments, cmd_volume),
}
