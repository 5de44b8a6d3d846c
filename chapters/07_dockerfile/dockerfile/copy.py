"""COPY and ADD: files from the context (or a stage, or a heredoc) into the image.

Docker's destination rules:

    COPY a.txt /app/        into the directory: /app/a.txt
    COPY a.txt /app/b.txt   to that path (a file) ...
    COPY a.txt /app         ... unless /app is a directory in the image
    COPY dir /app           the *contents* of dir go into /app
    COPY a b /app/          several sources need a directory, ending in /
    COPY x rel/             relative to WORKDIR

New files and directories belong to 0:0 unless --chown says otherwise (a
name is looked up in the image's /etc/passwd); --chmod sets their mode.
ADD also unpacks a local tar archive (plain, gzip, bzip2, xz) into the
destination, with chapter 5's safe unpacker, and downloads URLs.

Destinations are resolved inside the step's root as chroot(2) would see
them (context.resolve_in), and every file is created with O_EXCL and
O_NOFOLLOW, so neither the context nor the image can redirect a write.
"""

import bz2
import lzma
import os
import posixpath
import shutil
import stat
from dataclasses import dataclass, field
from typing import BinaryIO

from .. import imageconfig, tar
from ..errors import DockyardError
from .context import Context, resolve_in
from .ignore import Matcher

MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Plan:
    """One COPY or ADD, worked out on the host, applied inside the step's root."""
    dest: str                                   # absolute, a trailing / kept
    items: list[tuple[Context, str, str]] = field(default_factory=list)  # (where, as written, path)
    from_lowers: list[str] | None = None       # COPY --from: that stage's layers, top first
    from_patterns: list[str] = field(default_factory=list)
    chown: str | None = None
    chmod: int | None = None
    extract: bool = False                       # ADD: unpack local archives
    scratch: str = "/tmp"                       # where to mount another stage

    @property
    def dest_is_dir(self) -> bool:
        count = len(self.items) + len(self.from_patterns)
        wildcard = any(c in "".join(self.from_patterns) + "".join(w for _, w, _ in self.items) for c in "*?[")
        return self.dest.endswith("/") or count > 1 or wildcard


def parse_chmod(text: str | None) -> int | None:
    """--chmod=0755 as a number (octal digits only, as BuildKit takes them)."""
    if text is None:
        return None
    if not text or any(c not in "01234567" for c in text) or len(text) > 4:
        raise DockyardError(f"invalid --chmod={text}", hint="give octal digits, e.g. --chmod=0755")
    return int(text, 8)


def apply(plan: Plan, root: str) -> int:
    """Copy every source into `root` (the mounted step). Call in the sandbox helper."""
    items = plan.items + stage_items(plan)
    uid, gid = owner(plan.chown, root)
    dest_is_dir = plan.dest_is_dir or is_dir_in(root, plan.dest)
    for ctx, written, rel in items:
        st = ctx.lstat(rel)
        if plan.extract and st is not None and stat.S_ISREG(st.st_mode) and archive_kind(ctx.host_path(rel)):
            unpack_archive(ctx.host_path(rel), make_dirs(root, plan.dest, uid, gid))
        elif st is not None and stat.S_ISDIR(st.st_mode):
            copy_tree(ctx, rel, root, plan.dest, uid, gid, plan.chmod)
        else:
            target = posixpath.join(plan.dest, posixpath.basename(written)) if dest_is_dir else plan.dest
            place(ctx, rel, root, target, uid, gid, plan.chmod)
    return 0


def stage_items(plan: Plan) -> list[tuple[Context, str, str]]:
    """The sources of COPY --from, found in that stage's mounted layers."""
    if plan.from_lowers is None:
        return []
    from .sandbox import mount_read_only  # mounting machinery: only when a COPY --from runs
    source = Context(mount_read_only(plan.from_lowers, plan.scratch), Matcher([]))
    return [(source, written, rel) for pattern in plan.from_patterns for written, rel in source.sources(pattern)]


