# chapter: 04
"""Container records: a container outlives the process that ran it.

With a writable layer of its own, a stopped container holds something worth
keeping, so it gets a directory that lasts until `rm`:

    <root>/containers/<id>/     64 hex digits; `ps` shows the first 12
        config.json             what run was asked for: rootfs, command, env, driver, volumes ...
        state.json              created, running or exited; pid, exit code, times (container.py)
        hostname hosts resolv.conf   bound over the container's /etc files
        init/ upper/ work/ merged/   its layers (see layers.py; vfs: init/ rootfs/)
    <root>/names/<name> -> <id> a symlink: symlink(2) is atomic, so a name is taken once

Every write replaces a whole file (files.py), so a crash leaves the old
state or the new, never half of one. A container is made in a hidden
directory and renamed into place when whole; `rm` renames it away before
deleting it. Whether a container runs is not what state.json says (its
engine may have died) but whether its lock is held (container.py).
"""

import os
import shutil
import signal
from dataclasses import MISSING, asdict, fields, is_dataclass
from typing import Any

from . import cgroups, container, files, layers
from . import events, faults, jsonlog  # ch final
from .container import State, now
from .errors import DockyardError
from .request import Request, runtime_spec

ADJECTIVES = ("brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
              "nifty", "proud", "quirky", "sharp", "tender", "vivid", "wise", "zen")
