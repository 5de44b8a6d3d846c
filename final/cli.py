"""The command line: Docker's everyday commands, one small handler each.

Parsing lives here, in one table, so the whole CLI contract can be read in
one place; the work lives in the mechanism modules, imported only when their
command runs (the start path of a container is hot).
"""

import argparse
import importlib
import os
import sys
from typing import Any  # ch final

from . import config, process
from .errors import DockyardError, UsageError
from .helpformat import HelpFormatter  # ch final
from .management import ungrouped  # `container rm X` is `rm X`  # ch final


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as a DockyardError (exit 125, like Docker)."""
    # >>> chapter final

    def __init__(self, **options: Any) -> None:
        super().__init__(formatter_class=HelpFormatter, **options)
    # <<< chapter final

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def prog_name() -> str:
    """How the user started us: 'python3 -m final' or 'python3 -m chapters.01_chroot'."""
    return f"python3 -m {__package__}"


# --- commands ------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from . import process, request
    from .limits import parse_limits  # ch 03
    from . import image_run  # ch 05
    image = image_run.prepare(args)  # run IMAGE: its layers, and its config as flags  # ch 05
    if not args.command:
        raise UsageError("run needs a command", hint="for example: run --rootfs DIR /bin/sh -c 'echo hi'")
    spec = request.Request(rootfs=os.path.abspath(args.rootfs), argv=args.command,
                           env=process.default_env("dockyard", sys.stdin.isatty() and args.interactive, args.env),
                           workdir=args.workdir or "/", interactive=args.interactive, debug=args.debug, root=args.root)
    spec.network, spec.init = args.network, args.init  # ch 02
    spec.userns = args.userns or os.geteuid() != 0  # rootless needs a user namespace  # ch 02
    spec.limits = parse_limits(args.memory, args.memory_swap, args.cpus, args.cpu_shares, args.pids_limit)  # ch 03
    spec.name, spec.remove, spec.volumes = args.name, args.rm, args.volume  # ch 04
    spec.storage_driver = args.storage_driver  # ch 04
    spec.user = args.user  # ch 05
    spec.tty = args.tty  # ch final
    from . import lifecycle_commands, security, volumes  # ch final
    spec.security = security.profile_from(args)  # ch final
    volumes.check_kernel_destinations(list((image or {}).get("config", {}).get("Volumes") or {}), args.volume, args.root)  # ch final
    lifecycle_commands.apply_run_options(spec, args)  # --restart, --log-driver, --log-opt  # ch final
    from . import namespaces  # ch 02
    spec.hostname = namespaces.check_hostname(args.hostname or spec.id[:12])  # ch 02
    spec.env["HOSTNAME"] = spec.hostname  # ch 02
    image_run.apply(spec, image)  # ch 05
    from . import network  # ch final
    network.configure(spec, args, image and image["config"])  # ch final
    # return request.run_once(spec)  # ch 01-03
    from . import containers  # ch 04
    containers.create(spec)  # a record, and a writable layer of its own  # ch 04
    if args.command_name == "create" or args.detach:  # ch final
        return lifecycle_commands.created(spec, start=args.detach)  # prints the id; -d: under a monitor  # ch final
    if args.interactive and args.tty and sys.stdin.isatty():  # ch final
        return lifecycle_commands.run_attached(spec, args)  # under a monitor: Ctrl-P Ctrl-Q detaches  # ch final
    return containers.run(spec)  # ch 04


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.usage = "%(prog)s [OPTIONS] (IMAGE | --rootfs DIR) [COMMAND] [ARG...]"  # ch 05
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set an environment variable")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside (default /, or the image's)")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    # >>> chapter final
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal (a pty)")
    from .security import add_arguments as add_security_arguments
    add_security_arguments(p)
    p.add_argument("--pull", choices=("missing", "always", "never"), default="missing",
                   help="pull the image: missing (default), always, never")
    from .lifecycle_commands import add_run_options
    add_run_options(p)
    from .run_options import add_arguments as add_other_spellings
    add_other_spellings(p)  # --env-file and --mount: -e and -v (or --tmpfs) again
    # <<< chapter final
    # >>> chapter 02
    p.add_argument("--hostname", metavar="NAME", help="hostname inside (default: the short container id)")
    # p.add_argument("--network", choices=("none", "host"), default="none",  # ch 02-07
    #                help="none: only lo, in a namespace of its own (default); host: share the host's")  # ch 02-07
    # >>> chapter final
    p.add_argument("--network", metavar="MODE", help="bridge (default as root), NAME, none (rootless default), host")
    p.add_argument("--network-alias", action="append", default=[], metavar="NAME",
                   help="another name for the container on its user network")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CTR[/udp]",
                   help="publish a container port on the host (ranges: 8000-8001:80-81)")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish the image's exposed ports on free ports")
    p.add_argument("--dns", action="append", default=[], metavar="IP", help="nameserver for /etc/resolv.conf")
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP", help="a line for /etc/hosts")
    # <<< chapter final
    p.add_argument("--userns", action="store_true",
                   help="map root inside to an unprivileged user outside (implied when not root)")
    p.add_argument("--init", action="store_true", help="run a tiny init as PID 1 that reaps zombies")
    # <<< chapter 02
    # >>> chapter 03
    p.add_argument("-m", "--memory", metavar="BYTES", help="memory limit: 64m, 1g (memory controller)")
    p.add_argument("--memory-swap", metavar="BYTES", help="memory plus swap; -1: unlimited swap")
    p.add_argument("--cpus", metavar="N", help="CPU time in cores: 0.5 is half a core (cpu controller)")
    p.add_argument("-c", "--cpu-shares", metavar="N", help="CPU weight under contention (default 1024)")
    p.add_argument("--pids-limit", metavar="N", help="most processes at once; -1: no limit (pids controller)")
    # <<< chapter 03
    # >>> chapter 04
    p.add_argument("--name", default="", help="name the container (default: a random one)")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]",
                   help="bind a host path or a named volume into the container")
    # <<< chapter 04
    # p.add_argument("--rootfs", required=True, metavar="DIR", help="directory to use as the container's /")  # ch 01-04
    p.add_argument("--rootfs", metavar="DIR", help="run this directory as the container's / (instead of an IMAGE)")  # ch 05
    p.add_argument("--entrypoint", metavar="CMD", help="replace the image's Entrypoint (and drop its Cmd)")  # ch 05
    p.add_argument("-u", "--user", default="", metavar="USER[:GROUP]", help="user inside, by name or id")  # ch 05
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="command and its arguments")


def cmd_version(args: argparse.Namespace) -> int:
    import platform
    print(f"Dockyard {config.VERSION} ({__package__})")
    print(f"Python {platform.python_version()} ({sys.executable})")
    print(f"Kernel {os.uname().release} {os.uname().machine}")
    return 0


# name: (one-line help, how to add its arguments, handler). Later chapters
# bring their own commands in a module of their own, each with a table like
# this one whose handlers import their heavy machinery only when called.
COMMANDS = {
    "run": ("Run a command in a new container", add_run_arguments, cmd_run),
    "version": ("Show the versions of Dockyard, Python and the kernel", lambda p: None, cmd_version),
}
# Later chapters name here the modules that hold their commands, in chapter
# order (a later table's command wins over an earlier one of the same name);
# commands() imports only as many of them as the command line needs.
TABLES: list[str] = []
TABLES += ["info", "stats"]  # ch 03
TABLES += ["container_commands"]  # ch 04
TABLES += ["image_commands"]  # ch 05
TABLES += ["registry.commands"]  # ch 06
TABLES += ["dockerfile.commands"]  # ch 07
# >>> chapter final
TABLES += ["copy_commands", "rename", "system_commands"]  # first: the search for a hot command (exec, start) never imports them
TABLES += ["ps",  # final's ps: chapter 4's, with --filter and --format
           "network_commands",
           "running_commands",  # exec, top, events, pause: near the end, where the search for exec starts
           "lifecycle_commands"]  # start (detached), stop, kill, restart, wait, logs
COMMANDS["create"] = ("Create a new container, without starting it", add_run_arguments, cmd_run)
# <<< chapter final


def commands(word: str | None = None) -> dict:
    """Every command: ours, then each table's. Given the command line's `word`, only as many
    tables as it takes to find that command (none for `run`: the start of a container is hot)."""
    if word in COMMANDS:
        return COMMANDS
    for name in reversed(TABLES) if word else []:  # the last table that has it is the one that wins
        table = importlib.import_module(f".{name}", __package__).COMMANDS
        if word in table:
            return {**COMMANDS, word: table[word]}
    found = dict(COMMANDS)
    for name in TABLES:
        found.update(importlib.import_module(f".{name}", __package__).COMMANDS)
    return found


# The global options that take a value: command_word skips the value too.
# VALUED_OPTIONS = ("--root",)  # ch 01-03
VALUED_OPTIONS = ("--root", "--storage-driver")  # ch 04


def command_word(argv: list[str]) -> str | None:
    """The command named in `argv`, known or not (skipping global options)."""
    words = iter(argv)
    for word in words:
        if word in VALUED_OPTIONS:
            next(words, None)  # the option's value
        elif not word.startswith("-"):
            return word
    return None


def build_parser(word: str | None = None) -> argparse.ArgumentParser:
    """The parser; for a command `word` that we know, just that command's (building all 30 costs the start path)."""
    parser = Parser(prog=prog_name(), description="Dockyard: a container engine, told as a book.")
    parser.add_argument("--root", default=config.default_root(), metavar="DIR",
                        help=f"where state lives (default {config.default_root()})")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--explain", action="store_true", help="print each step asked of the kernel and the disk")
    # >>> chapter 04
    parser.add_argument("--storage-driver", choices=("overlay", "vfs"), default="overlay",
                        help="how a new container gets its own layer: overlay (default) or vfs (copies)")
    # <<< chapter 04
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=Parser)
    table = commands(word)
    for name, (summary, add_arguments, handler) in table.items():
        if word in table and name != word:
            continue
        p = sub.add_parser(name, help=summary, description=summary)
        add_arguments(p)
        p.set_defaults(handler=handler)
    return parser


