"""How fast does a layer unpack? Dockyard's extractor beside GNU tar and Python's tarfile.

    sudo python3 bench/unpack.py [-n RUNS] [--size MB] [--dir /dev/shm] [--source /usr] [--gzip]

Builds a layer of about --size MB (uncompressed tar, pax format) from files
under /usr, then unpacks it N times with each contender into a fresh
directory on tmpfs (--dir), interleaved, and prints the median and range.
Unpacking is on the start path of every new image.

    GNU tar                  tar -xpf, as root (owners, modes, times kept)
    tarfile                  tarfile.extractall(filter="fully_trusted"): no checks at all
    tarfile, data filter     tarfile.extractall(filter="data"): Python's safe mode
    dockyard                 final.tar.unpack: openat-style walks, whiteouts, xattrs,
                             and the sha256 of the stream (the diff id) computed on the way

This is a benchmark, not a test: it asserts nothing.
"""

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from final import tar  # noqa: E402


def make_layer(path: str, size_mb: int, source: str = "/usr") -> tuple[int, int]:
    """Tar up files under `source` (sorted walk) until about `size_mb`; return (files, bytes)."""
    chosen, total = [], 0
    for directory, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            chosen.append(os.path.relpath(full, "/"))
            total += os.path.getsize(full)
            if total >= size_mb << 20:
                break
        if total >= size_mb << 20:
            break
    with tempfile.NamedTemporaryFile("w", delete=False) as listing:
        listing.write("\n".join(chosen))
    subprocess.run(["tar", "--format=pax", "-C", "/", "-cf", path, "-T", listing.name], check=True)
    os.unlink(listing.name)
    return len(chosen), os.path.getsize(path)


def gnu_tar(layer: str, target: str) -> None:
    subprocess.run(["tar", "-xpf", layer, "-C", target], check=True)


def tarfile_plain(layer: str, target: str) -> None:
    with tarfile.open(layer) as archive:
        archive.extractall(target, filter="fully_trusted")


def tarfile_data(layer: str, target: str) -> None:
    with tarfile.open(layer) as archive:
        archive.extractall(target, filter="data")


def dockyard(layer: str, target: str) -> None:
    with open(layer, "rb") as f:
        tar.unpack(f, target)


def measure(contenders: dict[str, Callable[[str, str], None]], layer: str, base: str, runs: int) -> dict:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, unpack in contenders.items():
            target = tempfile.mkdtemp(dir=base)
            start = time.perf_counter()
            unpack(layer, target)
            times[name].append(time.perf_counter() - start)
            shutil.rmtree(target)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description="unpack benchmark")
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=100, help="layer size in MB (default 100)")
    parser.add_argument("--dir", default="/dev/shm", help="where to unpack (default /dev/shm, a tmpfs)")
    parser.add_argument("--gzip", action="store_true", help="also time a gzip layer")
    parser.add_argument("--source", default="/usr", help="where the layer's files come from (default /usr; "
                                                         "/usr/share gives many small files)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="dockyard-unpack-", dir=args.dir)
    try:
        layer = os.path.join(base, "layer.tar")
        files, size = make_layer(layer, args.size, args.source)
        print(f"layer: {files} files, {size / 1e6:.0f} MB uncompressed; {args.runs} runs each, into {args.dir}")
        contenders = {"GNU tar": gnu_tar, "tarfile": tarfile_plain, "tarfile, data filter": tarfile_data,
                      "dockyard": dockyard}
        report(measure(contenders, layer, base, args.runs))
        if args.gzip:
            with open(layer, "rb") as f, open(layer + ".gz", "wb") as out:
                out.write(gzip.compress(f.read(), 6, mtime=0))
            print(f"\ngzip layer: {os.path.getsize(layer + '.gz') / 1e6:.0f} MB")
            report(measure({"GNU tar (gzip)": lambda l, t: subprocess.run(["tar", "-xzpf", l, "-C", t], check=True),
                            "tarfile (gzip)": tarfile_plain, "dockyard (gzip)": dockyard},
                           layer + ".gz", base, args.runs))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(times: dict[str, list[float]]) -> None:
    print(f"{'':24} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in times.items():
        print(f"{name:24} {statistics.median(values) * 1000:7.0f}ms {min(values) * 1000:7.0f}ms "
              f"{max(values) * 1000:7.0f}ms")


if __name__ == "__main__":
    main()
