"""From logical lines to instructions, as BuildKit's parser reads them.

    lines (lexer.py) ──▶ keyword, flags, arguments (arguments.py)
                     ──▶ heredoc bodies read from the following lines

The result is a list of `Instruction`s with arguments exactly as BuildKit's
parser leaves them (quotes and variables still in), which is also what
`dockerfile parse FILE --json` prints. Like BuildKit's, this parser knows
syntax only: `FOO bar`, `RUN` alone or `COPY --CHOWN=x` parse fine, and the
builder refuses them (checks.py), as BuildKit's instruction layer does.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from . import arguments, lexer
from .arguments import Problem
from .expand import ExpandError, Lexer

HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")


@dataclass
class Heredoc:
    """`<<EOF` ... `EOF`: a file or script written inline."""
    name: str
    content: str = ""
    expand: bool = True   # False when the delimiter is quoted: <<"EOF"
    chomp: bool = False   # <<-EOF strips leading tabs


@dataclass
class Instruction:
    """One instruction, as BuildKit's parser leaves it (an ONBUILD holds its trigger and its heredocs)."""
    cmd: str
    flags: list[str]
    args: list[Any]
    json: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0
    original: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # the flags, typed by checks.py

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
    # newline="": a heredoc keeps its \r\n line endings, as written and as BuildKit keeps them.
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return parse(f.read(), name or path)


# --8<-- [start:parse]
def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile's text into instructions (checked later, by the builder)."""
    reader = lexer.Reader(text, filename)
    instructions = []
    while (line := reader.next_instruction()) is not None:
        try:
            instruction = parse_line(line.text, reader.escape)
            read_heredocs(instruction, line, reader)
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

def may_have_heredocs(instruction: Instruction) -> bool:
    """RUN, COPY and ADD in shell form may have heredocs, also as an ONBUILD trigger."""
    if instruction.cmd == "onbuild" and instruction.args:
        instruction = instruction.args[0]
    return instruction.cmd in ("run", "copy", "add") and not instruction.json


def read_heredocs(instruction: Instruction, line: lexer.Line, reader: lexer.Reader) -> None:
    """Read the body of every heredoc the instruction names, in order (an ONBUILD keeps its trigger's)."""
    if not may_have_heredocs(instruction) or "<<" not in line.text:
        return
    for doc in heredocs_in(line.text):
        content = reader.read_heredoc(doc.name, doc.chomp)
        if content is None:
            raise Problem(f"unterminated heredoc {doc.name!r}",
                          hint=f"end it with a line that holds only {doc.name}")
        doc.content = content
        instruction.heredocs.append(doc)


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
