"""Chapter 06 on: `registry serve` speaks the OCI distribution spec to any client."""

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest

from conftest import require_programs
from registry_helpers import (OCI_INDEX, OCI_MANIFEST, blob_files, error_code, files_under, make_image, our_registry,
                              push_image, read, request, sha256, skopeo, write_oci_layout)

IMAGE = make_image({"hello": b"hello from the registry\n", "data": os.urandom(300_000)})


@pytest.fixture
def registry(dockyard, tmp_path):
    with our_registry(dockyard, tmp_path) as (addr, storage, log):
        yield addr, storage, log


def start_upload(addr: str, name: str) -> str:
    status, headers, body = request(addr, "POST", f"/v2/{name}/blobs/uploads/")
    assert status == 202, body
    return headers["location"]


# --- against an independent client ------------------------------------------------------

def test_skopeo_pushes_an_image_and_pulls_it_back_with_the_same_digests(registry, tmp_path):
    addr, _, _ = registry
    write_oci_layout(str(tmp_path / "src"), IMAGE, "v1")
    pushed = skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/team/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    pulled = skopeo("copy", "--src-tls-verify=false", f"docker://{addr}/team/app:v1", f"oci:{tmp_path / 'back'}:v1")
    assert pulled.returncode == 0, pulled.stderr
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == sha256(IMAGE["manifest"])
    for part in ("config", "layer"):
        assert (tmp_path / "back" / "blobs" / "sha256" / sha256(IMAGE[part]).split(":")[1]).read_bytes() == IMAGE[part]
    listed = skopeo("list-tags", "--tls-verify=false", f"docker://{addr}/team/app")
    assert json.loads(listed.stdout)["Tags"] == ["v1"]


def test_skopeo_pushes_and_pulls_with_docker_hub_style_token_auth(dockyard, tmp_path):
    users = tmp_path / "users"
    assert dockyard("registry", "passwd", str(users), "alice", input="s3cret\n").returncode == 0
    assert oct(os.stat(users).st_mode & 0o777) == "0o600" and "s3cret" not in users.read_text()
    write_oci_layout(str(tmp_path / "src"), IMAGE, "v1")
    with our_registry(dockyard, tmp_path, "--htpasswd", str(users),
                      "--token-realm", "http://127.0.0.1:PORT/token") as (addr, _, _):
        refused = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong",
                         f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/app:v1")
        assert refused.returncode != 0
        pushed = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret",
                        f"oci:{tmp_path / 'src'}:v1", f"docker://{addr}/app:v1")
        assert pushed.returncode == 0, pushed.stderr
        pulled = skopeo("inspect", "--tls-verify=false", "--creds", "alice:s3cret", f"docker://{addr}/app:v1")
        assert json.loads(pulled.stdout)["Digest"] == sha256(IMAGE["manifest"])


# --- pull and push over plain HTTP ---------------------------------------------------------

def test_the_base_endpoint_says_it_speaks_registry_2_0(registry):
    status, headers, _ = request(registry[0], "GET", "/v2/")
    assert status == 200 and headers["docker-distribution-api-version"] == "registry/2.0"


def test_a_manifest_is_served_by_tag_and_by_digest_with_its_media_type(registry):
    addr = registry[0]
    push_image(addr, "app", IMAGE)
    digest = sha256(IMAGE["manifest"])
    for reference in ("v1", digest):
        status, headers, body = request(addr, "GET", f"/v2/app/manifests/{reference}")
        assert (status, body) == (200, IMAGE["manifest"])
        assert headers["docker-content-digest"] == digest and headers["content-type"] == OCI_MANIFEST
    status, headers, body = request(addr, "HEAD", "/v2/app/manifests/v1")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(IMAGE["manifest"])))
    status, _, body = request(addr, "GET", "/v2/app/manifests/v2")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")


