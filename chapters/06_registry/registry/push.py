"""The push half of the API: uploads (whole, chunked, mounted) and manifests.

    POST  /v2/<name>/blobs/uploads/                 -> 202, Location: .../uploads/<id>
    PATCH /v2/<name>/blobs/uploads/<id>             Content-Range: 0-1023 -> 202, Range: 0-1023
    PUT   /v2/<name>/blobs/uploads/<id>?digest=...  -> 201 once the digest checks out
    POST  /v2/<name>/blobs/uploads/?digest=...      the same in one request
    POST  /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>   -> 201, no bytes sent
    PUT   /v2/<name>/manifests/<tag|digest>         -> 201, after checking every blob it names

An upload id is a random 128-bit name, and the session is also bound to its
repository and user: guessing or borrowing another's upload gets
BLOB_UPLOAD_UNKNOWN.
"""

import hashlib
import json
import re

from . import names, spec
from .spec import ApiError, check_digest, check_reference


def owner(request) -> str:
    """Who opened an upload: the authenticated user, or nobody."""
    return request.user if request.user != "-" else ""


def start_upload(request, name: str) -> None:
    """POST: open an upload, or do it all at once (?digest=), or mount (?mount=&from=)."""
    storage, query = request.registry.storage, request.query
    mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
    # A token client asked only for this repository could not mount: the challenge also names the source.
    mounting = mount and names.is_name(source)
    request.authorize("repository", name, "push", (f"repository:{source}:pull",) if mounting else ())
    if mount and source and names.is_digest(mount) and names.is_name(source) \
            and request.may("repository", source, "pull") and storage.has_blob(source, mount):
        storage.link_blob(name, mount)
        return blob_created(request, name, mount)
    upload_id = storage.start_upload(name, owner(request))
    if "digest" in query:
        digest = query["digest"][0]
        check_digest_or_cancel(request, name, upload_id, digest)
        storage.append_upload(name, owner(request), upload_id, None, request.body())
        storage.finish_upload(name, owner(request), upload_id, digest)
        return blob_created(request, name, digest)
    upload_accepted(request, name, upload_id, 0, 202)


def check_digest_or_cancel(request, name: str, upload_id: str, digest: str) -> None:
    if not names.is_digest(digest):
        request.registry.storage.cancel_upload(name, owner(request), upload_id)
        check_digest(digest)


def upload_status(request, name: str, upload_id: str) -> None:
    request.authorize("repository", name, "push")
    size = request.registry.storage.upload_size(name, owner(request), upload_id)
    upload_accepted(request, name, upload_id, size, 204)


def patch_upload(request, name: str, upload_id: str) -> None:
    """PATCH: append a chunk; out of order (Content-Range) is 416."""
    request.authorize("repository", name, "push")
    start = parse_content_range(request.headers.get("Content-Range"))
    size = request.registry.storage.append_upload(name, owner(request), upload_id, start, request.body())
    upload_accepted(request, name, upload_id, size, 202)


def parse_content_range(header: str | None) -> int | None:
    """The first byte of a chunk from `Content-Range: A-B` (or `bytes A-B/*`)."""
    if not header:
        return None
    match = re.fullmatch(r"(?:bytes[ =])?(\d{1,18})-(\d{1,18})(?:/(?:\d+|\*))?", header.strip())
    if not match or int(match.group(2)) < int(match.group(1)):
        raise ApiError("BLOB_UPLOAD_INVALID", f"bad Content-Range {header[:100]!r}", 416)
    return int(match.group(1))


def finish_upload(request, name: str, upload_id: str) -> None:
    """PUT ?digest=: the last chunk (maybe empty), then the digest check."""
    request.authorize("repository", name, "push")
    storage, digest = request.registry.storage, request.query.get("digest", [""])[0]
    storage.upload(name, owner(request), upload_id)  # unknown upload: 404 before anything else
    check_digest_or_cancel(request, name, upload_id, digest)
    if request.has_body():  # a last chunk rides on the PUT: out of order is 416, as for a PATCH
        start = parse_content_range(request.headers.get("Content-Range"))
        storage.append_upload(name, owner(request), upload_id, start, request.body())
    storage.finish_upload(name, owner(request), upload_id, digest)
    blob_created(request, name, digest)


