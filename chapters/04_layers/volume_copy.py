"""A new volume starts with the image's files: Docker's copy of a path into a volume.

A volume mounted at /var/lib/app hides whatever the layers have there. So,
as Docker does, a volume that is still empty when a container is created
gets a copy of that directory first, with its owners, modes, times and
xattrs; the volume's root takes the directory's owner and mode. A volume
with anything in it is never touched, nor is a host path bound with -v.

The copy is read from the layers on the host, before any overlay exists,
so this module walks their union itself (vfs.py's rules: whiteouts, opaque
dirs, the top-most entry wins). The destination is resolved as the
container will see it: a symlink in the image, even an absolute one or
"..", resolves inside the layers, never on the host, and no path is ever
looked up through a symlink. The files are copied into a hidden directory
beside the volume's and moved in only when whole.
"""

import os
import stat

from . import config, vfs
from .layers import remove_tree

MAX_SYMLINKS = 40  # as the kernel's path walk: a loop of links ends here


def fill(data: str, stack: list[str], destination: str, userns: bool) -> None:
    """Copy the layers' directory at `destination` into the empty volume dir `data`."""
    path = resolve(stack, destination)
    top = top_entry(stack, path) if path else None
    if top is None or not stat.S_ISDIR(top[1].st_mode):
        return  # nothing there, or not a directory: the volume stays empty
    temp = os.path.join(os.path.dirname(data), f".copy-{os.getpid()}")
    try:
        os.mkdir(temp, 0o700)
        copy_union(stack, path, temp)
        if userns and os.geteuid() == 0:
            shift_owners(temp, config.USERNS_RANGE[0])
        if not os.listdir(data):  # still empty: no other engine filled it meanwhile
            for name in os.listdir(temp):
                os.rename(os.path.join(temp, name), os.path.join(data, name))
            copy_owner_and_mode(top[1], data, userns)
    finally:
        remove_tree(temp)


# --- the union of the layers, the top-most first ------------------------------------

def probe(layer: str, path: str) -> os.stat_result | bool:
    """What `layer` has at `path`: its lstat; False if it hides the layers below; True if nothing."""
    if path == "/":
        return os.lstat(layer)
    parent, names = "", path.strip("/").split("/")
    for depth, name in enumerate(names, 1):
        here = os.path.join(layer, parent)
        if os.path.lexists(os.path.join(here, vfs.WHITEOUT_PREFIX + name)):
            return False
        try:
            st = os.lstat(os.path.join(here, name))  # `here` is a real directory: nothing is followed
        except FileNotFoundError:
            return not (parent and vfs.is_opaque(layer, parent))
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # overlay's whiteout
            return False
        if depth < len(names) and not stat.S_ISDIR(st.st_mode):
            return False  # a file or symlink here hides the directories below
        parent = os.path.join(parent, name)
    return st


def top_entry(stack: list[str], path: str) -> tuple[str, os.stat_result] | None:
    """The top-most layer's copy of `path` (its host path and lstat), or None if the union lacks it."""
    for layer in stack:
        found = probe(layer, path)
        if found is False:
            return None
        if found is not True:
            return os.path.join(layer, path.lstrip("/")), found
    return None


def resolve(stack: list[str], path: str) -> str | None:
    """`path` with its symlinks resolved inside the union, as openat2(RESOLVE_IN_ROOT) would; None if absent."""
    todo, done, links = [n for n in path.split("/") if n], "/", 0
    while todo:
        name = todo.pop(0)
        if name in (".", ".."):
            done = os.path.dirname(done) if name == ".." else done  # ".." of "/" is "/"
            continue
        found = top_entry(stack, os.path.join(done, name))
        if found is None:
            return None
        if stat.S_ISLNK(found[1].st_mode):
            links += 1
            target = os.readlink(found[0])
            if links > MAX_SYMLINKS:
                return None
            done = "/" if target.startswith("/") else done
            todo = [n for n in target.split("/") if n] + todo
        else:
            done = os.path.join(done, name)
    return done


def copy_union(stack: list[str], path: str, target: str) -> None:
    """Copy directory `path` of the union into `target`, applying the layers bottom-most first."""
    linked: dict[tuple[int, int], str] = {}
    for layer in reversed(stack):
        found = probe(layer, path)
        if found is True:
            continue
        is_dir = found is not False and stat.S_ISDIR(found.st_mode)
        if not is_dir or vfs.is_opaque(layer, path):
            clear(target)  # this layer hides what the layers below had here
        if is_dir:
            vfs.apply_layer(os.path.join(layer, path.lstrip("/")), target, linked)


def clear(directory: str) -> None:
    for name in os.listdir(directory):
        vfs.remove(os.path.join(directory, name))


# --- owners ----------------------------------------------------------------------

def shift_owners(tree: str, base: int) -> None:
    """Add `base` to every owner below `tree`: uid 0 becomes the user namespace's root."""
    for parent, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = os.path.join(parent, name)
            st = os.lstat(path)
            os.chown(path, st.st_uid + base, st.st_gid + base, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(path, stat.S_IMODE(st.st_mode))  # chown(2) cleared setuid and setgid


def copy_owner_and_mode(st: os.stat_result, data: str, userns: bool) -> None:
    """Give the volume's root the owner and mode of the directory it was filled from, as Docker does."""
    if os.geteuid() == 0:
        base = config.USERNS_RANGE[0] if userns else 0
        os.chown(data, st.st_uid + base, st.st_gid + base)
    os.chmod(data, stat.S_IMODE(st.st_mode))
