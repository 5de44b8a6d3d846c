# chapter: 06
"""Pull and push: moving an image between the local store and a registry.

    pull                                          push
    GET  manifests/<tag>   (an index? pick       HEAD blobs/<digest>   the registry has it: skip
         the platform, GET manifests/<digest>)   POST blobs/uploads/?mount=<digest>&from=<repo>
    GET  blobs/<config>, blobs/<layer>...        POST blobs/uploads/ then PATCH... PUT ?digest=
         (verified, resumed with Range)          PUT  manifests/<tag>  last, once all blobs are there
    store the manifest under its name last

The digest is what makes this safe. We hash every byte as it arrives and
keep a blob only if it hashes to the digest that the manifest names, and the
manifest only if it hashes to the digest we asked for (or the one the
registry announced). A registry, a proxy or a CDN can refuse to serve us,
never make us store something else.
"""

import hashlib
import http.client
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .. import imagespec
from ..errors import DockyardError
from ..reference import Reference
from ..reference import is_digest
from ..reference import parse as parse_reference
from . import spec
from .transport import RegistryError, Session

PARALLEL = 3               # layers at once, as Docker does
CHUNK = 64 << 20           # blobs larger than this are pushed in PATCH chunks of this size
RETRIES = 3                # a broken download resumes this many times
READ = 1 << 20
ACCEPT = ", ".join((spec.OCI_INDEX, spec.DOCKER_LIST, spec.OCI_MANIFEST, spec.DOCKER_MANIFEST))

# report(event, digest, done, total): "exists", "mounted", "download", "upload", "done"
Report = Callable[[str, str, int, int], None]


def quiet(event: str, digest: str, done: int, total: int) -> None:
    pass


# --- pull -----------------------------------------------------------------------------

def pull(store, ref: Reference, session: Session, platform: str | None = None,
         report: Report = quiet) -> str:
    """Download an image into the store; return the digest of the manifest stored."""
    scope = f"repository:{ref.name}:pull"
    data, media_type, digest = fetch_manifest(session, ref, ref.digest or ref.tag or "latest", scope)
    if media_type in spec.INDEX_TYPES:
        entry = choose_platform(imagespec.parse_json(data, "image index"), platform)
        data, media_type, digest = fetch_manifest(session, ref, entry["digest"], scope)
    manifest = imagespec.parse_json(data, "manifest")
    imagespec.check_manifest(manifest)
    if media_type in spec.INDEX_TYPES:
        raise RegistryError(f"{ref} is an index of indexes", hint="pull one of its images by digest")
    blobs = [check_descriptor(d, ref) for d in [manifest["config"], *manifest["layers"]]]
    with ThreadPoolExecutor(PARALLEL) as pool:
        for result in pool.map(lambda d: download_blob(store, session, ref.name, d, scope, report), blobs):
            pass
    store.put_image(data, [str(ref)] if ref.tag else [])
    return digest


# --8<-- [start:fetch_manifest]
def fetch_manifest(session: Session, ref: Reference, version: str, scope: str) -> tuple[bytes, str, str]:
    """GET a manifest, refusing it unless it is small, JSON, and hashes to what was asked."""
    response = session.request("GET", f"/v2/{ref.name}/manifests/{version}", scope, {"Accept": ACCEPT})
    check_status(response, session, f"{ref.name}:{version}")
    data = read_limited(response, spec.MAX_MANIFEST, f"the manifest of {ref}")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    announced = response.getheader("Docker-Content-Digest", "")
    expected = version if version.startswith("sha256:") else announced if announced.startswith("sha256:") else digest
    if digest != expected:
        raise RegistryError(f"the manifest of {ref} hashes to {digest}, not {expected}",
                            hint="the registry (or something between) changed it: nothing was stored")
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
    try:
        media_type = json.loads(data).get("mediaType") or content_type
    except (ValueError, AttributeError):
        media_type = content_type
    if media_type not in spec.MANIFEST_TYPES:
        raise RegistryError(f"{session.registry} answered {content_type or 'something'} for {ref}, not a manifest",
                            hint=f"check that {session.registry} is a registry (and the image name)")
    return data, media_type, digest