def test_a_blob_is_served_whole_and_by_range(registry):
    addr = registry[0]
    push_image(addr, "app", IMAGE)
    layer, digest = IMAGE["layer"], sha256(IMAGE["layer"])
    assert request(addr, "GET", f"/v2/app/blobs/{digest}")[2] == layer
    status, headers, body = request(addr, "GET", f"/v2/app/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert (status, body) == (206, layer[100:200])
    assert headers["content-range"] == f"bytes 100-199/{len(layer)}"
    assert request(addr, "GET", f"/v2/app/blobs/{digest}", headers={"Range": "bytes=1000-"})[2] == layer[1000:]
    assert request(addr, "GET", f"/v2/app/blobs/{digest}", headers={"Range": f"bytes={len(layer)}-"})[0] == 416


def test_a_chunked_upload_assembles_the_blob_from_patches_in_order(registry):
    addr, data = registry[0], os.urandom(200_000)
    location = start_upload(addr, "app")
    status, headers, _ = request(addr, "PATCH", location, data[:150_000],
                                 {"Content-Range": "0-149999", "Content-Type": "application/octet-stream"})
    assert (status, headers["range"]) == (202, "0-149999")
    assert request(addr, "GET", location)[1]["range"] == "0-149999"
    status, _, _ = request(addr, "PATCH", location, data[150_000:], {"Content-Range": "150000-199999"})
    assert status == 202
    status, headers, body = request(addr, "PUT", f"{location}?digest={sha256(data)}")
    assert status == 201, body
    assert headers["location"] == f"/v2/app/blobs/{sha256(data)}"
    assert request(addr, "GET", f"/v2/app/blobs/{sha256(data)}")[2] == data


def test_a_chunk_out_of_order_is_refused_with_416(registry):
    addr = registry[0]
    location = start_upload(addr, "app")
    assert request(addr, "PATCH", location, b"abc", {"Content-Range": "0-2"})[0] == 202
    status, _, body = request(addr, "PATCH", location, b"xyz", {"Content-Range": "10-12"})
    assert (status, error_code(body)) == (416, "BLOB_UPLOAD_INVALID")
    assert request(addr, "GET", location)[1]["range"] == "0-2"


def test_an_unknown_or_foreign_upload_id_is_blob_upload_unknown(registry):
    addr = registry[0]
    location = start_upload(addr, "mine")
    upload_id = location.rsplit("/", 1)[1]
    for path in (f"/v2/mine/blobs/uploads/{'0' * 32}", f"/v2/theirs/blobs/uploads/{upload_id}",
                 "/v2/mine/blobs/uploads/..", "/v2/mine/blobs/uploads/%2e%2e%2fx"):
        status, _, body = request(addr, "PATCH", path, b"data")
        assert (status, error_code(body)) == (404, "BLOB_UPLOAD_UNKNOWN"), path


def test_content_that_does_not_match_its_digest_is_refused_and_leaves_nothing(registry):
    addr, storage, _ = registry
    wrong = sha256(b"something else")
    status, _, body = request(addr, "POST", f"/v2/app/blobs/uploads/?digest={wrong}", b"real content")
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    location = start_upload(addr, "app")
    request(addr, "PATCH", location, b"real content")
    status, _, body = request(addr, "PUT", f"{location}?digest={wrong}")
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    assert request(addr, "GET", f"/v2/app/blobs/{wrong}")[0] == 404
    assert blob_files(storage) == [] and os.listdir(os.path.join(storage, "uploads")) == []


def test_a_blob_is_mounted_from_another_repository_without_uploading_it(registry):
    addr = registry[0]
    push_image(addr, "one", IMAGE)
    digest = sha256(IMAGE["layer"])
    status, headers, _ = request(addr, "POST", f"/v2/two/blobs/uploads/?mount={digest}&from=one")
    assert (status, headers["location"]) == (201, f"/v2/two/blobs/{digest}")
    assert request(addr, "GET", f"/v2/two/blobs/{digest}")[2] == IMAGE["layer"]
    status, _, _ = request(addr, "POST", f"/v2/three/blobs/uploads/?mount={sha256(b'nope')}&from=one")
    assert status == 202  # nothing to mount: an ordinary upload starts


# --- the spec's MUST and SHOULD lines, one test each -------------------------------------

@pytest.mark.parametrize("reference", [".INVALID_MANIFEST_NAME", "sha256:abc", "md5:" + "0" * 32, "v" * 200])
def test_a_manifest_that_is_not_there_is_404_whatever_its_reference_looks_like(registry, reference):
    # Pulling manifests: "If the manifest is not found in the repository, the response code MUST be
    # 404 Not Found." A reference no tag or digest can have names no manifest: it is not there.
    addr, storage, _ = registry
    push_image(addr, "app", IMAGE)
    before = files_under(storage)
    for method in ("GET", "HEAD"):
        status, _, body = request(addr, method, f"/v2/app/manifests/{reference}")
        assert status == 404, (method, body)
        if method == "GET":
            assert error_code(body) == "MANIFEST_UNKNOWN"
    assert files_under(storage) == before


def test_a_suffix_range_serves_the_last_bytes_and_a_range_past_the_end_is_416(registry):
    # RFC 9110 section 14.1.2, which the spec's "Range" pulls follow: bytes=-N is the last N bytes;
    # an unsatisfiable range is 416 with "Content-Range: bytes */SIZE".
    addr = registry[0]
    blob = os.urandom(2048)
    status, _, body = request(addr, "POST", f"/v2/app/blobs/uploads/?digest={sha256(blob)}", blob)
    assert status == 201, body
    path = f"/v2/app/blobs/{sha256(blob)}"
    status, headers, body = request(addr, "GET", path, headers={"Range": "bytes=-500"})
    assert (status, body, headers["content-range"]) == (206, blob[-500:], "bytes 1548-2047/2048")
    status, headers, body = request(addr, "GET", path, headers={"Range": "bytes=-5000"})
    assert (status, body, headers["content-range"]) == (206, blob, "bytes 0-2047/2048")
    for unsatisfiable in ("bytes=2048-", "bytes=5000-6000", "bytes=-0"):
        status, headers, _ = request(addr, "GET", path, headers={"Range": unsatisfiable})
        assert (status, headers.get("content-range")) == (416, "bytes */2048"), unsatisfiable
    assert request(addr, "GET", path, headers={"Range": "bytes=0-1,5-6"})[:3:2] == (200, blob)


def test_the_closing_put_with_a_chunk_out_of_order_is_416_and_the_upload_goes_on(registry):
    # Pushing a blob in chunks: "If a chunk is uploaded out of order, the registry MUST respond with
    # 416 Requested Range Not Satisfiable"; the closing PUT MAY carry the last chunk.
    addr, data = registry[0], os.urandom(3000)
    location = start_upload(addr, "app")
    assert request(addr, "PATCH", location, data[:1000], {"Content-Range": "0-999"})[0] == 202
    status, _, body = request(addr, "PUT", f"{location}?digest={sha256(data)}", data[1000:],
                              {"Content-Range": "1500-3499"})
    assert (status, error_code(body)) == (416, "BLOB_UPLOAD_INVALID")
    assert request(addr, "GET", location)[1]["range"] == "0-999"
    status, _, body = request(addr, "PUT", f"{location}?digest={sha256(data)}", data[1000:],
                              {"Content-Range": "1000-2999"})
    assert status == 201, body
    assert request(addr, "GET", f"/v2/app/blobs/{sha256(data)}")[2] == data


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def test_a_manifest_pushed_by_a_sha512_digest_is_served_under_that_digest(registry):
    # Pushing manifests: the digest in the URL is the client's; Docker-Content-Digest and Location
    # name the manifest by it, and an index may refer to its children by sha512 too.
    addr = registry[0]
    push_image(addr, "app", IMAGE)
    manifest, digest = IMAGE["manifest"], sha512(IMAGE["manifest"])
    status, headers, body = request(addr, "PUT", f"/v2/app/manifests/{digest}", manifest,
                                    {"Content-Type": OCI_MANIFEST})
    assert status == 201, body
    assert (headers["docker-content-digest"], headers["location"]) == (digest, f"/v2/app/manifests/{digest}")
    for method in ("GET", "HEAD"):
        status, headers, body = request(addr, method, f"/v2/app/manifests/{digest}")
        assert (status, headers["docker-content-digest"]) == (200, digest), method
    assert request(addr, "GET", f"/v2/app/manifests/{digest}")[2] == manifest
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}]}).encode()
    status, _, body = request(addr, "PUT", "/v2/app/manifests/multi", index, {"Content-Type": OCI_INDEX})
    assert status == 201, body


