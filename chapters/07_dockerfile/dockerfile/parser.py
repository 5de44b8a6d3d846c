"""From logical lines to instructions, checked as Docker checks them.

    lines (lexer.py) ──▶ keyword, flags, arguments (arguments.py)
                     ──▶ heredoc bodies read from the following lines
                     ──▶ checks: known keyword, known flags, argument counts

The result is a list of `Instruction`s with arguments exactly as Docker's
parser leaves them (quotes and variables still in), which is also what
`dockerfile parse FILE --json` prints.
"""

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from . import arguments, lexer
from .arguments import Problem
from .expand import ExpandError, Lexer

KEYWORDS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
            "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume",
            "workdir")

# Each instruction's flags and their kinds (Docker's BFlags): bool, str, or list (repeatable).
FLAGS: dict[str, dict[str, type]] = {
    "from": {"platform": str},
    "run": {"mount": list, "network": str, "security": str},
    "copy": {"from": str, "chown": str, "chmod": str, "link": bool, "parents": bool, "exclude": list},
    "add": {"chown": str, "chmod": str, "link": bool, "keep-git-dir": bool, "checksum": str,
            "exclude": list, "unpack": bool},
    "healthcheck": {"interval": str, "timeout": str, "start-period": str, "start-interval": str,
                    "retries": str},
}
HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


@dataclass
class Heredoc:
    """`<<EOF` ... `EOF`: a file or script written inline."""
    name: str
    content: str = ""
    expand: bool = True   # False when the delimiter is quoted: <<"EOF"
    chomp: bool = False   # <<-EOF strips leading tabs


@dataclass
class Instruction:
    """One instruction, as Docker's parser leaves it."""
    cmd: str
    flags: list[str]
    args: list[Any]
    json: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0
    original: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # the flags, checked and typed

    def to_json(self) -> dict[str, Any]:
        """The object that `dockerfile parse --json` prints."""
        args = [a.to_json() if isinstance(a, Instruction) else a for a in self.args]
        return {"cmd": self.cmd, "flags": self.flags, "args": args, "json": self.json,
                "heredocs": [vars(h) for h in self.heredocs],
                "start_line": self.start_line, "end_line": self.end_line}


@dataclass
class Dockerfile:
    """A parsed Dockerfile: its instructions and parser directives."""
    instructions: list[Instruction]
    directives: dict[str, str]
    escape: str
    filename: str


def parse_file(path: str, name: str | None = None) -> Dockerfile:
    """Parse the Dockerfile at `path`; errors name it as `name` (default: path)."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read(), name or path)


# --8<-- [start:parse]
def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile's text into checked instructions."""
    reader = lexer.Reader(text, filename)
    instructions = []
    while (line := reader.next_instruction()) is not None:
        try:
            instruction = parse_line(line.text, reader.escape)
            read_heredocs(instruction, line, reader)
            check(instruction)
        except Problem as err:
            raise lexer.error_at(filename, line.start, err.problem, err.hint) from None
        instruction.start_line, instruction.end_line = line.start, reader.number
        for trigger in instruction.args if instruction.cmd == "onbuild" else []:
            trigger.start_line, trigger.end_line = line.start, reader.number
        instructions.append(instruction)
    if not instructions:
        raise reader.error("the Dockerfile is empty: it has no instructions",
                           hint="start it with FROM IMAGE (or FROM scratch)", line=max(reader.number, 1))
    return Dockerfile(instructions, reader.directives, reader.escape, filename)
# --8<-- [end:parse]


def parse_line(text: str, escape: str) -> Instruction:
    """Keyword, flags and arguments of one instruction's text."""
    keyword, rest = arguments.split_command(text)
    flags, rest = arguments.extract_flags(rest)
    cmd = keyword.lower()
    if cmd == "onbuild":
        args: list[Any] = [parse_line(rest, escape)] if rest else []
        return Instruction(cmd, flags, args, original=text.strip())
    args, is_json = arguments.ARGUMENTS.get(cmd, arguments.ignored)(rest, escape)
    return Instruction(cmd, flags, args, is_json, original=text.strip())


# --- heredocs ------------------------------------------------------------------------

def heredoc_target(instruction: Instruction) -> Instruction | None:
    """The instruction that may carry heredocs: RUN, COPY, ADD (also under ONBUILD)."""
    if instruction.cmd == "onbuild" and instruction.args:
        instruction = instruction.args[0]
    return instruction if instruction.cmd in ("run", "copy", "add") and not instruction.json else None


def read_heredocs(instruction: Instruction, line: lexer.Line, reader: lexer.Reader) -> None:
    """Read the body of every heredoc the instruction names, in order."""
    target = heredoc_target(instruction)
    if target is None or "<<" not in line.text:
        return
    for doc in heredocs_in(line.text):
        content = reader.read_heredoc(doc.name, doc.chomp)
        if content is None:
            raise Problem(f"unterminated heredoc {doc.name!r}",
                          hint=f"end it with a line that holds only {doc.name}")
        doc.content = content
        target.heredocs.append(doc)


def heredocs_in(text: str) -> list[Heredoc]:
    """The heredocs that an instruction's words start (<<EOF, <<-EOF, <<'EOF')."""
    try:
        words = Lexer("\\", raw_quotes=True, raw_escapes=True).words(text, {})
    except ExpandError:
        return []
    return [doc for word in words if (doc := heredoc_of(word)) is not None]


def heredoc_of(word: str) -> Heredoc | None:
    """The heredoc that `word` starts, if it does."""
    match = HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    lex = Lexer("\\", skip_unset=True)
    names = lex.words(match.group(3), {})
    lex.raw_quotes = True
    raw = lex.words(match.group(3), {})
    if len(names) != 1 or len(raw) != 1:
        return None
    # A quote anywhere in the delimiter (<<"EOF", <<E'OF') turns expansion off.
    quotes = sum(names[0].count(q) for q in "'\"")
    raw_quotes = sum(raw[0].count(q) for q in "'\"")
    return Heredoc(names[0], expand=quotes == raw_quotes, chomp=match.group(2) == "-")


# --- checks ---------------------------------------------------------------------------

def check(instruction: Instruction) -> None:
    """Refuse what Docker refuses: unknown keywords and flags, wrong arguments."""
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
    kind = instruction.args[0].upper() if instruction.args else ""
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