# --8<-- [end:fetch_manifest]


def choose_platform(index: dict, platform: str | None) -> dict:
    """The entry of a multi-platform index for `os/arch[/variant]` (default: this machine)."""
    wanted = (platform or f"linux/{imagespec.architecture()}").split("/")
    for entry in index.get("manifests", []):
        p = entry.get("platform", {})
        have = [p.get("os", ""), p.get("architecture", ""), p.get("variant", "")][:len(wanted)]
        if have == wanted or (len(wanted) == 2 and have[:2] == wanted):
            return entry
    available = ", ".join(sorted({f"{e.get('platform', {}).get('os')}/{e.get('platform', {}).get('architecture')}"
                                  for e in index.get("manifests", [])}))
    raise RegistryError(f"the image has no variant for {'/'.join(wanted)}",
                        hint=f"available: {available}; choose one with --platform")


def check_descriptor(descriptor: object, ref: Reference) -> dict:
    """A descriptor from a registry's manifest: a sha256 digest and a size, or refuse the image."""
    ok = (isinstance(descriptor, dict) and is_digest(str(descriptor.get("digest")))
          and isinstance(descriptor.get("size"), int) and descriptor["size"] >= 0)
    if not ok:
        raise RegistryError(f"the manifest of {ref} has a malformed descriptor",
                            hint="the registry is broken or hostile: nothing was stored")
    return descriptor


def download_blob(store, session: Session, name: str, descriptor: dict, scope: str, report: Report) -> None:
    """Fetch one blob into the store, resuming with Range after a break; verified on arrival."""
    digest, size = descriptor["digest"], descriptor["size"]
    if store.has_blob(digest):
        return report("exists", digest, size, size)

    def write(out: object) -> None:
        for _ in range(RETRIES + 1):
            if fetch_into(out, session, name, digest, size, scope, report):
                return
        raise RegistryError(f"the download of {digest} broke {RETRIES + 1} times",
                            hint="the network or the registry is unreliable; run pull again to resume")

    store.put_blob_with(write, digest, size)
    report("done", digest, size, size)


# --8<-- [start:fetch_into]
def fetch_into(out, session: Session, name: str, digest: str, size: int, scope: str, report: Report) -> bool:
    """Append the rest of a blob to `out`; False if the answer broke off before its end."""
    start = out.size
    response = session.request("GET", f"/v2/{name}/blobs/{digest}", scope,
                               {"Range": f"bytes={start}-"} if start else {})
    check_status(response, session, f"blob {digest}")
    skip = start if response.status == 200 else 0  # the registry ignored Range: drop what we have
    buffer = memoryview(bytearray(READ))  # refilled in place: no new 1 MiB object per read
    try:
        while n := response.readinto(buffer):
            chunk, skip = buffer[min(skip, n):n], max(0, skip - n)
            out.write(chunk)
            if out.size > size:
                raise RegistryError(f"blob {digest} is larger than the {size} bytes its manifest says",
                                    hint="the registry is broken or hostile: nothing was stored")
            report("download", digest, out.size, size)
    except (OSError, http.client.HTTPException):
        session.drop(session.scheme, session.host)
        return False
    if response.length:  # the connection closed before Content-Length bytes came: resume
        session.drop(session.scheme, session.host)
        return False
    return True  # a whole answer; put_blob_with checks its size and digest
# --8<-- [end:fetch_into]


# --- push ----------------------------------------------------------------------------------

def push(store, image, ref: Reference, session: Session, report: Report = quiet) -> str:
    """Upload an image's blobs (skipping what the registry has), then its manifest."""
    digest = image.manifest_digest or image.digest
    data = store.read_blob(digest)
    scope = f"repository:{ref.name}:pull,push"
    session.request("GET", "/v2/", scope).read()  # authenticate now: a streamed body cannot be re-sent
    blobs = [image.manifest["config"], *image.manifest["layers"]]
    sources = mount_sources(image.names, ref)
    with ThreadPoolExecutor(PARALLEL) as pool:
        for result in pool.map(lambda d: upload_blob(store, session, ref.name, d, scope, report, sources), blobs):
            pass
    media_type = image.manifest.get("mediaType", spec.OCI_MANIFEST)
    response = session.request("PUT", f"/v2/{ref.name}/manifests/{ref.tag or digest}", scope,
                               {"Content-Type": media_type}, data)
    check_status(response, session, f"manifest of {ref}")
    response.read()
    return digest


