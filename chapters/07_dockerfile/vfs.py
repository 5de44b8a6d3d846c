"""The `vfs` storage driver: what overlayfs does in the kernel, done by copying.

Where overlay cannot be used (an old kernel, a filesystem that cannot hold
an upper layer), each container gets a full copy of its layers, applied
bottom to top as overlay would stack them:

    a whiteout (a 0/0 character device, or a `.wh.NAME` file: the form
    that chapter 5's image layers carry)
                                     deletes NAME from what lies below
    an opaque dir (overlay's xattr, or a `.wh..wh..opq` file)
                                     hides everything below it
    anything else                    replaces what lies below

It costs the whole rootfs in disk and time for every container, so it is the
fallback. `diff` compares the copy with the union of the layers it came from.

Root with --userns is host uid START+n for uid n inside: a copy that kept the
layers' owners would leave host root's files to no one inside, read-only. So
that copy is *shifted*: an owner n below COUNT becomes START+n, so the files
look inside as they looked to host root (what overlay gets from idmapped
lowers); an owner at or above COUNT stays as it is (it was unmapped before,
and stays so: `nobody` inside). `diff` shifts the layers' owners the same way
before comparing, and `commit` records the owners unshifted: inside's view.
"""

import errno
import os
import shutil
import stat
from typing import Iterator, Optional

WHITEOUT_PREFIX, OPAQUE_FILE = ".wh.", ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
Shift = Optional[tuple[int, int]]  # (START, COUNT) of a container's id range, or None: ids as they are


def shift_id(n: int, shift: Shift) -> int:
    """The host id that the copy gives to owner `n` of a layer."""
    return shift[0] + n if shift and n < shift[1] else n


def unshift_id(n: int, shift: Shift) -> int:
    """The owner, as the layer (and the inside) sees it, of host id `n` in the copy."""
    return n - shift[0] if shift and shift[0] <= n < shift[0] + shift[1] else n


# --- reading a stack of layers, the top-most first --------------------------------

def has_opaque_xattr(path: str) -> bool:
    """Whether overlay marks this dir opaque (trusted.* as root, user.* in a user namespace)."""
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as err:
            if err.errno not in (errno.ENODATA, errno.EOPNOTSUPP, errno.EPERM):
                raise
    return False


def is_whiteout(layer: str, path: str) -> bool:
    """Whether `layer` deletes `path` from the layers below it."""
    full = os.path.join(layer, path.lstrip("/"))
    parent, name = os.path.split(full)
    try:
        st = os.lstat(full)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return True
    except OSError:
        pass
    return os.path.lexists(os.path.join(parent, WHITEOUT_PREFIX + name))


def is_opaque(layer: str, path: str) -> bool:
    """Whether directory `path` of `layer` hides the layers below it."""
    full = os.path.join(layer, path.lstrip("/"))
    return os.path.lexists(os.path.join(full, OPAQUE_FILE)) or has_opaque_xattr(full)


def hides_below(layer: str, path: str) -> bool:
    """Whether an ancestor of `path` in `layer` (whiteout, opaque dir, or a non-dir) hides it below."""
    parts = path.strip("/").split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        ancestor = "/".join(parts[:depth])
        full = os.path.join(layer, ancestor)
        if is_whiteout(layer, ancestor):
            return True
        if os.path.lexists(full) and (os.path.islink(full) or not os.path.isdir(full)
                                      or is_opaque(layer, ancestor)):
            return True
    return False


def lookup(stack: list[str], path: str) -> os.stat_result | None:
    """The entry at `path` in the union of `stack`: the top-most one, or None."""
    for layer in stack:
        if is_whiteout(layer, path):
            return None
        try:
            return os.lstat(os.path.join(layer, path.lstrip("/")))
        except (FileNotFoundError, NotADirectoryError):
            pass
        if hides_below(layer, path):
            return None
    return None


def union_names(stack: list[str], path: str) -> list[str]:
    """The names in directory `path` of the union of `stack`."""
    names: set[str] = set()
    for layer in stack:
        full = os.path.join(layer, path.lstrip("/"))
        if os.path.isdir(full) and not os.path.islink(full):
            names.update(n for n in os.listdir(full) if not n.startswith(WHITEOUT_PREFIX))
            if is_opaque(layer, path):
                break
        elif os.path.lexists(full) or is_whiteout(layer, path) or hides_below(layer, path):
            break
    return sorted(n for n in names if lookup(stack, os.path.join(path, n)) is not None)


# --- the copy ------------------------------------------------------------------

