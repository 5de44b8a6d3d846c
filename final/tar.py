# chapter: 05
"""Chapter 5: unpacking a layer without trusting it.

An image's layers come from strangers. A tar archive can name any path
(`../../etc/cron.d/x`, `/etc/shadow`), plant a symlink and then write
through it (`lib -> /etc`, then `lib/passwd`), hardlink a host file into
the layer, or name one path twice. `tarfile.extractall` has had CVEs for
each of these. Our unpacker is built so that none of them can work:

- names are cleaned: a leading `/` is dropped (the layer is the root) and
  `..` is refused;
- every path is walked one component at a time from an open directory fd
  of the layer, with O_NOFOLLOW, so a symlink met on the way is an error,
  never a door (openat-style resolution, like openat2's RESOLVE_BENEATH);
- a new entry replaces an old one by unlinking it first and creating the
  new one with O_EXCL, so no write ever lands through an old symlink;
- symlinks are created, never followed; a hardlink's target is looked up
  inside the layer with the same walk.

OCI whiteouts become what overlayfs understands: `.wh.NAME` a 0/0 character
device NAME, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its
directory. A copying (vfs) driver asks for `whiteouts="oci"` and gets the
`.wh.` files as they are, to apply when it copies the layers together.

New here:  openat-style walks (dir_fd, O_NOFOLLOW), mknod(2), xattrs, whiteouts
Try it:    python3 -c 'import final.tar as t, sys; print(t.unpack(open(sys.argv[1], "rb"), sys.argv[2]))' L.tar DIR
"""

import errno
import os
import shutil
import stat
from typing import BinaryIO

from . import tarformat
from .errors import DockyardError
from .tarformat import Member, TarStream

WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_CACHED_DIRS = 256


class UnsafeLayer(DockyardError):
    """The layer tries to reach outside its own directory."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem, hint="the image may be malicious: do not use it, "
                                       "and tell whoever published it")


def unpack(source: BinaryIO, target: str, whiteouts: str = "overlay", lowers: list[str] = []) -> tuple[str, int]:
    """Unpack a (gzip) tar layer into the directory `target`; return (diff id, tar size).

    `lowers`: the unpacked layers below it, the top-most first, where a hardlink may point."""
    with TarStream(source) as stream, Unpacker(target, whiteouts, lowers) as unpacker:
        for member in tarformat.members(stream):
            unpacker.add(member, stream)
    return stream.digest(), stream.size


def open_in_layer(layer: str, parts: list[str], whiteouts: str) -> int | str | None:
    """An fd of the regular file `parts` in an unpacked layer, walked without following symlinks;
    "deleted" if the layer whites it out, None if the layer does not have it."""
    fd = os.open(layer, DIR_OPEN)
    try:
        for depth, part in enumerate(parts):
            if is_whiteout(fd, part, whiteouts):
                return "deleted"
            last = depth == len(parts) - 1
            next_fd = os.open(part, (os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC) if last else DIR_OPEN,
                              dir_fd=fd)
            os.close(fd)
            fd = next_fd
        if stat.S_ISREG(os.fstat(fd).st_mode):
            fd, found = -1, fd
            return found
        return None
    except OSError:
        return None
    finally:
        if fd != -1:
            os.close(fd)


def is_whiteout(dir_fd: int, name: str, whiteouts: str) -> bool:
    """Whether the layer open as `dir_fd` deletes `name` of the layers below."""
    try:
        if whiteouts == "oci":
            os.stat(WHITEOUT + name, dir_fd=dir_fd, follow_symlinks=False)
            return True
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # overlay's whiteout: a 0/0 char device
    except OSError:
        return False


def clean_name(name: str) -> list[str]:
    """A member's path as components inside the layer; `..` is refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"layer entry {name!r} climbs out with '..'")
    return parts


