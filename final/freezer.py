# chapter: final
"""`pause` and `unpause`: the freezer, or stopping a container without a signal.

A signal can be caught, ignored or noticed; SIGSTOP is seen by a parent that
waits. The cgroup freezer stops every process of a container where it
stands, without telling any of them, and thaws them later as if nothing had
happened: the processes stay in their syscalls, their timers stay armed.

    cgroup v2:  <cgroup>/cgroup.freeze       write 1 or 0; cgroup.events says "frozen 1" once done
    cgroup v1:  freezer/<cgroup>/freezer.state   write FROZEN or THAWED; reads FREEZING until done

Freezing is not instant (each process must reach a point where it can
stop), so both wait for the kernel to report the cgroup frozen. On v1 the
container has a directory in the freezer tree from the start (cgroups_v1's
controllers list), so that nothing it forks can slip out before the freeze.
"""

import os
import time

from . import config
from .errors import DockyardError


def control(dirs: dict[str, str]) -> tuple[str, str, str]:
    """The freezer's file among a container's cgroup `dirs`, and what it says when frozen and thawed."""
    if os.path.exists(v2 := os.path.join(dirs.get("", "/nonexistent"), "cgroup.freeze")):
        return v2, "1", "0"
    if os.path.exists(v1 := os.path.join(dirs.get("freezer", "/nonexistent"), "freezer.state")):
        return v1, "FROZEN", "THAWED"
    raise DockyardError("cannot pause: this container has no freezer cgroup",
                        hint="pause needs root and a freezer (cgroup v2, or the v1 freezer controller mounted)")


def is_frozen(dirs: dict[str, str]) -> bool:
    """Whether the container's cgroup is frozen (or freezing): `ps` calls it Paused."""
    try:
        path, frozen, _ = control(dirs)
        return read(path) in (frozen, "FREEZING")
    except (DockyardError, OSError):
        return False


def freeze(dirs: dict[str, str]) -> None:
    """Stop every process of the container; return once the kernel says all are stopped."""
    set_state(dirs, frozen=True)


def thaw(dirs: dict[str, str]) -> None:
    """Let the container's processes run again."""
    set_state(dirs, frozen=False)


def thaw_to_kill(dirs: dict[str, str]) -> None:
    """Thaw a container about to be killed, if paused: a frozen v1 process cannot even die."""
    try:
        if is_frozen(dirs):
            thaw(dirs)
    except FileNotFoundError:
        pass  # its processes died meanwhile and its engine removed the cgroup: nothing is frozen


def set_state(dirs: dict[str, str], frozen: bool) -> None:
    """Write the freeze or thaw and wait for the kernel to finish it."""
    path, frozen_word, thawed_word = control(dirs)
    want = frozen_word if frozen else thawed_word
    write(path, want)
    deadline = time.monotonic() + config.FREEZE_TIMEOUT_S
    while not reached(path, want):
        if time.monotonic() > deadline:
            write(path, thawed_word)  # half frozen helps no one
            raise DockyardError(f"the container's processes did not {'stop' if frozen else 'wake'} "
                                f"within {config.FREEZE_TIMEOUT_S:.0f} s",
                                hint="a process may be stuck in the kernel (D state in ps); try again")
        time.sleep(0.001)  # the kernel is still stopping (or waking) a process


def reached(path: str, want: str) -> bool:
    """Whether the freeze or thaw written to `path` is complete."""
    if path.endswith("cgroup.freeze"):  # v2: cgroup.events has a line "frozen 0|1"
        events = read(os.path.join(os.path.dirname(path), "cgroup.events")).splitlines()
        return f"frozen {want}" in events
    return read(path) == want


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