SURNAMES = ("babbage", "curie", "dijkstra", "hopper", "kilby", "knuth", "lamport", "liskov", "lovelace",
            "noether", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


def pick(choices: Any) -> Any:
    """A random element (os.urandom: the `secrets` module costs the start path an OpenSSL import)."""
    return choices[int.from_bytes(os.urandom(4), "big") % len(choices)]


def directory(root: str, container_id: str) -> str:
    return os.path.join(root, "containers", container_id)


# --- making one --------------------------------------------------------------------

def create(spec: Request) -> None:
    """Give a new container its name, layers and record; nothing is left if a step fails."""
    from . import runtime, volumes
    if not spec.lowers:  # run --rootfs DIR: the one read-only layer is DIR
        runtime.check_rootfs(spec.rootfs)
        spec.lowers = [spec.rootfs]
    spec.storage_driver = layers.driver_for(layers.check_driver(spec.storage_driver), spec.lowers, spec.userns)
    making = files.Lock(os.path.join(container.run_dir(spec.root, spec.id), "lock"))
    os.makedirs(os.path.dirname(making.path), mode=0o700, exist_ok=True)
    making.take()  # while we make it: a crash leaves a .new- dir that nobody holds, for sweep()
    spec.name = reserve_name(spec.root, spec.name, spec.id)
    temp = os.path.join(spec.root, "containers", f".new-{spec.id}")
    try:
        spec.volumes = volumes.prepare(spec.root, spec.volumes, spec.userns)
        os.makedirs(temp)
        layers.create(layers.Layers(spec.storage_driver, spec.lowers, temp), spec.userns)
        volumes.copy_image_content(spec.root, spec.volumes, spec.lowers, spec.userns)
        faults.fault_point("container-layers")  # ch final
        files.write_json(os.path.join(temp, "config.json"), asdict(spec))
        files.write_json(os.path.join(temp, "state.json"), asdict(State(created=now())), durable=not spec.remove)
        os.rename(temp, directory(spec.root, spec.id))
        events.record_for(spec, "create")  # ch final
    except BaseException:
        layers.remove_tree(temp)
        os.unlink(os.path.join(spec.root, "names", spec.name))
        volumes.remove_anonymous(spec.root, spec.volumes)
        raise
    finally:
        making.release()


def reserve_name(root: str, name: str, container_id: str) -> str:
    """Take `name` (or a random one) for a container, refusing one that is taken."""
    os.makedirs(os.path.join(root, "names"), exist_ok=True)
    if name and not container.NAME.match(name):
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
    """Whether a live engine is making this container now."""
    return os.path.isdir(os.path.join(root, "containers", f".new-{container_id}")) and \
        files.is_locked(os.path.join(container.run_dir(root, container_id), "lock"))


# --- reading records ---------------------------------------------------------------

all_ids, find = container.all_ids, container.find


def load_spec(root: str, container_id: str) -> Request:
    """The container's run request, from config.json."""
    data = files.read_json(os.path.join(directory(root, container_id), "config.json"))
    values = {}
    for f in fields(Request):
        if f.name in data:
            nested = f.default_factory if f.default_factory is not MISSING else None
            # A field that is itself a dataclass (chapter 3's Limits) comes back as a dict.
            values[f.name] = nested(**data[f.name]) if is_dataclass(nested) else data[f.name]
    return Request(**values)


def read_state(root: str, container_id: str) -> State:
    """The container's state, its status as the machine has it (dead, paused: see container.py)."""
    c = container.Container(root, container_id)
    c.state.status = c.status
    return c.state


def read_json(path: str) -> Any:
    return files.read_json(path)


# --- running ------------------------------------------------------------------------

# --8<-- [start:run]
def run(spec: Request) -> int:
    """Run the container in the foreground, holding its lock; record how it ended."""
    from . import runtime
    c = container.Container(spec.root, spec.id)
    if not c.take_lock():
        raise DockyardError(f"container {spec.name} is already running", hint="wait for it, or: rm -f " + spec.name)
    exit_code, oom = 125, False
    hooks = runtime.Hooks(started=lambda pid: started(spec, pid, c), exited=lambda code: mark_exited(c, code))
    hooks.running = lambda: faults.fault_point("container-running")  # ch final
    tee = jsonlog.Tee(jsonlog.open_log(c, spec.log), spec.tty, hooks)  # output: the terminal, and `logs`  # ch final
    try:
        exit_code = runtime.run(runtime_spec(spec, c.directory), hooks)
        return exit_code
    except DockyardError as err:
        exit_code, oom = err.exit_code, type(err).__name__ == "OOMKilled"
        raise
    finally:
        tee.close()  # ch final
        stopped(spec, exit_code)
        if spec.remove:
            from . import volumes
            remove(spec.root, spec.id)
            volumes.remove_anonymous(spec.root, spec.volumes)  # as docker run --rm; named ones stay
        else:
            mark_exited(c, exit_code, oom)
        c.lock.release()
# --8<-- [end:run]


def started(spec: Request, pid: int, c: "container.Container") -> None:
    """PID 1 is set up and waits for its go: put it on its network (final), record that it runs."""
    from .network import attach  # a late import: network.py reads records  # ch final
    attach(spec, pid)  # ch final
    mark_running(spec, pid, c)
    faults.signals_astray()  # a test's: signals that land outside a wait (faults.py)  # ch final


def mark_running(spec: Request, pid: int, c: "container.Container") -> None:
    """Record that the container runs as `pid`; call in the engine, after clone."""
    c.move("running", pid=pid, started=now(), exit_code=None, finished="", oom_killed=False)
    events.record_for(spec, "start")  # ch final


def mark_exited(c: "container.Container", exit_code: int, oom: bool = False) -> None:
    """Record how it ended, and that its pid is no longer its own; call before its pid is reaped."""
    c.move("exited", pid=0, exit_code=exit_code, oom_killed=oom or c.state.oom_killed,
           finished=c.state.finished if c.state.status == "exited" else now())


def stopped(spec: Request, exit_code: int) -> None:
    """What follows every run of PID 1, however it ended: leave the network, say it died (final)."""
    from .network import detach  # a late import: network.py reads records  # ch final
    detach(spec)  # its address, links and port proxy; nothing if it had none  # ch final
    events.record_for(spec, "die", exitCode=str(exit_code))  # ch final


# --- removing -----------------------------------------------------------------------

def stop_for_removal(root: str, container_id: str, force: bool) -> "container.Container | None":
    """Take the lock of a container about to be removed: with `force`, kill it first."""
    c = container.Container(root, container_id)
    if c.take_lock():
        return c
    if not force and c.state.status != "created":  # a created one's PID 1 only waits: no -f needed  # ch final
    # if not force:  # ch 04-07
        return None
    c.request_stop()  # no restart policy may bring it back
    c.signal(signal.SIGKILL)  # through a pidfd; a paused container is thawed to die (final)
    c.take_lock(wait=True)
    return c


def remove(root: str, container_id: str) -> None:
    """Delete a stopped container: its name, its record and its writable layer."""
    path = directory(root, container_id)
    doomed = os.path.join(root, "containers", f".removing-{container_id}")
    try:
        name = files.read_json(os.path.join(path, "config.json")).get("name", "")
        os.rename(path, doomed)  # from here on, no command sees it
    except FileNotFoundError:
        return  # removed already (its own --rm, say)
    link = os.path.join(root, "names", name)
    if name and os.path.islink(link) and os.readlink(link) == container_id:
        os.unlink(link)
    layers.remove_tree(doomed)
    shutil.rmtree(container.run_dir(root, container_id), ignore_errors=True)  # its lock, and word of a stop
    events.record(root, "destroy", container_id, name)  # ch final
    cgroups.remove_dead_engines_cgroups()  # an engine killed mid-run left its cgroup


def sweep(root: str) -> None:
    """Finish removals, and undo creations, that a crash interrupted."""
    for name in os.listdir(os.path.join(root, "containers")) if os.path.isdir(os.path.join(root, "containers")) else []:
        if name.startswith(".removing-"):
            layers.remove_tree(os.path.join(root, "containers", name))
        elif name.startswith(".new-") and not files.is_locked(os.path.join(container.run_dir(root, name[5:]), "lock")):
            layers.remove_tree(os.path.join(root, "containers", name))  # its maker died: its name is free again
