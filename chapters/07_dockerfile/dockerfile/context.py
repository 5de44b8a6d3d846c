"""The build context: the directory COPY and ADD read from, and nothing else.

A Dockerfile comes from anyone, so its COPY lines are untrusted paths:

    COPY ../../etc/shadow /x      refused: the path leaves the context
    COPY link-to-etc/passwd /x    link-to-etc -> /etc is followed *inside*
                                  the context (context/etc/passwd), as if
                                  the context were "/": it cannot lead out

`resolve_in` walks a path one component at a time, following symlinks the
way the kernel would after chroot(2) into `root`; symlinks met while walking
a copied directory are copied as symlinks, never followed. The same walk
finds destinations inside an image's root filesystem.

A step's cache key needs its inputs' content: `checksum` hashes each file's
path, mode and bytes (not its times), so touching a file without changing
it keeps the cache, and changing one byte misses it. Reading every byte on
every build would make a rebuild of a large context slow, so a file's digest
is remembered from the last build under its inode, size, mtime and ctime:
any write changes the ctime, and only the kernel sets it.
"""

import hashlib
import os
import posixpath
import re
import stat
import time
from typing import Iterator

from ..errors import DockyardError
from .ignore import Matcher

MAX_SYMLINKS = 40
MAGIC = "*?["


class OutsideContext(DockyardError):
    def __init__(self, path: str) -> None:
        super().__init__(f"forbidden path outside the build context: {path}",
                         hint="COPY and ADD read only below the context directory; move the file into it")


def resolve_in(root: str, path: str, follow_last: bool = True) -> str:
    """`path` resolved as if `root` were "/": a clean relative path, never outside root."""
    parts, resolved, links = [p for p in path.split("/")], [], 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved[:-1]  # ".." at the root stays at the root
            continue
        candidate = os.path.join(root, *resolved, part)
        if (parts or follow_last) and os.path.islink(candidate):
            links += 1
            if links > MAX_SYMLINKS:
                raise DockyardError(f"too many levels of symbolic links in {path}",
                                    hint="a symlink loop in the context or image")
            target = os.readlink(candidate)
            resolved = [] if target.startswith("/") else resolved
            parts = target.split("/") + parts
            continue
        resolved.append(part)
    return "/".join(resolved)


def check_inside(path: str) -> None:
    """Refuse a source path that climbs out of the context with `..`."""
    if posixpath.normpath(path.lstrip("/") or ".").split("/")[0] == "..":
        raise OutsideContext(path)


class Context:
    """A context directory and its .dockerignore."""

    def __init__(self, root: str, matcher: Matcher | None = None) -> None:
        self.root = os.path.realpath(root)
        self.ignore = matcher if matcher is not None else Matcher.from_context(self.root)
        self.known: dict[str, str] = {}  # stat key -> content digest, from the last build
        self.seen: dict[str, str] = {}  # the same, for this build's files, to remember for the next

    def host_path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.host_path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def sources(self, pattern: str) -> list[tuple[str, str]]:
        """(name as written, resolved path) for each file one COPY source names."""
        check_inside(pattern)
        found = [(m, rel) for m, rel in self.glob(pattern) if not self.ignore.excluded(rel)]
        if not found:
            raise DockyardError(f"{pattern}: not found in the build context (or excluded by .dockerignore)",
                                hint="check the path, relative to the context directory, and .dockerignore")
        return found

    def glob(self, pattern: str) -> list[tuple[str, str]]:
        """Match `pattern` component by component, as Go's filepath.Match does."""
        matches = [""]
        for part in [p for p in posixpath.normpath(pattern.lstrip("/") or ".").split("/") if p != "."]:
            if any(c in part for c in MAGIC):
                matches = [posixpath.join(b, n) for b in matches for n in self.names(b) if match_name(n, part)]
            else:
                matches = [posixpath.join(b, part) for b in matches]
        resolved = [(m, resolve_in(self.root, m)) for m in matches]
        return [(m, rel) for m, rel in resolved if rel == "" or self.lstat(rel) is not None]

    def names(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.host_path(resolve_in(self.root, rel))))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        """`rel` and everything below it that .dockerignore lets through, depth first."""
        st = self.lstat(rel)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            if not self.ignore.excluded(rel):
                yield rel, st
            return
        excluded = self.ignore.excluded(rel)
        if not excluded:
            yield rel, st
        if excluded and not self.ignore.has_exceptions:
            return
        for name in sorted(os.listdir(self.host_path(rel))):
            yield from self.walk(posixpath.join(rel, name))

    def checksum(self, sources: list[str]) -> str:
        """A digest of what these sources would copy: names, kinds, modes and bytes."""
        digest = hashlib.sha256()
        for source in sources:
            for rel, st in self.walk(source):
                digest.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
                if stat.S_ISREG(st.st_mode):
                    digest.update(self.file_digest(rel, st).encode())
                elif stat.S_ISLNK(st.st_mode):
                    digest.update(os.readlink(self.host_path(rel)).encode())
        return "sha256:" + digest.hexdigest()


    def file_digest(self, rel: str, st: os.stat_result) -> str:
        """sha256 of a file's bytes, read again only if its stat changed since the last build."""
        key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        digest = self.known.get(key) or file_digest(self.host_path(rel))
        # Git's "racy" rule: a file changed in the last second could change again within the same
        # tick of the clock that stamps ctime, unseen; such a file is not remembered.
        if time.time_ns() - st.st_ctime_ns > 10**9:
            self.seen[key] = digest
        return digest


def match_name(name: str, pattern: str) -> bool:
    """One path component against a glob: * ? [a-z] [!a-z], and backslash escapes."""
    out, i = [], 0
    while i < len(pattern):
        ch, i = pattern[i], i + 1
        if ch == "\\" and i < len(pattern):
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[" and (end := pattern.find("]", i + 1)) > 0:
            body = pattern[i:end]
            out.append("[" + ("^" + body[1:] if body[:1] in "!^" and body else body) + "]")
            i = end + 1
        else:
            out.append({"*": ".*", "?": "."}.get(ch, re.escape(ch)))
    return re.fullmatch("".join(out), name, re.DOTALL) is not None


def file_digest(path: str) -> str:
    """sha256 of a file's bytes, read without following a symlink."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
