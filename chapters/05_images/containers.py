"""Container records: a container outlives the process that ran it.

With a writable layer of its own, a stopped container holds something worth
keeping, so it gets a directory that lasts until `rm`:

    <root>/containers/<id>/     64 hex digits; `ps` shows the first 12
        config.json             the run spec: rootfs, command, env, driver, volumes ...
        state.json              created, running or exited; pid, exit code, times
        lock                    flock(2)ed by the engine while the container runs
        hostname hosts resolv.conf   bound over the container's /etc files
        init/ upper/ work/ merged/   its layers (see layers.py; vfs: init/ rootfs/)
    <root>/names/<name> -> <id> a symlink: symlink(2) is atomic, so a name is taken once

Every write goes to a temporary file that is fsync'ed and renamed over the
old one, so a crash leaves the old state or the new, never half of one. A
container is made in a hidden directory and renamed into place when whole;
`rm` renames it away before deleting it. Whether a container runs is not
what state.json says (its engine may have died) but whether its lock is held.
"""

import fcntl
import json
import os
import re
import signal
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any

from . import cgroups, layers
from .errors import DockyardError
from .request import Request, runtime_spec

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
              "nifty", "proud", "quirky", "sharp", "tender", "vivid", "wise", "zen")
SURNAMES = ("babbage", "curie", "dijkstra", "hopper", "kilby", "knuth", "lamport", "liskov", "lovelace",
            "noether", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


@dataclass
class State:
    """What state.json holds: where the container is in its life."""
    status: str = "created"           # created, running, exited; `dead` when read with no engine alive
    created: str = ""
    pid: int = 0
    exit_code: int | None = None
    started: str = ""
    finished: str = ""
    oom_killed: bool = False


def pick(choices: Any) -> Any:
    """A random element (os.urandom: the `secrets` module costs the start path an OpenSSL import)."""
    return choices[int.from_bytes(os.urandom(4), "big") % len(choices)]


def now() -> str:
    """The time as Docker writes it: RFC 3339, UTC."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def directory(root: str, container_id: str) -> str:
    return os.path.join(root, "containers", container_id)


def write_json(path: str, data: Any) -> None:
    """Replace `path` atomically: a temporary file, fsync'ed, renamed over it."""
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.rename(temp, path)


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


# --- making one --------------------------------------------------------------------

def create(spec: Request) -> None:
    """Give a new container its name, layers and record; nothing is left if a step fails."""
    from . import runtime, volumes
    if not spec.lowers:  # run --rootfs DIR: the one read-only layer is DIR
        runtime.check_rootfs(spec.rootfs)
        spec.lowers = [spec.rootfs]
    spec.storage_driver = layers.driver_for(layers.check_driver(spec.storage_driver), spec.lowers, spec.userns)
    spec.name = reserve_name(spec.root, spec.name, spec.id)
    temp = os.path.join(spec.root, "containers", f".new-{spec.id}")
    try:
        spec.volumes = volumes.prepare(spec.root, spec.volumes, spec.userns)
        os.makedirs(temp)
        layers.create(layers.Layers(spec.storage_driver, spec.lowers, temp), spec.userns)
        volumes.copy_image_content(spec.root, spec.volumes, spec.lowers, spec.userns)
        write_json(os.path.join(temp, "config.json"), asdict(spec))
        write_json(os.path.join(temp, "state.json"), asdict(State(created=now())))
        os.rename(temp, directory(spec.root, spec.id))
    except BaseException:
        layers.remove_tree(temp)
        os.unlink(os.path.join(spec.root, "names", spec.name))
        volumes.remove_anonymous(spec.root, spec.volumes)
        raise


def reserve_name(root: str, name: str, container_id: str) -> str:
    """Take `name` (or a random one) for a container, refusing one that is taken."""
    os.makedirs(os.path.join(root, "names"), exist_ok=True)
    if name and not NAME.match(name):
        raise DockyardError(f"invalid container name {name!r}",
                            hint="use letters, digits, '_', '.' and '-', at least 2 characters")
    while True:
        chosen = name or f"{pick(ADJECTIVES)}_{pick(SURNAMES)}{pick(range(100))}"
        link = os.path.join(root, "names", chosen)
        try:
            os.symlink(container_id, link)
            return chosen
        except FileExistsError:
            if not os.path.isdir(directory(root, os.readlink(link))) and not is_new(root, os.readlink(link)):
                os.unlink(link)  # left by a crash: the container it names is gone
                continue
            if name:
                raise DockyardError(f"the container name {name!r} is already in use by {os.readlink(link)[:12]}",
                                    hint=f"remove that container (rm {name}) or choose another --name") from None


def is_new(root: str, container_id: str) -> bool:
    return os.path.isdir(os.path.join(root, "containers", f".new-{container_id}"))


# --- reading records ---------------------------------------------------------------

def all_ids(root: str) -> list[str]:
    """Every container under `root` (hidden ones, half made or half removed, excluded)."""
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "containers")) if not n.startswith("."))
    except FileNotFoundError:
        return []


