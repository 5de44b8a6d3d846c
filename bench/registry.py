"""How fast do images travel through our registry and our client?

    python3 bench/registry.py [--mib 200] [--layers 4] [-n 3] [--impl final]

Makes a ~200 MiB image (uncompressed random layers, so no compressor is
being measured) as an OCI layout, then times, against a fresh server each:

    skopeo push / pull   to and from our `registry serve`, and the reference
                         registry (Debian's docker-registry)
    our pull / push      the same transfers with our client, against both servers

Each figure is the median of N runs (a pull goes to an empty store, skopeo
and our client taking turns to pull first; a push goes to an empty
registry). Everything stays on loopback. A benchmark, not a test: it
asserts nothing. Both servers write to the same disk; ours fsyncs
every blob before it becomes visible, as does our client's store.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYER = "application/vnd.oci.image.layer.v1.tar"


def write_image(directory: str, mib: int, layers: int) -> None:
    """An OCI layout with `layers` tar layers of random data, `mib` MiB in all."""
    blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(blobs)
    descriptors, diff_ids = [], []
    for i in range(layers):
        data = tar_of(f"layer{i}.bin", os.urandom(mib * 1024 * 1024 // layers))
        digest = put(blobs, data)
        descriptors.append({"mediaType": LAYER, "digest": digest, "size": len(data)})
        diff_ids.append(digest)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(blobs, config), "size": len(config)},
                           "layers": descriptors}).encode()
    digest = put(blobs, manifest)
    with open(os.path.join(directory, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(directory, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)


def tar_of(name: str, data: bytes) -> bytes:
    import io
    import tarfile
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def put(blobs: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return f"sha256:{digest}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"no server on port {port}")


@contextmanager
def server(kind: str, scratch: str, engine: list[str]):
    """A fresh registry of `kind` ("ours" or "reference") on a free port: yields host:port."""
    port, storage = free_port(), tempfile.mkdtemp(dir=scratch)
    if kind == "ours":
        argv = [*engine, "--root", storage, "registry", "serve", "--addr", f"127.0.0.1:{port}",
                "--storage", storage]
    else:
        config = os.path.join(storage, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n"
                    f"  filesystem:\n    rootdirectory: {storage}\nhttp:\n  addr: 127.0.0.1:{port}\n")
        argv = ["docker-registry", "serve", config]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=engine_env())
    try:
        wait_for(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(storage, ignore_errors=True)


def engine_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": REPO}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=engine_env())
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr}")
    return elapsed


def one_round(kind: str, layout: str, scratch: str, engine: list[str], turn: int) -> dict[str, float]:
    """skopeo push, then skopeo pull and our pull against a fresh server; our push to another fresh one."""
    times = {}
    root, out = tempfile.mkdtemp(dir=scratch), tempfile.mkdtemp(dir=scratch)
    with server(kind, scratch, engine) as addr:
        ref = f"docker://{addr}/bench:v1"
        times["skopeo push"] = timed(["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false",
                                      f"oci:{layout}:v1", ref])
        pulls = {"skopeo pull": ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                                 ref, f"oci:{out}:v1"],
                 "our pull": [*engine, "--root", root, "pull", "-q", f"{addr}/bench:v1"]}
        # The pulls take turns to go first: on a VM the first to fill the page cache after a big
        # delete (the previous round's) can pay most of a second of kernel time for it.
        for op in sorted(pulls, reverse=turn % 2 == 1):
            times[op] = timed(pulls[op])
        shutil.rmtree(out)
        times["curl + sha256sum"] = timed(floor_argv(addr, tempfile.mkdtemp(dir=scratch)))
    old = addr
    with server(kind, scratch, engine) as addr:
        # a new server, so nothing to skip; the old name is on another port, so nothing to mount
        subprocess.run([*engine, "--root", root, "tag", f"{old}/bench:v1", f"{addr}/fresh:v1"],
                       env=engine_env(), check=True)
        times["our push"] = timed([*engine, "--root", root, "push", "-q", f"{addr}/fresh:v1"])
    shutil.rmtree(root)
    return times


def floor_argv(addr: str, out: str) -> list[str]:
    """The floor of a pull: the manifest and every blob fetched by one curl into files, then hashed.

    No client does less: it must fetch each byte, and hash it to check the digest. The blobs are those
    the server holds (skopeo compresses uncompressed layers when it pushes), read from the manifest first."""
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    request = urllib.request.Request(f"http://{addr}/v2/bench/manifests/v1", headers={"Accept": accept})
    with urllib.request.urlopen(request) as answer:
        manifest = json.load(answer)
    digests = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    fetches = " ".join(f"-o {out}/{i} http://{addr}/v2/bench/blobs/{d}" for i, d in enumerate(digests, 1))
    return ["sh", "-c", f"curl -sSf -H '{accept}' -o {out}/0 http://{addr}/v2/bench/manifests/v1 {fetches}"
                        f" && sha256sum {out}/* >/dev/null && rm -r {out}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("-n", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--impl", default="final", help="package to run as `python -m IMPL`")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    engine = [args.python, "-m", args.impl]
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-")
    try:
        layout = os.path.join(scratch, "image")
        write_image(layout, args.mib, args.layers)
        report(args, {kind: [one_round(kind, layout, scratch, engine, turn) for turn in range(args.n)]
                      for kind in ("reference", "ours")})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(args: argparse.Namespace, rounds: dict[str, list[dict[str, float]]]) -> None:
    """A table of medians, with ratios to skopeo against the reference registry."""
    print(f"image: {args.mib} MiB in {args.layers} uncompressed layers; median of {args.n} runs; "
          f"python {sys.version.split()[0]}")
    print(f"{'':14}{'reference registry':>22}{'our registry':>16}")
    medians = {kind: {op: statistics.median(r[op] for r in runs) for op in runs[0]} for kind, runs in rounds.items()}
    for op in ("skopeo push", "skopeo pull", "our push", "our pull", "curl + sha256sum"):
        ref, ours = medians["reference"][op], medians["ours"][op]
        print(f"{op:14}{ref:>20.2f} s{ours:>14.2f} s   ({args.mib / ours:.0f} MiB/s on ours)")
    print(f"ratios (time / skopeo on the reference registry): "
          f"skopeo push to ours {medians['ours']['skopeo push'] / medians['reference']['skopeo push']:.2f}, "
          f"skopeo pull from ours {medians['ours']['skopeo pull'] / medians['reference']['skopeo pull']:.2f}, "
          f"our push {medians['reference']['our push'] / medians['reference']['skopeo push']:.2f}, "
          f"our pull {medians['reference']['our pull'] / medians['reference']['skopeo pull']:.2f}")
    print(f"our pull over the floor (curl + sha256sum of the same blobs, same server): "
          f"{medians['reference']['our pull'] / medians['reference']['curl + sha256sum']:.2f} (reference registry), "
          f"{medians['ours']['our pull'] / medians['ours']['curl + sha256sum']:.2f} (ours); "
          "a pull stores the blobs (fsynced) and does not unpack them, as skopeo")


if __name__ == "__main__":
    main()