def owner(chown: str | None, root: str) -> tuple[int, int]:
    """The uid and gid for --chown (names looked up in the image), else 0:0."""
    if not chown:
        return 0, 0
    user, _, group = chown.partition(":")
    if user.isdigit() and (not group or group.isdigit()):
        return int(user), int(group or user)
    passwd, groups = read_in(root, "etc/passwd"), read_in(root, "etc/group")
    uid, gid, _, _ = imageconfig.lookup_user(chown, passwd, groups)
    return uid, gid


def read_in(root: str, path: str) -> str:
    try:
        with open(os.path.join(root, resolve_in(root, path)), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def is_dir_in(root: str, path: str) -> bool:
    return os.path.isdir(os.path.join(root, resolve_in(root, path)))


def make_dirs(root: str, path: str, uid: int, gid: int) -> str:
    """Create `path` inside root (parents too, owned by uid:gid); return its host path."""
    resolved = resolve_in(root, path)
    current = root
    for part in [p for p in resolved.split("/") if p]:
        current = os.path.join(current, part)
        if not os.path.lexists(current):
            os.mkdir(current, 0o755)
            os.chown(current, uid, gid)
        elif not os.path.isdir(current) or os.path.islink(current):
            raise DockyardError(f"cannot copy to {path}: {part} is not a directory in the image",
                                hint="choose a destination whose parents are directories")
    return current


def copy_tree(ctx: Context, top: str, root: str, dest: str, uid: int, gid: int, chmod: int | None) -> None:
    """Copy the contents of directory `top` into `dest`."""
    make_dirs(root, dest, uid, gid)
    for rel, st in ctx.walk(top):
        inside = rel[len(top):].lstrip("/") if top else rel
        target = posixpath.join(dest, inside) if inside else dest
        if stat.S_ISDIR(st.st_mode):
            host = make_dirs(root, target, uid, gid)
            os.chmod(host, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
        else:
            place(ctx, rel, root, target, uid, gid, chmod)


def place(ctx: Context, rel: str, root: str, target: str, uid: int, gid: int, chmod: int | None) -> None:
    """Copy one file or symlink to `target` inside root, replacing what was there."""
    st = ctx.lstat(rel)
    if st is None or not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return  # devices, fifos and sockets in a context are not copied
    parent = make_dirs(root, posixpath.dirname(target.rstrip("/")) or "/", uid, gid)
    host = os.path.join(parent, posixpath.basename(target.rstrip("/")))
    if os.path.isdir(host) and not os.path.islink(host):
        shutil.rmtree(host)
    elif os.path.lexists(host):
        os.unlink(host)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(ctx.host_path(rel)), host)
        os.lchown(host, uid, gid)
        return
    copy_file(ctx.host_path(rel), host)
    os.chown(host, uid, gid)
    os.chmod(host, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
    os.utime(host, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_file(source: str, target: str) -> None:
    """Copy bytes without following a symlink at either end."""
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dst = os.open(target, CREATE, 0o600)
        try:
            while os.sendfile(dst, src, None, 1 << 30) > 0:
                pass
        finally:
            os.close(dst)
    finally:
        os.close(src)


# --- ADD: archives ---------------------------------------------------------------------

def archive_kind(path: str) -> str | None:
    """gzip, bzip2, xz or tar if the file is a tar archive ADD should unpack."""
    with open(path, "rb") as f:
        head = f.read(512)
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            return kind
    return "tar" if head[257:262] == b"ustar" else None


def open_archive(path: str) -> BinaryIO:
    """The archive's tar stream (bzip2 and xz decompressed here; gzip by tar.py)."""
    kind = archive_kind(path)
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def unpack_archive(path: str, target: str) -> None:
    """Unpack a local archive into `target` without ever leaving it."""
    with open_archive(path) as source:
        try:
            tar.unpack(source, target, whiteouts="oci")
        except (EOFError, OSError, lzma.LZMAError) as err:
            raise DockyardError(f"cannot unpack {os.path.basename(path)}: {err}",
                                hint="is it a complete tar archive?") from err