def find(root: str, text: str) -> str:
    """The id of the container named `text`, or whose id is or begins with `text`."""
    link = os.path.join(root, "names", text)
    if os.path.islink(link) and os.path.isdir(directory(root, os.readlink(link))):
        return os.readlink(link)
    matches = [i for i in all_ids(root) if i.startswith(text)] if text else []
    if len(matches) == 1:
        return matches[0]
    problem = "no such container" if not matches else "more than one container matches"
    raise DockyardError(f"{problem}: {text!r}", hint="give its name or more of its id (see ps -a)")


def load_spec(root: str, container_id: str) -> Request:
    """The container's run request, from config.json."""
    data = read_json(os.path.join(directory(root, container_id), "config.json"))
    values = {}
    for f in fields(Request):
        if f.name in data:
            nested = f.default_factory if f.default_factory is not MISSING else None
            # A field that is itself a dataclass (chapter 3's Limits) comes back as a dict.
            values[f.name] = nested(**data[f.name]) if is_dataclass(nested) else data[f.name]
    return Request(**values)


def read_state(root: str, container_id: str) -> State:
    """The container's state; `running` only while its engine still holds the lock."""
    state = State(**read_json(os.path.join(directory(root, container_id), "state.json")))
    if state.status == "running" and not is_locked(directory(root, container_id)):
        state.status = "dead"  # its engine died without recording the end
    return state


def write_state(root: str, container_id: str, **changes: Any) -> None:
    path = os.path.join(directory(root, container_id), "state.json")
    write_json(path, {**read_json(path), **changes})


# --- the lock: who runs it ----------------------------------------------------------

def lock(path: str, wait: bool = False) -> int | None:
    """flock `path`/lock and return the fd; None if someone holds it and we do not wait."""
    fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


def is_locked(path: str) -> bool:
    """Whether an engine runs this container now (the kernel drops a dead one's lock)."""
    fd = lock(path)
    if fd is not None:
        os.close(fd)
    return fd is None


# --- running ------------------------------------------------------------------------

# --8<-- [start:run]
def run(spec: Request) -> int:
    """Run the container in the foreground, holding its lock; record how it ended."""
    from . import runtime
    held = lock(directory(spec.root, spec.id))
    if held is None:
        raise DockyardError(f"container {spec.name} is already running", hint="wait for it, or: rm -f " + spec.name)
    exit_code, oom = 125, False
    try:
        exit_code = runtime.run(runtime_spec(spec, directory(spec.root, spec.id)),
                                started=lambda pid: started(spec, pid))
        return exit_code
    except DockyardError as err:
        exit_code, oom = err.exit_code, type(err).__name__ == "OOMKilled"
        raise
    finally:
        if spec.remove:
            from . import volumes
            remove(spec.root, spec.id)
            volumes.remove_anonymous(spec.root, spec.volumes)  # as docker run --rm; named ones stay
        else:
            write_state(spec.root, spec.id, status="exited", exit_code=exit_code, oom_killed=oom, finished=now())
        os.close(held)
# --8<-- [end:run]


def started(spec: Request, pid: int) -> None:
    """PID 1 is set up and waits for its go: put it on its network (final), record that it runs."""
    mark_running(spec, pid)


def mark_running(spec: Request, pid: int) -> None:
    """Record that the container runs as `pid`; call in the engine, after clone."""
    write_state(spec.root, spec.id, status="running", pid=pid, started=now(), exit_code=None,
                finished="", oom_killed=False)


# --- removing -----------------------------------------------------------------------

def stop_for_removal(root: str, container_id: str, force: bool) -> int | None:
    """Take the lock of a container about to be removed: with `force`, kill it first."""
    path = directory(root, container_id)
    held = lock(path)
    if held is not None or not force:
        return held
    state = read_state(root, container_id)
    if state.pid:
        try:
            # The pid cannot have been reused: its engine, which holds the lock, has not reaped it.
            os.kill(state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return lock(path, wait=True)


def remove(root: str, container_id: str) -> None:
    """Delete a stopped container: its name, its record and its writable layer."""
    path = directory(root, container_id)
    doomed = os.path.join(root, "containers", f".removing-{container_id}")
    try:
        name = read_json(os.path.join(path, "config.json")).get("name", "")
        os.rename(path, doomed)  # from here on, no command sees it
    except FileNotFoundError:
        return  # removed already (its own --rm, say)
    link = os.path.join(root, "names", name)
    if name and os.path.islink(link) and os.readlink(link) == container_id:
        os.unlink(link)
    layers.remove_tree(doomed)
    cgroups.remove_dead_engines_cgroups()  # an engine killed mid-run left its cgroup


def sweep(root: str) -> None:
    """Finish removals that a crash interrupted."""
    for name in os.listdir(os.path.join(root, "containers")) if os.path.isdir(os.path.join(root, "containers")) else []:
        if name.startswith(".removing-"):
            layers.remove_tree(os.path.join(root, "containers", name))
