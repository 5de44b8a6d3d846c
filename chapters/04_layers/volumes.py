"""Volumes: directories that live outside the container's layers.

The writable layer belongs to one container and goes with it. Data that
must outlive it, or be shared, goes into a volume: a directory bind-mounted
into the container, over whatever its layers have at that path.

    -v /host/dir:/data[:ro]     a bind mount of a host directory (or file)
    -v NAME:/data[:ro]          a named volume: <root>/volumes/NAME/_data,
                                made on first use, kept after `rm`
    -v /data                    an anonymous volume: a named volume with a
                                random name, removed by `run --rm`

A volume is a plain directory, but an empty one would hide what the image
has at that path; so, as Docker does, a volume that is empty when a container
is created starts with a copy of the layers' files there (volume_copy.py).

Each -v becomes a bind mount in the RuntimeSpec; the child makes it after
building its root and before pivot_root (mounts.mount_all), resolving the
destination *inside* the rootfs, so a rootfs whose /data links to /etc gets
the volume on its own /etc, never on the host's.
"""

import errno
import os
import re
import shutil
from dataclasses import dataclass

from .errors import DockyardError
from .spec import Mount as SpecMount

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS = "anonymous"  # the mark, in the volume's dir, of one that -v /PATH made


@dataclass
class Mount:
    """One -v: what to mount, where inside, and whether read-only."""
    source: str
    destination: str
    read_only: bool = False
    name: str = ""      # a named volume's name; "" for a host path
    anonymous: bool = False  # -v /data: a volume that prepare() names


def volume_dir(root: str, name: str) -> str:
    return os.path.join(root, "volumes", name)


def parse(text: str, root: str) -> Mount:
    """Split `SOURCE:DEST[:ro|rw]` into a Mount, refusing what cannot work."""
    parts = text.split(":")
    if len(parts) == 1 and text.startswith("/"):
        return Mount("", check_destination(text), anonymous=True)
    if len(parts) not in (2, 3) or not all(parts[:2]) or parts[2:] not in ([], ["ro"], ["rw"]):
        raise DockyardError(f"invalid volume specification {text!r}",
                            hint="write -v /host/dir:/path, -v NAME:/path, and :ro to make it read-only")
    source, destination, read_only = parts[0], check_destination(parts[1]), parts[2:] == ["ro"]
    if source.startswith("/"):
        return Mount(os.path.normpath(source), destination, read_only)
    if not NAME.match(source):
        raise DockyardError(f"{source!r} is neither an absolute host path nor a volume name",
                            hint=f"write the host path in full: -v {os.path.abspath(source)}:{destination}")
    return Mount(os.path.join(volume_dir(root, source), "_data"), destination, read_only, source)


def check_destination(path: str) -> str:
    """Refuse a destination that is relative, or / itself."""
    if not path.startswith("/") or os.path.normpath(path) == "/":
        raise DockyardError(f"invalid volume destination {path!r}",
                            hint="the path inside must be absolute and not / itself, e.g. -v data:/data")
    return path


def prepare(root: str, texts: list[str], userns: bool) -> list[str]:
    """Check every -v and create the volumes they use; return the -v list, anonymous ones named."""
    mounts = [parse(text, root) for text in texts]
    for mount in mounts:  # every check before the first volume is made
        if not mount.name and not mount.anonymous and not os.path.exists(mount.source):
            raise DockyardError(f"the host path {mount.source!r} does not exist",
                                hint=f"create it first: mkdir -p {mount.source}")
    named = []
    for text, mount in zip(texts, mounts):
        if mount.anonymous:
            name = os.urandom(32).hex()
            create(root, name, userns, anonymous=True)
            text = f"{name}:{text}"
        elif mount.name:
            create(root, mount.name, userns)
        named.append(text)
    return named


def copy_image_content(root: str, texts: list[str], lowers: list[str], userns: bool) -> None:
    """Fill each empty volume with what the layers hold at its destination; host paths are left alone."""
    from . import volume_copy
    for mount in (parse(text, root) for text in texts):
        if mount.name and not os.listdir(mount.source):
            volume_copy.fill(mount.source, lowers, mount.destination, userns)


def create(root: str, name: str, userns: bool = False, anonymous: bool = False) -> str:
    """Make named volume `name` unless it exists; return its data dir."""
    from .container import now
    from .layers import owner_inside
    data = os.path.join(volume_dir(root, name), "_data")
    if os.path.isdir(data):
        return data
    temp = os.path.join(root, "volumes", f".new-{name}-{os.getpid()}")
    os.makedirs(os.path.join(temp, "_data"), 0o755)
    os.chown(os.path.join(temp, "_data"), *owner_inside(userns))  # root inside may write to it
    with open(os.path.join(temp, "created"), "w") as f:
        f.write(now())
    if anonymous:
        open(os.path.join(temp, ANONYMOUS), "w").close()
    try:
        os.rename(temp, volume_dir(root, name))
    except OSError as err:  # made meanwhile by another engine
        shutil.rmtree(temp)
        if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    return data


# --- for the runtime ----------------------------------------------------------------

def binds(root: str, texts: list[str]) -> list[SpecMount]:
    """The runtime's mounts for the -v list (prepared): binds made inside the rootfs (mounts.py)."""
    return [SpecMount(m.destination, m.source, read_only=m.read_only) for m in (parse(t, root) for t in texts)]


# --- the `volume` commands ------------------------------------------------------------

def names(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(os.path.join(root, "volumes")) if not n.startswith("."))
    except FileNotFoundError:
        return []


def inspect(root: str, name: str) -> dict:
    """What `volume inspect` shows, in Docker's shape."""
    path = volume_dir(root, name)
    if not os.path.isdir(path):
        raise DockyardError(f"no such volume: {name!r}", hint="see volume ls")
    with open(os.path.join(path, "created")) as f:
        created = f.read()
    labels = {"com.docker.volume.anonymous": ""} if is_anonymous(root, name) else {}
    return {"CreatedAt": created, "Driver": "local", "Labels": labels, "Mountpoint": os.path.join(path, "_data"),
            "Name": name, "Options": {}, "Scope": "local"}


def is_anonymous(root: str, name: str) -> bool:
    return os.path.exists(os.path.join(volume_dir(root, name), ANONYMOUS))


def users(root: str, name: str) -> list[str]:
    """The containers whose -v names volume `name`."""
    from . import container, files
    found = []
    for container_id in container.all_ids(root):
        try:
            config = files.read_json(os.path.join(root, "containers", container_id, "config.json"))
        except OSError:
            continue
        if any(parse(text, root).name == name for text in config.get("volumes", [])):
            found.append(container_id)
    return found


def remove(root: str, name: str) -> None:
    """Delete a named volume and its data, unless a container uses it."""
    inspect(root, name)
    in_use = users(root, name)
    if in_use:
        raise DockyardError(f"volume {name!r} is in use by container {in_use[0][:12]}",
                            hint=f"remove the container first: rm {in_use[0][:12]}")
    doomed = os.path.join(root, "volumes", f".removing-{name}")
    os.rename(volume_dir(root, name), doomed)
    from .layers import remove_tree  # however deep a container made it
    remove_tree(doomed)


def remove_anonymous(root: str, texts: list[str]) -> None:
    """Delete the anonymous volumes among `texts` that no container uses any more (run --rm)."""
    for mount in (parse(text, root) for text in texts):
        if mount.name and is_anonymous(root, mount.name) and not users(root, mount.name):
            remove(root, mount.name)
