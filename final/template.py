# chapter: final
"""--format: Go's text/template, the part Docker users type.

Docker prints `ps`, `inspect` and `events` through Go templates, and its
users' scripts are full of them. The template is text with actions between
{{ and }}; an action names values from the object being printed (the "dot"):

    {{.State.Status}}                        a field, or a field of a field
    {{json .Config}}   {{.Config | json}}    a function, called or piped into
    {{index .Config.Labels "com.x"}}         Go's builtins: index, len, eq, not, printf ...
    {{join .Args ","}}  {{upper .Name}}      Docker's own: join, split, lower, upper, title, pad, truncate
    {{range .Mounts}}{{.Source}} {{end}}     a loop: the dot is each element in turn;
    {{range $k, $v := .Config.Labels}}       with variables; {{else}} runs for an empty one
    {{if .State.Running}}up{{else}}down{{end}}   a branch; {{with X}} also sets the dot
    {{- .Name -}}                            a dash trims the white space beside the action
    table {{.ID}}\\t{{.Names}}                 a header row first, columns lined up

A template is parsed once into a tree of nodes (parse), and the tree is run
on each object (execute). The objects are what `{{json .}}` prints: dicts,
lists, strings, numbers, true/false and null, so a value prints as Go's fmt
prints it: a list as [a b], a dict as map[k:v] with its keys sorted.

Go refuses a field that a struct lacks, and prints <no value> for a key a map
lacks. Our objects are dicts standing in for Docker's structs, so a field the
printed object itself lacks is refused, naming the fields it has (it is most
likely a typo), and one deeper down prints <no value>.
"""

import json
import re
from functools import lru_cache
from typing import Any, Callable

from .errors import UsageError

NO_VALUE = "<no value>"


def check(template: str) -> str:
    """Refuse a template Go would refuse, before there is anything to print."""
    parse(unescape(template))
    return template


def render(template: str, value: Any) -> str:
    """Run `template` on one object."""
    out: list[str] = []
    Execution(value, out).run(parse(unescape(template)), value)
    return "".join(out)


