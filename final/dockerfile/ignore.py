# chapter: 07
""".dockerignore: which files of the build context COPY and ADD never see.

One pattern a line, matched against paths relative to the context root:

    # a comment               (only at the very start of a line)
    *.log                     * and ? never cross a /; [a-z] is a class
    **/node_modules           ** crosses any number of directories
    build/                    a directory excludes everything below it
    !build/keep.txt           ! makes an exception to earlier patterns

The last pattern that matches a path decides; a path is also excluded when
one of its parent directories matches (so `build` hides `build/a/b`), unless
a later `!` pattern brings it back.
"""

import os
import posixpath
import re
from dataclasses import dataclass


@dataclass
class Pattern:
    """One line of .dockerignore, compiled."""
    text: str
    regex: re.Pattern[str]
    exception: bool


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore, cleaned the way Docker cleans them."""
    patterns = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        exception = line.startswith("!")
        line = line[1:].strip() if exception else line
        if line:
            line = posixpath.normpath(line)
            line = line[1:] if len(line) > 1 and line.startswith("/") else line
        patterns.append(("!" if exception else "") + line)
    return patterns


def compile_pattern(pattern: str) -> Pattern:
    """Turn one pattern into a regular expression over slash-separated paths."""
    exception = pattern.startswith("!")
    text = pattern[1:] if exception else pattern
    out, i = ["^"], 0
    while i < len(text):
        ch = text[i]
        i += 1
        if text.startswith("*", i - 1) and text.startswith("*", i):
            i += 1
            if text.startswith("/", i):
                i += 1  # **/ is the same as **
            out.append(".*" if i >= len(text) else "(.*/)?")
        elif ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            out.append(re.escape(text[i]) if i < len(text) else "\\\\")
            i += 1
        elif ch in "[]":
            out.append(ch)
        else:
            out.append(re.escape(ch))
    try:
        regex = re.compile("".join(out) + "$", re.DOTALL)
    except re.error:
        regex = re.compile(re.escape(text) + "$")  # a broken class matches itself literally
    return Pattern(pattern, regex, exception)


class Matcher:
    """Decides, for a path in the context, whether .dockerignore excludes it."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [compile_pattern(p) for p in patterns if p not in ("", "!")]
        self.has_exceptions = any(p.exception for p in self.patterns)

    @classmethod
    def from_context(cls, context: str) -> "Matcher":
        """The matcher for a context directory (no .dockerignore: nothing excluded)."""
        try:
            with open(os.path.join(context, ".dockerignore"), encoding="utf-8", errors="replace") as f:
                return cls(read_patterns(f.read()))
        except FileNotFoundError:
            return cls([])

    def excluded(self, path: str) -> bool:
        """True if `path` (relative, slash-separated) is excluded."""
        path = path.strip("/")
        if not path or path == ".":
            return False
        parents = path.split("/")[:-1]
        matched = False
        for pattern in self.patterns:
            # >>> exercise 7.3: .dockerignore: the last pattern that matches decides
            # hint: the patterns come in the file's order. One that matches the path (pattern.regex.match),
            # hint: or one of its parent directories (a/b/c: also "a" and "a/b"), excludes it; an exception
            # hint: (!pattern, pattern.exception) that matches brings it back, so only the last match
            # hint: counts: set `matched`. (Only an exception can undo a match, only a pattern make one.)
            # test: test_build.py::test_dockerignore_keeps_excluded_files_out_of_copy
            if pattern.exception != matched:
                continue  # only an exception can undo a match, only a pattern can make one
            hit = bool(pattern.regex.match(path)) or any(
                pattern.regex.match("/".join(parents[:n])) for n in range(1, len(parents) + 1))
            if hit:
                matched = not pattern.exception
            # <<< exercise 7.3
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception could bring back something below an excluded directory."""
        return self.has_exceptions