def mount_sources(names: list[str], ref: Reference) -> list[str]:
    """Other repositories of the same registry that this image came from: their blobs can be mounted."""
    found = []
    for name in names:
        try:
            other = parse_reference(name)
        except DockyardError:
            continue
        if other.registry == ref.registry and other.name != ref.name:
            found.append(other.name)
    return found


def upload_blob(store, session: Session, name: str, descriptor: dict, scope: str, report: Report,
                sources: list[str] = ()) -> None:
    """Make sure the registry has one blob: HEAD it, mount it from a sibling, or upload it."""
    digest, size = descriptor["digest"], int(descriptor["size"])
    response = session.request("HEAD", f"/v2/{name}/blobs/{digest}", scope)
    response.read()
    if response.status == 200:
        return report("exists", digest, size, size)
    query = f"?mount={digest}&from={sources[0]}" if sources else ""
    response = session.request("POST", f"/v2/{name}/blobs/uploads/{query}", scope, {"Content-Length": "0"}, b"")
    check_status(response, session, f"upload of {digest}")
    if response.status == 201:  # mounted: the registry linked the blob it already had
        response.read()
        return report("mounted", digest, size, size)
    response.read()
    location = response.getheader("Location", "")
    with open(store.blob_path(digest), "rb") as f:
        offset = 0
        while size - offset > CHUNK:
            location = send_chunk(session, location, scope, f, offset, CHUNK)
            offset += CHUNK
            report("upload", digest, offset, size)
        separator = "&" if "?" in location else "?"
        response = session.request("PUT", f"{location}{separator}digest={digest}", scope,
                                   {"Content-Type": "application/octet-stream",
                                    "Content-Length": str(size - offset)}, Slice(f, size - offset))
        check_status(response, session, f"upload of {digest}")
        response.read()
    report("done", digest, size, size)


def send_chunk(session: Session, location: str, scope: str, f, offset: int, length: int) -> str:
    """PATCH one chunk at `offset`; return where the next one goes."""
    response = session.request("PATCH", location, scope, {
        "Content-Type": "application/octet-stream", "Content-Length": str(length),
        "Content-Range": f"{offset}-{offset + length - 1}"}, Slice(f, length))
    check_status(response, session, "a chunk upload")
    response.read()
    return response.getheader("Location", location)


class Slice:
    """The next `length` bytes of a file, as a body http.client can stream."""

    def __init__(self, file, length: int) -> None:
        self.file, self.left = file, length

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(self.left if n < 0 else min(n, self.left))
        self.left -= len(data)
        return data


# --- answers ------------------------------------------------------------------------------

def check_status(response: http.client.HTTPResponse, session: Session, what: str) -> None:
    """Turn an error answer into a RegistryError that names the spec's code."""
    if response.status < 300:
        return
    body = response.read(64 << 10)
    try:
        error = json.loads(body)["errors"][0]
        code, message = error.get("code", ""), error.get("message", "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        code, message = "", body[:100].decode(errors="replace").strip()
    if response.status == 404 or code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"):
        raise RegistryError(f"{what} not found on {session.registry}" + (f" ({code})" if code else ""),
                            hint="check the name and the tag")
    raise RegistryError(f"{session.registry} answered HTTP {response.status} for {what}: {code} {message}".strip(),
                        hint="see the registry's message above")


def read_limited(response: http.client.HTTPResponse, limit: int, what: str) -> bytes:
    """Read a whole answer, refusing one larger than `limit` before it fills memory."""
    length = response.getheader("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        response.close()
        raise RegistryError(f"{what} is {int(length)} bytes, over the {limit} allowed",
                            hint="the registry is broken or hostile: nothing was stored")
    data = response.read(limit + 1)
    if len(data) > limit:
        response.close()
        raise RegistryError(f"{what} is over the {limit} bytes allowed",
                            hint="the registry is broken or hostile: nothing was stored")
    if length is None:
        response.read()
    return data
