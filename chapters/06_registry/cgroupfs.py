"""The cgroup filesystem's shapes, shared by both layouts' modules.

v2 (cgroups.py) and v1 (cgroups_v1.py) answer the same questions with
different files: where a controller's tree is mounted, which file carries a
limit, what a container has used. The answers' shapes, and the formats of
the files they are read from, live here, so that each layout's module makes
them without importing the other.
"""

from dataclasses import dataclass

from . import config


@dataclass
class Layout:
    """Which cgroup layout this machine has, and where each controller's tree is mounted."""
    version: int                 # 2, 1 (v1 or hybrid), or 0: no cgroup filesystem at all
    trees: dict[str, str]        # controller -> mount point of its tree
    unified: str | None = None   # hybrid: the cgroup2 tree beside the v1 ones

    def describe(self) -> str:
        """One phrase for messages: which layout, and where."""
        if self.version == 2:
            return f"cgroup v2 at {config.CGROUP_MOUNT}"
        if self.version == 1 and self.unified:
            return f"cgroup v1, hybrid: v1 controllers at {config.CGROUP_MOUNT}/<controller>, cgroup2 at {self.unified}"
        return "cgroup v1" if self.version == 1 else f"no cgroup filesystem at {config.CGROUP_MOUNT}"


@dataclass
class Setting:
    """One value to write into one file of a controller."""
    controller: str
    file: str
    value: str
    flag: str                # the flag it comes from, for messages
    optional: bool = False   # a default of ours: skip it where the kernel lacks the file


@dataclass
class Usage:
    """What a container uses now, as `stats` shows it."""
    memory: int                 # bytes, less the page cache the kernel could drop at once
    memory_limit: int | None    # None: no limit
    cpu_ns: int                 # CPU time used since the cgroup was made
    pids: int


# --- reading cgroup files ---------------------------------------------------------------

def read_text(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return default


def read_int(path: str) -> int:
    return int(read_text(path, "0") or 0)


def read_keyed(path: str) -> dict[str, int]:
    """A flat-keyed cgroup file ('key value' lines: memory.stat, cpu.stat, memory.events)."""
    pairs = (line.split() for line in read_text(path).splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}