def test_a_manifest_with_non_distributable_layers_is_accepted_without_their_blobs(registry):
    # Image spec, "Non-distributable layers": such a layer is fetched from its urls, never pushed,
    # so a registry accepts the manifest without the blob (the conformance suite checks this).
    addr = registry[0]
    push_image(addr, "app", IMAGE)
    foreign = {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "digest": sha256(b"licensed bits"), "size": 13, "urls": ["https://example.com/layer"]}
    manifest = json.loads(IMAGE["manifest"])
    manifest["layers"].append(foreign)
    data = json.dumps(manifest).encode()
    status, _, body = request(addr, "PUT", "/v2/app/manifests/licensed", data, {"Content-Type": OCI_MANIFEST})
    assert status == 201, body
    assert request(addr, "GET", "/v2/app/manifests/licensed")[2] == data
    assert request(addr, "GET", f"/v2/app/blobs/{foreign['digest']}")[0] == 404


# --- discovery, deletes, referrers ---------------------------------------------------------

def test_tags_are_listed_in_order_and_paged_with_n_and_last(registry):
    addr = registry[0]
    for tag in ("c", "a", "b", "d"):
        push_image(addr, "app", IMAGE, tag)
    assert json.loads(request(addr, "GET", "/v2/app/tags/list")[2])["tags"] == ["a", "b", "c", "d"]
    status, headers, body = request(addr, "GET", "/v2/app/tags/list?n=2")
    assert json.loads(body)["tags"] == ["a", "b"]
    assert headers["link"] == '</v2/app/tags/list?n=2&last=b>; rel="next"'
    assert json.loads(request(addr, "GET", "/v2/app/tags/list?n=2&last=b")[2])["tags"] == ["c", "d"]
    status, _, body = request(addr, "GET", "/v2/nothing/tags/list")
    assert (status, error_code(body)) == (404, "NAME_UNKNOWN")


