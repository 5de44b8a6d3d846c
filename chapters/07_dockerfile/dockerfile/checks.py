"""What the builder refuses before it builds anything, as BuildKit's instruction layer does.

The parser (parser.py) accepts any text that has the Dockerfile's shape:
`FOO bar`, `RUN` alone, `COPY --CHOWN=x a b` or `SHELL sh -c` all parse.
Whether an instruction exists, takes those flags and has enough arguments is
the builder's question, asked here for every instruction before the first
step runs, so a mistake on line 40 does not cost 39 steps first:

    Dockerfile:2: unknown instruction: RUNN
      hint: did you mean RUN?
"""

import re
from typing import Any

from . import arguments, lexer
from .arguments import Problem
from .parser import Dockerfile, Instruction

KEYWORDS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
            "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume",
            "workdir")

# Each instruction's flags and their kinds (BuildKit's BFlags): bool, str, or list (repeatable).
# Flag names are case-sensitive: --CHOWN is not --chown.
FLAGS: dict[str, dict[str, type]] = {
    "from": {"platform": str},
    "run": {"mount": list, "network": str, "security": str},
    "copy": {"from": str, "chown": str, "chmod": str, "link": bool, "parents": bool, "exclude": list},
    "add": {"chown": str, "chmod": str, "link": bool, "keep-git-dir": bool, "checksum": str,
            "exclude": list, "unpack": bool},
    "healthcheck": {"interval": str, "timeout": str, "start-period": str, "start-interval": str,
                    "retries": str},
}
STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


# --8<-- [start:check]
def check_dockerfile(dockerfile: Dockerfile) -> None:
    """Refuse, at its line, the first instruction the builder cannot build."""
    for instruction in dockerfile.instructions:
        try:
            check(instruction)
        except Problem as err:
            raise lexer.error_at(dockerfile.filename, instruction.start_line, err.problem, err.hint) from None
# --8<-- [end:check]


def check(instruction: Instruction) -> None:
    """Refuse what Docker refuses: unknown keywords and flags, wrong arguments; type the flags."""
    cmd = instruction.cmd
    if cmd not in KEYWORDS:
        raise Problem(f"unknown instruction: {instruction.original.split()[0].upper()}",
                      hint=suggest_keyword(cmd))
    instruction.options = parse_flags(cmd, instruction.flags)
    if cmd == "onbuild":
        check_onbuild(instruction)
    count = len(instruction.args) + len(instruction.heredocs)
    CHECKS.get(cmd, lambda i, n: None)(instruction, count)


def suggest_keyword(cmd: str) -> str:
    import difflib  # only a misspelled Dockerfile needs it
    close = difflib.get_close_matches(cmd, KEYWORDS, n=1)
    if close:
        return f"did you mean {close[0].upper()}?"
    return "instructions are " + ", ".join(k.upper() for k in KEYWORDS)


def parse_flags(cmd: str, flags: list[str]) -> dict[str, Any]:
    """Check `--name=value` flags against what the instruction takes; type them."""
    allowed, values = FLAGS.get(cmd, {}), {}
    for flag in flags:
        name, eq, value = flag.removeprefix("--").partition("=")
        if not flag.startswith("--") or name not in allowed:
            takes = ", ".join("--" + f for f in allowed) or "no flags"
            raise Problem(f"unknown flag: {name}", hint=f"{cmd.upper()} takes {takes}")
        kind = allowed[name]
        if name in values and kind is not list:
            raise Problem(f"duplicate flag specified: {name}", hint=f"give --{name} once")
        if (kind is not bool and not eq) or (kind is bool and eq and not value):
            raise Problem(f"missing a value on flag: {name}", hint=f"write --{name}=VALUE")
        if kind is bool:
            if value.lower() not in ("", "true", "false"):
                raise Problem(f"expecting boolean value for flag {name}, not: {value}",
                              hint=f"write --{name} or --{name}=false")
            values[name] = value.lower() != "false"
        else:
            values[name] = values.get(name, []) + [value] if kind is list else value
    return values


def check_onbuild(instruction: Instruction) -> None:
    if not instruction.args:
        raise Problem("ONBUILD requires at least one argument", hint="for example: ONBUILD COPY . /app")
    trigger = instruction.args[0]
    if trigger.cmd in ("onbuild", "from", "maintainer"):
        raise Problem(f"{trigger.cmd.upper()} isn't allowed as an ONBUILD trigger",
                      hint="ONBUILD takes RUN, COPY, ENV and the other build steps")
    check(trigger)


