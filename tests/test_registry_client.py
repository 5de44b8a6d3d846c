"""Chapter 06 on: `pull`, `push`, `login` and `logout` work with real registries and survive hostile ones."""

import gzip
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import needs_root, failure_code
from registry_helpers import (OCI_MANIFEST, make_image, our_registry, push_image, reference_registry, request,
                              sha256, skopeo, write_oci_layout)

IMAGE = make_image({"hello": b"hello from a registry\n", "data": os.urandom(200_000)})
EVIL_MANIFEST = json.dumps({**json.loads(IMAGE["manifest"]), "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:../../../../etc/passwd",
     "size": 10}]}).encode()


def images_in_store(dockyard) -> list[dict]:
    """The store's index.json entries: what `images` would list."""
    try:
        with open(os.path.join(dockyard.root, "images", "index.json")) as f:
            return json.load(f)["manifests"]
    except FileNotFoundError:
        return []


def leftovers(dockyard) -> list[str]:
    tmp = os.path.join(dockyard.root, "tmp")
    return os.listdir(tmp) if os.path.isdir(tmp) else []


def fails_cleanly(result, *words: str) -> None:
    assert result.returncode == failure_code(result), result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and "\nhint: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def reference(tmp_path):
    with reference_registry(tmp_path) as addr:
        yield addr


@pytest.fixture
def ours(dockyard, tmp_path):
    with our_registry(dockyard, tmp_path) as (addr, storage, log):
        yield addr, log


# --- round trips ----------------------------------------------------------------------------

def test_our_client_pushes_to_the_reference_registry_and_pulls_back_the_same_image(dockyard, reference,
                                                                                   busybox_rootfs):
    name = f"{reference}/team/busybox:v1"
    assert dockyard("import", busybox_rootfs, name).returncode == 0
    pushed = dockyard("push", name)
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.split("digest: ")[1].split()[0]
    status, headers, body = request(reference, "GET", "/v2/team/busybox/manifests/v1",
                                    headers={"Accept": OCI_MANIFEST})
    assert status == 200 and sha256(body) == digest
    inspected = skopeo("inspect", "--tls-verify=false", f"docker://{name}")
    assert json.loads(inspected.stdout)["Digest"] == digest
    assert dockyard("rmi", name).returncode == 0
    pulled = dockyard("pull", name)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {digest}" in pulled.stdout
    assert name.rsplit(":", 1)[0] in dockyard("images").stdout


@needs_root
def test_a_pulled_image_runs(dockyard, reference, busybox_rootfs):
    name = f"{reference}/busybox:v1"
    dockyard("import", busybox_rootfs, name, "-c", "CMD echo hello from the pulled image")
    assert dockyard("push", name).returncode == 0
    dockyard("rmi", name)
    assert dockyard("pull", name).returncode == 0
    ran = dockyard("run", "--rm", name)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hello from the pulled image\n"


def test_our_client_pulls_what_skopeo_pushed_to_the_reference_registry(dockyard, reference, tmp_path):
    write_oci_layout(str(tmp_path / "src"), IMAGE, "v1")
    copied = skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:v1", f"docker://{reference}/app:v1")
    assert copied.returncode == 0, copied.stderr
    pulled = dockyard("pull", "-q", f"{reference}/app:v1")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == sha256(IMAGE["manifest"])
    again = dockyard("pull", f"{reference}/app:v1")
    assert again.stdout.count("Already exists") == 2


