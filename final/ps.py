# chapter: final
"""`ps` with Docker's --filter and --format: chapter 4's list, as data.

Each container becomes the object that `ps --format '{{json .}}'` prints;
--filter keeps some of them, and the template (or chapter 4's table) prints
them. (In final/ this `ps` takes the place of chapter 4's in the command table.)

    ps --filter status=exited --filter name=web --format 'table {{.ID}}\\t{{.Status}}'
    container ls | container prune [-f]      the same list; remove every stopped container

Also here: inspect's State block, which reads the same state.
"""

import argparse
import os
import re
import sys
from dataclasses import dataclass, replace
from datetime import datetime

from .container_commands import ago, command_text, human_duration, print_table, status_text
from .errors import UsageError

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
SHOWN_WITHOUT_ALL = ("running", "paused", "restarting")
FILTERS = ("status", "name", "label", "id", "exited")
COLUMNS = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def cmd_ps(args: argparse.Namespace) -> int:
    from . import containers, template
    from .bridge import reconcile
    containers.sweep(args.root)
    reconcile(args.root)  # free what a SIGKILLed engine's network left (leases, links, rules)
    filters = parse_filters(args.filter)
    if args.format:
        template.check(args.format)
    last = 1 if args.latest else args.last  # -n N: the N newest, whatever their state
    shown = [entry.fields for entry in listing(args.root, args.no_trunc) if wanted(entry, filters, args.all or last)]
    shown = shown[:last] if last is not None else shown
    if args.quiet:
        print("".join(fields["ID"] + "\n" for fields in shown), end="")
    elif args.format:
        print("".join(line + "\n" for line in template.render_all(args.format, shown)), end="")
    else:
        header, *rows = [line.split("\t") for line in template.render_all(COLUMNS, shown)]
        print_table(tuple(header), [tuple(row) for row in rows])
    return 0


@dataclass
class Entry:
    """One container as ps sees it: the fields it prints, and what filters look at besides."""
    fields: dict
    labels: dict[str, str]
    exit_code: int | None
    created: str = ""                 # RFC 3339 to the microsecond: the order of ps


def listing(root: str, no_trunc: bool = False) -> list[Entry]:
    """Every container of `root`, newest first, with its status as the machine has it."""
    from . import container
    found = []
    for c in container.all_containers(root):
        state = replace(c.state, status=c.status)  # dead if its holder died, paused if frozen
        fields = fields_of(c.id, c.config, state, no_trunc)
        fields["Ports"] = ports_text(root, c.id, c.config, state.status)
        found.append(Entry(fields, labels_of(c.config), state.exit_code, state.created))
    return sorted(found, key=lambda entry: entry.created, reverse=True)


def fields_of(container_id: str, config: dict, state, no_trunc: bool = False) -> dict:
    """What Docker's `ps --format '{{json .}}'` prints for one container (--no-trunc: ids and commands whole)."""
    labels = labels_of(config)
    status = f"Up {human_duration(ago(state.started))} (Paused)" if state.status == "paused" else status_text(state)
    return {"Command": command_text(config["argv"], 1 << 30 if no_trunc else 20), "CreatedAt": docker_time(state.created),
            "ID": container_id if no_trunc else container_id[:12], "Image": config.get("image") or config["rootfs"],
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())), "LocalVolumes": str(len(config.get("volumes") or [])),
            "Mounts": ",".join(v.split(":")[0] for v in config.get("volumes") or []), "Names": config["name"],
            "Networks": config.get("network", ""), "Ports": "", "RunningFor": f"{human_duration(ago(state.created))} ago",
            "Size": "0B", "State": state.status, "Status": status}