def cancel_upload(request, name: str, upload_id: str) -> None:
    request.authorize("repository", name, "push")
    request.registry.storage.cancel_upload(name, owner(request), upload_id)
    request.reply(204)


def upload_accepted(request, name: str, upload_id: str, size: int, status: int) -> None:
    request.reply(status, headers={"Location": f"/v2/{name}/blobs/uploads/{upload_id}",
                                   "Range": f"0-{max(size - 1, 0)}", "Docker-Upload-UUID": upload_id})


def blob_created(request, name: str, digest: str) -> None:
    request.reply(201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})


# --8<-- [start:put_manifest]
def put_manifest(request, name: str, reference: str) -> None:
    """PUT a manifest: check it and the blobs it names, store it, tag it."""
    request.authorize("repository", name, "push")
    check_reference(reference)
    data = request.read_body(spec.MAX_MANIFEST)
    manifest, media_type = parse_manifest(data, request.headers.get("Content-Type", ""))
    if names.is_digest(reference) and digest_of(data, reference) != reference:
        raise ApiError("DIGEST_INVALID", f"the manifest does not match {reference}")
    check_references(request.registry.storage, name, manifest, media_type)
    tag = None if names.is_digest(reference) else reference
    algorithm = reference.partition(":")[0] if names.is_digest(reference) else "sha256"
    digest = request.registry.storage.put_manifest(name, data, media_type, tag, algorithm)
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
    subject = manifest.get("subject")
    if isinstance(subject, dict) and names.is_digest(str(subject.get("digest"))):
        request.registry.storage.add_referrer(name, subject["digest"], descriptor_of(manifest, media_type, data))
        headers["OCI-Subject"] = subject["digest"]
    request.reply(201, headers=headers)
# --8<-- [end:put_manifest]


def parse_manifest(data: bytes, content_type: str) -> tuple[dict, str]:
    """The manifest as JSON and its media type, or MANIFEST_INVALID."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("MANIFEST_INVALID", "the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise ApiError("MANIFEST_INVALID", "the manifest is not a schemaVersion 2 object")
    media_type = manifest.get("mediaType") or content_type.split(";")[0].strip()
    if media_type not in spec.MANIFEST_TYPES:
        raise ApiError("MANIFEST_INVALID", f"unsupported manifest media type {media_type[:100]!r}")
    return manifest, media_type


def check_references(storage, name: str, manifest: dict, media_type: str) -> None:
    """Every blob (or child manifest) a manifest names must already be in the repository."""
    index = media_type in spec.INDEX_TYPES
    children = manifest.get("manifests" if index else "layers") or []
    descriptors = children if index else [manifest.get("config"), *children]
    if not isinstance(children, list) or not all(isinstance(d, dict) for d in descriptors):
        raise ApiError("MANIFEST_INVALID", "the manifest's descriptors are malformed")
    for descriptor in descriptors:
        digest = str(descriptor.get("digest"))
        check_digest(digest)
        present = storage.exists(name) and _has_manifest(storage, name, digest) if index \
            else storage.has_blob(name, digest)
        if not present and not is_non_distributable(descriptor):
            raise ApiError("MANIFEST_BLOB_UNKNOWN", f"{digest} is not in repository {name}")


def is_non_distributable(descriptor: dict) -> bool:
    """A layer its publisher may not share (licensed OS layers): fetched from its `urls`, never pushed."""
    media_type = str(descriptor.get("mediaType", ""))
    return "nondistributable" in media_type or media_type.startswith(spec.DOCKER_FOREIGN_LAYER)


def _has_manifest(storage, name: str, digest: str) -> bool:
    try:
        storage.resolve(name, digest)
        return True
    except ApiError:
        return False


def descriptor_of(manifest: dict, media_type: str, data: bytes) -> dict:
    """The referrers-list entry for a manifest."""
    descriptor = {"mediaType": media_type, "digest": digest_of(data, "sha256:"), "size": len(data)}
    artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if isinstance(manifest.get("annotations"), dict):
        descriptor["annotations"] = manifest["annotations"]
    return descriptor


def digest_of(data: bytes, like: str) -> str:
    algorithm = like.partition(":")[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