def test_a_multi_platform_index_resolves_to_this_machine_or_to_platform(dockyard, ours):
    addr, _ = ours
    other = make_image({"arm": b"arm64 files\n"})
    push_image(addr, "multi", IMAGE, "amd64")
    push_image(addr, "multi", other, "arm64")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(i["manifest"]), "size": len(i["manifest"]),
         "platform": {"os": "linux", "architecture": arch}} for i, arch in ((IMAGE, "amd64"), (other, "arm64"))]
    }).encode()
    assert request(addr, "PUT", "/v2/multi/manifests/latest", index,
                   {"Content-Type": "application/vnd.oci.image.index.v1+json"})[0] == 201
    chosen = dockyard("pull", "-q", "--platform", "linux/arm64", f"{addr}/multi")
    assert chosen.stdout.strip() == sha256(other["manifest"]), chosen.stderr
    missing = dockyard("pull", "--platform", "linux/s390x", f"{addr}/multi")
    fails_cleanly(missing, "linux/s390x")


def test_pull_with_a_digest_gets_exactly_that_manifest(dockyard, ours):
    addr, _ = ours
    push_image(addr, "app", IMAGE)
    pulled = dockyard("pull", "-q", f"{addr}/app@{sha256(IMAGE['manifest'])}")
    assert pulled.stdout.strip() == sha256(IMAGE["manifest"]), pulled.stderr


# --- authentication -------------------------------------------------------------------------

def test_login_push_pull_and_logout_with_token_auth_against_our_server(dockyard, tmp_path, busybox_rootfs):
    users, config = tmp_path / "users", tmp_path / "client-config"
    dockyard("registry", "passwd", str(users), "alice", input="s3cret\n")
    env = {**dockyard.impl.env(), "DOCKYARD_CONFIG": str(config)}
    with our_registry(dockyard, tmp_path, "--htpasswd", str(users),
                      "--token-realm", "http://127.0.0.1:PORT/token") as (addr, _, _):
        name = f"{addr}/alice/app:v1"
        dockyard("import", busybox_rootfs, name)
        fails_cleanly(dockyard("push", name, env=env), "refused")
        wrong = dockyard("login", "-u", "alice", "--password-stdin", addr, input="nope\n", env=env)
        fails_cleanly(wrong)
        assert not (config / "config.json").exists()
        good = dockyard("login", "-u", "alice", "--password-stdin", addr, input="s3cret\n", env=env)
        assert good.returncode == 0 and "Login Succeeded" in good.stdout and "s3cret" not in good.stdout
        assert oct(os.stat(config / "config.json").st_mode & 0o777) == "0o600"
        pushed = dockyard("push", name, env=env)
        assert pushed.returncode == 0, pushed.stderr
        dockyard("rmi", name)
        assert dockyard("pull", name, env=env).returncode == 0
        assert dockyard("logout", addr, env=env).returncode == 0
        assert addr not in (config / "config.json").read_text()
        fails_cleanly(dockyard("pull", name, env=env), "refused")


# --- bad input and hostile registries ---------------------------------------------------------

def test_an_unreachable_registry_and_an_unknown_tag_fail_with_a_hint(dockyard, ours):
    addr, _ = ours
    fails_cleanly(dockyard("pull", "127.0.0.1:1/app:v1"), "cannot reach")
    fails_cleanly(dockyard("pull", f"{addr}/nothing:here"), "not found")
    fails_cleanly(dockyard("pull", "Bad//Name"), "invalid reference")
    assert images_in_store(dockyard) == []


