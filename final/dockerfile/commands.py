# chapter: 07
"""The Dockerfile chapter's commands: `dockerfile parse` and `build`.

The CLI merges this table into its own. Handlers import the builder only
when they run, so `python3 -m final run ...` never loads it.
"""

import argparse
import json
import sys

from ..errors import UsageError


# --- dockerfile parse FILE [--json] --------------------------------------------------

def add_dockerfile_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="dockerfile_command", metavar="COMMAND", parser_class=type(p))
    parse = sub.add_parser("parse", help="print how Docker's parser reads a Dockerfile")
    parse.add_argument("file", metavar="FILE", help="the Dockerfile ('-' reads stdin)")
    parse.add_argument("--json", action="store_true", help="one JSON object per instruction")


def cmd_dockerfile(args: argparse.Namespace) -> int:
    from . import parser
    if args.dockerfile_command != "parse":
        raise UsageError("dockerfile needs a command", hint="dockerfile parse FILE --json")
    dockerfile = read_dockerfile(args.file)
    if args.json:
        json.dump([i.to_json() for i in dockerfile.instructions], sys.stdout, indent=2)
        print()
        return 0
    for instruction in dockerfile.instructions:
        print(f"{instruction.start_line:>4}  {describe(instruction)}")
    return 0


def read_dockerfile(path: str) -> "parser.Dockerfile":  # noqa: F821
    """Parse a Dockerfile from a path or stdin, turning I/O errors into hints."""
    from . import parser
    from ..errors import DockyardError
    try:
        if path == "-":
            return parser.parse(sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "-")
        return parser.parse_file(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise DockyardError(f"cannot read {path}: {err.strerror}",
                            hint="give the path of a Dockerfile") from err


def describe(instruction: "parser.Instruction") -> str:  # noqa: F821
    """One readable line: keyword, flags, arguments (exec form as JSON)."""
    args = instruction.args
    if args and not isinstance(args[0], str):
        shown = describe(args[0])
    elif instruction.cmd in ("env", "label"):
        shown = " ".join(f"{k}{sep or ' '}{v}" for k, v, sep in zip(args[::3], args[1::3], args[2::3]))
    else:
        shown = json.dumps(args) if instruction.json else " ".join(args)
    docs = "".join(f"  <<{h.name} ({h.content.count(chr(10))} lines)" for h in instruction.heredocs)
    return " ".join([instruction.cmd.upper(), *instruction.flags, shown]) + docs


# --- build [-t NAME]... [-f FILE] [--build-arg K=V] [--target S] [--no-cache] CONTEXT ------

def add_build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]", help="name the image")
    p.add_argument("-f", "--file", metavar="FILE", help="the Dockerfile (default CONTEXT/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V", help="set an ARG")
    p.add_argument("--target", metavar="STAGE", help="build this stage (and what it needs) only")
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("--pull", action="store_true", help="pull each base image (FROM) even if it is here")
    p.add_argument("--network", choices=("host", "none"), default="host", help="network for RUN steps")
    p.add_argument("--progress", choices=("plain", "tty", "auto"), default="auto", help="output style")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    # Accepted for Docker's scripts; our step containers never outlive their step either way.
    add_docker_boolean(p, "--rm", True, "remove the step containers (default; always done)")
    add_docker_boolean(p, "--force-rm", False, "remove them even after a failed step (always done)")
    p.add_argument("context", metavar="CONTEXT", help="the directory COPY and ADD read from")


def add_docker_boolean(p: argparse.ArgumentParser, flag: str, default: bool, help: str) -> None:
    """A flag Docker spells --x, --x=true or --x=false (argparse tries whole words before splitting at =)."""
    dest = flag.lstrip("-").replace("-", "_")
    p.add_argument(flag, f"{flag}=true", dest=dest, action="store_true", default=default, help=help)
    p.add_argument(f"{flag}=false", dest=dest, action="store_false", default=default, help=argparse.SUPPRESS)


def cmd_build(args: argparse.Namespace) -> int:
    import io
    import os
    from ..errors import DockyardError
    from . import builder
    if os.geteuid() != 0:
        raise DockyardError("build needs root: RUN steps are containers and layers are overlay mounts",
                            hint="run it with sudo (inside the Vagrant VM: vagrant ssh, then sudo ...)")
    if not os.path.isdir(args.context):
        raise DockyardError(f"the build context {args.context!r} is not a directory",
                            hint="give the directory that holds the Dockerfile and the files to COPY")
    options = builder.Options(root=args.root, context=args.context, dockerfile=args.file, tags=args.tag,
                              build_args=parse_build_args(args.build_arg), target=args.target,
                              no_cache=args.no_cache, network=args.network, progress=args.progress,
                              pull=args.pull)
    out = io.StringIO() if args.quiet else sys.stdout
    image = builder.Builder(options, out).build()
    if args.quiet:
        print(image.id)
    return 0


def parse_build_args(items: list[str]) -> dict[str, str]:
    """`K=V` pairs; a bare `K` takes the value of K in our own environment, as Docker does."""
    import os
    values = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {item!r}", hint="write --build-arg NAME=VALUE")
        if eq:
            values[key] = value
        elif key in os.environ:
            values[key] = os.environ[key]
    return values


COMMANDS = {
    "dockerfile": ("Inspect a Dockerfile (parse FILE --json)", add_dockerfile_arguments, cmd_dockerfile),
    "build": ("Build an image from a Dockerfile", add_build_arguments, cmd_build),
}
