# chapter: final
"""Commands beyond the chapters that watch or reach into containers.

    exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD...
    top CONTAINER                  its processes, as the host sees them
    pause CONTAINER... / unpause   freeze and thaw its cgroup
    events [--since T] [--until T] [--filter K=V] [--format TEMPLATE]

Each handler imports its machinery when it runs, so the start path of `run`
does not pay for it.
"""

import argparse
import os
from dataclasses import dataclass

from .errors import DockyardError, UsageError, each


@dataclass
class Running:
    """A container that runs (or is paused): what these commands need of its record."""
    id: str
    config: dict
    pid1: int
    paused: bool


def running_container(root: str, text: str) -> Running:
    """The running (or paused) container `text`; a hint if it does not run."""
    from . import container, exec as exec_
    c = container.load(root, text)
    status = c.status  # as the machine has it: dead if its holder died, paused if frozen
    if status not in ("running", "paused") or not c.state.pid:
        raise exec_.not_running(text)
    return Running(c.id, c.config, c.state.pid, status == "paused")


def running_ids(root: str) -> list[str]:
    """The ids of this --root's containers that run now."""
    from . import container
    return [c.id for c in container.all_containers(root) if c.status in ("running", "paused")]


def stats_id(root: str, text: str) -> str:
    """`stats` by name or id prefix, among this --root's containers; it must run and have a cgroup."""
    from . import cgroups
    container_id = running_container(root, text).id
    if container_id not in cgroups.running_ids():
        raise DockyardError(f"container {text} has no cgroup to read", hint="rootless containers get none: run as root")
    return container_id


# --- exec ---------------------------------------------------------------------------

def cmd_exec(args: argparse.Namespace) -> int:
    from . import exec as exec_
    if not args.command:
        raise UsageError("exec needs a command", hint=f"for example: exec {args.container} sh -c 'echo hi'")
    if args.workdir and not args.workdir.startswith("/"):
        raise UsageError(f"the working directory {args.workdir!r} is not an absolute path",
                         hint="give -w a path from the container's /, e.g. -w /tmp")
    container = running_container(args.root, args.container)
    if container.paused:  # joining its cgroup would freeze us too
        raise DockyardError(f"container {args.container} is paused", hint=f"unpause it first: unpause {args.container}")
    request = exec_.Exec(container_id=container.id, name=args.container, argv=args.command,
                         env=exec_.merged_env(container.config.get("env") or {}, args.tty, args.env),
                         workdir=args.workdir or container.config.get("workdir") or "/",
                         user=args.user if args.user is not None else container.config.get("user", ""),
                         interactive=args.interactive, tty=args.tty, detach=args.detach, debug=args.debug,
                         security=container.config.get("security") or {})
    record = exec_event_recorder(args.root, container, " ".join(args.command))
    record("exec_start")
    exit_code = exec_.exec_in(request, container.pid1)
    if not args.detach:
        record("exec_die", exitCode=str(exit_code))
    return exit_code


def exec_event_recorder(root: str, container: Running, command: str):
    """events.record for this exec: Docker names the command in the action ("exec_start: sh -c ...")."""
    from . import events
    exec_id = os.urandom(32).hex()

    def record(action: str, **attributes: str) -> None:
        events.record(root, f"{action}: {command}" if action == "exec_start" else action, container.id,
                      container.config["name"], container.config.get("image", ""), execID=exec_id, **attributes)
    return record


def add_exec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="start the command and return at once")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="give the command a terminal (a pty of the container's)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside (default: the container's)")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="user inside (default: the container's)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="command and its arguments")


# --- top, pause, unpause ------------------------------------------------------------

def cmd_top(args: argparse.Namespace) -> int:
    from . import top
    from .container_commands import print_table
    header, *rows = top.table(running_container(args.root, args.container).pid1)
    print_table(tuple(header), [tuple(row) for row in rows])
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    from . import events, freezer

    def pause_one(text: str) -> None:
        container = running_container(args.root, text)
        if container.paused:
            raise DockyardError(f"container {text} is already paused", hint=f"unpause it: unpause {text}")
        freezer.freeze(cgroup_dirs(container.id))
        events.record(args.root, "pause", container.id, container.config["name"], container.config.get("image", ""))
        print(text)
    return each(args.containers, pause_one)


def cmd_unpause(args: argparse.Namespace) -> int:
    from . import events, freezer

    def unpause_one(text: str) -> None:
        container = running_container(args.root, text)
        if not container.paused:
            raise DockyardError(f"container {text} is not paused", hint="see ps: a paused one says (Paused)")
        freezer.thaw(cgroup_dirs(container.id))
        events.record(args.root, "unpause", container.id, container.config["name"], container.config.get("image", ""))
        print(text)
    return each(args.containers, unpause_one)


def cgroup_dirs(container_id: str) -> dict[str, str]:
    """The container's cgroup directories (none without a cgroup filesystem)."""
    from . import cgroups
    layout = cgroups.detect()
    return cgroups.cgroup_dirs(layout, container_id) if layout.version else {}


def add_containers_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def add_container_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")


# --- events ------------------------------------------------------------------------

def cmd_events(args: argparse.Namespace) -> int:
    import time
    from . import events, template
    now = time.time_ns()
    since = events.parse_time(args.since, now) if args.since else now  # by default: from now on
    until = events.parse_time(args.until, now) if args.until else None
    filters = events.parse_filters(args.filter)
    if args.format:
        template.check(args.format)
    for event in events.read(args.root, since, until, follow=True):
        if events.matches(event, filters):
            print(template.render(args.format, event) if args.format else events.text_line(event), flush=True)
    return 0


def add_events_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="TIME", help="show events from this time on (unix time, date, or 10m ago)")
    p.add_argument("--until", metavar="TIME", help="stop at this time (default: follow until Ctrl-C)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="K=V",
                   help="container=NAME, event=ACTION, image=NAME or type=container")
    p.add_argument("--format", metavar="TEMPLATE", help="a Go template, e.g. '{{json .}}' or '{{.Action}} {{.Actor.ID}}'")


COMMANDS = {
    "exec": ("Run a command in a running container", add_exec_arguments, cmd_exec),
    "top": ("Show the processes of a running container", add_container_argument, cmd_top),
    "pause": ("Freeze every process of one or more containers", add_containers_argument, cmd_pause),
    "unpause": ("Thaw the processes of paused containers", add_containers_argument, cmd_unpause),
    "events": ("Show what happens to containers: create, start, die, destroy ...", add_events_arguments, cmd_events),
}
