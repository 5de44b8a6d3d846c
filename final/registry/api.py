# chapter: 06
"""The endpoints of the OCI distribution spec v1.1, one small function each.

    GET    /v2/                                   "I speak the API" (and: who are you?)
    GET    /v2/<name>/manifests/<tag|digest>      pull a manifest (HEAD: does it exist?)
    GET    /v2/<name>/blobs/<digest>              pull a blob, or part of it (Range)
    POST   /v2/<name>/blobs/uploads/              start a push (?digest= in one go, ?mount= from elsewhere)
    PATCH  /v2/<name>/blobs/uploads/<id>          send a chunk (Content-Range says where it starts)
    PUT    /v2/<name>/blobs/uploads/<id>?digest=  finish: the registry checks the digest
    PUT    /v2/<name>/manifests/<tag|digest>      publish the manifest, after its blobs
    GET    /v2/<name>/tags/list, /v2/_catalog     what is there (?n= and ?last= page it)
    GET    /v2/<name>/referrers/<digest>          the manifests whose subject is <digest>
    DELETE manifests, tags, blobs, uploads

The push endpoints live in push.py. The name in the path is matched
greedily and then checked against the grammar, so `/v2/../x/blobs/...` or `/v2/a//b/...` is refused before any
storage call. Each endpoint first asks the handler to authorize its action.
"""

import json
import os
import re
import urllib.parse
from collections.abc import Callable
from typing import NoReturn

from . import names, push, spec
from .spec import ApiError, check_digest, check_known_reference

ROUTES: list[tuple[str, re.Pattern, str]] = [
    (m, re.compile(p), f) for m, p, f in [  # the first match wins: uploads before blobs
        ("GET", r"/v2/?", "version_check"),
        ("GET", r"/v2/_catalog", "catalog"),
        ("GET", r"/v2/(.+)/tags/list", "tags_list"),
        ("GET HEAD", r"/v2/(.+)/manifests/([^/]+)", "get_manifest"),
        ("PUT", r"/v2/(.+)/manifests/([^/]+)", "put_manifest"),
        ("DELETE", r"/v2/(.+)/manifests/([^/]+)", "delete_manifest"),
        ("POST", r"/v2/(.+)/blobs/uploads/?", "start_upload"),
        ("GET", r"/v2/(.+)/blobs/uploads/([^/]+)", "upload_status"),
        ("PATCH", r"/v2/(.+)/blobs/uploads/([^/]+)", "patch_upload"),
        ("PUT", r"/v2/(.+)/blobs/uploads/([^/]+)", "finish_upload"),
        ("DELETE", r"/v2/(.+)/blobs/uploads/([^/]+)", "cancel_upload"),
        ("GET HEAD", r"/v2/(.+)/blobs/([^/]+)", "get_blob"),
        ("DELETE", r"/v2/(.+)/blobs/([^/]+)", "delete_blob"),
        ("GET", r"/v2/(.+)/referrers/([^/]+)", "referrers"),
    ]
]


def route(method: str, path: str, tokens: object) -> tuple[Callable, tuple]:
    """The endpoint for a request and its arguments, with the name already checked."""
    if tokens is not None and path == urllib.parse.urlsplit(tokens.realm).path and method == "GET":
        return token_endpoint, ()
    for methods, pattern, endpoint in ROUTES:
        match = pattern.fullmatch(path)
        if match and method in methods.split():
            args = match.groups()
            if args and not names.is_name(args[0]):
                raise ApiError("NAME_INVALID", f"invalid repository name {args[0][:100]!r}")
            return getattr(push, endpoint, None) or globals()[endpoint], args
    not_allowed(method, path)


def not_allowed(method: str, path: str) -> NoReturn:
    if any(pattern.fullmatch(path) for _, pattern, _ in ROUTES):
        raise ApiError("UNSUPPORTED", f"{method} is not allowed on {path[:100]}", 405)
    raise ApiError("NAME_UNKNOWN", f"{path[:100]} is not part of the API", 404)


# --- the base check and the token endpoint ----------------------------------------------

def version_check(request) -> None:
    request.authorize("", "", "")
    request.reply(200, b"{}", content_type="application/json")


def token_endpoint(request) -> None:
    """GET /token?service=&scope=...: a bearer token for what this user may do."""
    registry, header = request.registry, request.headers.get("Authorization", "")
    user = ""
    if header:
        user = registry.passwords.check_basic(header) if registry.passwords else None
        if not user:
            raise ApiError("UNAUTHORIZED", "wrong user name or password")
    request.user = user or "-"
    answer = registry.tokens.issue(user, registry.grant(user, request.query.get("scope", [])))
    request.reply(200, json.dumps(answer).encode(), content_type="application/json")


# --- pull ------------------------------------------------------------------------------

def get_manifest(request, name: str, reference: str) -> None:
    request.authorize("repository", name, "pull")
    check_known_reference(name, reference)
    digest, media_type = request.registry.storage.resolve(name, reference)
    path = request.registry.storage.blob_path(digest)
    headers = {"Docker-Content-Digest": digest, "Content-Type": media_type, "ETag": f'"{digest}"'}
    request.reply_file(200, path, 0, os.path.getsize(path), headers)


