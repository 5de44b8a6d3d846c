"""Helpers for the chapter-06 tests: a registry on loopback, raw HTTP, small OCI images."""

import gzip
import hashlib
import http.client
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import time
from contextlib import contextmanager

from conftest import require_programs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the registry exited with {proc.returncode}: {read(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the registry did not listen on {port}: {read(log)}")


def read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def our_registry(dockyard, tmp_path, *options: str):
    """Our `registry serve` on loopback: yields (host:port, storage dir, log file).

    The server binds port 0 and prints the port the kernel gave it, so no other process can take
    the port between our choosing it and the server binding it. Options that must name the port
    before the start (a token realm's PORT) pick a free one and try again if it was taken.
    """
    storage, log = str(tmp_path / "storage"), str(tmp_path / "registry.log")
    for attempt in range(5):
        port = free_port() if any("PORT" in o for o in options) else 0
        with open(log, "w") as err:
            proc = dockyard.popen("registry", "serve", "--addr", f"127.0.0.1:{port}", "--storage", storage,
                                  *[o.replace("PORT", str(port)) for o in options],
                                  stdout=subprocess.DEVNULL, stderr=err)
        try:
            port = wait_for_serving(proc, log)
            if port is None and "already in use" in read(log) and attempt < 4:
                continue
            assert port, f"the registry exited with {proc.returncode}: {read(log)}"
            yield f"127.0.0.1:{port}", storage, log
            return
        finally:
            stop(proc)


def wait_for_serving(proc: subprocess.Popen, log: str, timeout: float = 60) -> int | None:
    """The port the server reports in its "serving on" line, or None if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := re.search(r"serving on https?://[^ ]*:(\d+),", read(log)):
            return int(match.group(1))
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    raise AssertionError(f"the registry did not start serving: {read(log)}")


@contextmanager
def reference_registry(tmp_path, htpasswd: str | None = None):
    """Debian's docker-registry (the reference implementation) on a loopback port of its own.

    Never the package's service on :5000 (tools/packages.sh keeps that off): a free port, tried
    again if another process takes it before the registry binds it.
    """
    require_programs("docker-registry")
    log, config = str(tmp_path / "docker-registry.log"), tmp_path / "docker-registry.yml"
    auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n" if htpasswd else ""
    for attempt in range(5):
        port = free_port()
        config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                          f"    rootdirectory: {tmp_path / 'docker-registry'}\n  delete:\n    enabled: true\n"
                          f"http:\n  addr: 127.0.0.1:{port}\n{auth}")
        with open(log, "w") as err:
            proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=err, stderr=err)
        try:
            try:
                wait_for_port(port, proc, log)
            except AssertionError:
                if "address already in use" in read(log) and attempt < 4:
                    continue
                raise
            yield f"127.0.0.1:{port}"
            return
        finally:
            stop(proc)


def request(addr: str, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One raw HTTP request (the path is sent exactly as given): status, headers, body."""
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    return json.loads(body)["errors"][0]["code"]


def make_layer(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of `files`, reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_image(files: dict[str, bytes], cmd: list[str] | None = None) -> dict[str, bytes]:
    """A one-layer OCI image: {"manifest": ..., "config": ..., "layer": ...} as bytes."""
    layer = make_layer(files)
    diff_id = sha256(gzip.decompress(layer))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": cmd or ["/bin/sh"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                           "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}]}
                          ).encode()
    return {"manifest": manifest, "config": config, "layer": layer}


def write_oci_layout(directory: str, image: dict[str, bytes], tag: str) -> None:
    """Write an image as an OCI image layout that skopeo reads as oci:DIR:TAG."""
    blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    for data in image.values():
        with open(os.path.join(blobs, sha256(data).split(":")[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    manifest = image["manifest"]
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)


def push_image(addr: str, name: str, image: dict[str, bytes], tag: str = "v1", headers: dict | None = None) -> None:
    """Push with plain HTTP, the monolithic way."""
    for part in ("config", "layer"):
        status, _, body = request(addr, "POST", f"/v2/{name}/blobs/uploads/?digest={sha256(image[part])}",
                                  image[part], {"Content-Type": "application/octet-stream", **(headers or {})})
        assert status == 201, body
    status, _, body = request(addr, "PUT", f"/v2/{name}/manifests/{tag}", image["manifest"],
                              {"Content-Type": OCI_MANIFEST, **(headers or {})})
    assert status == 201, body


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    require_programs("skopeo")
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout)


def files_under(directory: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), directory) for d, _, fs in os.walk(directory) for f in fs)


def blob_files(storage: str) -> list[str]:
    return [f for f in files_under(storage) if re.match(r"blobs/", f)]