def ports_text(root: str, container_id: str, config: dict, status: str) -> str:
    """ps's PORTS: what a running container publishes (127.0.0.1:8080->80/tcp), then what its image
    exposes and nothing publishes (443/tcp), as Docker lists them."""
    from .bridge import published
    shown = {}
    for port in published(root, container_id) if status in ("running", "paused") else []:
        target = f"{port.container_port}/{port.proto}"
        for ip in [port.host_ip] if port.host_ip else ["0.0.0.0", "::"]:
            shown[f"{f'[{ip}]' if ':' in ip else ip}:{port.host_port}->{target}"] = target
    exposed = ((config.get("container_config") or {}).get("ExposedPorts") or {})
    published_targets = set(shown.values())
    return ", ".join([*shown, *(p for p in sorted(exposed) if p not in published_targets)])


def docker_time(stamp: str) -> str:
    """An RFC 3339 time as ps's CreatedAt shows it: 2025-01-31 12:00:00 +0000 UTC."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def labels_of(config: dict) -> dict[str, str]:
    """The container's labels: its image's, and run's --label, as Docker keeps them in Config.Labels."""
    merged = dict((config.get("container_config") or {}).get("Labels") or {}) | dict(config.get("labels") or {})
    return dict(sorted(merged.items()))  # in key order, as Go prints a map


def parse_labels(texts: list[str], files: list[str]) -> dict[str, str]:
    """run --label KEY=VALUE (or KEY, for an empty value) and --label-file: the files first, as Docker reads them."""
    from .run_options import lines_of
    lines = [line for path in files for line in lines_of(path, "label file")]
    labels = {}
    for text in lines + texts:
        key, _, value = text.partition("=")
        if not key or key != key.strip():
            raise UsageError(f"invalid label {text!r}", hint="write --label KEY=VALUE, e.g. --label tier=web")
        labels[key] = value
    return labels


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """--filter KEY=VALUE, repeatable: values of one key are alternatives, keys must all match."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTERS:
            raise UsageError(f"invalid filter {item!r}", hint=f"filter on {', '.join(FILTERS)}: e.g. status=exited")
        if key == "status" and value not in STATUSES:
            raise UsageError(f"invalid filter status={value!r}", hint=f"a status is one of: {', '.join(STATUSES)}")
        filters.setdefault(key, []).append(value)
    return filters


def wanted(entry: Entry, filters: dict[str, list[str]], all_: bool) -> bool:
    """Whether ps shows a container: running ones, or all with -a or a status filter; then the filters."""
    if not all_ and "status" not in filters and entry.fields["State"] not in SHOWN_WITHOUT_ALL:
        return False
    return all(any(matches(key, value, entry) for value in values) for key, values in filters.items())


def matches(key: str, value: str, entry: Entry) -> bool:
    """One --filter against one container (name is a regular expression, as in Docker)."""
    fields = entry.fields
    if key == "status":
        return fields["State"] == value
    if key == "name":
        return re.search(value, fields["Names"]) is not None
    if key == "id":
        return fields["ID"].startswith(value[:12])
    if key == "exited":
        return fields["State"] == "exited" and str(entry.exit_code) == value
    name, sep, wanted_value = value.partition("=")
    return name in entry.labels and (not sep or entry.labels[name] == wanted_value)


NEVER = "0001-01-01T00:00:00Z"  # Go's zero time: what Docker shows for "not yet"


def state_block(state) -> dict:
    """inspect's State, as Docker shows it: a paused container is Running and Paused.

    A created container's Pid is its PID 1 waiting for start, as runc's `state` shows it (Docker's
    create makes no process, so it shows 0): the namespaces are there to enter before start."""
    live = state.status in ("running", "paused", "restarting")
    return {"Status": state.status, "Running": live, "Paused": state.status == "paused",
            "Restarting": state.status == "restarting", "OOMKilled": bool(state.oom_killed),
            "Dead": state.status == "dead", "Pid": state.pid if live or state.status == "created" else 0,
            "ExitCode": state.exit_code or 0,
            "Error": "", "StartedAt": state.started or NEVER, "FinishedAt": state.finished or NEVER}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="show only the ids")
    p.add_argument("-n", "--last", type=int, metavar="N", help="show the N newest containers, whatever their state")
    p.add_argument("-l", "--latest", action="store_true", help="show the newest container, whatever its state")
    p.add_argument("--no-trunc", action="store_true", help="show ids and commands whole")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="K=V",
                   help="status=exited, name=REGEX, label=KEY[=VALUE], id=PREFIX, exited=CODE")
    p.add_argument("--format", metavar="TEMPLATE",
                   help="a Go template: '{{.ID}} {{.Names}}', '{{json .}}', 'table {{.ID}}\\t{{.Status}}'")


# --- container prune ------------------------------------------------------------------

STOPPED = ("created", "exited", "dead")


def cmd_container(args: argparse.Namespace) -> int:
    if args.action == "ls":
        return cmd_ps(args)
    if not args.force and not confirmed("WARNING! This will remove all stopped containers."):
        return 0
    removed, reclaimed = prune(args.root, parse_prune_filters(args.filter))
    from .bridge import reconcile
    reconcile(args.root)  # as rm: the removed containers' network leftovers go too
    from .cgroups import human_size
    if removed:
        print("Deleted Containers:\n" + "".join(i + "\n" for i in removed))
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def confirmed(warning: str) -> bool:
    """Ask as Docker asks before a prune; only 'y' goes on."""
    print(f"{warning}\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def prune(root: str, filters: dict[str, list[str]]) -> tuple[list[str], int]:
    """Remove every stopped container that the filters keep; their ids, and the bytes freed."""
    from . import containers
    removed, reclaimed = [], 0
    for container_id in containers.all_ids(root):
        held = containers.stop_for_removal(root, container_id, force=False)
        if held is None:
            continue  # it runs: not ours to remove
        try:
            config = containers.read_json(f"{containers.directory(root, container_id)}/config.json")
            state = containers.read_state(root, container_id)
            if state.status in STOPPED and prunable(config, state, filters):
                reclaimed += disk_usage(containers.directory(root, container_id))
                containers.remove(root, container_id)
                removed.append(container_id)
        except FileNotFoundError:
            pass  # removed by someone else meanwhile
        finally:
            held.lock.release()
    return removed, reclaimed


def parse_prune_filters(items: list[str]) -> dict[str, list[str]]:
    """prune's --filter: until=TIME (created before), label=KEY[=VALUE]."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("until", "label"):
            raise UsageError(f"invalid filter {item!r}", hint="container prune filters on until=TIME or label=KEY[=VALUE]")
        filters.setdefault(key, []).append(value)
    return filters