def get_blob(request, name: str, digest: str) -> None:
    request.authorize("repository", name, "pull")
    check_digest(digest)
    storage = request.registry.storage
    size = storage.blob_size(name, digest)
    headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
    wanted = parse_range(request.headers.get("Range"), size)
    if wanted is None:
        request.reply_file(200, storage.blob_path(digest), 0, size, headers)
    else:
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        request.reply_file(206, storage.blob_path(digest), start, end - start + 1, headers)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`bytes=A-B`, `bytes=A-` or `bytes=-N` (the last N) -> (first, last) byte; None for the whole blob.

    RFC 9110 section 14: a Range the server does not understand (several ranges, other units)
    is ignored and the whole blob served; one that misses the blob is 416 with `bytes */SIZE`.
    """
    match = re.fullmatch(r"bytes=(\d{0,18})-(\d{0,18})", (header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    # >>> exercise 6.3: Range requests: a piece of a blob
    # hint: first and last are the digits around the "-" of "bytes=A-B" (either may be empty). "A-B" is
    # hint: bytes A to B (B past the end: to the end), "A-" from A on, "-N" the last N bytes (all of a
    # hint: shorter blob). A range that misses the blob (A at or past the end, B before A, "-0") is
    # hint: ApiError("SIZE_INVALID", ..., 416, {"Content-Range": f"bytes */{size}"}). Return (start, end).
    # test: test_registry_server.py::test_a_blob_is_served_whole_and_by_range
    # test: test_registry_server.py::test_a_suffix_range_serves_the_last_bytes_and_a_range_past_the_end_is_416
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        satisfiable = start < size and (not last or int(last) >= start)
    else:  # a suffix: the last N bytes, all of a shorter blob
        start, end = max(size - int(last), 0), size - 1
        satisfiable = int(last) > 0 and size > 0
    if not satisfiable:
        raise ApiError("SIZE_INVALID", f"Range {header[:100]!r} is outside the blob's {size} bytes", 416,
                       {"Content-Range": f"bytes */{size}"})
    return start, end
    # <<< exercise 6.3


# --- discovery, deletes, referrers --------------------------------------------------------

def tags_list(request, name: str) -> None:
    request.authorize("repository", name, "pull")
    tags, link = page(request, request.registry.storage.tags(name), f"/v2/{name}/tags/list")
    request.reply(200, json.dumps({"name": name, "tags": tags}).encode(), link, "application/json")


def catalog(request) -> None:
    request.authorize("registry", "catalog", "*")
    repos, link = page(request, request.registry.storage.repositories(), "/v2/_catalog")
    request.reply(200, json.dumps({"repositories": repos}).encode(), link, "application/json")


def page(request, items: list[str], path: str) -> tuple[list[str], dict[str, str]]:
    """Apply ?last= and ?n=; add a Link header when more remain."""
    # >>> exercise 6.4: paging a list with ?n= and ?last=, and the Link to the next page
    # hint: items are sorted; ?last=X keeps those after X; ?n=N (digits only, else ApiError
    # hint: "UNSUPPORTED", 400) keeps the first N. When some remain beyond them, return a header
    # hint: {"Link": f'<{path}?n=N&last=LAST>; rel="next"'} (urllib.parse.urlencode) with the last one shown.
    # test: test_registry_server.py::test_tags_are_listed_in_order_and_paged_with_n_and_last
    # test: test_registry_server.py::test_the_catalog_lists_repositories_with_nested_names
    # test: test_registry_server.py::test_skopeo_pushes_an_image_and_pulls_it_back_with_the_same_digests
    # test: test_registry_server.py::test_skopeo_pushes_and_pulls_with_docker_hub_style_token_auth
    last, n = request.query.get("last", [""])[0], request.query.get("n", [""])[0]
    if last:
        items = [i for i in items if i > last]
    if not n:
        return items, {}
    if not n.isdigit():
        raise ApiError("UNSUPPORTED", f"n={n[:20]!r} is not a number", 400)
    shown = items[:int(n)]
    if len(items) > len(shown) and shown:
        query = urllib.parse.urlencode({"n": n, "last": shown[-1]})
        return shown, {"Link": f'<{path}?{query}>; rel="next"'}
    return shown, {}
    # <<< exercise 6.4


def delete_manifest(request, name: str, reference: str) -> None:
    request.authorize("repository", name, "delete")
    check_known_reference(name, reference)
    storage = request.registry.storage
    if names.is_digest(reference):
        storage.resolve(name, reference)
        storage.delete_manifest(name, reference)
    else:
        storage.delete_tag(name, reference)
    request.reply(202)


def delete_blob(request, name: str, digest: str) -> None:
    request.authorize("repository", name, "delete")
    check_digest(digest)
    request.registry.storage.unlink_blob(name, digest)
    request.reply(202)


def referrers(request, name: str, digest: str) -> None:
    """The referrers API: an image index of the manifests whose subject is `digest`."""
    request.authorize("repository", name, "pull")
    check_digest(digest)
    found = request.registry.storage.referrers(name, digest)
    headers = {}
    if wanted := request.query.get("artifactType", [""])[0]:
        found = [d for d in found if d.get("artifactType") == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    index = {"schemaVersion": 2, "mediaType": spec.OCI_INDEX, "manifests": found}
    request.reply(200, json.dumps(index).encode(), headers, spec.OCI_INDEX)
