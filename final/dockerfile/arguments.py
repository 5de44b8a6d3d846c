# chapter: 07
"""Splitting one instruction's text into keyword, flags and arguments.

Each instruction has its own argument syntax, and Docker's parser keeps one
small function per kind; this module has the same ones:

    RUN CMD ENTRYPOINT SHELL   exec form ["a", "b"] if it is a JSON array,
                               else the whole rest as one shell-form string
    COPY ADD VOLUME            JSON array, else words split at blanks
    FROM EXPOSE                words split at blanks
    ENV LABEL                  key=value pairs (quotes kept), or `KEY value`
    ARG                        words, quotes kept (NAME or NAME=default)
    USER WORKDIR STOPSIGNAL    the rest, as one string
    MAINTAINER
    HEALTHCHECK                NONE, or CMD and a command in either form
    ONBUILD                    another instruction, parsed the same way

Quotes and escapes stay in the arguments: expand.py removes them later, when
the instruction's variables are substituted. A line that merely looks like
JSON but is not a valid JSON document, `["x"]  # comment?` included (a
comment is only a comment at the start of a line), is shell form, as in BuildKit.
"""

import json
import re
from typing import Any, Callable

BLANKS = re.compile(r"[\t\v\f\r ]+")


class Problem(Exception):
    """A mistake in one instruction; the parser adds the file and line."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem, self.hint = problem, hint


def split_command(line: str) -> tuple[str, str]:
    """The keyword and the rest of an instruction's text."""
    parts = BLANKS.split(line.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) == 2 else ""


def extract_flags(rest: str) -> tuple[list[str], str]:
    """Take the leading `--name[=value]` words off `rest` (quotes removed)."""
    flags, pos = [], 0
    while True:
        while pos < len(rest) and rest[pos].isspace():
            pos += 1
        if not rest.startswith("--", pos):
            return flags, rest[pos:].strip()
        word, pos = flag_word(rest, pos)
        if word == "--":
            return flags, rest[pos:].strip()
        flags.append(word)


def flag_word(text: str, pos: int) -> tuple[str, int]:
    """Read one flag word from pos: quotes removed, backslash escapes honoured."""
    word, quote = [], ""
    while pos < len(text):
        ch = text[pos]
        pos += 1
        if not quote and ch.isspace():
            break
        if not quote and ch in "'\"":
            quote = ch
            continue
        if quote and ch == quote:
            quote = ""
            continue
        if ch == "\\":
            if pos == len(text):
                continue  # a backslash at the very end is dropped
            ch, pos = text[pos], pos + 1
        word.append(ch)
    return "".join(word), pos


def parse_words(rest: str, escape: str) -> list[str]:
    """Split at unquoted blanks, keeping quotes and escapes in the words."""
    words, word, quote, pos = [], "", "", 0
    while pos < len(rest):
        ch = rest[pos]
        pos += 1
        if not quote and ch.isspace():
            if word:
                words.append(word)
            word = ""
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        if ch == escape and quote != "'":
            if pos == len(rest):
                continue  # an escape at the end of the line is dropped
            word, ch, pos = word + ch, rest[pos], pos + 1
        word += ch
    return words + [word] if word else words


def parse_json(rest: str) -> list[str] | None:
    """The elements of a JSON array of strings; None if `rest` is not JSON."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:  # the whole rest, as Go's json.Unmarshal reads it: trailing text makes it shell form
        value = json.loads(rest, parse_constant=reject_constant)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise Problem("when using JSON array syntax, arrays must be comprised of strings only",
                      hint='quote every element, e.g. ["sleep", "10"]')
    return value


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # Go's decoder refuses NaN and Infinity


# --- one parser per kind of instruction ----------------------------------------------
# Each returns (args, is_json).

def maybe_json(rest: str, escape: str) -> tuple[list[Any], bool]:
    """RUN, CMD, ENTRYPOINT, SHELL: exec form or one shell-form string."""
    if not rest:
        return [], False
    items = parse_json(rest)
    return (items, True) if items is not None else ([rest], False)


def maybe_json_to_list(rest: str, escape: str) -> tuple[list[Any], bool]:
    """COPY, ADD, VOLUME: exec form or words split at blanks."""
    items = parse_json(rest)
    return (items, True) if items is not None else (blank_separated(rest, escape)[0], False)


def blank_separated(rest: str, escape: str) -> tuple[list[Any], bool]:
    """FROM, EXPOSE: words split at blanks, quotes or not."""
    return (BLANKS.split(rest) if rest else []), False


def single_string(rest: str, escape: str) -> tuple[list[Any], bool]:
    """USER, WORKDIR, STOPSIGNAL, MAINTAINER: the rest as one argument."""
    return ([rest] if rest else []), False


def names_or_values(rest: str, escape: str) -> tuple[list[Any], bool]:
    """ARG: NAME or NAME=default words."""
    return parse_words(rest, escape), False


def key_values(keyword: str) -> Callable[[str, str], tuple[list[Any], bool]]:
    """ENV and LABEL: flattened (key, value, separator) triples."""
    def parse(rest: str, escape: str) -> tuple[list[Any], bool]:
        words = parse_words(rest, escape)
        if not words:
            return [], False
        if "=" not in words[0]:  # the old form: KEY value with blanks
            parts = BLANKS.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise Problem(f"{keyword} must have two arguments",
                              hint=f"write {keyword} NAME=VALUE")
            return [parts[0], parts[1], ""], False
        triples: list[Any] = []
        for word in words:
            if "=" not in word:
                raise Problem(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value",
                              hint='quote values that contain blanks: NAME="a b"')
            key, value = word.split("=", 1)
            triples += [key, value, "="]
        return triples, False
    return parse


def health_config(rest: str, escape: str) -> tuple[list[Any], bool]:
    """HEALTHCHECK: its type (CMD or NONE), then the command in either form."""
    match = re.match(r"(\S+)\s*(.*)", rest, re.DOTALL)
    if not match:
        return [], False
    command, is_json = maybe_json(match.group(2), escape)
    return [match.group(1), *command], is_json


def ignored(rest: str, escape: str) -> tuple[list[Any], bool]:
    """An unknown instruction: Docker's parser keeps no arguments."""
    return [], False


ARGUMENTS: dict[str, Callable[[str, str], tuple[list[Any], bool]]] = {
    "add": maybe_json_to_list, "arg": names_or_values, "cmd": maybe_json,
    "copy": maybe_json_to_list, "entrypoint": maybe_json, "env": key_values("ENV"),
    "expose": blank_separated, "from": blank_separated, "healthcheck": health_config,
    "label": key_values("LABEL"), "maintainer": single_string, "run": maybe_json,
    "shell": maybe_json, "stopsignal": single_string, "user": single_string,
    "volume": maybe_json_to_list, "workdir": single_string,
}


DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as 30s, 1m30s or 500ms ("" and "0" are 0)."""
    if text in ("", "0"):
        return 0.0
    body = text.lstrip("+")
    if not body or DURATION.sub("", body) != "":
        raise Problem(f"invalid duration {text!r}", hint="write it like 30s, 1m30s or 500ms")
    return sum(float(n) * UNITS[unit] for n, unit in DURATION.findall(body))