def render_all(template: str, values: list, headers: dict[str, str] | None = None) -> list[str]:
    """One line per value; with a `table` prefix, a header row (`headers` names a field's column) and
    aligned columns. `json` alone is `{{json .}}`, as Docker takes it."""
    template = "{{json .}}" if template == "json" else template
    if not template.startswith("table"):
        return [render(template, value) for value in values]
    body = template[len("table"):].strip() or "{{.ID}}"
    header = header_row(body, HEADERS | (headers or {}))
    rows = [line.split("\t") for line in [header, *(render(body, value) for value in values)]]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(max(map(len, rows)))]
    return ["   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def print_each(template: str, values: list, headers: dict[str, str] | None = None) -> int:
    """The template once per object, each on a line of its own (inspect -f, images --format ...)."""
    for line in render_all(check(template), values, headers):
        print(line)
    return 0


def unescape(template: str) -> str:
    """The shell leaves \\t and \\n as two characters; Docker turns them into tab and newline."""
    return template.replace("\\t", "\t").replace("\\n", "\n")


# --- the header of a table ---------------------------------------------------

HEADERS = {"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT"}  # ps's


def header_row(body: str, headers: dict[str, str]) -> str:
    """Each action becomes its column's name, as Docker writes it: .ID -> CONTAINER ID."""
    pieces = []
    for kind, text in split_actions(unescape(body)):
        pieces.append(text if kind == "text" else header_of(text, headers))
    return "".join(pieces)


def header_of(action: str, headers: dict[str, str]) -> str:
    names = re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", action)
    if not names:
        return "JSON" if action.strip("- ").startswith("json") else ""
    name = names[-1]
    return headers.get(name, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper())


# --- parsing -----------------------------------------------------------------
# Text and actions first (split_actions), then each action's words (tokens),
# then the tree: a node is a tuple whose first item says what it is.
#
#   ("text", "...")                      ("print", pipeline)
#   ("if", pipeline, body, otherwise)    ("range", pipeline, body, otherwise)
#   ("with", pipeline, body, otherwise)  ("break",)   ("continue",)
#
# A pipeline is (variables, commands): `$k, $v := .Labels | ...`; a command is
# a list of operands, the first of them maybe a function's name.

def refused(what: str) -> UsageError:
    return UsageError(f"--format: {what}",
                      hint="Docker's Go template syntax: {{.Field.Sub}}, {{json .}}, {{range .List}}...{{end}}, "
                           "{{if .X}}...{{else}}...{{end}}, {{index .Map \"key\"}}")


def split_actions(template: str) -> list[tuple[str, str]]:
    """[("text", ...), ("action", ...), ...]: the dashes of {{- and -}} trim the text beside them."""
    pieces: list[tuple[str, str]] = []
    at = 0
    while (start := template.find("{{", at)) >= 0:
        end = end_of_action(template, start + 2)
        text, action = template[at:start], template[start + 2:end]
        if action.startswith("-") and action[1:2].isspace():
            text, action = text.rstrip(), action[2:]
        pieces.append(("text", text))
        trim_next = action.endswith("-") and action[-2:-1].isspace()
        pieces.append(("action", action[:-2] if trim_next else action))
        at = end + 2
        if trim_next:
            while at < len(template) and template[at].isspace():
                at += 1
    pieces.append(("text", template[at:]))
    return [piece for piece in pieces if piece != ("text", "")]


def end_of_action(template: str, at: int) -> int:
    """Where the action that starts at `at` ends: the first }} outside a quoted string."""
    quote = None
    while at < len(template):
        char = template[at]
        if quote:
            if char == "\\" and quote == '"':
                at += 1
            elif char == quote:
                quote = None
        elif char in "\"`'":
            quote = char
        elif template.startswith("}}", at):
            return at
        at += 1
    raise refused("unclosed action: a {{ without its }}")


TOKEN = re.compile(r"""
      (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<char>'(?:[^'\\]|\\.)+')
    | (?P<declare>:=) | (?P<assign>=) | (?P<pipe>\|) | (?P<open>\() | (?P<close>\)) | (?P<comma>,)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<variable>\$[A-Za-z0-9_]*)
    | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<space>\s+)
""", re.VERBOSE)


def tokens(action: str) -> list[tuple[str, str, bool]]:
    """(kind, text, spaced) for each word of an action; spaced: white space came before it."""
    found, at, spaced = [], 0, True
    while at < len(action):
        match = TOKEN.match(action, at)
        if not match:
            raise refused(f"cannot read {action[at:]!r} in {{{{{action.strip()}}}}}")
        if match.lastgroup == "space":
            spaced = True
        else:
            found.append((match.lastgroup, match.group(), spaced))
            spaced = False
        at = match.end()
    return found


@lru_cache(maxsize=32)
def parse(template: str) -> tuple:
    """The template's tree; refuses what Go's parser refuses (and the little we do not support)."""
    parser = Parser(split_actions(template))
    body, ended_by = parser.nodes()
    if ended_by:
        raise refused(f"unexpected {{{{{ended_by}}}}}")
    return tuple(body)


class Parser:
    """Turns split_actions' pieces into the tree, one control structure inside another."""

    def __init__(self, pieces: list[tuple[str, str]]):
        self.pieces, self.at, self.loops = pieces, 0, 0

    def nodes(self) -> tuple[list, str]:
        """Nodes up to an {{else ...}} or {{end}} (returned as the second item), or to the end."""
        body: list = []
        while self.at < len(self.pieces):
            kind, text = self.pieces[self.at]
            self.at += 1
            if kind == "text":
                body.append(("text", text))
                continue
            words = text.strip()
            keyword = words.split(None, 1)[0] if words else ""
            if words.startswith("/*"):
                if not words.endswith("*/"):
                    raise refused(f"unclosed comment {{{{{words}}}}}")
            elif keyword in ("end", "else"):
                return body, words
            elif keyword in ("if", "with", "range"):
                body.append(self.control(keyword, words[len(keyword):]))
            elif keyword in ("break", "continue"):
                if not self.loops:
                    raise refused(f"{{{{{keyword}}}}} outside {{{{range}}}}")
                body.append((keyword,))
            elif keyword in ("define", "template", "block"):
                raise refused(f"{{{{{keyword}}}}} is not supported")
            elif not words:
                raise refused("an empty action {{}}")
            else:
                body.append(("print", pipeline(words)))
        return body, ""

    def control(self, keyword: str, text: str) -> tuple:
        """{{if|with|range PIPELINE}} BODY [{{else}} BODY | {{else if ...}} ...] {{end}}."""
        condition = pipeline(text, loop=keyword == "range")
        self.loops += keyword == "range"
        body, ended_by = self.nodes()
        self.loops -= keyword == "range"
        otherwise: list = []
        if ended_by.startswith("else"):
            rest = ended_by[len("else"):].strip()
            if rest.split(None, 1)[:1] == [keyword] and keyword != "range":
                otherwise = [self.control(keyword, rest[len(keyword):])]  # {{else if X}}: an if inside the else
                ended_by = "end"
            elif rest:
                raise refused(f"unexpected {{{{{ended_by}}}}}")
            else:
                otherwise, ended_by = self.nodes()
        if ended_by != "end":
            raise refused(f"{{{{{keyword}}}}} without its {{{{end}}}}")
        return keyword, condition, body, otherwise


def pipeline(text: str, loop: bool = False) -> tuple:
    """(variables, commands) of `$x := cmd | cmd`; only a loop may declare two variables."""
    words = tokens(text)
    variables: list[str] = []
    if any(kind in ("declare", "assign") for kind, _, _ in words):
        while words and words[0][0] == "variable":
            variables.append(words.pop(0)[1])
            if words and words[0][0] == "comma":
                words.pop(0)
        if not variables or not words or words[0][0] not in ("declare", "assign") or len(variables) > 1 + loop:
            raise refused(f"cannot read the variables of {{{{{text.strip()}}}}}")
        words.pop(0)
    if not words:
        raise refused(f"missing value in {{{{{text.strip()}}}}}")
    commands, operands = [], Operands(words, text)
    while True:
        commands.append(operands.command())
        if not operands.more():
            return tuple(variables), tuple(commands)
        operands.take("pipe")


class Operands:
    """Reads a pipeline's commands from its tokens."""

    def __init__(self, words: list, text: str):
        self.words, self.text, self.at = words, text, 0

    def more(self) -> bool:
        return self.at < len(self.words)

    def take(self, kind: str) -> tuple:
        if not self.more() or self.words[self.at][0] != kind:
            raise refused(f"cannot read {{{{{self.text.strip()}}}}}")
        self.at += 1
        return self.words[self.at - 1]

    def command(self) -> tuple:
        found = []
        while self.more() and self.words[self.at][0] not in ("pipe", "close"):
            found.append(self.operand())
        if not found:
            raise refused(f"missing command in {{{{{self.text.strip()}}}}}")
        if found[0][0] != "function" and len(found) > 1:
            raise refused(f"cannot give arguments to a value in {{{{{self.text.strip()}}}}}")
        return tuple(found)

    def operand(self) -> tuple:
        kind, text, _ = self.words[self.at]
        self.at += 1
        if kind == "field":
            return "field", None, names_of(text)
        if kind == "variable":
            return "variable", text, self.fields_after()
        if kind == "open":
            commands = [self.command()]
            while self.more() and self.words[self.at][0] == "pipe":
                self.at += 1
                commands.append(self.command())
            self.take("close")
            return "pipeline", ((), tuple(commands)), self.fields_after()
        if kind == "string":
            return "constant", string_of(text)
        if kind == "char":
            return "constant", ord(string_of('"' + text[1:-1] + '"'))
        if kind == "number":
            return "constant", number_of(text)
        if kind == "word":
            if text in ("true", "false"):
                return "constant", text == "true"
            if text == "nil":
                raise refused("nil is not a command")
            if text not in FUNCTIONS:
                raise refused(f"function {text!r} not defined")
            return "function", text
        raise refused(f"unexpected {text!r} in {{{{{self.text.strip()}}}}}")

    def fields_after(self) -> tuple[str, ...]:
        """`$v.IPAddress`, `(index .X 0).HostPort`: fields that follow with no space between."""
        if self.more() and self.words[self.at][0] == "field" and not self.words[self.at][2]:
            self.at += 1
            return names_of(self.words[self.at - 1][1])
        return ()


def names_of(field: str) -> tuple[str, ...]:
    return tuple(filter(None, field.split(".")))


def string_of(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    try:
        return json.loads(literal)
    except ValueError:
        raise refused(f"cannot read the string {literal}") from None


def number_of(literal: str) -> int | float:
    try:
        return int(literal, 0)
    except ValueError:
        return float(literal)


# --- running the tree --------------------------------------------------------

class Break(Exception):
    """{{break}} ends the innermost range."""


class Continue(Exception):
    """{{continue}} goes on with its next element."""


class Execution:
    """One run of a tree on one object: the variables, and the output so far."""

    def __init__(self, root: Any, out: list[str]):
        self.root, self.out = root, out
        self.scopes: list[dict[str, Any]] = [{"$": root}]  # $ is the object, in every scope

    def run(self, nodes: tuple | list, dot: Any) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                self.out.append(node[1])
            elif kind == "print":
                value = self.pipeline(node[1], dot)
                if not node[1][0]:  # {{$x := ...}} only declares
                    self.out.append(go_text(value))
            elif kind == "if":
                self.run_if(*node[1:], dot)
            elif kind == "with":
                self.run_with(*node[1:], dot)
            elif kind == "range":
                self.run_range(*node[1:], dot)
            elif kind == "break":
                raise Break
            else:
                raise Continue

    def run_if(self, condition: tuple, body: list, otherwise: list, dot: Any) -> None:
        self.nested(body if truth(self.pipeline(condition, dot)) else otherwise, dot)

    def run_with(self, condition: tuple, body: list, otherwise: list, dot: Any) -> None:
        """{{with X}}: the body with X as the dot, if X is not empty."""
        value = self.pipeline(condition, dot, declare=False)
        if truth(value):
            self.nested(body, value, dict(zip(condition[0], [value])))
        else:
            self.nested(otherwise, dot)

    def run_range(self, condition: tuple, body: list, otherwise: list, dot: Any) -> None:
        """{{range X}}: the body once per element of X, as the dot; {{range $i, $e := X}} names both."""
        variables = condition[0]
        items = elements(self.pipeline(condition, dot, declare=False))
        for key, element in items:
            names = dict(zip(variables, (key, element) if len(variables) == 2 else (element,)))
            try:
                self.nested(body, element, names)
            except Continue:
                continue
            except Break:
                break
        if not items:
            self.nested(otherwise, dot)

    def nested(self, nodes: list, dot: Any, variables: dict | None = None) -> None:
        """A control structure's body: its variables end with it."""
        self.scopes.append(variables or {})
        try:
            self.run(nodes, dot)
        finally:
            self.scopes.pop()

    def pipeline(self, pipe: tuple, dot: Any, declare: bool = True) -> Any:
        """Each command's value goes on as the last argument of the next."""
        variables, commands = pipe
        value = self.command(commands[0], dot)
        for command in commands[1:]:
            value = self.command(command, dot, [value])
        if declare and variables:
            self.assign(variables[0], value)
        return value

    def command(self, command: tuple, dot: Any, piped: list | None = None) -> Any:
        first, *rest = command
        if first[0] == "function":
            return call(first[1], [self.operand(operand, dot) for operand in rest] + (piped or []))
        if piped:
            raise refused("only a function can take a piped value")
        return self.operand(first, dot)

    def operand(self, operand: tuple, dot: Any) -> Any:
        kind = operand[0]
        if kind == "constant":
            return operand[1]
        if kind == "function":
            return call(operand[1], [])
        if kind == "field":
            return self.fields(dot, operand[2], on_the_object=dot is self.root)
        if kind == "variable":
            return self.fields(self.variable(operand[1]), operand[2])
        return self.fields(self.pipeline(operand[1], dot), operand[2])  # a (pipeline)

    def variable(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise refused(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        """$x := declares in the innermost scope; $x = changes the one already declared."""
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        self.scopes[-1][name] = value

    def fields(self, value: Any, names: tuple[str, ...], on_the_object: bool = False) -> Any:
        for depth, name in enumerate(names):
            if isinstance(value, dict) and name in value:
                value = value[name]
            elif isinstance(value, dict) and (depth > 0 or not on_the_object):
                return NO_VALUE  # a map without that key, as Go prints it
            elif isinstance(value, dict):  # a field the object does not have: Go refuses the template
                raise UsageError(f"--format: there is no field {name!r}",
                                 hint=f"the fields are: {', '.join(sorted(value))}")
            elif value is None:
                raise UsageError(f"--format: nil pointer evaluating .{'.'.join(names[:depth + 1])}",
                                 hint="that part of the object is empty here: {{with}} or {{if}} can skip it")
            else:
                raise UsageError(f"--format: cannot evaluate field {name} in a {go_type(value)}",
                                 hint="{{json .}} shows the object's fields")
        return value


def elements(value: Any) -> list[tuple[Any, Any]]:
    """What {{range}} walks: a list's (index, element), a map's (key, value) in key order."""
    if isinstance(value, dict):
        return [(key, value[key]) for key in sorted(value)]
    if isinstance(value, list):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    if value is None or value is NO_VALUE:
        return []
    raise refused(f"range cannot walk a {go_type(value)}")


def truth(value: Any) -> bool:
    """Go's notion: false, 0, "", null and an empty list or map are false."""
    return value not in (None, NO_VALUE) and bool(value)


def go_type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string", list: "slice", dict: "map"}.get(
        type(value), "nil")


def go_text(value: Any) -> str:
    """A value as Go's fmt prints it with %v."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_text(key)}:{go_text(value[key])}" for key in sorted(value)) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def go_float(value: float) -> str:
    """%v of a float64: the shortest digits, an exponent only for the very large or small."""
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    mantissa, _, exponent = repr(value).partition("e")
    return f"{mantissa}e{int(exponent):+03d}" if exponent else mantissa


# --- the functions -------------------------------------------------------------
# Go's builtins that scripts use, and the ones Docker adds (join, split, lower,
# upper, title, pad, truncate, json). Each takes the evaluated arguments; a
# piped value comes last, as Go passes it.

def call(name: str, arguments: list) -> Any:
    try:
        return FUNCTIONS[name](*arguments)
    except TypeError:
        raise refused(f"wrong number or kind of arguments for {name}") from None


def as_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, "")  # Docker's maps hold strings: a missing key is ""
        elif isinstance(value, (list, str)) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            raise UsageError(f"--format: index {key!r} is out of range, or not for a {go_type(value)}",
                             hint="index takes a map and its key, or a list and a number from 0")
    return value


def go_print(*values: Any) -> str:
    """Go's fmt.Sprint: a space between two operands when neither is a string."""
    pieces = []
    for i, value in enumerate(values):
        if i and not isinstance(value, str) and not isinstance(values[i - 1], str):
            pieces.append(" ")
        pieces.append(go_text(value))
    return "".join(pieces)


VERB = re.compile(r"%([-+# 0]*\d*(?:\.\d+)?)([vsdqxXfeEgtT%])")


def go_printf(layout: str, *values: Any) -> str:
    """Go's fmt.Sprintf for the verbs scripts use: %v %s %d %q %x %f %t %T and %%."""
    remaining = list(values)

    def verb(match: re.Match) -> str:
        flags, letter = match.groups()
        if letter == "%":
            return "%"
        if not remaining:
            return f"%!{letter}(MISSING)"
        value = remaining.pop(0)
        if letter == "T":
            return go_type(value)
        if letter in "vst":
            return ("%" + flags + "s") % go_text(value)
        if letter == "q":
            return ("%" + flags + "s") % json.dumps(go_text(value), ensure_ascii=False)
        return ("%" + flags + letter) % value

    return VERB.sub(verb, layout)


def title(text: str) -> str:
    """strings.Title: each word's first letter upper case."""
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), text)


def compare(test: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def check_pair(left: Any, right: Any) -> bool:
        if type(left) is not type(right) and not all(isinstance(v, (int, float)) for v in (left, right)):
            raise UsageError(f"--format: cannot compare a {go_type(left)} with a {go_type(right)}",
                             hint="compare a field with a value of its own kind: {{eq .State.Status \"running\"}}")
        return test(left, right)
    return check_pair


def go_and(*values: Any) -> Any:
    for value in values:
        if not truth(value):
            return value
    return values[-1]


def go_or(*values: Any) -> Any:
    for value in values:
        if truth(value):
            return value
    return values[-1]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # Docker's
    "json": as_json,
    "join": lambda items, separator: separator.join(go_text(item) for item in items or []),
    "split": lambda text, separator: text.split(separator),
    "lower": lambda text: text.lower(),
    "upper": lambda text: text.upper(),
    "title": title,
    "pad": lambda text, before, after: " " * before + text + " " * after,
    "truncate": lambda text, length: text[:length],
    # Go's
    "index": index,
    "len": lambda value: len(value),
    "print": go_print,
    "println": lambda *values: " ".join(go_text(value) for value in values) + "\n",
    "printf": go_printf,
    "not": lambda value: not truth(value),
    "and": go_and,
    "or": go_or,
    "eq": lambda left, *rights: any(compare(lambda a, b: a == b)(left, right) for right in rights),
    "ne": compare(lambda a, b: a != b),
    "lt": compare(lambda a, b: a < b),
    "le": compare(lambda a, b: a <= b),
    "gt": compare(lambda a, b: a > b),
    "ge": compare(lambda a, b: a >= b),
}
