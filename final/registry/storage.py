# chapter: 06
"""The server's disk: content-addressed blobs, per-repository links, uploads.

    STORAGE/
      blobs/sha256/ab/abcdef...         every blob once, named by its digest
      uploads/<uuid>/data, info         uploads in progress (same filesystem)
      repositories/<name>/
        _layers/sha256/<hex>            this repository may serve that blob
        _manifests/sha256/<hex>         a manifest revision (holds its media type)
        _tags/<tag>                     holds a manifest digest
        _referrers/sha256/<hex>/<...>   descriptors of manifests whose subject is <hex>

A blob becomes visible only by rename(2) after its digest was checked and the
data fsync'ed, so a crash leaves either the whole blob or none of it. Links
make repositories independent: knowing a digest is not enough to read a blob
that was pushed to somebody else's repository.
"""

import hashlib
import json
import os
import shutil
import threading
import uuid as uuidlib
from collections.abc import Iterable

from .. import files
from . import names
from .spec import ApiError

CHUNK = 1 << 20


class Upload:
    """An upload in progress: its size and the running hash of what came so far."""

    def __init__(self, size: int, hasher: "hashlib._Hash | None") -> None:
        self.size, self.hasher, self.lock = size, hasher, threading.Lock()


class Storage:
    """A registry's content on disk, safe to share between request threads."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        for sub in ("blobs", "uploads", "repositories"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self.uploads: dict[str, Upload] = {}
        self.lock = threading.Lock()

    # --- paths: every argument was checked against the grammar first ------------

    def blob_path(self, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        return os.path.join(self.root, "blobs", algorithm, encoded[:2], encoded)

    def repo_path(self, name: str, *parts: str) -> str:
        assert names.is_name(name)
        return os.path.join(self.root, "repositories", name, *parts)

    def link_path(self, name: str, kind: str, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        return self.repo_path(name, kind, algorithm, encoded)

    # --- blobs ---------------------------------------------------------------------

    def has_blob(self, name: str, digest: str) -> bool:
        """True if repository `name` may serve blob `digest`."""
        return os.path.exists(self.link_path(name, "_layers", digest)) and os.path.exists(self.blob_path(digest))

    def blob_size(self, name: str, digest: str) -> int:
        """The size of a blob of `name`, or BLOB_UNKNOWN."""
        if not self.has_blob(name, digest):
            raise ApiError("BLOB_UNKNOWN", f"blob {digest} is unknown to repository {name}")
        return os.path.getsize(self.blob_path(digest))

    def link_blob(self, name: str, digest: str) -> None:
        """Let repository `name` serve an existing blob."""
        write_atomically(self.link_path(name, "_layers", digest), b"")

    def unlink_blob(self, name: str, digest: str) -> None:
        """Forget that `name` has a blob (the bytes stay for other repositories)."""
        try:
            os.unlink(self.link_path(name, "_layers", digest))
        except FileNotFoundError:
            raise ApiError("BLOB_UNKNOWN", f"blob {digest} is unknown to repository {name}") from None

    # --- uploads -------------------------------------------------------------------

    def start_upload(self, name: str, owner: str) -> str:
        """Open an upload session bound to a repository and a user; return its id."""
        upload_id = uuidlib.uuid4().hex
        directory = os.path.join(self.root, "uploads", upload_id)
        os.makedirs(directory)
        write_atomically(os.path.join(directory, "info"), json.dumps({"name": name, "owner": owner}).encode())
        open(os.path.join(directory, "data"), "wb").close()
        with self.lock:
            self.uploads[upload_id] = Upload(0, hashlib.sha256())
        return upload_id

    def upload_size(self, name: str, owner: str, upload_id: str) -> int:
        """Bytes received so far, or BLOB_UPLOAD_UNKNOWN if the session is not theirs."""
        return self.upload(name, owner, upload_id).size

    def upload(self, name: str, owner: str, upload_id: str) -> Upload:
        """The session `upload_id`, only for the repository and user that opened it."""
        directory = os.path.join(self.root, "uploads", upload_id)
        try:
            assert len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)
            with open(os.path.join(directory, "info")) as f:
                info = json.load(f)
            assert info == {"name": name, "owner": owner}
        except (AssertionError, OSError, ValueError):
            raise ApiError("BLOB_UPLOAD_UNKNOWN", f"no upload {upload_id!r} for {name}") from None
        with self.lock:
            if upload_id not in self.uploads:  # the server restarted: start the hash again
                self.uploads[upload_id] = Upload(os.path.getsize(os.path.join(directory, "data")), None)
            return self.uploads[upload_id]

    def append_upload(self, name: str, owner: str, upload_id: str, start: int | None,
                      chunks: Iterable[bytes]) -> int:
        """Append a chunk that must begin at `start` (if given); return the new size."""
        upload = self.upload(name, owner, upload_id)
        # >>> exercise 6.1: the chunked upload: each PATCH appends where the last one ended
        # hint: under upload.lock: a chunk that says where it starts (start is not None) must start at
        # hint: upload.size, or it is ApiError("BLOB_UPLOAD_INVALID", ..., 416). Append each piece of
        # hint: `chunks` to uploads/ID/data (mode "ab"), feed upload.hasher if there is one, count
        # hint: upload.size up, and return the new size.
        # test: test_registry_server.py::test_a_chunked_upload_assembles_the_blob_from_patches_in_order
        # test: test_registry_server.py::test_a_chunk_out_of_order_is_refused_with_416
        # stops: every push
        with upload.lock:
            if start is not None and start != upload.size:
                raise ApiError("BLOB_UPLOAD_INVALID", f"chunk starts at {start}, expected {upload.size}", 416)
            with open(os.path.join(self.root, "uploads", upload_id, "data"), "ab") as f:
                for chunk in chunks:
                    f.write(chunk)
                    if upload.hasher:
                        upload.hasher.update(chunk)
                    upload.size += len(chunk)
            return upload.size
        # <<< exercise 6.1

    # --8<-- [start:finish_upload]
    def finish_upload(self, name: str, owner: str, upload_id: str, digest: str) -> None:
        """Check the digest, then make the blob visible; a mismatch leaves nothing."""
        upload = self.upload(name, owner, upload_id)
        directory = os.path.join(self.root, "uploads", upload_id)
        data = os.path.join(directory, "data")
        with upload.lock:
            algorithm = digest.partition(":")[0]
            hasher = upload.hasher if upload.hasher and algorithm == "sha256" else hash_file(data, algorithm)
            try:
                # >>> exercise 6.2: the digest check: a blob is published only under its own digest
                # hint: `hasher` has hashed the uploaded bytes. If "ALGORITHM:HEX" (f"{algorithm}:{hasher.hexdigest()}")
                # hint: is not the digest the client named, raise ApiError("DIGEST_INVALID", ...): the finally
                # hint: below forgets the upload, so nothing is left of it.
                # test: test_registry_server.py::test_content_that_does_not_match_its_digest_is_refused_and_leaves_nothing
                # test: test_registry_server.py::test_a_manifest_is_served_by_tag_and_by_digest_with_its_media_type
                # stops: every push
                if f"{algorithm}:{hasher.hexdigest()}" != digest:
                    raise ApiError("DIGEST_INVALID", f"the uploaded content does not match {digest}")
                # <<< exercise 6.2
                publish(data, self.blob_path(digest))
                self.link_blob(name, digest)
            finally:
                self.forget_upload(upload_id)
    # --8<-- [end:finish_upload]

    def cancel_upload(self, name: str, owner: str, upload_id: str) -> None:
        """Drop an upload session and its data."""
        self.upload(name, owner, upload_id)
        self.forget_upload(upload_id)

    def forget_upload(self, upload_id: str) -> None:
        with self.lock:
            self.uploads.pop(upload_id, None)
        shutil.rmtree(os.path.join(self.root, "uploads", upload_id), ignore_errors=True)

    # --- manifests and tags ----------------------------------------------------------

    def put_manifest(self, name: str, data: bytes, media_type: str, tag: str | None,
                     algorithm: str = "sha256") -> str:
        """Store a manifest (already checked by the caller), tag it, return its digest in `algorithm`."""
        digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        write_atomically(self.blob_path(digest), data)
        write_atomically(self.link_path(name, "_manifests", digest), media_type.encode())
        if tag:
            write_atomically(self.repo_path(name, "_tags", tag), digest.encode())
        return digest

    def resolve(self, name: str, reference: str) -> tuple[str, str]:
        """A tag or digest of `name` -> (digest, media type), or MANIFEST_UNKNOWN."""
        try:
            if names.is_digest(reference):
                digest = reference
            else:
                with open(self.repo_path(name, "_tags", reference)) as f:
                    digest = f.read()
            with open(self.link_path(name, "_manifests", digest)) as f:
                return digest, f.read()
        except FileNotFoundError:
            code = "MANIFEST_UNKNOWN" if self.exists(name) else "NAME_UNKNOWN"
            raise ApiError(code, f"manifest {reference} of {name} is unknown") from None

    def read_manifest(self, name: str, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def delete_manifest(self, name: str, digest: str) -> None:
        """Delete a revision and every tag that points to it."""
        os.unlink(self.link_path(name, "_manifests", digest))
        for tag in self.tags(name):
            if read_text(self.repo_path(name, "_tags", tag)) == digest:
                os.unlink(self.repo_path(name, "_tags", tag))

    def delete_tag(self, name: str, tag: str) -> None:
        try:
            os.unlink(self.repo_path(name, "_tags", tag))
        except FileNotFoundError:
            raise ApiError("MANIFEST_UNKNOWN", f"tag {tag} of {name} is unknown") from None

    def tags(self, name: str) -> list[str]:
        """The tags of `name`, sorted; NAME_UNKNOWN if there is no such repository."""
        if not self.exists(name):
            raise ApiError("NAME_UNKNOWN", f"repository {name} is unknown")
        directory = self.repo_path(name, "_tags")
        return sorted(t for t in os.listdir(directory) if names.is_tag(t)) if os.path.isdir(directory) else []

    def exists(self, name: str) -> bool:
        return os.path.isdir(self.repo_path(name, "_manifests"))

    def repositories(self) -> list[str]:
        """Every repository that holds at least one manifest, sorted."""
        base, found = os.path.join(self.root, "repositories"), []
        for directory, subdirs, _ in os.walk(base):
            if "_manifests" in subdirs:
                found.append(os.path.relpath(directory, base))
            subdirs[:] = [d for d in subdirs if not d.startswith("_")]
        return sorted(n for n in found if names.is_name(n))

    # --- referrers -------------------------------------------------------------------

    def add_referrer(self, name: str, subject: str, descriptor: dict) -> None:
        """Remember that a manifest refers to `subject` (for the referrers API)."""
        path = os.path.join(self.link_path(name, "_referrers", subject), descriptor["digest"].replace(":", "-"))
        write_atomically(path, json.dumps(descriptor).encode())

    def referrers(self, name: str, subject: str) -> list[dict]:
        """Descriptors of the manifests of `name` whose subject is `subject` and still exist."""
        directory = self.link_path(name, "_referrers", subject)
        found = []
        for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            descriptor = json.loads(read_text(os.path.join(directory, entry)))
            if os.path.exists(self.link_path(name, "_manifests", descriptor["digest"])):
                found.append(descriptor)
        return found


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def hash_file(path: str, algorithm: str) -> "hashlib._Hash":
    """Hash a file by streaming it."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher


def publish(source: str, target: str) -> None:
    """Make a finished file visible at `target`, durably and all at once."""
    with open(source, "rb+") as f:
        os.fsync(f.fileno())
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.replace(source, target)


def write_atomically(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write a small file so that readers never see half of it (the engine's files.write_atomic)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_atomic(path, data, mode)