class Unpacker:
    """Creates members under one directory, which it never leaves."""

    def __init__(self, target: str, whiteouts: str, lowers: list[str] = []) -> None:
        self.whiteouts = whiteouts
        self.lowers = lowers
        self.as_root = os.geteuid() == 0
        self.umask = current_umask()
        self.dirs = {"": os.open(target, DIR_OPEN)}  # path in the layer -> open fd
        self.dir_times: list[tuple[list[str], int]] = []

    def __enter__(self) -> "Unpacker":
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.set_dir_times()
        finally:
            for fd in self.dirs.values():
                os.close(fd)

    # --- walking ---------------------------------------------------------------

    # --8<-- [start:open_dir]
    def open_dir(self, parts: list[str], create: bool = True) -> int:
        """An fd of the directory `parts`, walked from the layer's root without following symlinks."""
        key = "/".join(parts)
        if key in self.dirs:
            return self.dirs[key]
        parent = self.open_dir(parts[:-1], create)
        try:
            fd = os.open(parts[-1], DIR_OPEN, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise UnsafeLayer(f"layer entry refers to {key!r}, which the layer does not contain")
            os.mkdir(parts[-1], 0o755, dir_fd=parent)  # a parent the archive did not list
            fd = os.open(parts[-1], DIR_OPEN, dir_fd=parent)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeLayer(f"layer path {key!r} goes through a symlink or a file") from err
            raise
        self.dirs[key] = fd
        return fd
    # --8<-- [end:open_dir]

    def forget(self, prefix: str) -> None:
        """Close cached fds at and below `prefix` ('' closes all but the root)."""
        for key in [k for k in self.dirs if k and (not prefix or k == prefix or k.startswith(prefix + "/"))]:
            os.close(self.dirs.pop(key))

    def make_room(self, parent: int, parts: list[str], keep_dir: bool = False) -> bool:
        """Remove whatever is at `parts`, unless it is a directory and keep_dir; True if kept."""
        try:
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self.forget("/".join(parts))
            remove_tree(parent, parts[-1])
        else:
            os.unlink(parts[-1], dir_fd=parent)
        return False

    # --- members ---------------------------------------------------------------

    def add(self, member: Member, stream: TarStream) -> None:
        """Create one member (or apply it as a whiteout)."""
        parts = clean_name(member.name)
        if len(self.dirs) >= MAX_CACHED_DIRS:  # here, while no fd from the cache is in use
            self.forget("")
        if not parts:  # "./": the layer's root itself
            self.set_metadata(self.dirs[""], member)
            self.dir_times.append((parts, member.mtime_ns))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT):
            self.add_whiteout(parts)
            return
        parent = self.open_dir(parts[:-1])
        kind = member.type
        if kind in (tarformat.REGULAR, b"\0", b"7"):  # "\0": old tar's regular file, "7": contiguous
            self.add_file(parent, parts, member, stream)
        elif kind == tarformat.DIRECTORY:
            self.add_dir(parent, parts, member)
        elif kind == tarformat.SYMLINK:
            self.retry(parent, parts, lambda: os.symlink(member.linkname, base, dir_fd=parent))
            self.set_path_metadata(parent, base, member)
        elif kind == tarformat.HARDLINK:
            self.add_hardlink(parent, parts, member)
        elif kind in (tarformat.CHAR, tarformat.BLOCKDEV, tarformat.FIFO):
            self.add_special(parent, parts, member)
        # other types (sockets have none; volume labels ...) are skipped, data and all

    def retry(self, parent: int, parts: list[str], create) -> None:
        """Create with `create()`; if the name is taken, remove the old entry and try once more."""
        try:
            create()
        except FileExistsError:
            self.make_room(parent, parts)
            create()

    def add_file(self, parent: int, parts: list[str], member: Member, stream: TarStream) -> None:
        # Made with its permission bits already: fchmod is needed only for what open(2) cannot
        # set (setuid, setgid, sticky) or the umask takes away.
        mode = member.mode & 0o777
        try:
            fd = os.open(parts[-1], FILE_CREATE, mode, dir_fd=parent)
        except FileExistsError:
            self.make_room(parent, parts)
            fd = os.open(parts[-1], FILE_CREATE, mode, dir_fd=parent)
        try:
            stream.copy(member.size, fd)
            self.set_metadata(fd, member, chmod=bool(member.mode & 0o7000 or mode & self.umask))
        finally:
            os.close(fd)

    def add_dir(self, parent: int, parts: list[str], member: Member) -> None:
        if not self.make_room(parent, parts, keep_dir=True):
            os.mkdir(parts[-1], 0o700, dir_fd=parent)
        self.set_metadata(self.open_dir(parts), member)
        self.dir_times.append((parts, member.mtime_ns))

    def add_hardlink(self, parent: int, parts: list[str], member: Member) -> None:
        target = clean_name(member.linkname)
        if not target:
            raise UnsafeLayer(f"layer entry {member.name!r} hardlinks to the layer's root")
        try:
            source_dir = self.open_dir(target[:-1], create=False)
            self.retry(parent, parts, lambda: os.link(target[-1], parts[-1], src_dir_fd=source_dir,
                                                      dst_dir_fd=parent, follow_symlinks=False))
        except (UnsafeLayer, FileNotFoundError, PermissionError) as err:
            # A link to a file of a layer below: copy that file, so that no two layers share an inode.
            if not self.copy_from_lowers(parent, parts, target):
                raise UnsafeLayer(f"layer entry {member.name!r} hardlinks to {member.linkname!r}, "
                                  "which is not a file in the layer or the layers below") from err

    def copy_from_lowers(self, parent: int, parts: list[str], target: list[str]) -> bool:
        """Copy the regular file `target` of the top-most lower layer that has it to `parts`."""
        for lower in self.lowers:
            found = open_in_layer(lower, target, self.whiteouts)
            if found == "deleted":
                return False
            if found is None:
                continue
            with os.fdopen(found, "rb") as source:
                st = os.fstat(source.fileno())
                self.make_room(parent, parts)
                with os.fdopen(os.open(parts[-1], FILE_CREATE, 0o600, dir_fd=parent), "wb") as copy:
                    shutil.copyfileobj(source, copy, 1 << 20)
                    if self.as_root:
                        os.fchown(copy.fileno(), st.st_uid, st.st_gid)
                    os.fchmod(copy.fileno(), st.st_mode & 0o7777)
                    os.utime(copy.fileno(), ns=(st.st_mtime_ns, st.st_mtime_ns))
            return True
        return False

    def add_special(self, parent: int, parts: list[str], member: Member) -> None:
        kind = {tarformat.CHAR: stat.S_IFCHR, tarformat.BLOCKDEV: stat.S_IFBLK}.get(member.type, stat.S_IFIFO)
        device = os.makedev(member.devmajor, member.devminor)
        self.retry(parent, parts, lambda: os.mknod(parts[-1], kind | 0o600, device, dir_fd=parent))
        self.set_path_metadata(parent, parts[-1], member)

    def add_whiteout(self, parts: list[str]) -> None:
        """Turn an OCI whiteout into an overlay one (or keep it as a file for the vfs driver)."""
        parent = self.open_dir(parts[:-1])
        # >>> exercise 5.2: the whiteout rule: OCI's .wh. files become overlay's whiteouts
        # hint: for the vfs driver (self.whiteouts == "oci") keep the .wh. file as an empty file. Otherwise
        # hint: ".wh..wh..opq" (OPAQUE) marks the directory opaque: os.setxattr(parent, OPAQUE_XATTR, b"y");
        # hint: ".wh.NAME" hides NAME: refuse a NAME of "", "." or ".." (UnsafeLayer), then make a 0/0
        # hint: character device called NAME in parent (os.mknod with dir_fd, through self.retry).
        # test: test_image_run.py::test_whiteouts_across_three_layers_hide_files_in_the_container
        # test: test_image_interop.py::test_whiteouts_across_three_layers_hide_what_they_name
        # test: test_image_interop.py::test_unpacked_layers_hold_overlay_whiteouts
        # test: test_image_run.py::test_run_commit_run_sees_the_changes
        # test: test_tar_safety.py::test_a_whiteout_that_names_the_parent_directory_is_refused
        if self.whiteouts == "oci":
            self.retry(parent, parts, lambda: os.close(os.open(parts[-1], FILE_CREATE, 0o600, dir_fd=parent)))
        elif parts[-1] == OPAQUE:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
        else:
            name = parts[-1][len(WHITEOUT):]
            if name in ("", ".", ".."):
                raise UnsafeLayer(f"layer whiteout {'/'.join(parts)!r} names no entry")
            hidden = parts[:-1] + [name]
            self.retry(parent, hidden, lambda: os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent))
        # <<< exercise 5.2

    # --- metadata --------------------------------------------------------------

    def set_metadata(self, fd: int, member: Member, chmod: bool = True) -> None:
        """Owner, then mode (chown clears setuid), xattrs, mtime, on an open fd."""
        if self.as_root:
            os.fchown(fd, member.uid, member.gid)
        if chmod:
            os.fchmod(fd, member.mode & 0o7777)
        if member.xattrs:
            for name, value in safe_xattrs(member):
                os.setxattr(fd, name, value)
        os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))

    def set_path_metadata(self, parent: int, name: str, member: Member) -> None:
        """The same for what cannot be opened (symlinks, devices, FIFOs); never follows a symlink."""
        if self.as_root:
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        path = f"/proc/self/fd/{parent}/{name}"  # the last component is not followed below
        if member.type != tarformat.SYMLINK:
            os.chmod(name, member.mode & 0o7777, dir_fd=parent)  # we just made it: not a symlink
        for key, value in safe_xattrs(member):
            os.setxattr(path, key, value, follow_symlinks=False)
        os.utime(name, ns=(member.mtime_ns, member.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def set_dir_times(self) -> None:
        """Directories' mtimes go last: creating their entries changed them."""
        for parts, mtime_ns in reversed(self.dir_times):
            try:
                os.utime(self.open_dir(parts, create=False), ns=(mtime_ns, mtime_ns))
            except UnsafeLayer:
                pass  # a later entry replaced this directory


def current_umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def safe_xattrs(member: Member) -> list[tuple[str, bytes]]:
    """The member's xattrs, minus trusted.* (a layer must not forge overlay's own)."""
    if not member.xattrs:  # most members have none
        return []
    return [(k, v) for k, v in sorted(member.xattrs.items()) if not k.startswith("trusted.")]


def remove_tree(parent: int, name: str) -> None:
    """Remove `name` under the fd `parent` and everything below it, following no symlink."""
    fd = os.open(name, DIR_OPEN, dir_fd=parent)
    try:
        with os.scandir(fd) as entries:
            for entry in list(entries):
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(fd, entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
