# chapter: final
"""Commands that reach into a running container: exec, top, pause and unpause.

    exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD...
    top CONTAINER                  its processes, as the host sees them
    pause CONTAINER... / unpause   freeze and thaw its cgroup

Each handler imports its machinery when it runs, so the start path of `run`
does not pay for it.
"""

import argparse

from .errors import UsageError


def running_container(root: str, text: str) -> tuple[str, dict, int]:
    """The id, config and PID 1 of the running container `text`; a hint if it does not run."""
    from . import containers, exec as exec_
    container_id = containers.find(root, text)
    state = containers.read_state(root, container_id)
    if state.status != "running" or not state.pid:
        raise exec_.not_running(text)
    config = containers.read_json(f"{containers.directory(root, container_id)}/config.json")
    return container_id, config, state.pid


# --- exec ---------------------------------------------------------------------------

def cmd_exec(args: argparse.Namespace) -> int:
    from . import exec as exec_
    if not args.command:
        raise UsageError("exec needs a command", hint=f"for example: exec {args.container} sh -c 'echo hi'")
    container_id, config, pid1 = running_container(args.root, args.container)
    request = exec_.Exec(container_id=container_id, name=args.container, argv=args.command,
                         env=exec_.merged_env(config.get("env") or {}, args.tty, args.env),
                         workdir=args.workdir or config.get("workdir") or "/",
                         user=args.user if args.user is not None else config.get("user", ""),
                         interactive=args.interactive, tty=args.tty, detach=args.detach, debug=args.debug,
                         security=config.get("security") or {})
    return exec_.exec_in(request, pid1)


def add_exec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="start the command and return at once")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="give the command a terminal (a pty of the container's)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside (default: the container's)")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="user inside (default: the container's)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="command and its arguments")


COMMANDS = {
    "exec": ("Run a command in a running container", add_exec_arguments, cmd_exec),
}
