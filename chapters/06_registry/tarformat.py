"""The tar format, read and written by hand: 512-byte headers, then data.

A layer is a tar archive, and tar is a simple format: each member is a
512-byte header (name, mode, owner, size, type ... as octal text) followed by
its data padded to 512 bytes; two zero blocks end the archive. Two extensions
carry what the old header cannot: GNU's `L`/`K` members hold long names, and
POSIX pax `x` members hold `key=value` records (long names, big numbers,
extended attributes as `SCHILY.xattr.NAME`).

We read the format ourselves, rather than through `tarfile`, so that the
unpacker (tar.py) sees every field and decides itself what is safe, and so
that the same stream can be decompressed and hashed in one pass: a layer's
"diff id" is the sha256 of its uncompressed bytes. The hash runs on a thread
of its own, beside the parsing and the writing (see `BackgroundHash`).
"""

import hashlib
import os
import queue
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from .errors import DockyardError

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)  # two of them end the archive
CHUNK = 1 << 20
REGULAR, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
# As in tarfile: only regular files (and unknown types) are followed by data.
DATA_LESS = (HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO)
GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


class BadArchive(DockyardError):
    """The archive is truncated, corrupted, or uses a feature we refuse."""

    def __init__(self, problem: str, hint: str = "the file is damaged or not a tar archive; "
                                                 "fetch or create it again") -> None:
        super().__init__(problem, hint)


@dataclass
class Member:
    """One archive member, with the pax and GNU extensions already applied."""
    name: str
    type: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


class BackgroundHash:
    """The sha256 of the pieces given to `update`, computed on a thread of its own.

    The hash is half of what unpacking a layer of large files costs (GNU tar
    does not hash at all). hashlib lets go of the GIL while it hashes a piece
    longer than 2 KiB, so with a second core idle the thread hashes one piece
    while the caller parses and writes the next: the hash leaves the critical
    path. At most AHEAD pieces wait, so a slow hasher holds the reader back
    rather than letting the layer pile up in memory. With no CPU to spare,
    two threads could only take turns (10-20% slower than hashing in place
    here): then the hash runs in place. `close` ends every use, error or not,
    and waits for the thread: what the engine does next wants a process of
    one thread (unshare(2) and setns(2) refuse a threaded process a user or
    mount namespace; fork(2) copies one thread, not the locks others hold)."""

    AHEAD = 4

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.pieces: queue.Queue[bytes | None] = queue.Queue(self.AHEAD)
        self.thread = threading.Thread(target=self.hash_pieces, name="sha256", daemon=True)
        self.in_place = not cpu_to_spare()
        if not self.in_place:
            self.thread.start()

    def hash_pieces(self) -> None:
        for piece in iter(self.pieces.get, None):  # None: the stream is over
            self.sha256.update(piece)  # without the GIL: the caller parses and writes meanwhile

    def update(self, piece: bytes) -> None:
        if self.in_place:
            self.sha256.update(piece)
        else:
            self.pieces.put(piece)  # waits while AHEAD pieces are still to hash

    def close(self) -> None:
        """Hash what is queued, then end the thread; a second call does nothing."""
        if self.thread.is_alive():
            self.pieces.put(None)
            self.thread.join()

    def hexdigest(self) -> str:
        self.close()
        return self.sha256.hexdigest()


def cpu_to_spare() -> bool:
    """Whether a second thread would find a CPU idle: this process may run on more than one, and
    fewer tasks than that were runnable over the last minute (the load average, as `make -l` asks)."""
    cpus = len(os.sched_getaffinity(0))
    return cpus > 1 and os.getloadavg()[0] < cpus


