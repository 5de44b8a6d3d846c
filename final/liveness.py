# chapter: 03
"""Which engines are alive: a lock file per container, held by its engine.

An engine killed with SIGKILL cannot clean up after itself, so the next
command must, and it must never mistake a live engine's container for a
dead one's. A pid file would lie once the pid is reused; a lock cannot: the
kernel drops an flock(2) when its holder dies, however it died.

    /run/dockyard/cgroups/dockyard.lock        held while an engine makes, sweeps or removes cgroups
    /run/dockyard/cgroups/dockyard/<id>.lock   held by the engine of container <id> while it runs

(one such pair per cgroup parent, `dockyard` unless config.CGROUP_PARENT says otherwise).

An engine takes both locks before it makes a cgroup, so a sweeping engine
never sees a cgroup whose lock is not yet taken. /run is emptied at boot,
like the cgroup tree, so neither outlives the other.
"""

import os

from . import config, files

_held: dict[str, files.Lock] = {}  # container id -> the lock this engine holds


def lock_dir() -> str:
    return os.path.join(config.RUN_DIR, "cgroups", config.CGROUP_PARENT)


def lock_path(container_id: str) -> str:
    return os.path.join(lock_dir(), f"{container_id}.lock")


def engine_lock() -> files.Lock:
    """The lock that takes turns between engines making, sweeping and removing cgroups (use in `with`)."""
    os.makedirs(lock_dir(), mode=0o700, exist_ok=True)
    return files.Lock(f"{lock_dir()}.lock")


def hold(container_id: str) -> None:
    """Take this container's lock for as long as this engine lives; call under engine_lock."""
    lock = files.Lock(lock_path(container_id))
    lock.take()
    _held[container_id] = lock


def holds(container_id: str) -> bool:
    """Whether this engine holds the container's lock (it made its cgroup)."""
    return container_id in _held


def release(container_id: str) -> None:
    """Remove the lock file, then drop the lock; call under engine_lock."""
    os.unlink(lock_path(container_id))
    _held.pop(container_id).release()


def close_inherited() -> None:
    """Close the copies of the engine's locks that a child inherits; call in the child."""
    for lock in _held.values():
        lock.release()  # a forked copy would hold the lock as long as the container runs
    _held.clear()


def dead() -> list[str]:
    """The containers whose lock no engine holds any more; call under engine_lock."""
    found = []
    for name in os.listdir(lock_dir()):
        container_id = name.removesuffix(".lock")
        if container_id not in _held and not files.is_locked(lock_path(container_id)):
            found.append(container_id)
    return found


def forget(container_id: str) -> None:
    """Remove a dead engine's lock file once what it left is gone; call under engine_lock."""
    os.unlink(lock_path(container_id))
