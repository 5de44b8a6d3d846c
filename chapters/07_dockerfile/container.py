"""One container: its record, its status, and who may change them.

    <root>/containers/<id>/config.json     what run or create was asked for (a Request)
    <root>/containers/<id>/state.json      status, pid, exit code, times
    <run dir>/lock                         held by whoever runs the container now

The run dir is /run/dockyard/containers/<hash of --root>/<id>: runtime state
lives apart from records, on a filesystem that a reboot empties (as runc's
/run/runc), so after a reboot no container is taken for running.

Only the holder of the lock writes state.json, and a status moves only along
these arrows; `dead` and `paused` are never written but read off the machine:

    created ──▶ running ──▶ exited ──▶ running ...
                   │  ▲         │
                   ▼  │         ▼
                restarting   (removed)
    running, and nobody holds the lock  = dead     (its engine died with it)
    running, and its cgroup is frozen   = paused   (final: pause)
"""

import os
import re
import time
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from . import config, files, libc
from .errors import DockyardError

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # a container's name (a network's too)

# status -> the statuses it may move to (a dead container may be started again)
MOVES = {"created": {"running", "exited"}, "running": {"exited", "restarting"},
         "restarting": {"running", "exited"}, "exited": {"running", "restarting"},
         "dead": {"running", "exited"}, "paused": {"exited"}}


@dataclass
class State:
    """What state.json holds: where the container is in its life."""
    status: str = "created"           # created, running, restarting, exited (dead, paused: see above)
    created: str = ""
    pid: int = 0
    exit_code: int | None = None
    started: str = ""
    finished: str = ""
    oom_killed: bool = False


def now(seconds: float | None = None) -> str:
    """A time (by default now) as Docker writes it: RFC 3339, UTC, to the microsecond."""
    seconds = time.time() if seconds is None else seconds  # not datetime: ~1 ms of a start to import
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 10**6):06d}Z"


def run_dir(root: str, container_id: str) -> str:
    """Where the container's lock lives: under /run (a rootless user's own runtime dir), one tree per --root."""
    # A checksum is enough: the key only keeps two roots' trees apart (ids are unique anyway),
    # and zlib, unlike hashlib (OpenSSL), is loaded already.
    key = f"{zlib.crc32(os.path.abspath(root).encode()):08x}"
    base = config.RUN_DIR if os.geteuid() == 0 else os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/dockyard-{os.geteuid()}", "dockyard")
    return os.path.join(base, "containers", key, container_id)


class Container:
    """A container's record on disk, read once; its status is checked against the machine."""

    def __init__(self, root: str, container_id: str) -> None:
        self.root, self.id = root, container_id
        self.directory = os.path.join(root, "containers", container_id)
        self.config: dict[str, Any] = files.read_json(self.path("config.json"))
        self.state = self.read_state()
        self.lock = files.Lock(os.path.join(run_dir(root, container_id), "lock"))

    @property
    def name(self) -> str:
        return self.config.get("name", "") or self.id[:12]

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def read_state(self) -> State:
        """state.json as it is now; one that a crash of the machine emptied reads as dead (see move)."""
        try:
            return State(**files.read_json(self.path("state.json")))
        except ValueError:  # not JSON: a --rm container's state, which no fsync kept
            return State(status="dead", created=now(os.stat(self.path("config.json")).st_mtime))

    @property
    def status(self) -> str:
        """The status as the machine has it: a running one whose holder died is dead."""
        status = self.state.status
        if status in ("running", "restarting") and self.lock.fd < 0 and not files.is_locked(self.lock.path):
            return "dead"
        return status

    def is_running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    def is_running_now(self) -> bool:
        """Whether someone runs it at this moment: its lock is held."""
        return files.is_locked(self.lock.path)

    # --8<-- [start:signal]
    def signal(self, sig: int) -> bool:
        """Send `sig` to PID 1 through a pidfd; False if the container does not run."""
        try:
            pid = self.read_state().pid  # now, not when we were loaded
        except FileNotFoundError:
            return False
        try:
            pidfd = libc.pidfd_open(pid) if pid else -1
        except ProcessLookupError:
            return False
        if pidfd < 0:
            return False
        try:
            # The pidfd names whoever has `pid` now. That is PID 1 only while the record still
            # says so and its runner holds the lock: the runner records the exit before it
            # reaps PID 1, and PID 1 dies with its runner, so the number was not free meanwhile.
            if not self.still_runs_as(pid):
                return False
            libc.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return False
        finally:
            os.close(pidfd)
        return True
    # --8<-- [end:signal]

    def still_runs_as(self, pid: int) -> bool:
        """Whether the record, read again, still names `pid` as PID 1 (final: or one waiting for start), its lock held."""
        try:
            state = self.read_state()
        except FileNotFoundError:
            return False
        return state.status in ("running", "created") and state.pid == pid and self.is_running_now()

    def request_stop(self) -> None:
        """Leave word that the user stopped it: no restart policy brings it back (final: monitor.py)."""
        os.makedirs(os.path.dirname(self.lock.path), mode=0o700, exist_ok=True)
        open(self.stop_path(), "w").close()

    def stop_path(self) -> str:
        return os.path.join(os.path.dirname(self.lock.path), "stopped")

    def take_lock(self, wait: bool = False) -> bool:
        """Become the one who runs (and writes) this container; False if someone else does."""
        os.makedirs(os.path.dirname(self.lock.path), mode=0o700, exist_ok=True)
        return self.lock.take(wait)

    def move(self, status: str, **changes: Any) -> None:
        """Record a new status (and what goes with it); only the lock holder may."""
        if self.lock.fd < 0:
            raise AssertionError("only the holder of a container's lock writes its state")
        if status not in MOVES.get(self.status, set()) and status != self.state.status:
            raise DockyardError(f"container {self.name} cannot go from {self.status} to {status}",
                                hint="see its status with ps -a")
        self.state = State(**{**asdict(self.state), **changes, "status": status})
        # A --rm container's record goes when it exits, and after a crash of the machine it means
        # nothing: no fsync (files.py), so its start and exit do not wait for the disk.
        files.write_json(self.path("state.json"), asdict(self.state), durable=not self.config.get("remove"))


def find(root: str, text: str) -> str:
    """The id of the container named `text`, or whose id is or begins with `text`."""
    link = os.path.join(root, "names", text)
    if text and os.path.islink(link) and os.path.isdir(os.path.join(root, "containers", os.readlink(link))):
        return os.readlink(link)
    matches = [i for i in all_ids(root) if i.startswith(text)] if text else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DockyardError(f"more than one container matches {text!r}: "
                            + ", ".join(m[:12] for m in matches[:4]),
                            hint="give its name or more of its id (see ps -a)")
    raise DockyardError(f"no such container: {text!r}", hint="see ps -a for the containers there are")


def load(root: str, text: str) -> Container:
    """The container named `text` (a name, an id or a unique prefix of one)."""
    container_id = find(root, text)
    try:
        return Container(root, container_id)
    except FileNotFoundError:
        raise DockyardError(f"no such container: {text!r}", hint="it was removed meanwhile") from None


def all_ids(root: str) -> list[str]:
    """Every container under `root` (hidden ones, half made or half removed, excluded)."""
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "containers")) if not n.startswith("."))
    except FileNotFoundError:
        return []


def all_containers(root: str) -> list[Container]:
    """Every container under `root` that can be read now."""
    found = []
    for container_id in all_ids(root):
        try:
            found.append(Container(root, container_id))
        except FileNotFoundError:
            continue  # removed while we looked
    return found
