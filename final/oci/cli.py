# chapter: final
"""runc's command line, argument for argument, as containerd's shim calls it.

    python3 -m final.oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...

Errors go to stderr and, with --log, to that file (as JSON lines with
--log-format json: containerd's shim reads them back to show the user why a
create failed). The exit status is 1 for any failure, as runc's is.
"""

import argparse
import os
import sys

from ..errors import DockyardError
from . import log

DEFAULT_ROOT = "/run/dockyard-oci"


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes through our error path (exit 1, like runc)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise DockyardError(message, hint=f"see '{self.prog} --help'")


def build_parser() -> Parser:
    parser = Parser(prog="python3 -m final.oci", description="An OCI runtime with runc's command line.")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="where container state lives")
    parser.add_argument("--log", help="also write errors (and, with --debug, steps) to this file")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--systemd-cgroup", action="store_true", help="not supported: cgroupfs only")
    parser.add_argument("--rootless", default="auto", help="accepted for runc compatibility")
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    commands = parser.add_subparsers(dest="verb", parser_class=Parser, metavar="COMMAND")
    for name, (helptext, add_arguments) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=helptext, description=helptext))
    return parser


def add_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("-b", "--bundle", default=".", help="the bundle directory (holding config.json)")
    p.add_argument("--pid-file", help="write the container's PID here")
    p.add_argument("--console-socket", help="send the terminal's master end to this unix socket")
    p.add_argument("--no-pivot", action="store_true", help="accepted and ignored: pivot_root is always used")
    p.add_argument("--no-new-keyring", action="store_true", help="accepted; no keyring is made")
    p.add_argument("--preserve-fds", type=int, default=0, help="pass this many more fds (from 3 on)")
    p.add_argument("id")


def add_run(p: argparse.ArgumentParser) -> None:
    add_create(p)
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the container")


def add_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("id")


def add_kill(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="signal every process of the container")
    p.add_argument("id")
    p.add_argument("signal", nargs="?", default="SIGTERM")


def add_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    p.add_argument("id")


def add_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--process", help="a process.json (the spec's process object)")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the process")
    p.add_argument("--pid-file", help="write the new process's PID here")
    p.add_argument("--console-socket", help="send the terminal's master end to this unix socket")
    p.add_argument("-t", "--tty", action="store_true", help="give the process a terminal")
    p.add_argument("--cwd", help="working directory")
    p.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE")
    p.add_argument("-u", "--user", help="UID[:GID]")
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("id")
    p.add_argument("command", nargs=argparse.REMAINDER)


def add_ps(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("id")


def add_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true")


def add_spec(p: argparse.ArgumentParser) -> None:
    p.add_argument("-b", "--bundle", default=".", help="write config.json into this directory")
    p.add_argument("--rootless", action="store_true", help="a spec for an ordinary user")


def add_nothing(p: argparse.ArgumentParser) -> None:
    pass


COMMANDS = {
    "create": ("create a container; its process waits for start", add_create),
    "start": ("let a created container run its command", add_id),
    "run": ("create and start a container, and wait for it", add_run),
    "state": ("print a container's state as the runtime spec's JSON", add_id),
    "kill": ("send a signal to a container's process", add_kill),
    "delete": ("remove a stopped container (--force: any)", add_delete),
    "exec": ("run another process in a running container", add_exec),
    "ps": ("list the processes of a container", add_ps),
    "list": ("list the containers", add_list),
    "pause": ("freeze every process of a container", add_id),
    "resume": ("thaw a paused container", add_id),
    "features": ("print what this runtime supports, as the spec's features JSON", add_nothing),
    "spec": ("write a default config.json", add_spec),
}


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        log.configure(args.log, args.log_format)
        from . import commands
        return commands.dispatch(args)
    except DockyardError as err:
        log.error(err.problem, err.hint)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `... | head` closed our stdout: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # a bug of ours: say so on one line unless --debug
        if args is not None and args.debug:
            raise
        log.error(f"internal error: {err}", "run again with --debug, and report it")
        return 1
