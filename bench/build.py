"""How fast does `build` go, cold and from its cache, beside `buildah bud` and BuildKit?

    sudo python3 bench/build.py [-n 3] [--impl final] [--python /usr/bin/python3]

One 10-step Dockerfile on a busybox base (ENV, ARG, LABEL, three COPYs,
three RUNs, CMD) and a small context. For each builder, in the same run:

    cold      an empty cache (only the base image present)
    cached    the same build again: every step from the cache
    one file  one copied file changed: the steps from its COPY on run again

Dockyard imports the base from a busybox rootfs (tools/busybox_rootfs.py).
The peers get that very image, and no network:

    buildah bud   copied by skopeo out of our OCI layout into a storage of its own;
                  `bud --layers --isolation chroot`, so that it caches too
    BuildKit      `DOCKER_BUILDKIT=1 docker build --network none` against a dockerd
                  started for this bench alone (Debian's docker.io: its own data, exec
                  root and socket in a temp dir, no iptables, no bridge), the image
                  `docker load`ed from `dockyard save`; stopped, and its cgroups
                  removed, at the end. It never pulls.

A builder that is not installed is a row that says so. Each figure is the
median of N runs. A benchmark, not a test: it asserts nothing.
"""

import argparse
import glob
import os
import shutil
import signal
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


class BuilderFailed(Exception):
    """A builder's command failed: its row says so, the others go on."""


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if result.returncode != 0:
        raise BuilderFailed(f"{os.path.basename(argv[0])} failed: {result.stderr.strip()[-300:]}")
    return time.monotonic() - started


class Dockyard:
    """`python -m IMPL build` with a --root of its own."""

    def __init__(self, scratch: str, impl: str, rootfs: str, python: str) -> None:
        self.root, self.impl, self.python = os.path.join(scratch, "dockyard"), impl, python
        # Bytecode caches on, as a user has them: we time the builder, not the compiler.
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPATH"] = REPO
        subprocess.run([python, "-m", "compileall", "-q", os.path.join(REPO, impl.replace(".", "/"))],
                       check=True, capture_output=True, env=self.env)
        subprocess.run(self.cli("import", rootfs, "busybox"), check=True, capture_output=True, env=self.env)

    def cli(self, *args: str) -> list[str]:
        return [self.python, "-m", self.impl, "--root", self.root, *args]

    def save_base(self, archive: str) -> None:
        """The base image as a tar that `docker load` reads (OCI layout + manifest.json)."""
        subprocess.run(self.cli("save", "-o", archive, "busybox"), check=True, capture_output=True, env=self.env)

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
        self.layout, self.storage = layout, f"containers-storage:[{self.driver}@{store}+{run}]"
        self.copy_base()

    def copy_base(self) -> None:
        """The very image Dockyard builds on, copied by skopeo from our OCI layout."""
        subprocess.run(["skopeo", "copy", "-q", f"oci:{self.layout}:busybox:latest",
                        self.storage + "localhost/busybox:latest"], check=True, capture_output=True)

    def build(self, context: str) -> float:
        return timed(["buildah", *self.flags, "bud", "--layers", "--isolation", "chroot", "-q",
                      "-t", "bench", context])

    def forget_cache(self) -> None:
        subprocess.run(["buildah", *self.flags, "rmi", "-a", "-f"], capture_output=True)
        self.copy_base()  # rmi -a took the base too

    def close(self) -> None:
        subprocess.run(["buildah", *self.flags, "rm", "-a"], capture_output=True)
        subprocess.run(["umount", "-R", self.flags[1]], capture_output=True)


