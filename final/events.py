# chapter: final
"""`events`: what happened to containers, kept as lines of an append-only log.

Docker's daemon sees every change and tells its listeners. Dockyard has no
daemon: each engine and monitor that changes a container appends one JSON
line to <root>/events.log, with one write(2) on a file opened O_APPEND, so
lines from processes writing at once never mix. `events` reads the log, and
follows it as `tail -f` does until --until or Ctrl-C.

    {"status": "start", "id": "3f2a...", "from": "busybox", "Type": "container", "Action": "start",
     "Actor": {"ID": "3f2a...", "Attributes": {"image": "busybox", "name": "web"}},
     "scope": "local", "time": 1765000000, "timeNano": 1765000000123456789}
"""

import json
import os
import re
import time
from typing import Any, BinaryIO, Iterator

from .errors import UsageError

DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$")
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
FOLLOW_INTERVAL_S = 0.1


def log_path(root: str) -> str:
    return os.path.join(root, "events.log")


# --8<-- [start:record]
def record(root: str, action: str, container_id: str, name: str = "", image: str = "", **attributes: str) -> None:
    """Append one container event to the log; an event that cannot be written is not worth failing for."""
    now = time.time_ns()
    event = {"status": action, "id": container_id, "from": image, "Type": "container", "Action": action,
             "Actor": {"ID": container_id, "Attributes": {"image": image, "name": name, **attributes}},
             "scope": "local", "time": now // 10**9, "timeNano": now}
    try:
        fd = os.open(log_path(root), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (json.dumps(event) + "\n").encode())  # one write: appended whole
        finally:
            os.close(fd)
    except OSError:
        pass
# --8<-- [end:record]


def record_for(spec: Any, action: str, **attributes: str) -> None:
    """record() for the container that a run spec describes."""
    record(spec.root, action, spec.id, spec.name, spec.image or spec.rootfs, **attributes)


def record_container(c: Any, action: str, **attributes: str) -> None:
    """record() for a container.Container."""
    record(c.root, action, c.id, c.name, c.config.get("image") or c.config.get("rootfs", ""), **attributes)


def read(root: str, since_ns: int, until_ns: int | None, follow: bool) -> Iterator[dict]:
    """The events from since to until; with `follow`, wait for more (until `until`, if given)."""
    with open_log(root) as log:
        pending = b""
        while True:
            # A line being written as we read comes without its newline: keep it for the next read.
            *lines, pending = (pending + log.read()).split(b"\n")
            for line in lines:
                event = json.loads(line)
                if until_ns is not None and event["timeNano"] > until_ns:
                    return
                if event["timeNano"] >= since_ns:
                    yield event
            if not follow or (until_ns is not None and time.time_ns() > until_ns):
                return
            time.sleep(FOLLOW_INTERVAL_S)  # no inotify in the standard library: look again soon


def open_log(root: str) -> BinaryIO:
    """The log, made empty if no event has happened yet (so a follower has a file to watch)."""
    os.makedirs(root, exist_ok=True)
    os.close(os.open(log_path(root), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    return open(log_path(root), "rb")


def parse_time(text: str, now_ns: int) -> int:
    """--since/--until as Docker takes them: a unix time, an RFC 3339 date, or a duration ago (10m)."""
    if re.match(r"^\d+(\.\d+)?$", text):
        return int(float(text) * 10**9)
    if DURATION.match(text):
        seconds = sum(float(n) * UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|ms|s|m|h)", text))
        return now_ns - int(seconds * 10**9)
    from datetime import datetime, timezone  # here: a start records events, and datetime is ~1 ms to import
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"cannot read the time {text!r}",
                         hint="give a unix time (1700000000), a date (2025-01-31T12:00:00Z) or a duration (10m)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return int(stamp.timestamp() * 10**9)


def text_line(event: dict) -> str:
    """Docker's default line: time, type, action, id, (attributes)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["timeNano"] // 10**9))
    attributes = ", ".join(f"{k}={v}" for k, v in sorted(event["Actor"]["Attributes"].items()))
    return f"{stamp}.{event['timeNano'] % 10**9:09d}Z {event['Type']} {event['Action']} {event['id']} ({attributes})"


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """--filter KEY=VALUE, repeatable: values of one key are alternatives, keys must all match."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("container", "event", "image", "type"):
            raise UsageError(f"invalid filter {item!r}", hint="use container=NAME, event=ACTION, image=NAME or type=container")
        filters.setdefault(key, []).append(value)
    return filters


def matches(event: dict, filters: dict[str, list[str]]) -> bool:
    """Whether `event` passes every --filter."""
    attributes = event["Actor"]["Attributes"]
    fields = {"event": event["Action"], "image": attributes.get("image", ""), "type": event["Type"]}
    for key, values in filters.items():
        if key == "container":
            found = any(event["id"].startswith(v) or attributes.get("name") == v for v in values)
        else:
            found = fields[key] in values
        if not found:
            return False
    return True
