# chapter: 03
"""`stats`: what running containers use, read from their cgroups, as `docker stats` shows it.

CPU % needs two readings of the cgroup's CPU counter: the CPU time used in
between, divided by the time that passed. 100% is one core busy all along.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from . import config

if TYPE_CHECKING:  # the cgroup machinery is imported only when stats runs
    from .cgroups import Usage


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("containers", nargs="*", metavar="CONTAINER",
                   help="container ids or unique prefixes (default: every running container)")


def cmd_stats(args: argparse.Namespace) -> int:
    from . import cgroups
    # ids = [cgroups.find_container(name) for name in args.containers]  # ch 03-07
    from .running_commands import running_ids, stats_id  # ch final
    ids = [stats_id(args.root, name) for name in args.containers]  # ch final
    while True:
        # table = format_table(sample(ids or cgroups.running_ids()))  # ch 03-07
        table = format_table(sample(ids or running_ids(args.root)))  # ch final
        if args.no_stream:
            print(table)
            return 0
        print("\033[2J\033[H" + table, flush=True)  # clear the screen, as docker stats does
        if ids and not set(ids) & set(cgroups.running_ids()):
            return 0


def sample(ids: list[str]) -> list[list[str]]:
    """Read every container's counters twice, STATS_INTERVAL_S apart; one row each."""
    from . import cgroups
    before = {i: cgroups.read_usage(i) for i in ids}
    start = time.monotonic()
    time.sleep(config.STATS_INTERVAL_S)
    elapsed = time.monotonic() - start
    running = set(cgroups.running_ids())
    return [row(i, before[i], cgroups.read_usage(i), elapsed) for i in ids if i in running]


def row(container_id: str, before: Usage, after: Usage, elapsed: float) -> list[str]:
    """One container's line: id, CPU %, memory use / limit, memory %, pids."""
    from .cgroups import human_size
    from .info import total_memory
    cpu = (after.cpu_ns - before.cpu_ns) / (elapsed * 1e9) * 100
    limit = after.memory_limit or total_memory()  # no limit: the machine's memory, as Docker shows
    return [container_id[:12], f"{cpu:.2f}%", f"{human_size(after.memory)} / {human_size(limit)}",
            f"{after.memory / limit * 100:.2f}%", str(after.pids)]


def format_table(rows: list[list[str]]) -> str:
    """Docker's columns, padded to line up."""
    header = ["CONTAINER ID", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows])


COMMANDS = {
    "stats": ("Show the memory, CPU and processes that running containers use", add_arguments, cmd_stats),
}