class Hostile(BaseHTTPRequestHandler):
    """A fake registry that serves IMAGE but misbehaves as `mode` says."""

    protocol_version = "HTTP/1.1"
    mode = "good"
    ranges: list[str] = []
    attempts = 0

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, content_type: str, length: int | None = None, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        mode, path = self.mode, self.path
        if path == "/v2/":
            return self.send(200, b"{}", "application/json")
        if "/manifests/" in path:
            manifest = EVIL_MANIFEST if mode == "evil-descriptor" else IMAGE["manifest"]
            if mode == "html":
                return self.send(200, b"<html><body>Welcome to nginx</body></html>", "text/html")
            if mode == "huge":
                return self.send(200, b"{" + b" " * (5 << 20) + b"}", OCI_MANIFEST)
            announced = sha256(b"another manifest") if mode == "wrong-manifest" else sha256(manifest)
            return self.send(200, manifest, OCI_MANIFEST, Docker_Content_Digest=announced)
        blob = IMAGE["config"] if path.endswith(sha256(IMAGE["config"])) else IMAGE["layer"]
        if blob is IMAGE["layer"] and mode == "wrong-layer":
            blob = gzip.compress(b"not the layer you asked for" * 1000)
            return self.send(200, blob, "application/octet-stream")
        if blob is IMAGE["layer"] and mode == "tampered-layer":  # the right size, one byte changed
            return self.send(200, blob[:1000] + bytes([blob[1000] ^ 0xFF]) + blob[1001:], "application/octet-stream")
        if blob is IMAGE["layer"] and mode in ("truncated", "resumable", "ignores-range"):
            type(self).attempts += 1
            start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-"))
            type(self).ranges.append(self.headers.get("Range", ""))
            if mode == "truncated" or type(self).attempts == 1:
                self.send(200 if not start else 206, blob[start:start + 1000], "application/octet-stream",
                          length=len(blob) - start)
                self.close_connection = True
                return
            if mode == "ignores-range":  # the whole blob again, as a server without Range support does
                return self.send(200, blob, "application/octet-stream")
            return self.send(206, blob[start:], "application/octet-stream",
                             Content_Range=f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        self.send(200, blob, "application/octet-stream")


@pytest.fixture
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Hostile,), {"ranges": [], "attempts": 0}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("mode,words", [
    ("html", ["text/html", "not a manifest"]),
    ("huge", ["over the"]),
    ("wrong-manifest", ["hashes to"]),
    ("wrong-layer", ["wrong content"]),
    ("tampered-layer", ["wrong content", sha256(IMAGE["layer"])]),
    ("truncated", ["broke"]),
    ("evil-descriptor", ["malformed descriptor"]),
])
def test_a_hostile_registry_gets_a_clear_error_and_leaves_the_store_unchanged(dockyard, hostile, mode, words):
    hostile.RequestHandlerClass.mode = mode
    before = images_in_store(dockyard)
    result = dockyard("pull", f"127.0.0.1:{hostile.server_address[1]}/app:v1")
    fails_cleanly(result, *words)
    assert images_in_store(dockyard) == before
    assert leftovers(dockyard) == []


def test_a_broken_download_resumes_where_it_stopped(dockyard, hostile):
    hostile.RequestHandlerClass.mode = "resumable"
    result = dockyard("pull", "-q", f"127.0.0.1:{hostile.server_address[1]}/app:v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sha256(IMAGE["manifest"])
    assert hostile.RequestHandlerClass.ranges == ["", "bytes=1000-"]


def test_a_resumed_download_from_a_registry_that_ignores_range_drops_the_bytes_it_already_has(dockyard, hostile):
    hostile.RequestHandlerClass.mode = "ignores-range"
    result = dockyard("pull", "-q", f"127.0.0.1:{hostile.server_address[1]}/app:v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sha256(IMAGE["manifest"])
    assert hostile.RequestHandlerClass.ranges == ["", "bytes=1000-"]


def test_login_with_basic_auth_checks_the_password_before_saving_it(dockyard, tmp_path, busybox_rootfs):
    users, config = tmp_path / "users", tmp_path / "client-config"
    dockyard("registry", "passwd", str(users), "bob", input="pw\n")
    env = {**dockyard.impl.env(), "DOCKYARD_CONFIG": str(config)}
    with our_registry(dockyard, tmp_path, "--htpasswd", str(users)) as (addr, _, _):
        wrong = dockyard("login", "-u", "bob", "--password-stdin", addr, input="nope\n", env=env)
        fails_cleanly(wrong, "login to", "password")
        assert not (config / "config.json").exists()
        assert dockyard("login", "-u", "bob", "--password-stdin", addr, input="pw\n", env=env).returncode == 0
        name = f"{addr}/bob/app:v1"
        dockyard("import", busybox_rootfs, name)
        pushed = dockyard("push", name, env=env)
        assert pushed.returncode == 0, pushed.stderr
        assert "pw" not in pushed.stdout + pushed.stderr


# --- plain HTTP only to loopback, unless asked --------------------------------------------------
# registry.test is a name of our own for 127.0.0.1, in an /etc/hosts that only the engine sees (a
# private mount namespace): a registry that is not localhost or 127.0.0.0/8 to the engine, while
# every byte still stays on loopback.

def with_own_hosts(dockyard, tmp_path, *args: str):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 registry.test\n")
    bind = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", bind, str(hosts),
                           *dockyard.command(*args)], capture_output=True, text=True, timeout=120,
                          env=dockyard.impl.env(), cwd=os.path.dirname(dockyard.impl.path))