class BuildKit:
    """`DOCKER_BUILDKIT=1 docker build` against a dockerd of the bench's own, with no network."""

    def __init__(self, scratch: str, dockerd: str, archive: str) -> None:
        self.home = os.path.join(scratch, "docker")
        os.makedirs(self.home)
        socket = os.path.join(self.home, "docker.sock")
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "1"}
        # Debian's docker.io ships its own client beside the daemon; a newer client elsewhere on PATH
        # wants the buildx plugin for BuildKit.
        beside = os.path.join(os.path.dirname(os.path.dirname(dockerd)), "bin", "docker")
        self.docker = beside if os.access(beside, os.X_OK) else shutil.which("docker") or "docker"
        self.cgroups_before = set(docker_cgroups())
        with open(os.path.join(self.home, "dockerd.log"), "w") as log:
            self.daemon = subprocess.Popen(
                [dockerd, "--data-root", os.path.join(self.home, "data"), "--exec-root",
                 os.path.join(self.home, "exec"), "--pidfile", os.path.join(self.home, "dockerd.pid"),
                 "-H", f"unix://{socket}", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                 "--bridge=none"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_until_ready()
        subprocess.run([self.docker, "load", "-q", "-i", archive], check=True, capture_output=True, env=self.env)

    def wait_until_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while subprocess.run([self.docker, "version"], capture_output=True, env=self.env).returncode != 0:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(self.home, "dockerd.log")) as log:
                    raise BuilderFailed(f"dockerd did not start: {log.read()[-300:]}")
            time.sleep(0.2)

    def build(self, context: str) -> float:
        return timed([self.docker, "build", "-q", "--network", "none", "-t", "bench", context], self.env)

    def forget_cache(self) -> None:
        subprocess.run([self.docker, "builder", "prune", "-a", "-f"], capture_output=True, env=self.env)

    def close(self) -> None:
        """Stop the daemon (it stops its containerd), then remove what it left: mounts, cgroups, files."""
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
        subprocess.run(["umount", "-R", "-l", self.home], capture_output=True)
        for cgroup in sorted(set(docker_cgroups()) - self.cgroups_before, key=len, reverse=True):
            try:
                os.rmdir(cgroup)
            except OSError:
                pass  # still in use, or already gone


def docker_cgroups() -> list[str]:
    """The cgroups dockerd makes for BuildKit's RUN steps (docker/, docker/buildkit/) in every hierarchy."""
    return [path for pattern in ("/sys/fs/cgroup/*/docker", "/sys/fs/cgroup/*/docker/buildkit")
            for path in glob.glob(pattern)]


def measure(builder, context: str, runs: int) -> dict[str, float]:
    """Median cold, cached and one-file-changed build times."""
    cold, cached, changed = [], [], []
    for i in range(runs):
        builder.forget_cache()
        cold.append(builder.build(context))
        cached.append(builder.build(context))
        with open(os.path.join(context, "VERSION"), "w") as f:
            f.write(f"1.{i + 1}\n")
        changed.append(builder.build(context))
    return {"cold": statistics.median(cold), "cached": statistics.median(cached),
            "one file": statistics.median(changed)}


def run(runs: int = 3, impl: str = "final", python: str = "/usr/bin/python3",
        say=print) -> dict[str, dict[str, float] | str]:
    """Every builder's medians, or a line saying why it has none."""
    scratch = tempfile.mkdtemp(prefix="dockyard-bench-build-")
    results: dict[str, dict[str, float] | str] = {}
    peers = []
    try:
        rootfs = make_rootfs(os.path.join(scratch, "rootfs"))
        ours = Dockyard(scratch, impl, rootfs, python)
        peers.append(("dockyard", lambda: ours, "busybox"))
        if shutil.which("buildah") and shutil.which("skopeo"):
            peers.append(("buildah bud", lambda: Buildah(scratch, os.path.join(ours.root, "images")),
                          "localhost/busybox"))
        else:
            results["buildah bud"] = "not installed (apt-get install buildah)"
        dockerd = shutil.which("dockerd")
        if dockerd:
            archive = os.path.join(scratch, "busybox.tar")
            ours.save_base(archive)
            peers.append(("BuildKit", lambda: BuildKit(scratch, dockerd, archive), "busybox:latest"))
        else:
            results["BuildKit"] = "not installed (apt-get install --no-install-recommends docker.io)"
        for name, start, base in peers:
            say(f"building with {name}, {runs} runs ...")
            builder = None
            try:
                builder = start()
                context = os.path.join(scratch, "ctx-" + name.split()[0].lower())
                write_context(context, base)
                results[name] = measure(builder, context, runs)
            except (BuilderFailed, subprocess.CalledProcessError) as err:
                results[name] = f"failed: {err}"
            finally:
                if builder is not None and hasattr(builder, "close"):
                    builder.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def report(results: dict[str, dict[str, float] | str]) -> str:
    keys = ("cold", "cached", "one file")
    lines = [f"{'builder':<14}" + "".join(f"{k:>10}" for k in keys) + "   ratio (dockyard over it)"]
    ours = results.get("dockyard")
    for name, row in results.items():
        if isinstance(row, str):
            lines.append(f"{name:<14}{row}")
            continue
        line = f"{name:<14}" + "".join(f"{row[k]:>9.2f}s" for k in keys)
        if name != "dockyard" and isinstance(ours, dict):
            line += "   " + " ".join(f"{ours[k] / row[k]:.2f}x" for k in keys)
        lines.append(line)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3)
    parser.add_argument("--impl", default="final", help="package to run: final or chapters.07_dockerfile")
    parser.add_argument("--python", default="/usr/bin/python3", help="python that runs the engine")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: builds mount overlays and start containers")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"python: {args.python}, byte-code cached; load {os.getloadavg()[0]:.1f}")
    print(report(run(args.runs, args.impl, args.python)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
