# chapter: 07
"""The Dockerfile chapter's commands: `dockerfile parse` and `build`.

The CLI merges this table into its own. Handlers import the builder only
when they run, so `python -m final run ...` never loads it.
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
            return parser.parse(sys.stdin.read(), "-")
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


COMMANDS = {
    "dockerfile": ("Inspect a Dockerfile (parse FILE --json)", add_dockerfile_arguments, cmd_dockerfile),
}
