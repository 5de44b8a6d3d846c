"""How long does it take to start a container that does nothing?

    sudo python3 bench/start_latency.py [-n RUNS] [--python PY] [--impl final] ...

Times `run --rootfs R /bin/true` through Dockyard beside the same container
started by its peers: `unshare ... chroot` (the kernel's floor: no engine at
all), and `runc run` and `crun run` of the same rootfs when they are installed.
Every contender runs N times, interleaved so that a slow moment of the machine
hurts them all alike; the table gives the median, the range and the ratio to a
baseline. This is a benchmark, not a test: it asserts nothing.

Dockyard is a Python program, so most of its start is the interpreter's own:
the `python -c pass` row shows how much. Which python runs the engine matters
(Debian's /usr/bin/python3 starts faster than a pyenv build); `--python` picks it.

To add a row (a later chapter's path, `run IMAGE` say), write a function that
takes the Context and yields Row(label, argv), and decorate it with @contender;
yield nothing when what it needs is missing. For example:

    @contender
    def dockyard_run_image(ctx: Context) -> Iterator[Row]:
        yield Row("dockyard final: run busybox", ctx.engine("final", "run", "busybox", "/bin/true"))
"""

import argparse
import ctypes
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tools.busybox_rootfs import make_rootfs  # noqa: E402



class Row(NamedTuple):
    """One line of the table: what it is, and the command to time."""
    label: str
    argv: list[str]
    preexec: Callable[[], None] | None = None  # runs in the child before exec


@dataclass
class Context:
    """What every contender may use: the rootfs, a scratch dir, the engine's python."""
    rootfs: str
    scratch: str
    python: str
    impls: list[str]
    notes: list[str] = field(default_factory=list)

    def engine(self, impl: str, *args: str) -> list[str]:
        """argv that runs Dockyard implementation `impl` (final, chapters/01_chroot ...)."""
        return [self.python, "-m", impl.rstrip("/").replace("/", "."),
                "--root", os.path.join(self.scratch, "state"), *args]


CONTENDERS: list[Callable[[Context], Iterator[Row]]] = []
# runc's default spec gives the container an empty network namespace (only lo): so does --network none.
# (final's default, a bridge with NAT as Docker's, costs a veth pair and an address on top.)
def no_network(impl: str) -> tuple[str, ...]:
    return () if "01_" in impl else ("--network", "none")  # chapter 1 has no network namespace


def contender(make: Callable[[Context], Iterator[Row]]) -> Callable[[Context], Iterator[Row]]:
    """Register a function that yields the rows it can run."""
    CONTENDERS.append(make)
    return make


# --- the contenders -------------------------------------------------------------

@contender
def dockyard_run_rootfs(ctx: Context) -> Iterator[Row]:
    for impl in ctx.impls:
        yield Row(f"dockyard {impl}: run --rootfs", ctx.engine(impl, "run", *no_network(impl), "--rootfs", ctx.rootfs,
                                                              "/bin/true"))


@contender
def dockyard_storage_drivers(ctx: Context) -> Iterator[Row]:
    """Chapter 4 on: the container's own layer, by overlay mount or by copy (--rm keeps no record)."""
    for impl in ctx.impls:
        name = os.path.basename(impl.rstrip("/"))
        if name == "final" or name[:2].isdigit() and int(name[:2]) >= 4:
            for driver in ("overlay", "vfs"):
                yield Row(f"dockyard {impl}: run --rm ({driver})", ctx.engine(
                    impl, "--storage-driver", driver, "run", "--rm", *no_network(impl), "--rootfs", ctx.rootfs,
                    "/bin/true"))


