"""The distribution spec's vocabulary: media types and error codes.

A registry answers every failure with a JSON body such as
`{"errors": [{"code": "BLOB_UNKNOWN", "message": "..."}]}` and an HTTP status
that goes with the code; clients (skopeo, docker, ours) act on the code.
"""

import json

from . import names

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"

# A manifest is small; a huge one is an attack on memory (the spec lets us refuse).
MAX_MANIFEST = 4 * 1024 * 1024

# code: the HTTP status it goes with (OCI distribution spec v1.1, "Error codes").
STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 404,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
}


class ApiError(Exception):
    """A failure to report to the client as one of the spec's error codes."""

    def __init__(self, code: str, message: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.status = status or STATUS.get(code, 400)
        self.headers = headers or {}

    def body(self) -> bytes:
        """The JSON error document."""
        return json.dumps({"errors": [{"code": self.code, "message": self.message}]}).encode()


def check_digest(digest: str) -> None:
    """DIGEST_INVALID unless `digest` is well formed."""
    if not names.is_digest(digest):
        raise ApiError("DIGEST_INVALID", f"invalid digest {digest[:100]!r}")


def check_reference(reference: str) -> None:
    """A manifest pushed must name a tag or a digest (MANIFEST_INVALID or DIGEST_INVALID)."""
    if not (names.is_tag(reference) or names.is_digest(reference)):
        raise ApiError("MANIFEST_INVALID" if ":" not in reference else "DIGEST_INVALID",
                       f"invalid tag or digest {reference[:100]!r}")


def check_known_reference(name: str, reference: str) -> None:
    """A reference that is neither a tag nor a digest names no manifest: 404, as any unknown one."""
    if not (names.is_tag(reference) or names.is_digest(reference)):
        raise ApiError("MANIFEST_UNKNOWN", f"manifest {reference[:100]!r} of {name} is unknown")