def prunable(config: dict, state, filters: dict[str, list[str]]) -> bool:
    """Whether a stopped container passes prune's filters."""
    import time
    from .events import parse_time
    created = datetime.fromisoformat(state.created.replace("Z", "+00:00")).timestamp() * 10**9
    if any(created >= parse_time(until, time.time_ns()) for until in filters.get("until", [])):
        return False
    entry = Entry({}, labels_of(config), state.exit_code)
    return all(matches("label", value, entry) for value in filters.get("label", []))


def disk_usage(path: str) -> int:
    """Bytes that the files under `path` take on disk."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass
    return total


def add_container_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("ls", "prune"))
    p.add_argument("-f", "--force", action="store_true", help="prune: do not ask")
    p.add_argument("--filter", action="append", default=[], metavar="K=V",
                   help="ls: as ps; prune: until=TIME, label=KEY[=VALUE]")
    p.add_argument("-a", "--all", action="store_true", help="ls: show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="ls: show only the ids")
    p.add_argument("--format", metavar="TEMPLATE", help="ls: a Go template, as ps takes")
    p.set_defaults(last=None, latest=False, no_trunc=False)


COMMANDS = {
    "ps": ("List containers", add_arguments, cmd_ps),
    "container": ("Manage containers: ls, prune, and each container command (container rm X is rm X)",
                  add_container_arguments, cmd_container),
}
