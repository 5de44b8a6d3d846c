"""Chapter 5: turning a directory, or a container's diff, into a layer.

`commit` needs the reverse of unpacking: what a container changed is its
overlay upper directory, and that directory *is* the diff. Written as a tar,
it is a layer; overlay's whiteouts become OCI's: a 0/0 character device
NAME becomes an empty file `.wh.NAME`, an opaque directory (xattr
`trusted.overlay.opaque=y`) gets a `.wh..wh..opq` entry first.

A layer's digest names it, so the same files must give the same bytes:

- entries go depth first, each directory's names sorted bytewise, a
  directory before its contents, the source root itself left out;
- owners are numeric uid/gid as on disk, with no user or group names;
- modes keep the permission, setuid, setgid and sticky bits;
- mtimes are whole seconds as on disk, clamped to `epoch` when one is given
  (the SOURCE_DATE_EPOCH convention); no atime or ctime is recorded;
- xattrs are kept (sorted), except overlay's own `trusted.overlay.*`;
- a file with several links is stored once, the first path in this order,
  then as hardlinks; sockets are skipped;
- gzip is level 6 with no file name and a zero timestamp.

New here:  os.scandir, lstat, listxattr; gzip through zlib
"""

import hashlib
import os
import stat
import zlib
from typing import BinaryIO, Iterator, NamedTuple

from . import tarformat, vfs
from .tarformat import BLOCK, Member

OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
GZIP_LEVEL = 6


class LayerDigests(NamedTuple):
    """What a written layer is: its blob digest, its diff id, its blob size."""
    digest: str
    diff_id: str
    size: int


class LayerWriter:
    """Writes a tar stream, gzip-compressed or not, hashing both forms."""

    def __init__(self, out: BinaryIO, gzip: bool = True) -> None:
        self.out = out
        self.diff_hash, self.blob_hash = hashlib.sha256(), hashlib.sha256()
        self.size = 0
        self.deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None

    def write(self, data: bytes) -> None:
        self.diff_hash.update(data)
        self._emit(self.deflate.compress(data) if self.deflate else data)

    def _emit(self, data: bytes) -> None:
        if data:
            self.blob_hash.update(data)
            self.out.write(data)
            self.size += len(data)

    def add(self, member: Member, path: str | None = None) -> None:
        """Write one member; a regular file's data is read from `path`."""
        self.write(tarformat.header(member))
        if member.type == tarformat.REGULAR and member.size:
            self.copy_file(path, member.size)
            self.write(bytes(tarformat.padding(member.size)))

    def copy_file(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while size > 0:
                chunk = os.read(fd, min(size, tarformat.CHUNK))
                if not chunk:
                    raise OSError(f"{path} shrank while it was being archived")
                self.write(chunk)
                size -= len(chunk)
        finally:
            os.close(fd)

    def close(self) -> LayerDigests:
        """End the archive (two zero blocks) and say what was written."""
        self.write(bytes(2 * BLOCK))
        if self.deflate:
            self._emit(self.deflate.flush())
        return LayerDigests("sha256:" + self.blob_hash.hexdigest(),
                            "sha256:" + self.diff_hash.hexdigest(), self.size)


def write_layer(source: str, out: BinaryIO, upper: bool = False, epoch: int | None = None,
                gzip: bool = True) -> LayerDigests:
    """Write the directory `source` as a layer to `out`; `upper`: it is an overlay upper dir."""
    writer = LayerWriter(out, gzip)
    for member, path in walk(source, "", upper, epoch, {}):
        writer.add(member, path)
    return writer.close()


# --8<-- [start:walk]
def walk(top: str, prefix: str, upper: bool, epoch: int | None,
         seen: dict[tuple[int, int], str]) -> Iterator[tuple[Member, str]]:
    """Members for everything below `top`, in the reproducible order."""
    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for entry in entries:
        st = entry.stat(follow_symlinks=False)
        name = prefix + entry.name
        if upper and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            yield Member(name=prefix + ".wh." + entry.name, type=tarformat.REGULAR, mode=0,
                         mtime_ns=clamp(st, epoch)), entry.path
            continue
        member = member_of(entry.path, name, st, epoch, seen)
        if member is None:
            continue
        yield member, entry.path
        if member.type == tarformat.DIRECTORY:
            if upper and is_opaque(entry.path):
                yield Member(name=name + "/.wh..wh..opq", type=tarformat.REGULAR, mode=0,
                             mtime_ns=member.mtime_ns), entry.path
            yield from walk(entry.path, name + "/", upper, epoch, seen)
# --8<-- [end:walk]


def member_of(path: str, name: str, st: os.stat_result, epoch: int | None,
              seen: dict[tuple[int, int], str]) -> Member | None:
    """The tar member for one file; None for what tar cannot hold (sockets)."""
    m = Member(name=name, type=tarformat.REGULAR, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
               gid=st.st_gid, mtime_ns=clamp(st, epoch), xattrs=read_xattrs(path))
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFDIR:
        m.type, m.name = tarformat.DIRECTORY, name + "/"
    elif kind == stat.S_IFLNK:
        m.type, m.linkname = tarformat.SYMLINK, os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        m.type = tarformat.CHAR if kind == stat.S_IFCHR else tarformat.BLOCKDEV
        m.devmajor, m.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif kind == stat.S_IFIFO:
        m.type = tarformat.FIFO
    elif kind == stat.S_IFREG:
        first = seen.setdefault((st.st_dev, st.st_ino), name) if st.st_nlink > 1 else name
        if first != name:
            m.type, m.linkname = tarformat.HARDLINK, first
        else:
            m.size = st.st_size
    else:
        return None
    return m


def clamp(st: os.stat_result, epoch: int | None) -> int:
    """The mtime to record: whole seconds, no later than `epoch`."""
    seconds = int(st.st_mtime)
    return (seconds if epoch is None else min(seconds, epoch)) * 10**9


def read_xattrs(path: str) -> dict[str, bytes]:
    """A file's extended attributes, minus overlay's bookkeeping."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}  # a filesystem without xattrs
    return {n: os.getxattr(path, n, follow_symlinks=False)
            for n in sorted(names) if not n.startswith(("trusted.overlay.", "user.overlay."))}


def is_opaque(path: str) -> bool:
    """True if overlayfs marked this upper directory opaque (it hides the lower one)."""
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def write_changes(root: str, changes: list, out: BinaryIO, epoch: int | None = None,
                  shift: tuple[int, int] | None = None) -> LayerDigests:
    """Write chapter 4's `diff` of a copied (vfs) rootfs as a layer: deletions become `.wh.` files.

    A copy made with a `shift` (root with --userns, see vfs.py) has its owners shifted back."""
    writer, seen = LayerWriter(out), {}
    for change in sorted(changes, key=lambda c: c.path):  # a parent sorts before its children
        name = change.path.lstrip("/")
        parent, base = os.path.split(name)
        if change.kind == "D":
            writer.add(Member(name=os.path.join(parent, ".wh." + base), type=tarformat.REGULAR, mode=0))
            continue
        path = os.path.join(root, name)
        member = member_of(path, name, os.lstat(path), epoch, seen)
        if member is not None:
            if shift:
                member.uid, member.gid = vfs.unshift_id(member.uid, shift), vfs.unshift_id(member.gid, shift)
            writer.add(member, path)
    return writer.close()