@contender
def dockyard_run_image(ctx: Context) -> Iterator[Row]:
    """`run --rm IMAGE`: the image's layers unpacked once (in the untimed import), then mounted per run."""
    for impl in ctx.impls:
        name = os.path.basename(impl.rstrip("/"))
        if name == "final" or name[:2].isdigit() and int(name[:2]) >= 5:
            imported = subprocess.run(ctx.engine(impl, "import", ctx.rootfs, "bench-busybox"), capture_output=True,
                                      env={**os.environ, "PYTHONPATH": REPO})
            if imported.returncode != 0:
                ctx.notes.append(f"{impl}: import failed, no run IMAGE row: {imported.stderr.decode()[-200:]}")
                continue
            yield Row(f"dockyard {impl}: run --rm IMAGE", ctx.engine(impl, "run", "--rm", *no_network(impl),
                                                                          "bench-busybox", "/bin/true"))


@contender
def unshare_chroot(ctx: Context) -> Iterator[Row]:
    yield Row("unshare --fork --pid --mount --uts --ipc chroot",
              ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "chroot", ctx.rootfs, "/bin/true"])


@contender
def oci_runtimes(ctx: Context) -> Iterator[Row]:
    bundle = None
    for runtime in ("runc", "crun"):
        if not shutil.which(runtime):
            ctx.notes.append(f"{runtime}: not installed, skipped")
            continue
        bundle = bundle or make_bundle(ctx, runtime)
        state = os.path.join(ctx.scratch, f"{runtime}-state")
        run = ["run", "--bundle", bundle, f"dockyard-bench-{runtime}"]
        argv = [runtime, "--root", state, *run]
        if runtime == "crun" and not works(argv) and works(argv, hide_cgroup2):
            ctx.notes.append("crun refuses a hybrid cgroup host: it ran with the cgroup2 mount hidden")
            yield Row("crun run (its default spec, v1 cgroups)", argv, hide_cgroup2)
            continue
        yield Row(f"{runtime} run (its default spec)", argv)


def works(argv: list[str], preexec: Callable[[], None] | None = None) -> bool:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          preexec_fn=preexec).returncode == 0


def hide_cgroup2() -> None:
    """In a mount namespace of the child's own, unmount the side cgroup2 of a hybrid host."""
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS, MS_REC, MS_PRIVATE, MNT_DETACH = 0x20000, 0x4000, 1 << 18, 2
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot make a private mount namespace")
    libc.umount2(b"/sys/fs/cgroup/unified", MNT_DETACH)


@contender
def interpreter_only(ctx: Context) -> Iterator[Row]:
    yield Row("python -c pass (the interpreter's start alone)", [ctx.python, "-c", "pass"])
    yield Row("python -c 'import ctypes'", [ctx.python, "-c", "import ctypes"])
    for impl in ctx.impls:  # what `run` imports before it does anything
        package = impl.rstrip("/").replace("/", ".")
        yield Row(f"python: import {package}.cli, .runtime (imports alone)",
                  [ctx.python, "-c", f"import {package}.cli, {package}.runtime"])