def need(at_least: int, at_most: int | None = None, what: str = "") -> Any:
    """A check that an instruction has 1 argument or more (or exactly 1)."""
    def check_count(instruction: Instruction, count: int) -> None:
        name = instruction.cmd.upper()
        if count < at_least or (at_most is not None and count > at_most):
            amount = "exactly one argument" if at_most == at_least else "at least one argument"
            raise Problem(f"{name} requires {amount}", hint=what or f"see the {name} reference")
    return check_count


def check_from(instruction: Instruction, count: int) -> None:
    args = instruction.args
    if len(args) == 3 and args[1].lower() == "as":
        if not STAGE_NAME.match(args[2].lower()):
            raise Problem(f"invalid name for build stage: {args[2]!r}, name can't start with a number "
                          "or contain symbols", hint="use letters, digits, '-', '_' and '.'")
    elif len(args) != 1:
        raise Problem("FROM requires either one or three arguments", hint="write FROM IMAGE [AS NAME]")


def check_copy(instruction: Instruction, count: int) -> None:
    if len(instruction.args) < 2:
        raise Problem(f"{instruction.cmd.upper()} requires at least two arguments, but only one was "
                      "provided. Destination could not be determined.", hint="write COPY SRC... DEST")


def check_pairs(instruction: Instruction, count: int) -> None:
    if not instruction.args:
        name = instruction.cmd.upper()
        raise Problem(f"{name} requires at least one argument", hint=f"write {name} NAME=VALUE")


def check_shell(instruction: Instruction, count: int) -> None:
    if not instruction.json:
        raise Problem("SHELL requires the arguments to be in JSON form",
                      hint='for example: SHELL ["/bin/sh", "-c"]')
    need(1, what='for example: SHELL ["/bin/sh", "-c"]')(instruction, count)


def check_healthcheck(instruction: Instruction, count: int) -> None:
    need(1, what="write HEALTHCHECK [OPTIONS] CMD COMMAND, or HEALTHCHECK NONE")(instruction, count)
    kind = instruction.args[0].upper()
    if kind == "NONE" and len(instruction.args) > 1:
        raise Problem("HEALTHCHECK NONE takes no arguments", hint="write HEALTHCHECK NONE alone")
    if kind == "CMD" and len(instruction.args) < 2:
        raise Problem("Missing command after HEALTHCHECK CMD", hint="write HEALTHCHECK CMD COMMAND")
    if kind not in ("CMD", "NONE"):
        raise Problem(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)",
                      hint="write HEALTHCHECK [OPTIONS] CMD COMMAND, or HEALTHCHECK NONE")
    options = instruction.options
    for name in ("interval", "timeout", "start-period", "start-interval"):
        if name in options:
            options[name] = arguments.parse_duration(options[name])
            if 0 < options[name] < 0.001:
                raise Problem(f"Interval {name} cannot be less than 1ms", hint="use 0 or 1ms or more")
    if not options.get("retries", "0").isdigit():
        raise Problem(f"invalid --retries {options['retries']!r}", hint="give a whole number, e.g. 3")


def check_volume(instruction: Instruction, count: int) -> None:
    need(1, what="write VOLUME /path")(instruction, count)
    if any(not arg.strip() for arg in instruction.args):
        raise Problem("VOLUME specified can not be an empty string", hint="name a path")


def check_arg(instruction: Instruction, count: int) -> None:
    need(1, what="write ARG NAME or ARG NAME=DEFAULT")(instruction, count)
    if any(word.startswith("=") for word in instruction.args):
        raise Problem("ARG names can not be blank", hint="write ARG NAME=DEFAULT")


CHECKS: dict[str, Any] = {
    "from": check_from, "copy": check_copy, "add": check_copy, "env": check_pairs,
    "label": check_pairs, "shell": check_shell, "healthcheck": check_healthcheck,
    "volume": check_volume, "arg": check_arg,
    "run": need(1, what="write RUN COMMAND"), "expose": need(1, what="write EXPOSE PORT[/PROTO]"),
    "maintainer": need(1, 1), "user": need(1, 1), "workdir": need(1, 1), "stopsignal": need(1, 1),
}