def test_the_catalog_lists_repositories_with_nested_names(registry):
    addr = registry[0]
    for name in ("b/deep/app", "a"):
        push_image(addr, name, IMAGE)
    assert json.loads(request(addr, "GET", "/v2/_catalog")[2]) == {"repositories": ["a", "b/deep/app"]}
    assert json.loads(request(addr, "GET", "/v2/_catalog?n=1&last=a")[2]) == {"repositories": ["b/deep/app"]}


def test_deleting_a_tag_then_the_manifest_then_a_blob_makes_each_unknown(registry):
    addr = registry[0]
    push_image(addr, "app", IMAGE, "v1")
    push_image(addr, "app", IMAGE, "v2")
    digest = sha256(IMAGE["manifest"])
    assert request(addr, "DELETE", "/v2/app/manifests/v1")[0] == 202
    assert request(addr, "GET", "/v2/app/manifests/v1")[0] == 404
    assert request(addr, "GET", "/v2/app/manifests/v2")[0] == 200
    assert request(addr, "DELETE", f"/v2/app/manifests/{digest}")[0] == 202
    assert request(addr, "GET", "/v2/app/manifests/v2")[0] == 404
    assert request(addr, "DELETE", f"/v2/app/blobs/{sha256(IMAGE['layer'])}")[0] == 202
    assert request(addr, "GET", f"/v2/app/blobs/{sha256(IMAGE['layer'])}")[0] == 404


def test_referrers_list_the_manifests_whose_subject_is_a_digest(registry):
    addr = registry[0]
    push_image(addr, "app", IMAGE)
    subject = {"mediaType": OCI_MANIFEST, "digest": sha256(IMAGE["manifest"]), "size": len(IMAGE["manifest"])}
    empty = b"{}"
    request(addr, "POST", f"/v2/app/blobs/uploads/?digest={sha256(empty)}", empty)
    signature = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2},
        "layers": [], "subject": subject, "annotations": {"signed": "yes"}}).encode()
    status, headers, _ = request(addr, "PUT", f"/v2/app/manifests/{sha256(signature)}", signature,
                                 {"Content-Type": OCI_MANIFEST})
    assert (status, headers["oci-subject"]) == (201, subject["digest"])
    status, headers, body = request(addr, "GET", f"/v2/app/referrers/{subject['digest']}")
    entries = json.loads(body)["manifests"]
    assert [(e["digest"], e["artifactType"], e["annotations"]) for e in entries] == \
        [(sha256(signature), "application/example.sig", {"signed": "yes"})]
    status, headers, body = request(addr, "GET", f"/v2/app/referrers/{subject['digest']}?artifactType=other")
    assert json.loads(body)["manifests"] == [] and headers["oci-filters-applied"] == "artifactType"


# --- hostile requests ---------------------------------------------------------------------

