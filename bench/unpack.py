"""How fast does a layer unpack? Dockyard's extractor beside GNU tar and Python's tarfile.

    sudo python3 bench/unpack.py [-n RUNS] [--size MB] [--files N] [--dir /dev/shm] [--gzip]

Builds two layers (uncompressed tar, pax format, as `tar --format=pax` writes
them), one of large files (about --size MB from /usr) and one of many small
files (--files from /usr/share), then unpacks each N times with every
contender into a fresh directory on tmpfs (--dir), interleaved so that a slow
moment of a shared machine hurts all alike, and prints the medians and the
ratio to GNU tar. Unpacking is on the path of every pull and of every first
`run` of an image.

    GNU tar                  tar -xpf, as root (owners, modes, times kept): no hashing
    tarfile                  tarfile.extractall(filter="fully_trusted"): no checks at all
    tarfile, data filter     tarfile.extractall(filter="data"): Python's safe mode (Debian 12's
                             3.11.2 has no filters: then timed in the newest pyenv 3.12+,
                             inside that python, its start not counted; its cpu includes it)
    dockyard                 final.tar.unpack: openat-style walks, whiteouts, xattrs,
                             and the sha256 of the stream (the diff id) computed on the way,
                             on a second thread when the process may run on two CPUs

The Python contenders run inside this process (as the engine unpacks inside
its own); GNU tar's time includes its exec. "cpu" is user + system time, of
all threads. Dockyard's hashing thread shortens its wall time only while a
second core is idle: on a loaded machine the two threads take turns, so note
the load average (printed) beside the figures. This is a benchmark, not a
test: it asserts nothing.
"""

import argparse
import gzip
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Callable, NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from final import tar  # noqa: E402


class Result(NamedTuple):
    layer: str
    contender: str
    wall: float  # median seconds
    cpu: float  # median seconds of user + system time
    ratio: float | None  # wall over GNU tar's wall


def make_layer(path: str, size_mb: int, source: str = "/usr", max_files: int = 0) -> tuple[int, int]:
    """Tar up files under `source` (sorted walk) until about `size_mb` (or `max_files`); return (files, bytes)."""
    chosen, total = [], 0

    def full() -> bool:
        return total >= size_mb << 20 or 0 < max_files <= len(chosen)
    for directory, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path_ = os.path.join(directory, name)
            if os.path.islink(path_) or not os.path.isfile(path_):
                continue
            chosen.append(os.path.relpath(path_, "/"))
            total += os.path.getsize(path_)
            if full():
                break
        if full():
            break
    with tempfile.NamedTemporaryFile("w", delete=False) as listing:
        listing.write("\n".join(chosen))
    subprocess.run(["tar", "--format=pax", "-C", "/", "-cf", path, "-T", listing.name], check=True)
    os.unlink(listing.name)
    return len(chosen), os.path.getsize(path)


def gnu_tar(layer: str, target: str) -> None:
    flags = "-xzpf" if layer.endswith(".gz") else "-xpf"
    subprocess.run(["tar", flags, layer, "-C", target], check=True)


def tarfile_plain(layer: str, target: str) -> None:
    with tarfile.open(layer) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(target, filter="fully_trusted")
        else:  # before 3.11.4 (Debian 12's 3.11.2): no filters, and no checks
            archive.extractall(target)


def tarfile_data(layer: str, target: str) -> float:
    """The data filter, in this python if it has one, else timed inside one that does; return its seconds."""
    if hasattr(tarfile, "data_filter"):
        with tarfile.open(layer) as archive:
            archive.extractall(target, filter="data")
        return -1.0
    code = ("import sys, tarfile, time; t = time.perf_counter(); "
            "tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='data'); print(time.perf_counter() - t)")
    result = subprocess.run([data_filter_python(), "-c", code, layer, target], capture_output=True, text=True,
                            check=True)
    return float(result.stdout)


def data_filter_python() -> str:
    """A python whose tarfile has the data filter (3.12+, or 3.11.4+): the newest pyenv one."""
    versions = os.path.expanduser("~/.pyenv/versions")
    for version in sorted(os.listdir(versions) if os.path.isdir(versions) else [], reverse=True,
                          key=lambda v: [int(x) if x.isdigit() else 0 for x in v.split(".")]):
        python = os.path.join(versions, version, "bin", "python3")
        if version.startswith("3.") and int(version.split(".")[1]) >= 12 and os.access(python, os.X_OK):
            return python
    raise FileNotFoundError("no python with tarfile's data filter (3.12+)")


