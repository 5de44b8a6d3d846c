"""The command line: Docker's everyday commands, one small handler each.

Parsing lives here, in one table, so the whole CLI contract can be read in
one place; the work lives in the mechanism modules, imported only when their
command runs (the start path of a container is hot).
"""

import argparse
import importlib
import os
import sys

from . import config, process
from .errors import DockyardError, UsageError


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as a DockyardError (exit 125, like Docker)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def prog_name() -> str:
    """How the user started us: 'python3 -m final' or 'python3 -m chapters.01_chroot'."""
    return f"python3 -m {__package__}"


# --- commands ------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from . import process, request
    from .limits import parse_limits
    from . import image_run
    image = image_run.prepare(args)  # run IMAGE: its layers, and its config as flags
    if not args.command:
        raise UsageError("run needs a command", hint="for example: run --rootfs DIR /bin/sh -c 'echo hi'")
    spec = request.Request(rootfs=os.path.abspath(args.rootfs), argv=args.command,
                           env=process.default_env("dockyard", sys.stdin.isatty() and args.interactive, args.env),
                           workdir=args.workdir or "/", interactive=args.interactive, debug=args.debug, root=args.root)
    spec.network, spec.init = args.network, args.init
    spec.userns = args.userns or os.geteuid() != 0  # rootless needs a user namespace
    spec.limits = parse_limits(args.memory, args.memory_swap, args.cpus, args.cpu_shares, args.pids_limit)
    spec.name, spec.remove, spec.volumes = args.name, args.rm, args.volume
    spec.storage_driver = args.storage_driver
    spec.user = args.user
    from . import namespaces
    spec.hostname = namespaces.check_hostname(args.hostname or spec.id[:12])
    spec.env["HOSTNAME"] = spec.hostname
    image_run.apply(spec, image)
    from . import containers
    containers.create(spec)  # a record, and a writable layer of its own
    return containers.run(spec)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.usage = "%(prog)s [OPTIONS] (IMAGE | --rootfs DIR) [COMMAND] [ARG...]"
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set an environment variable")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside (default /, or the image's)")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("--hostname", metavar="NAME", help="hostname inside (default: the short container id)")
    p.add_argument("--network", choices=("none", "host"), default="none",
                   help="none: only lo, in a namespace of its own (default); host: share the host's")
    p.add_argument("--userns", action="store_true",
                   help="map root inside to an unprivileged user outside (implied when not root)")
    p.add_argument("--init", action="store_true", help="run a tiny init as PID 1 that reaps zombies")
    p.add_argument("-m", "--memory", metavar="BYTES", help="memory limit: 64m, 1g (memory controller)")
    p.add_argument("--memory-swap", metavar="BYTES", help="memory plus swap; -1: unlimited swap")
    p.add_argument("--cpus", metavar="N", help="CPU time in cores: 0.5 is half a core (cpu controller)")
    p.add_argument("-c", "--cpu-shares", metavar="N", help="CPU weight under contention (default 1024)")
    p.add_argument("--pids-limit", metavar="N", help="most processes at once; -1: no limit (pids controller)")
    p.add_argument("--name", default="", help="name the container (default: a random one)")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]",
                   help="bind a host path or a named volume into the container")
    p.add_argument("--rootfs", metavar="DIR", help="run this directory as the container's / (instead of an IMAGE)")
    p.add_argument("--entrypoint", metavar="CMD", help="replace the image's Entrypoint (and drop its Cmd)")
    p.add_argument("-u", "--user", default="", metavar="USER[:GROUP]", help="user inside, by name or id")
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
TABLES += ["info", "stats"]
TABLES += ["container_commands"]
TABLES += ["image_commands"]
TABLES += ["registry.commands"]


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
VALUED_OPTIONS = ("--root", "--storage-driver")


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
    parser.add_argument("--storage-driver", choices=("overlay", "vfs"), default="overlay",
                        help="how a new container gets its own layer: overlay (default) or vfs (copies)")
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