class TarStream:
    """Reads a plain or gzip tar from `source`, hashing the uncompressed bytes.

    The data sits in one buffer of about CHUNK bytes: headers are sliced out
    of it and file data is written from it to the new file without a copy
    (`memoryview`), so each byte of the layer is read once, hashed once and
    written once, as GNU tar reads and writes it (but GNU tar does not hash).
    Use it in a `with` block: it ends the hashing thread on the way out."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.size = 0
        self.buf, self.pos = b"", 0
        first = source.read(CHUNK)
        if first.startswith(ZSTD_MAGIC):
            raise BadArchive("zstd-compressed layers are not supported",
                             hint="Python's standard library has no zstd; use gzip layers")
        self.inflate = zlib.decompressobj(31) if first.startswith(GZIP_MAGIC) else None
        self.hash = BackgroundHash()
        try:
            self._take(first)
        except BaseException:  # a corrupted gzip start: no __exit__ will run to end the thread
            self.hash.close()
            raise

    def __enter__(self) -> "TarStream":
        return self

    def __exit__(self, *_: object) -> None:
        self.hash.close()

    def _take(self, data: bytes) -> None:
        """Append freshly read input (decompressed if needed) to the buffer."""
        if self.inflate is not None:
            data = self._decompress(data)
        self.hash.update(data)
        self.size += len(data)
        self.buf, self.pos = data, 0  # callers fill only once the buffer is used up: nothing to keep
        self.view = memoryview(data)  # file data is written from slices of it, never copied

    def _decompress(self, data: bytes) -> bytes:
        try:
            out = self.inflate.decompress(data)
            while self.inflate.eof and self.inflate.unused_data:  # gzip files may be concatenated
                rest = self.inflate.unused_data
                self.inflate = zlib.decompressobj(31)
                out += self.inflate.decompress(rest)
        except zlib.error as err:
            raise BadArchive(f"the gzip data is corrupted: {err}") from err
        return out

    def _fill(self) -> bool:
        """Read more input; False at the end of the input."""
        data = self.source.read(CHUNK)
        if not data:
            if self.inflate is not None and not self.inflate.eof:
                raise BadArchive("the gzip stream ends early (truncated file)")
            return False
        self._take(data)
        return True

    def read(self, n: int) -> bytes:
        """Exactly `n` bytes, or fewer only at the end of the input."""
        data = self.buf[self.pos:self.pos + n]
        self.pos += len(data)
        if len(data) == n:  # nearly always: the whole header is in the buffer
            return data
        while len(data) < n and self._fill():  # the rest is in the next chunk(s)
            more = self.buf[:n - len(data)]
            self.pos = len(more)
            data += more
        return data

    def copy(self, n: int, fd: int) -> None:
        """Write the next `n` bytes to `fd` (or drop them if fd is -1)."""
        while n:
            if self.pos == len(self.buf) and not self._fill():
                raise BadArchive("the archive ends in the middle of a file (truncated)")
            take = min(n, len(self.buf) - self.pos)
            if fd >= 0:
                view = self.view[self.pos:self.pos + take]
                while view:
                    view = view[os.write(fd, view):]
            self.pos += take
            n -= take

    def skip(self, n: int) -> None:
        """Drop the next `n` bytes (a member's padding, or the data of one we do not create)."""
        if n <= len(self.buf) - self.pos:  # nearly always: padding is under 512 bytes
            self.pos += n
        else:
            self.copy(n, -1)

    def tell(self) -> int:
        """How many uncompressed bytes have been consumed."""
        return self.size - (len(self.buf) - self.pos)

    def drain(self) -> None:
        """Consume the rest (the zero blocks after the end), so the digest covers it."""
        self.pos = len(self.buf)
        while self._fill():
            self.pos = len(self.buf)

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


# --- reading headers ----------------------------------------------------------

def number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU's base-256 when the top bit is set."""
    try:
        return int(field.strip(b" \0") or b"0", 8)  # nearly always; int() refuses a byte >= 0x80
    except ValueError:
        pass
    if field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return value - (1 << (8 * len(field) - 1)) if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip()  # text after the NUL, or not a number at all
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise BadArchive(f"bad number {text!r} in a tar header") from None


def text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def check_header(block: bytes) -> None:
    """The checksum: the sum of the header's bytes, its own field counted as spaces."""
    if number(block[148:156]) != byte_sum(block) - sum(block[148:156]) + 256:
        raise BadArchive("a tar header has a bad checksum (corrupted or not a tar archive)")


def byte_sum(block: bytes) -> int:
    """The sum of a 512-byte block's bytes, at C speed (sum() walks 512 Python ints: 5x slower)."""
    # Adler-32's low half is 1 + the sum of the bytes modulo 65521; 256 bytes sum to at most
    # 65280, so for each half of the block the modulo never bites and the sum is exact.
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


# The ustar header's fields, in order (POSIX.1-1988 + the ustar magic); "x" pads it to 512 bytes.
HEADER = struct.Struct("100s 8s 8s 8s 12s 12s 8s c 100s 6s 2s 32s 32s 8s 8s 155s 12x")


def parse_header(block: bytes) -> Member:
    """Decode one 512-byte ustar/GNU header (already checked)."""
    (name, mode, uid, gid, size, mtime, _checksum, kind, linkname,
     magic, _version, _uname, _gname, devmajor, devminor, prefix) = HEADER.unpack(block)
    path = text(name)
    if magic == b"ustar\0" and prefix[0] != 0:  # POSIX: a prefix for long names
        path = text(prefix) + "/" + path
    m = Member(path, kind, number(mode), number(uid), number(gid), number(size), number(mtime) * 10**9)
    if kind in (HARDLINK, SYMLINK):
        m.linkname = text(linkname)
    elif kind in (CHAR, BLOCKDEV):
        m.devmajor, m.devminor = number(devmajor), number(devminor)
    return m


def parse_pax(data: bytes) -> dict[str, bytes]:
    """Decode pax records: 'LENGTH key=value\\n', LENGTH counting the whole record."""
    records, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        length_text, _, _ = data[pos:pos + 20].partition(b" ")
        length = int(length_text) if length_text.isdigit() else 0
        key, sep, value = data[pos + len(length_text) + 1:pos + length - 1].partition(b"=")
        if length <= 0 or not sep or data[pos + length - 1:pos + length] != b"\n":
            raise BadArchive("a pax header record is malformed")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


IGNORED_PAX = frozenset(("atime", "ctime"))  # GNU tar's pax format writes both for every file


def apply_pax(member: Member, pax: dict[str, bytes]) -> None:
    """Let pax records override the header's fields."""
    for key, value in pax.items():
        if key in IGNORED_PAX:
            continue
        if key == "path":
            member.name = value.decode("utf-8", "surrogateescape")
        elif key == "linkpath":
            member.linkname = value.decode("utf-8", "surrogateescape")
        elif key in ("size", "uid", "gid"):
            setattr(member, key, int(value))
        elif key == "mtime":
            seconds, _, fraction = value.decode().partition(".")
            member.mtime_ns = int(seconds) * 10**9 + int((fraction + "000000000")[:9])
        elif key.startswith("SCHILY.xattr."):
            member.xattrs[key[len("SCHILY.xattr."):]] = value
        elif key.startswith("GNU.sparse"):
            raise BadArchive("sparse files in layers are not supported",
                             hint="create the archive without --sparse")


def padding(size: int) -> int:
    return -size % BLOCK


def members(stream: TarStream) -> Iterator[Member]:
    """Yield each member; the caller may read its data (`size` bytes) before the next."""
    pax: dict[str, bytes] = {}
    global_pax: dict[str, bytes] = {}
    while True:
        block = stream.read(BLOCK)
        if len(block) < BLOCK or block == ZERO_BLOCK:
            if 0 < len(block) < BLOCK:
                raise BadArchive("the archive ends in the middle of a header (truncated)")
            stream.drain()
            return
        check_header(block)
        kind = block[156:157]
        if kind in (b"x", b"g", b"L", b"K"):
            size = number(block[124:136])
            data = stream.read(size + padding(size))[:size]
            if len(data) < size:
                raise BadArchive("the archive ends inside an extended header (truncated)")
            if kind == b"x":
                pax.update(parse_pax(data))
            elif kind == b"g":
                global_pax.update(parse_pax(data))
            else:
                pax["path" if kind == b"L" else "linkpath"] = data.split(b"\0", 1)[0]
            continue
        member = parse_header(block)
        if member.type == b"S":
            raise BadArchive("GNU sparse files in layers are not supported",
                             hint="create the archive without --sparse")
        if pax or global_pax:
            apply_pax(member, {**global_pax, **pax} if global_pax else pax)
            pax = {}
        if member.type not in DATA_LESS:
            start = stream.tell()
            yield member
            stream.skip(member.size - (stream.tell() - start) + padding(member.size))
        else:
            yield member


# --- writing headers -----------------------------------------------------------

def octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def ustar_block(name: bytes, prefix: bytes, link: bytes, m: Member) -> bytes:
    """One 512-byte POSIX ustar header; fields must already fit."""
    block = b"".join([
        name.ljust(100, b"\0"), octal(m.mode, 8), octal(m.uid, 8), octal(m.gid, 8),
        octal(m.size, 12), octal(m.mtime_ns // 10**9, 12), b" " * 8, m.type, link.ljust(100, b"\0"),
        b"ustar\x0000", bytes(64), octal(m.devmajor, 8), octal(m.devminor, 8),
        prefix.ljust(155, b"\0"), bytes(12)])
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def split_name(raw: bytes) -> tuple[bytes, bytes] | None:
    """Split a path into ustar's prefix (155) and name (100), or None if it cannot be."""
    if len(raw) <= 100:
        return b"", raw
    cut = raw.find(b"/", max(0, len(raw) - 101))
    if 0 < cut <= 155 and len(raw) - cut - 1 <= 100:
        return raw[:cut], raw[cut + 1:]
    return None


def pax_record(key: str, value: bytes) -> bytes:
    """'LENGTH key=value\\n', where LENGTH counts its own digits too."""
    body = b" %s=%s\n" % (key.encode("utf-8", "surrogateescape"), value)
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def header(m: Member) -> bytes:
    """The header block(s) for `m`: ustar, preceded by a pax header when fields do not fit."""
    raw, link = os.fsencode(m.name), os.fsencode(m.linkname)
    pax: dict[str, bytes] = {}
    split = split_name(raw)
    if split is None:
        pax["path"], split = raw, (b"", raw[-100:])
    if len(link) > 100:
        pax["linkpath"], link = link, link[:100]
    for key, limit in (("size", 8**11), ("uid", 8**7), ("gid", 8**7)):
        if getattr(m, key) >= limit:
            pax[key] = str(getattr(m, key)).encode()
    for key, value in sorted(m.xattrs.items()):
        pax["SCHILY.xattr." + key] = value
    fitted = Member(**{**m.__dict__, "size": 0 if "size" in pax else m.size,
                       "uid": 0 if "uid" in pax else m.uid, "gid": 0 if "gid" in pax else m.gid})
    block = ustar_block(split[1], split[0], link, fitted)
    if not pax:
        return block
    data = b"".join(pax_record(k, v) for k, v in pax.items())
    pax_name = b"PaxHeader/" + os.path.basename(raw.rstrip(b"/"))[:90]
    pax_member = Member(name="", type=b"x", mode=0o644, size=len(data), mtime_ns=m.mtime_ns)
    return ustar_block(pax_name, b"", b"", pax_member) + data + bytes(padding(len(data))) + block
