# chapter: 03
"""`info`: what this engine finds on this machine, as `docker info` shows it.

Each chapter that brings a mechanism with choices adds a section of rows:
chapter 3 the cgroup driver, version and controllers; later chapters the
storage driver and more. A section is a function that returns its rows.
"""

import argparse
import os
from collections.abc import Callable


def engine_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The engine and the machine: where state lives, kernel, CPUs, memory."""
    from .cgroups import human_size
    return [("Dockyard Root Dir", args.root),
            ("Rootless", "true" if os.geteuid() != 0 else "false"),
            ("Kernel Version", os.uname().release),
            ("Operating System", os_name()),
            ("Architecture", os.uname().machine),
            ("CPUs", str(os.cpu_count())),
            ("Total Memory", human_size(total_memory()))]


def cgroup_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Chapter 3: the cgroup driver, version and controllers."""
    from . import cgroups
    return cgroups.info_rows()
# >>> chapter 04


def storage_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Chapter 4: containers, the storage driver, volumes."""
    from . import container_commands
    return container_commands.info_rows(args)
# <<< chapter 04
# >>> chapter 05


def image_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Chapter 5: how many images the store holds (an image with two names counts once, as Docker's)."""
    from .store import Store
    return [("Images", str(len({entry["digest"] for entry in Store(args.root).index()})))]
# <<< chapter 05


SECTIONS: list[Callable[[argparse.Namespace], list[tuple[str, str]]]] = [
    engine_rows,
    cgroup_rows,
    storage_rows,  # ch 04
    image_rows,    # ch 05
]


def os_name() -> str:
    """PRETTY_NAME from /etc/os-release, as Docker shows it."""
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        return "unknown"
    return fields.get("PRETTY_NAME", "unknown").strip('"')


def total_memory() -> int:
    """MemTotal from /proc/meminfo, in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    for section in SECTIONS:
        for key, value in section(args):
            print(f"{key}: {value}")
    return 0


COMMANDS = {
    "info": ("Show what this engine finds on this machine", lambda parser: None, cmd_info),
}
