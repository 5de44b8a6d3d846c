"""How fast do images travel through our registry and our client?

    python3 bench/registry.py [--mib 200] [--layers 4] [-n 3] [--impl final]

Makes a ~200 MiB image (uncompressed random layers, so no compressor is
being measured) as an OCI layout, then times, against a fresh server each:

    skopeo push / pull   to and from our `registry serve`, and the reference
                         registry (Debian's docker-registry)
    our pull / push      the same transfers with our client, against both servers
    our unpack           after our pull, unpacking its layers into the layer store (what the
                         first `run` of the image does; a pull itself does not unpack, as skopeo)
    curl + sha256sum     the floor: the same blobs fetched by one curl, then hashed

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
    """The engine as a user runs it: byte-code cached (main compiles it once)."""
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def unpack_argv(engine: list[str], root: str, ref: str) -> list[str]:
    """Unpack every layer of `ref` into the store's layer directories, as the first `run` does."""
    impl = engine[-1]
    code = (f"import sys; from {impl}.store import Store; s = Store(sys.argv[1]); "
            "s.unpack(s.resolve(sys.argv[2]))")
    return [engine[0], "-c", code, root, ref]


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
        times["our unpack"] = timed(unpack_argv(engine, root, f"{addr}/bench:v1"))
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


PEERS = ("skopeo", "docker-registry", "curl")


def run(mib: int = 200, layers: int = 4, runs: int = 3, impl: str = "final",
        python: str = sys.executable) -> dict[str, dict[str, float]]:
    """Median seconds of every operation, by server ("reference", "ours")."""
    engine = [python, "-m", impl]
    subprocess.run([python, "-m", "compileall", "-q", os.path.join(REPO, impl.replace(".", "/"))],
                   check=True, stdout=subprocess.DEVNULL, env=engine_env())
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-")
    try:
        layout = os.path.join(scratch, "image")
        write_image(layout, mib, layers)
        rounds = {kind: [one_round(kind, layout, scratch, engine, turn) for turn in range(runs)]
                  for kind in ("reference", "ours")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {kind: {op: statistics.median(r[op] for r in runs_) for op in runs_[0]} for kind, runs_ in rounds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("-n", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--impl", default="final", help="package to run as `python -m IMPL`")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    for tool in PEERS:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    print(f"image: {args.mib} MiB in {args.layers} uncompressed layers; median of {args.n} runs; "
          f"engine python {args.python}; load {os.getloadavg()[0]:.1f}")
    print(report(run(args.mib, args.layers, args.n, args.impl, args.python), args.mib))


def report(medians: dict[str, dict[str, float]], mib: int) -> str:
    """A table of medians, with ratios to skopeo against the reference registry."""
    lines = [f"{'':16}{'reference registry':>20}{'our registry':>16}"]
    for op in ("skopeo push", "skopeo pull", "our push", "our pull", "our unpack", "curl + sha256sum"):
        ref, ours = medians["reference"][op], medians["ours"][op]
        lines.append(f"{op:16}{ref:>18.2f} s{ours:>14.2f} s   ({mib / ours:.0f} MiB/s on ours)")
    lines.append("our pull stores the blobs (fsynced) and does not unpack them, as skopeo; "
                 "'our unpack' is what the first run adds")
    lines += [f"{what}: {ratio:.2f}x {against}" for what, ratio, against in ratios(medians)]
    return "\n".join(lines)


def ratios(medians: dict[str, dict[str, float]]) -> list[tuple[str, float, str]]:
    """(what, time ratio, against what), all on the reference registry unless said."""
    ref, ours = medians["reference"], medians["ours"]
    return [("pull", ref["our pull"] / ref["skopeo pull"], "skopeo pull"),
            ("push", ref["our push"] / ref["skopeo push"], "skopeo push"),
            ("pull", ref["our pull"] / ref["curl + sha256sum"], "curl + sha256sum (the floor)"),
            ("pull + unpack", (ref["our pull"] + ref["our unpack"]) / ref["curl + sha256sum"],
             "curl + sha256sum (the floor)"),
            ("pull from our registry", ours["our pull"] / ours["curl + sha256sum"], "curl + sha256sum there"),
            ("skopeo pull from our registry", ours["skopeo pull"] / ref["skopeo pull"], "from the reference")]


if __name__ == "__main__":
    main()