@pytest.mark.parametrize("method,path,code", [
    ("GET", "/v2/../x/tags/list", "NAME_INVALID"),
    ("GET", "/v2/a//b/manifests/latest", "NAME_INVALID"),
    ("GET", "/v2/Upper/manifests/latest", "NAME_INVALID"),
    ("POST", "/v2/x/../../etc/blobs/uploads/", "NAME_INVALID"),
    ("GET", "/v2/x/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd", "DIGEST_INVALID"),
    ("GET", "/v2/x/blobs/sha256:abc", "DIGEST_INVALID"),
    ("GET", "/v2/x/blobs/md5:" + "0" * 32, "DIGEST_INVALID"),
    ("PUT", "/v2/x/manifests/.hidden", "MANIFEST_INVALID"),
    ("GET", "/v2/x/referrers/latest", "DIGEST_INVALID"),
])
def test_bad_names_and_digests_get_the_spec_error_and_touch_nothing(registry, method, path, code):
    addr, storage, _ = registry
    before = files_under(storage)
    status, _, body = request(addr, method, path)
    assert (status, error_code(body)) == (400, code)
    assert files_under(storage) == before


def test_a_manifest_over_4_mib_is_refused(registry):
    addr, storage, _ = registry
    huge = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "padding": "x" * (4 << 20)}).encode()
    status, _, body = request(addr, "PUT", "/v2/app/manifests/v1", huge, {"Content-Type": OCI_MANIFEST})
    assert (status, error_code(body)) == (413, "SIZE_INVALID")
    assert blob_files(storage) == []


def test_a_manifest_that_names_a_missing_blob_or_is_not_json_is_refused(registry):
    addr, storage, _ = registry
    status, _, body = request(addr, "PUT", "/v2/app/manifests/v1", IMAGE["manifest"], {"Content-Type": OCI_MANIFEST})
    assert (status, error_code(body)) == (404, "MANIFEST_BLOB_UNKNOWN")
    status, _, body = request(addr, "PUT", "/v2/app/manifests/v1", b"<html>", {"Content-Type": OCI_MANIFEST})
    assert (status, error_code(body)) == (400, "MANIFEST_INVALID")
    assert blob_files(storage) == []


def test_garbage_on_the_wire_gets_an_answer_and_the_server_keeps_serving(registry):
    addr, _, log = registry
    host, port = addr.split(":")
    for junk in (b"\x16\x03\x01\x00\xff garbage\r\n\r\n", b"GET /v2/ HTTP/9.9\r\n\r\n", b"NOPE\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(junk)
            assert s.recv(100).startswith(b"HTTP/")
    # An upload the server never started is BLOB_UPLOAD_UNKNOWN (404), whatever its body; a chunked
    # body whose chunk size is not hex is BLOB_UPLOAD_INVALID (400), on an upload that exists.
    status, _, body = request(addr, "PATCH", "/v2/app/blobs/uploads/x", b"a" * 10, {"Transfer-Encoding": "chunked"})
    assert (status, error_code(body)) == (404, "BLOB_UPLOAD_UNKNOWN")
    upload = request(addr, "POST", "/v2/app/blobs/uploads/")[1]["location"]
    status, _, body = request(addr, "PATCH", upload, b"zz\r\nabc\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"})
    assert (status, error_code(body)) == (400, "BLOB_UPLOAD_INVALID")
    assert request(addr, "GET", "/v2/")[0] == 200
    assert "Traceback" not in read(log)


def test_the_server_logs_one_line_per_request(registry):
    addr, _, log = registry
    before = len(read(log).splitlines())
    request(addr, "GET", "/v2/")
    request(addr, "GET", "/v2/nothing/manifests/latest")
    for _ in range(100):  # the line is written once the answer has gone out: wait for it
        lines = read(log).splitlines()[before:]
        if len(lines) >= 2:
            break
        time.sleep(0.05)
    assert len(lines) == 2 and '"GET /v2/" 200' in lines[0] and " 404 " in lines[1]


# --- authentication and TLS ---------------------------------------------------------------

def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_lets_in_only_users_of_the_password_file(dockyard, tmp_path):
    users = tmp_path / "users"
    dockyard("registry", "passwd", str(users), "bob", input="pw\n")
    with our_registry(dockyard, tmp_path, "--htpasswd", str(users)) as (addr, _, _):
        status, headers, body = request(addr, "GET", "/v2/")
        assert (status, error_code(body)) == (401, "UNAUTHORIZED")
        assert headers["www-authenticate"].startswith("Basic realm=")
        assert request(addr, "GET", "/v2/", headers=basic("bob", "nope"))[0] == 401
        assert request(addr, "GET", "/v2/", headers=basic("bob", "pw"))[0] == 200


