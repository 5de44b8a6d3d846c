# chapter: final
"""The container's cgroup, at the path config.json names.

Chapter 3's cgroups live at <tree>/<parent>/<id>, with `dockyard` as the
parent. containerd names the whole path instead (linux.cgroupsPath, such as
"/default/web"), so the parent becomes the path's directory and the leaf its
last part; chapter 3's code then does the rest unchanged.

Who may remove a cgroup is chapter 3's other rule: the engine that made it
holds a lock while it lives, and the next engine sweeps the cgroups whose
lock nobody holds. An OCI `create` exits while its container goes on, so it
hands the cgroup over to the runtime's state directory instead: it drops the
lock *and* its lock file, and no sweep will ever take the cgroup for a dead
engine's. `delete` removes it.
"""

import os

from .. import cgroups, config, freezer, liveness
from ..errors import DockyardError

def use(cgroups_path: str, container_id: str) -> str:
    """Point chapter 3's code at `cgroups_path`; return the leaf, which names the cgroup."""
    path = cgroups_path.strip("/") or f"{config.CGROUP_PARENT}/{container_id}"
    if ".." in path.split("/") or ":" in path:
        raise DockyardError(f"config.json: linux.cgroupsPath {cgroups_path!r} is not a cgroupfs path",
                            hint="give a path such as /default/ID (systemd's slice:prefix:name form is not supported)")
    parent, leaf = os.path.split(path)
    config.CGROUP_PARENT = parent or config.CGROUP_PARENT
    return leaf


def check_free(leaf: str) -> None:
    """Refuse a cgroup path that another container still has."""
    layout = cgroups.detect()
    if os.geteuid() == 0 and layout.version:
        taken = [d for d in set(cgroups.cgroup_dirs(layout, leaf).values()) if os.path.isdir(d)]
        if taken:
            raise DockyardError(f"the cgroup {taken[0]} exists already: another container has linux.cgroupsPath",
                                hint="give each container a cgroupsPath of its own, or delete the old one")


def hand_over(leaf: str) -> None:
    """Stop holding the cgroup's lock, without leaving it for a sweep to remove. Call after create."""
    if liveness.holds(leaf):
        with liveness.engine_lock():
            liveness.release(leaf)


def remove(leaf: str) -> None:
    """Kill what is left in the cgroup and remove it, and its parent once empty."""
    layout = cgroups.detect()
    if os.geteuid() != 0 or layout.version == 0:
        return
    cgroups.destroy(layout, leaf)
    with liveness.engine_lock():
        cgroups.remove_empty_parents(layout)


def dirs(leaf: str) -> dict[str, str]:
    return cgroups.cgroup_dirs(cgroups.detect(), leaf)


def pids(leaf: str) -> list[int]:
    """Every process in the container's cgroup."""
    found: set[int] = set()
    for directory in set(dirs(leaf).values()):
        found |= {int(p) for p in cgroups.read_words(os.path.join(directory, "cgroup.procs"))}
    return sorted(found)


def freeze(leaf: str, frozen: bool) -> None:
    (freezer.freeze if frozen else freezer.thaw)(dirs(leaf))
