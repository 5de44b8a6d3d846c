# chapter: final
"""--format: the small part of Go's text/template that Docker users type.

    {{.ID}}  {{.Names}}  {{.State.Status}}   a field, or a field of a field
    {{json .}}  {{json .Labels}}             the value as JSON
    table {{.ID}}\\t{{.Names}}                 a header row first, columns lined up

Anything else between {{ and }} is refused with a hint, rather than guessed.
"""

import json
import re

from .errors import UsageError

ACTION = re.compile(r"{{\s*(.*?)\s*}}")
FIELD = re.compile(r"^(json\s+)?(\.|(\.[A-Za-z_][A-Za-z0-9_]*)+)$")


def check(template: str) -> str:
    """Refuse a template with an action we do not support, before there is anything to print."""
    for found in ACTION.finditer(template):
        if not FIELD.match(found.group(1)):
            raise unsupported(found.group(1))
    return template


def unsupported(text: str) -> UsageError:
    return UsageError(f"unsupported --format action {{{{{text}}}}}",
                      hint="use {{.Field}}, {{.Field.Sub}}, {{json .}} or {{json .Field}}")


def render(template: str, value: dict) -> str:
    """Fill `template`'s actions from `value` (a dict as `{{json .}}` would print it)."""
    return ACTION.sub(lambda m: text_of(action(m.group(1), value)), unescape(template))


def action(text: str, value: dict) -> tuple[object, bool]:
    """The value an action names, and whether it asked for JSON."""
    match = FIELD.match(text)
    if not match:
        raise unsupported(text)
    found: object = value
    for depth, name in enumerate(filter(None, match.group(2).split("."))):
        if isinstance(found, dict) and name in found:
            found = found[name]
        elif depth > 0 and isinstance(found, dict):
            return "<no value>", False  # a map without that key, as Go prints it
        else:  # a field the object does not have: Go refuses the template
            raise UsageError(f"--format: there is no field {name!r}",
                             hint=f"the fields are: {', '.join(sorted(found)) if isinstance(found, dict) else 'none'}")
    return found, bool(match.group(1))


def text_of(result: tuple[object, bool]) -> str:
    """Go prints a string as is, JSON as compact JSON, a bool as true/false."""
    found, as_json = result
    if as_json:
        return json.dumps(found, separators=(",", ":"))
    if isinstance(found, bool):
        return str(found).lower()
    if isinstance(found, (dict, list)):
        return json.dumps(found, separators=(",", ":"))
    return "" if found is None else str(found)


def unescape(template: str) -> str:
    """The shell leaves \\t and \\n as two characters; Docker turns them into tab and newline."""
    return template.replace("\\t", "\t").replace("\\n", "\n")


def render_all(template: str, values: list[dict]) -> list[str]:
    """One line per value; with a `table` prefix, a header row and aligned columns."""
    if not template.startswith("table"):
        return [render(template, value) for value in values]
    body = template[len("table"):].strip() or "{{.ID}}"
    header = ACTION.sub(lambda m: header_of(m.group(1)), unescape(body))
    rows = [line.split("\t") for line in [header, *(render(body, value) for value in values)]]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(max(map(len, rows)))]
    return ["   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def header_of(text: str) -> str:
    """A column's header, as Docker writes it: .ID -> CONTAINER ID, .Names -> NAMES."""
    name = text.split(".")[-1] if text.strip() != "json ." else "JSON"
    return HEADERS.get(name, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper())


HEADERS = {"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT"}


def print_each(template: str, values: list[dict]) -> int:
    """inspect -f: the template once per object, each on a line of its own."""
    for line in render_all(check(template), values):
        print(line)
    return 0
