# chapter: 07
"""From a Dockerfile's text to logical lines: directives, comments, continuations.

Docker reads a Dockerfile line by line:

    # escape=`                  parser directives: only at the very top
    # a comment                 skipped (also inside a continuation)
    RUN apt-get update && `     the escape character at the end continues
        apt-get install -y gcc  ... the instruction on the next line
    RUN <<EOF                   a heredoc: the lines up to EOF are its body
    echo hi
    EOF

Directives (`syntax`, `escape`, `check`) are read only before any comment,
blank line or instruction; after that a line like `# escape=x` is a comment.
The escape character (backslash unless `# escape=` says backtick) both
continues lines and, later, protects characters from expansion.
"""

import re
from dataclasses import dataclass

from ..errors import DockyardError

DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
KNOWN_DIRECTIVES = ("syntax", "escape", "check")
BOM = "\ufeff"


class DockerfileError(DockyardError):
    """A Dockerfile that cannot be parsed; the problem starts with FILE:LINE."""


def error_at(filename: str, line: int, problem: str, hint: str) -> DockerfileError:
    """An error that points at a line of the Dockerfile."""
    return DockerfileError(f"{filename}:{line}: {problem}", hint=hint)


@dataclass
class Line:
    """One instruction's text, continuations joined, and where it starts."""
    text: str
    start: int


def split_lines(text: str) -> list[str]:
    """Split after each newline only (not \\r or \\f), keeping the newlines."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def is_comment(line: str) -> bool:
    """A comment is a line whose first non-blank character is #."""
    return trim_newline(line).lstrip().startswith("#")


class Reader:
    """Hands out logical lines and heredoc bodies, counting physical lines."""

    def __init__(self, text: str, filename: str) -> None:
        self.lines = split_lines(text.removeprefix(BOM))
        self.filename = filename
        self.number = 0  # physical lines consumed so far
        self.directives: dict[str, str] = {}
        self.directives_done = False
        self.set_escape("\\")

    def error(self, problem: str, hint: str, line: int | None = None) -> DockerfileError:
        return error_at(self.filename, line or self.number, problem, hint)

    def next_raw(self) -> str | None:
        """The next physical line, newline included, or None at the end."""
        if self.number >= len(self.lines):
            return None
        self.number += 1
        return self.lines[self.number - 1]

    # --- directives and the escape character ----------------------------------------

    def set_escape(self, escape: str) -> None:
        """Use `escape` for continuations; it must be a backslash or a backtick."""
        if escape not in ("\\", "`"):
            raise self.error(f"invalid escape token '{escape}' does not match ` or \\",
                             hint="write '# escape=\\' or '# escape=`' as the first line")
        self.escape = escape
        # >>> exercise 7.2: line continuations: the escape character at the end of a line
        # hint: self.continuation must match an escape character (\ or `) at the end of a line, blanks
        # hint: after it allowed, unless it is escaped itself (\\); keep the character before it in a group.
        # hint: trim_continuation then drops that escape and says the instruction goes on.
        # test: test_dockerfile_parser.py::test_a_continuation_joins_lines_and_keeps_their_indentation
        # test: test_dockerfile_parser.py::test_an_escaped_escape_at_the_end_does_not_continue_the_line
        # test: test_dockerfile_parser.py::test_trailing_blanks_after_the_escape_still_continue_the_line
        # test: test_dockerfile_parser.py::test_the_escape_directive_makes_backtick_the_continuation
        # stops: every Dockerfile read
        e = re.escape(escape)
        # The escape character last on a line continues it, unless it is escaped itself.
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")
        # <<< exercise 7.2

    def check_directive(self, line: str) -> None:
        """Record `line` if it is a parser directive still allowed here."""
        if self.directives_done:
            return
        match = DIRECTIVE.match(line)
        if not match or match.group(1).lower() not in KNOWN_DIRECTIVES:
            self.directives_done = True
            return
        name, value = match.group(1).lower(), match.group(2)
        if name in self.directives:
            raise self.error(f"only one {name} parser directive can be used",
                             hint=f"remove the repeated '# {name}=' line")
        self.directives[name] = value
        if name == "escape":
            self.set_escape(value)

    # --- logical lines ------------------------------------------------------------

    def process(self, raw: str, strip_left: bool) -> str:
        """A physical line without its newline; comments become empty."""
        line = trim_newline(raw)
        if strip_left:
            line = line.lstrip()
        self.check_directive(line)
        return "" if is_comment(line) else line

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """Drop a trailing escape character; say whether the instruction ends here."""
        # >>> exercise 7.2
        if self.continuation.search(line):
            return self.continuation.sub(r"\1", line), False
        return line, True
        # <<< exercise 7.2

    def next_instruction(self) -> Line | None:
        """The next instruction's text, with its continuation lines joined."""
        while (raw := self.next_raw()) is not None:
            text, done = self.trim_continuation(self.process(raw, strip_left=True))
            if done and not text:
                continue  # blank line or comment
            start = self.number
            while not done and (raw := self.next_raw()) is not None:
                part = self.process(raw, strip_left=False)
                # Comments and blank lines inside a continuation are skipped.
                if is_comment(raw) or not part.strip():
                    continue
                part, done = self.trim_continuation(part)
                text += part
            return Line(text, start)
        return None

    def read_heredoc(self, name: str, chomp: bool) -> str | None:
        """The body of a heredoc up to its terminator line; None if there is none."""
        body = []
        while (raw := self.next_raw()) is not None:
            candidate = trim_newline(raw)
            if chomp:
                candidate = candidate.lstrip("\t")
            if candidate == name:
                return "".join(body)
            body.append(raw)
        return None