def exit_code(err: DockyardError, command: str | None) -> int:
    """Docker's: 125 when the command line cannot be read or `run` itself fails; any other command
    that fails exits 1. An error with a code of its own keeps it (126 and 127: the container's
    command cannot run; a build's RUN step that failed: that step's code)."""
    if command in (None, "run") or err.exit_code != DockyardError.exit_code:
        return err.exit_code
    return 1


def main(argv: list[str] | None = None) -> int:
    """Parse, dispatch, and turn errors into `error:` and `hint:` lines."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    process.close_inherited_files()
    argv = ungrouped(argv, command_word(argv))  # ch final
    command = None  # until the command line is read
    try:
        args = build_parser(command_word(argv)).parse_args(argv)
        if not getattr(args, "handler", None):
            raise UsageError("no command given", hint=f"see '{prog_name()} --help'")
        if args.explain:
            __import__(f"{__package__}.explain", fromlist=["install"]).install()  # wraps; nothing when off
        command = args.command_name
        return args.handler(args)
    except DockyardError as err:
        if debug:
            import traceback
            traceback.print_exc()
        err.report()
        return exit_code(err, command)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # our reader went away (`info | head -3`): say nothing more, as a piped tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit, flushing stdout
        return 128 + 13  # as if SIGPIPE had ended us
    except Exception as err:  # a bug of ours: say so in one line unless --debug
        if debug:
            raise
        print(f"error: internal error: {type(err).__name__}: {err}\n"
              f"hint: run again with --debug and report the traceback", file=sys.stderr)
        return 125