def test_plain_http_to_a_registry_off_loopback_is_refused_unless_insecure_registry_is_given(dockyard, ours,
                                                                                            tmp_path):
    addr, _ = ours
    push_image(addr, "app", IMAGE)
    name = f"registry.test:{addr.split(':')[1]}/app:v1"
    refused = with_own_hosts(dockyard, tmp_path, "pull", name)
    fails_cleanly(refused, "TLS", "--insecure-registry")  # it spoke TLS, and never fell back to plain HTTP
    assert images_in_store(dockyard) == []
    pulled = with_own_hosts(dockyard, tmp_path, "pull", "-q", "--insecure-registry", name)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == sha256(IMAGE["manifest"])


def test_push_q_prints_only_the_digest(dockyard, ours, busybox_rootfs):
    addr, _ = ours
    assert dockyard("import", busybox_rootfs, f"{addr}/quiet:v1").returncode == 0
    pushed = dockyard("push", "-q", f"{addr}/quiet:v1")
    assert pushed.returncode == 0, pushed.stderr
    status, _, body = request(addr, "GET", "/v2/quiet/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert status == 200 and pushed.stdout == sha256(body) + "\n"


class Stalling(BaseHTTPRequestHandler):
    """Serves IMAGE, but holds the layer's second half back until `release` is set."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = {"/v2/": b"{}"}.get(self.path) or (IMAGE["manifest"] if "/manifests/" in self.path else
                                                  IMAGE["config"] if self.path.endswith(sha256(IMAGE["config"]))
                                                  else IMAGE["layer"])
        self.send_response(200)
        self.send_header("Content-Type", OCI_MANIFEST if body is IMAGE["manifest"] else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body is IMAGE["layer"]:
            self.wfile.write(body[:1000])
            self.wfile.flush()
            self.release.wait(120)
            body = body[1000:]
        self.wfile.write(body)


def test_image_prune_waits_for_a_pull_that_is_still_writing(dockyard):
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("S", (Stalling,), {"release": threading.Event()}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler = server.RequestHandlerClass
    try:
        pull = dockyard.popen("pull", f"127.0.0.1:{server.server_address[1]}/app:v1")
        config = os.path.join(dockyard.root, "images", "blobs", "sha256", sha256(IMAGE["config"])[7:])
        for _ in range(1200):  # the config is stored, unnamed, while the layer is still on its way
            if os.path.exists(config) or pull.poll() is not None:
                break
            threading.Event().wait(0.05)
        assert os.path.exists(config), pull.communicate()
        prune = dockyard.popen("image", "prune")
        said = prune.stderr.readline()  # an engine that does not wait has pruned and exited: EOF
        handler.release.set()
        pulled = pull.communicate(timeout=120)
        pruned = prune.communicate(timeout=120)
        assert pull.returncode == 0, pulled
        assert prune.returncode == 0 and "waiting for" in said, pruned
        assert dockyard("inspect", f"127.0.0.1:{server.server_address[1]}/app:v1").returncode == 0
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
