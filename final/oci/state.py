# chapter: final
"""What the runtime remembers of each container between two commands.

runc's commands are separate processes: `create` exits while the container
waits, and `start`, `state`, `kill` and `delete` come later, maybe from
another shim. Each container's directory under --root holds:

    state.json   id, bundle, PID and the PID's start time, creation time
    exec.fifo    only between create and start: PID 1 is blocked writing it

A PID alone cannot say whether our process lives: once it exits, the kernel
may give the number to another. The start time (field 22 of /proc/PID/stat)
can: a recycled PID has a later one. So `kill` signals through a pidfd
opened only after the start time matched.
"""

import json
import os
import re
import shutil
import signal
import time

from ..errors import DockyardError

OCI_VERSION = "1.2.0"
ID = re.compile(r"^[\w+\-.]+$")


class State:
    """One container as the runtime remembers it (a plain class: dataclasses costs every command 10 ms)."""

    def __init__(self, id: str, bundle: str, pid: int = 0, pid_start: int = 0, created: str = "",
                 rootfs: str = "", cgroup: str = "", annotations: dict | None = None,
                 poststop: list | None = None) -> None:
        self.id, self.bundle, self.rootfs, self.created = id, bundle, rootfs, created
        self.pid = pid                  # PID 1, as the host sees it
        self.pid_start = pid_start      # its start time, in clock ticks since boot
        self.cgroup = cgroup            # the cgroupsPath it was created with
        self.annotations = annotations or {}
        self.poststop = poststop or []  # hooks to run at delete


def container_dir(root: str, container_id: str) -> str:
    if not ID.match(container_id) or container_id in (".", ".."):
        raise DockyardError(f"invalid container id {container_id!r}",
                            hint="use letters, digits, '_', '+', '-' and '.'")
    return os.path.join(root, container_id)


def make(root: str, container_id: str) -> str:
    """Claim the id: its directory is made exclusively, so two creates cannot share it."""
    directory = container_dir(root, container_id)
    os.makedirs(root, mode=0o700, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        raise DockyardError(f"container with id {container_id} exists",
                            hint=f"pick another id, or delete it first: delete --force {container_id}") from None
    return directory


def save(root: str, state: State) -> None:
    directory = container_dir(root, state.id)
    temporary = os.path.join(directory, "state.json.tmp")
    with open(temporary, "w") as f:
        json.dump(vars(state), f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(temporary, os.path.join(directory, "state.json"))


def load(root: str, container_id: str) -> State:
    path = os.path.join(container_dir(root, container_id), "state.json")
    try:
        with open(path) as f:
            return State(**json.load(f))
    except FileNotFoundError:
        raise DockyardError(f"container {container_id} does not exist",
                            hint="list the containers with: python3 -m final.oci list") from None


def remove(root: str, container_id: str) -> None:
    shutil.rmtree(container_dir(root, container_id), ignore_errors=True)


def all_ids(root: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(root) if ID.match(name))
    except FileNotFoundError:
        return []


# --- is it alive? ---------------------------------------------------------------

def start_time(pid: int) -> int:
    """The process's start time in clock ticks, or 0 if there is no such process (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and ")"
    return 0 if fields[0] in ("Z", "X") else int(fields[19])


def alive(state: State) -> bool:
    return state.pid > 0 and start_time(state.pid) == state.pid_start


def status(root: str, state: State) -> str:
    """creating, created, running, paused or stopped, as the spec names them."""
    if not state.pid:
        return "creating"
    if not alive(state):
        return "stopped"
    if os.path.exists(os.path.join(container_dir(root, state.id), "exec.fifo")):
        return "created"
    return "paused" if frozen(state) else "running"


def frozen(state: State) -> bool:
    """Whether PID 1's cgroup is frozen, found from /proc/PID/cgroup (no cgroupsPath needed)."""
    from .. import freezer
    try:
        with open(f"/proc/{state.pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    dirs = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            dirs["freezer"] = f"/sys/fs/cgroup/freezer{path}"  # v1
        elif controllers == "":
            dirs[""] = f"/sys/fs/cgroup{path}"  # v2 (on a hybrid host, no such dir: the v1 freezer answers)
    return freezer.is_frozen(dirs)


def spec_state(root: str, state: State) -> dict:
    """The state JSON the runtime spec defines, plus runc's extra fields."""
    now_status = status(root, state)
    return {"ociVersion": OCI_VERSION, "id": state.id, "status": now_status,
            "pid": state.pid if now_status != "stopped" else 0, "bundle": state.bundle,
            "rootfs": state.rootfs, "created": state.created, "owner": "",
            "annotations": state.annotations}


def signal_process(state: State, signum: int) -> None:
    """Signal the container's PID 1 through a pidfd, so a recycled PID is never hit."""
    try:
        pidfd = os.pidfd_open(state.pid)
    except ProcessLookupError:
        raise DockyardError(f"container {state.id} is not running", hint="its process has exited") from None
    try:
        if start_time(state.pid) != state.pid_start:  # the PID was reused before we opened it
            raise DockyardError(f"container {state.id} is not running", hint="its process has exited")
        signal.pidfd_send_signal(pidfd, signum)
    finally:
        os.close(pidfd)


def now_rfc3339() -> str:
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e9):09d}Z"