def test_tokens_are_scoped_to_what_the_user_asked_and_may_do(dockyard, tmp_path):
    users = tmp_path / "users"
    dockyard("registry", "passwd", str(users), "bob", input="pw\n")
    with our_registry(dockyard, tmp_path, "--htpasswd", str(users), "--anonymous-pull",
                      "--token-realm", "http://127.0.0.1:PORT/token") as (addr, _, _):
        status, headers, _ = request(addr, "POST", "/v2/app/blobs/uploads/")
        assert status == 401
        assert headers["www-authenticate"] == (f'Bearer realm="http://{addr}/token",service="dockyard-registry",'
                                               'scope="repository:app:pull,push"')
        query = "/token?service=dockyard-registry&scope=repository:app:pull,push"
        assert request(addr, "GET", query, headers=basic("bob", "wrong"))[0] == 401
        anonymous = json.loads(request(addr, "GET", query)[2])["token"]
        bearer = {"Authorization": f"Bearer {anonymous}"}
        assert request(addr, "POST", "/v2/app/blobs/uploads/", headers=bearer)[0] == 401
        assert request(addr, "GET", "/v2/app/tags/list", headers=bearer)[0] == 404  # allowed, but empty
        assert request(addr, "GET", "/v2/other/tags/list", headers=bearer)[0] == 401
        token = json.loads(request(addr, "GET", query, headers=basic("bob", "pw"))[2])["token"]
        assert request(addr, "POST", "/v2/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})[0] == 202
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert request(addr, "POST", "/v2/app/blobs/uploads/", headers={"Authorization": f"Bearer {forged}"})[0] == 401


def test_a_token_challenge_for_a_mount_also_names_the_source_and_the_base_check_names_no_scope(dockyard, tmp_path):
    # Token auth: the challenge's scope is what the client must ask for. A cross-repository mount
    # reads `from`, so a token client needs repository:<from>:pull too, or it cannot mount.
    users = tmp_path / "users"
    dockyard("registry", "passwd", str(users), "bob", input="pw\n")
    with our_registry(dockyard, tmp_path, "--htpasswd", str(users),
                      "--token-realm", "http://127.0.0.1:PORT/token") as (addr, _, _):
        assert "scope" not in request(addr, "GET", "/v2/")[1]["www-authenticate"]
        query = "/token?service=dockyard-registry&scope=repository:one:pull,push"
        token = json.loads(request(addr, "GET", query, headers=basic("bob", "pw"))[2])["token"]
        push_image(addr, "one", IMAGE, headers={"Authorization": f"Bearer {token}"})
        digest = sha256(IMAGE["layer"])
        mount = f"/v2/two/blobs/uploads/?mount={digest}&from=one"
        status, headers, _ = request(addr, "POST", mount)
        assert status == 401
        scope = re.search(r'scope="([^"]*)"', headers["www-authenticate"]).group(1)
        assert sorted(scope.split()) == ["repository:one:pull", "repository:two:pull,push"]
        query = "/token?" + urllib.parse.urlencode({"service": "dockyard-registry", "scope": scope})
        token = json.loads(request(addr, "GET", query, headers=basic("bob", "pw"))[2])["token"]
        status, headers, _ = request(addr, "POST", mount, headers={"Authorization": f"Bearer {token}"})
        assert (status, headers["location"]) == (201, f"/v2/two/blobs/{digest}")


def test_tls_serves_the_api_over_https_to_a_verifying_client(dockyard, tmp_path):
    require_programs("openssl")
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = certs / "ca.crt", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True)
    assert made.returncode == 0, made.stderr  # openssl is there, so it must make one
    with our_registry(dockyard, tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as (addr, _, _):
        context = ssl.create_default_context(cafile=str(cert))
        host, port = addr.split(":")
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
        conn.request("GET", "/v2/")
        assert conn.getresponse().status == 200
        conn.close()
        result = skopeo("inspect", "--tls-verify=true", "--cert-dir", str(certs), f"docker://{addr}/none:v1")
        assert "manifest v1 of none is unknown" in result.stderr, result.stderr


def test_serving_on_port_0_reports_the_port_the_kernel_gave(registry):
    # The tests' registries start this way: nothing can take the port between choosing and binding it.
    addr, _, log = registry
    assert re.search(rf"serving on http://{re.escape(addr)},", read(log))
    assert request(addr, "GET", "/v2/")[0] == 200