def make_bundle(ctx: Context, runtime: str) -> str:
    """An OCI bundle over the same rootfs: `runc spec`'s defaults, running /bin/true."""
    bundle = os.path.join(ctx.scratch, "bundle")
    os.makedirs(bundle)
    subprocess.run([runtime, "spec", "--bundle", bundle], check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    spec["root"]["path"] = ctx.rootfs
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    return bundle


# --- measuring ------------------------------------------------------------------

class Sample(NamedTuple):
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the command and the children it waited for
    rss: float  # its peak resident set, MiB (the largest of the process and its waited-for children)


def time_once(row: Row) -> Sample:
    """Run the row's command once; raise if it failed."""
    env = {**without_bytecode_switch(os.environ), "PYTHONPATH": REPO}
    start = time.perf_counter()
    child = subprocess.Popen(row.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=REPO, env=env, preexec_fn=row.preexec)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    if child.returncode != 0:
        raise RuntimeError(f"exit {child.returncode}: {stderr.decode().strip()[-300:]}")
    return Sample(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def without_bytecode_switch(env: dict) -> dict:
    """The environment minus PYTHONDONTWRITEBYTECODE: a user's python keeps its byte-code cache."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_once(python: str, impls: list[str]) -> None:
    """Write the byte-code of every implementation now, so that no timed run compiles."""
    for impl in impls:
        subprocess.run([python, "-m", "compileall", "-q", os.path.join(REPO, impl)], check=True,
                       stdout=subprocess.DEVNULL, env=without_bytecode_switch(os.environ))


def measure(rows: list[Row], runs: int, warmup: int, notes: list[str]) -> dict[str, list[Sample]]:
    """Run every row `runs` times, round-robin, after `warmup` untimed runs each."""
    times: dict[str, list[Sample]] = {row.label: [] for row in rows}
    live = list(rows)
    for round_number in range(warmup + runs):
        for row in list(live):
            try:
                sample = time_once(row)
            except (RuntimeError, OSError, subprocess.SubprocessError) as err:
                notes.append(f"dropped {row.label!r}: {err}")
                live.remove(row)
                del times[row.label]
                continue
            if round_number >= warmup:
                times[row.label].append(sample)
    return times


def table(times: dict[str, list[Sample]], baseline: str) -> str:
    """One line per contender: medians of wall and cpu time, the wall range, peak RSS, the ratio to the baseline."""
    def median(label: str, field: str) -> float:
        return statistics.median(getattr(sample, field) for sample in times[label])
    base = median(baseline, "wall") if baseline in times else None
    width = max(len(label) for label in times)
    lines = [f"{'':{width}}  {'median':>8}  {'min - max (ms)':>16}  {'ratio':>6}  {'cpu':>8}  {'rss':>8}"]
    for label, samples in times.items():
        walls = [sample.wall for sample in samples]
        ratio = f"{median(label, 'wall') / base:5.2f}x" if base else "-"
        spread = f"{min(walls) * 1e3:.1f} - {max(walls) * 1e3:.1f}"
        lines.append(f"{label:{width}}  {median(label, 'wall') * 1e3:5.1f} ms  {spread:>16}  {ratio:>6}  "
                     f"{median(label, 'cpu') * 1e3:5.1f} ms  {median(label, 'rss'):4.1f} MiB")
    return "\n".join(lines)


def describe(python: str) -> str:
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    return f"{python} (Python {version})"


def run(runs: int, warmup: int, python: str, impls: list[str], rootfs: str | None = None
        ) -> tuple[dict[str, list[Sample]], list[str]]:
    """Time every contender; return the samples by label, and notes on what was skipped or dropped."""
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as scratch:
        rootfs = os.path.abspath(rootfs) if rootfs else make_rootfs(os.path.join(scratch, "rootfs"))
        ctx = Context(rootfs=rootfs, scratch=scratch, python=python, impls=impls)
        compile_once(python, ctx.impls)
        rows = [row for make in CONTENDERS for row in make(ctx)]
        times = measure(rows, runs, warmup, ctx.notes)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ctx.notes.append(f"rss is a floor of {own:.1f} MiB, this bench's own: a forked child starts with the parent's "
                     "pages, so only a figure above it is the command's own peak")
    return times, ctx.notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=30, help="timed runs per contender (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--python", default="/usr/bin/python3", help="python that runs the engine")
    parser.add_argument("--impl", action="append", metavar="PKG",
                        help="Dockyard implementation(s): final (default), chapters/01_chroot ...")
    parser.add_argument("--rootfs", help="rootfs to run (default: a fresh busybox rootfs)")
    parser.add_argument("--baseline", help="label whose median the ratios divide by (default: runc's row)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: containers need root\nhint: sudo python3 bench/start_latency.py")
    times, notes = run(args.runs, args.warmup, args.python, args.impl or ["final"], args.rootfs)
    if not times:
        sys.exit("error: every contender failed")
    print(f"start latency of /bin/true in a busybox rootfs: {args.runs} runs each, interleaved")
    print(f"engine python: {describe(args.python)}, byte-code cached (compiled once first)")
    print(f"machine: Linux {platform.release()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print()
    baseline = args.baseline or next((label for label in times if label.startswith("runc")), next(iter(times)))
    print(table(times, baseline))
    print(f"ratio: a row's median over that of {baseline!r}")
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