def dockyard(layer: str, target: str) -> None:
    with open(layer, "rb") as f:
        tar.unpack(f, target)


CONTENDERS: dict[str, Callable[[str, str], float | None]] = {
    "GNU tar": gnu_tar, "tarfile": tarfile_plain, "tarfile, data filter": tarfile_data, "dockyard": dockyard}


def available_contenders() -> dict[str, Callable[[str, str], float | None]]:
    """Every contender this machine can run (the data filter needs a python 3.12+ somewhere)."""
    if hasattr(tarfile, "data_filter"):
        return CONTENDERS
    try:
        data_filter_python()
        return CONTENDERS
    except FileNotFoundError:
        return {name: f for name, f in CONTENDERS.items() if name != "tarfile, data filter"}


def cpu_seconds() -> float:
    """User + system time of this process and its reaped children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(layer: str, base: str, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """(wall times, cpu times) of each contender, round-robin; the first round checks that all agree."""
    contenders = available_contenders()
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in contenders}
    trees: dict[str, tuple[int, int]] = {}
    for _ in range(runs):
        for name, unpack in contenders.items():
            target = tempfile.mkdtemp(dir=base)
            start, cpu = time.perf_counter(), cpu_seconds()
            inner = unpack(layer, target)  # a child python's own time, without its start
            times[name][0].append(inner if inner and inner > 0 else time.perf_counter() - start)
            times[name][1].append(cpu_seconds() - cpu)
            if name not in trees:
                trees[name] = tree_summary(target)
            shutil.rmtree(target)
    if len(set(trees.values())) > 1:  # a fast but wrong unpacker must not win quietly
        raise SystemExit(f"the contenders unpacked different trees (files, bytes): {trees}")
    return times


def tree_summary(top: str) -> tuple[int, int]:
    """(regular files, their bytes) under `top`."""
    files = size = 0
    for directory, _, names in os.walk(top):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            files, size = files + 1, size + st.st_size
    return files, size


def summarize(label: str, times: dict[str, tuple[list[float], list[float]]]) -> list[Result]:
    gnu = statistics.median(times["GNU tar"][0])
    return [Result(label, name, statistics.median(wall), statistics.median(cpu), statistics.median(wall) / gnu)
            for name, (wall, cpu) in times.items()]


def run(runs: int = 5, directory: str = "/dev/shm", size_mb: int = 100, files: int = 9000,
        with_gzip: bool = False, say: Callable[[str], None] = print) -> list[Result]:
    """Build the layers, time every contender on each, and return the results."""
    base = tempfile.mkdtemp(prefix="dockyard-unpack-", dir=directory)
    results: list[Result] = []
    try:
        layers = []
        for name, size, source, limit in (("large files", size_mb, "/usr", 0),
                                          ("small files", 1 << 20, "/usr/share", files)):
            path = os.path.join(base, name.replace(" ", "-") + ".tar")
            count, nbytes = make_layer(path, size, source, limit)
            layers.append((f"{name} ({count} files, {nbytes / 1e6:.0f} MB)", path))
        if with_gzip:
            with open(layers[0][1], "rb") as f, gzip.open(layers[0][1] + ".gz", "wb", 6, mtime=0) as out:
                shutil.copyfileobj(f, out, 1 << 20)
            layers.append((layers[0][0].replace("files", "files, gzip", 1), layers[0][1] + ".gz"))
        for label, path in layers:
            say(f"unpacking the layer of {label}, {runs} runs each ...")
            results += summarize(label, measure(path, base, runs))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def report(results: list[Result]) -> str:
    lines = [f"{'':24} {'median':>9} {'cpu':>9} {'ratio':>7}"]
    layer = None
    for r in results:
        if r.layer != layer:
            layer = r.layer
            lines.append(f"layer of {layer}:")
        lines.append(f"  {r.contender:22} {r.wall * 1000:7.0f}ms {r.cpu * 1000:7.0f}ms {r.ratio:6.2f}x")
    lines.append("ratio: the median wall time over GNU tar's on the same layer, in the same run")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=100, help="large-file layer size in MB (default 100)")
    parser.add_argument("--files", type=int, default=9000, help="files in the small-file layer (default 9000)")
    parser.add_argument("--dir", default="/dev/shm", help="where to unpack (default /dev/shm, a tmpfs)")
    parser.add_argument("--gzip", action="store_true", help="also time the large layer gzipped")
    args = parser.parse_args()
    print(f"python: {sys.executable} {sys.version.split()[0]}; into {args.dir}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    results = run(args.runs, args.dir, args.size, args.files, args.gzip)
    print(report(results))
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
