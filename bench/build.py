"""How fast does `build` go, cold and from its cache, beside `buildah bud`?

    sudo python3 bench/build.py [-n 3] [--impl final]

One 10-step Dockerfile on a busybox base (ENV, ARG, LABEL, three COPYs,
three RUNs, CMD) and a small context. For each builder, in the same run:

    cold      an empty cache (only the base image present)
    cached    the same build again: every step from the cache
    one file  one copied file changed: the steps from its COPY on run again

Dockyard imports the base from a busybox rootfs (tools/busybox_rootfs.py);
buildah gets that very image, copied by skopeo out of our OCI layout into a
storage of its own, and builds with `bud --layers --isolation chroot` so
that it caches too. Each figure is the median
of N runs. A benchmark, not a test: it asserts nothing.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools.busybox_rootfs import make_rootfs  # noqa: E402

DOCKERFILE = """\
FROM {base}
ENV APP=/app GREETING=hello
ARG LEVEL=2
LABEL purpose=benchmark
COPY config/ /app/config/
RUN mkdir -p /app/bin && echo "$GREETING" > /app/greeting
COPY src/ /app/src/
RUN cat /app/src/*.sh > /app/bin/all.sh && chmod +x /app/bin/all.sh
COPY VERSION /app/
RUN echo "level $LEVEL" >> /app/greeting
CMD ["/app/bin/all.sh"]
"""


def write_context(directory: str, base: str) -> None:
    os.makedirs(os.path.join(directory, "config"))
    os.makedirs(os.path.join(directory, "src"))
    with open(os.path.join(directory, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE.format(base=base))
    for i in range(20):
        with open(os.path.join(directory, "config", f"c{i}.conf"), "w") as f:
            f.write(f"key{i}=value{i}\n" * 50)
        with open(os.path.join(directory, "src", f"s{i}.sh"), "w") as f:
            f.write(f"echo part {i}\n")
    with open(os.path.join(directory, "VERSION"), "w") as f:
        f.write("1.0\n")


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{argv[0]} failed: {result.stderr[-2000:]}")
    return time.monotonic() - started


class Dockyard:
    """`python -m IMPL build` with a --root of its own."""

    def __init__(self, scratch: str, impl: str, rootfs: str) -> None:
        self.root, self.impl = os.path.join(scratch, "dockyard"), impl
        # Bytecode caches on, as a user has them: we time the builder, not the compiler.
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPATH"] = REPO
        subprocess.run(self.cli("import", rootfs, "busybox"), check=True, capture_output=True, env=self.env)

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", self.impl, "--root", self.root, *args]

    def build(self, context: str) -> float:
        return timed(self.cli("build", "-t", "bench", context), self.env)

    def forget_cache(self) -> None:
        shutil.rmtree(os.path.join(self.root, "build-cache"), ignore_errors=True)


class Buildah:
    """`buildah bud --layers` with a storage of its own."""

    # Debian 12's buildah 1.28 fails COPY into a new directory on its overlay driver here
    # (kernel 6.18: "chdir .../merged/app/config: no such file"); vfs works. Try overlay first.
    driver = os.environ.get("BUILDAH_DRIVER", "vfs")

    def __init__(self, scratch: str, layout: str) -> None:
        store, run = os.path.join(scratch, "buildah"), os.path.join(scratch, "run")
        self.flags = ["--root", store, "--runroot", run, "--storage-driver", self.driver]
        # The very image Dockyard builds on, copied by skopeo from our OCI layout.
        subprocess.run(["skopeo", "copy", "-q", f"oci:{layout}:busybox:latest",
                        f"containers-storage:[{self.driver}@{store}+{run}]localhost/busybox:latest"], check=True)

    def build(self, context: str) -> float:
        return timed(["buildah", *self.flags, "bud", "--layers", "--isolation", "chroot", "-q",
                      "-t", "bench", context])

    def forget_cache(self) -> None:
        subprocess.run(["buildah", *self.flags, "rmi", "-a", "-f"], capture_output=True)


def measure(builder, context: str, runs: int, rebase: callable) -> dict[str, float]:
    """Median cold, cached and one-file-changed build times."""
    cold, cached, changed = [], [], []
    for i in range(runs):
        builder.forget_cache()
        rebase()
        cold.append(builder.build(context))
        cached.append(builder.build(context))
        with open(os.path.join(context, "VERSION"), "w") as f:
            f.write(f"1.{i + 1}\n")
        changed.append(builder.build(context))
    return {"cold": statistics.median(cold), "cached": statistics.median(cached),
            "one file": statistics.median(changed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3)
    parser.add_argument("--impl", default="final", help="package to run: final or chapters.07_dockerfile")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: builds mount overlays and start containers")
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-build-")
    try:
        rootfs = make_rootfs(os.path.join(scratch, "rootfs"))
        results = {}
        ours = Dockyard(scratch, args.impl, rootfs)
        context = os.path.join(scratch, "ctx-dockyard")
        write_context(context, "busybox")
        results["dockyard"] = measure(ours, context, args.runs, lambda: None)
        if shutil.which("buildah"):
            layout = os.path.join(ours.root, "images")
            theirs = Buildah(scratch, layout)
            context = os.path.join(scratch, "ctx-buildah")
            write_context(context, "localhost/busybox")
            results["buildah bud"] = measure(theirs, context, args.runs,
                                             lambda: theirs.__init__(scratch, layout))
        report(results)
    finally:
        subprocess.run(["buildah", "--root", os.path.join(scratch, "buildah"), "--runroot",
                        os.path.join(scratch, "run"), "rm", "-a"], capture_output=True)
        subprocess.run(["umount", "-R", os.path.join(scratch, "buildah")], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def report(results: dict[str, dict[str, float]]) -> None:
    print(f"{'builder':<14}{'cold':>10}{'cached':>10}{'one file':>10}")
    for name, row in results.items():
        print(f"{name:<14}" + "".join(f"{row[k]:>9.2f}s" for k in ("cold", "cached", "one file")))
    if len(results) == 2:
        ours, theirs = results["dockyard"], results["buildah bud"]
        print(f"{'ratio':<14}" + "".join(f"{ours[k] / theirs[k]:>9.2f}x" for k in ("cold", "cached", "one file")))


if __name__ == "__main__":
    sys.exit(main())