def copy_layers(stack: list[str], target: str, shift: Shift = None) -> None:
    """Apply every layer of `stack` onto the empty dir `target`, the bottom-most first."""
    os.makedirs(target)
    for layer in reversed(stack):
        apply_layer(layer, target, {}, shift)
        copy_attributes(layer, target, shift)


def apply_layer(source: str, target: str, linked: dict[tuple[int, int], str], shift: Shift = None) -> None:
    """Copy one directory of a layer over `target`, honouring whiteouts and opaque dirs."""
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        name, destination = entry.name, os.path.join(target, entry.name)
        if name == OPAQUE_FILE:
            continue
        if name.startswith(WHITEOUT_PREFIX):
            remove(os.path.join(target, name[len(WHITEOUT_PREFIX):]))
            continue
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            remove(destination)
        elif stat.S_ISDIR(st.st_mode):
            if not os.path.isdir(destination) or os.path.islink(destination) or is_opaque(source, name):
                remove(destination)
                os.mkdir(destination)
            apply_layer(entry.path, destination, linked, shift)
            copy_attributes(entry.path, destination, shift)  # after its children changed its mtime
        else:
            remove(destination)
            copy_entry(entry.path, destination, st, linked, shift)


def copy_entry(source: str, target: str, st: os.stat_result, linked: dict[tuple[int, int], str],
               shift: Shift = None) -> None:
    """Copy a file, symlink or device node; a second hard link to an inode stays a hard link."""
    if st.st_nlink > 1 and (st.st_dev, st.st_ino) in linked:
        os.link(linked[st.st_dev, st.st_ino], target)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(source, target, follow_symlinks=False)
    else:
        try:
            os.mknod(target, st.st_mode, st.st_rdev)
        except PermissionError:
            return  # no device nodes in a user namespace; /dev is mounted afresh anyway
    linked[st.st_dev, st.st_ino] = target
    copy_attributes(source, target, shift)


def copy_attributes(source: str, target: str, shift: Shift = None) -> None:
    """Copy owner (shifted), mode, xattrs and times (the times last: the others change ctime only)."""
    st = os.lstat(source)
    try:
        os.chown(target, shift_id(st.st_uid, shift), shift_id(st.st_gid, shift), follow_symlinks=False)
    except PermissionError:
        pass  # rootless: files stay ours, which is root inside
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))  # after chown, which cleared setuid and setgid
    for name in os.listxattr(source, follow_symlinks=False):
        if "overlay." not in name:
            try:
                os.setxattr(target, name, os.getxattr(source, name, follow_symlinks=False), follow_symlinks=False)
            except OSError:
                pass  # e.g. security.* that only the host's root may set
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def remove(path: str) -> None:
    """Remove whatever is at `path`, if anything."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


# --- diff -----------------------------------------------------------------------

def changes(stack: list[str], copy: str, shift: Shift = None) -> list[tuple[str, str]]:
    """What differs between the copy (made with `shift`) and the union of `stack`: (kind, path), by path."""
    return sorted(compare(stack, copy, "/", shift), key=lambda change: change[1])


def compare(stack: list[str], copy: str, directory: str, shift: Shift = None) -> Iterator[tuple[str, str]]:
    """(kind, path) for each difference in `directory` and below."""
    now = set(os.listdir(os.path.join(copy, directory.lstrip("/"))))
    for name in sorted(set(union_names(stack, directory)) - now):
        yield "D", os.path.join(directory, name)
    for name in sorted(now):
        path = os.path.join(directory, name)
        st, before = os.lstat(os.path.join(copy, path.lstrip("/"))), lookup(stack, path)
        below = list(compare(stack, copy, path, shift)) if stat.S_ISDIR(st.st_mode) else []
        if before is None:
            yield "A", path
            yield from (("A", p) for _, p in below)
        elif below or differs(st, before, os.path.join(copy, path.lstrip("/")), stack, path, shift):
            yield "C", path
            yield from below


def differs(st: os.stat_result, before: os.stat_result, copy_path: str, stack: list[str], path: str,
            shift: Shift = None) -> bool:
    """Whether an entry's type, owner (as the copy shifted it), mode, size, mtime or link target changed."""
    if (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns) != (before.st_mode, shift_id(before.st_uid, shift),
                                                             shift_id(before.st_gid, shift), before.st_mtime_ns):
        return True
    if stat.S_ISLNK(st.st_mode):
        lower = next(layer for layer in stack if os.path.lexists(os.path.join(layer, path.lstrip("/"))))
        return os.readlink(copy_path) != os.readlink(os.path.join(lower, path.lstrip("/")))
    return not stat.S_ISDIR(st.st_mode) and st.st_size != before.st_size
