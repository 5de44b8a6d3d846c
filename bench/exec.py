"""How long does it take to run one more process in a running container?

    sudo python3 bench/exec.py [-n RUNS] [--python PY]

Starts one container per contender running `sleep`, then times `exec ID
/bin/true` through Dockyard beside `runc exec` and `crun exec` of the same
rootfs (when installed), and `nsenter --all` into the Dockyard container's
PID 1 (the kernel's floor: setns and fork, no engine). Runs are interleaved,
as in start_latency.py, whose measuring and table this reuses. A benchmark,
not a test: it asserts nothing.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from start_latency import REPO, Context, Row, compile_once, describe, make_bundle, measure, table  # noqa: E402

sys.path.insert(0, REPO)
from tools.busybox_rootfs import make_rootfs  # noqa: E402


def start_dockyard(ctx: Context) -> tuple[subprocess.Popen, int]:
    """A Dockyard container running sleep, in the foreground of a child engine; and its PID 1."""
    engine = subprocess.Popen(ctx.engine("final", "run", "--name", "bench", "--network", "none", "--rootfs",
                                         ctx.rootfs, "sh", "-c", "echo ready; exec sleep 100000"),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": REPO, "PYTHONDONTWRITEBYTECODE": "1"}, text=True)
    if engine.stdout.readline() != "ready\n":
        raise RuntimeError("the Dockyard container did not start")
    with open(f"/proc/{engine.pid}/task/{engine.pid}/children") as f:
        return engine, int(f.read().split()[0])


def start_oci(ctx: Context, runtime: str) -> list[str] | None:
    """A `runtime run -d` container running sleep; the argv of `runtime exec` into it, or None."""
    if not shutil.which(runtime):
        ctx.notes.append(f"{runtime}: not installed, skipped")
        return None
    bundle = os.path.join(ctx.scratch, f"{runtime}-bundle")
    if not os.path.exists(bundle):
        os.rename(make_bundle(ctx, runtime), bundle)
    subprocess.run(["sed", "-i", 's|"/bin/true"|"/bin/sleep", "100000"|', os.path.join(bundle, "config.json")], check=True)
    state = os.path.join(ctx.scratch, f"{runtime}-state")
    # The container keeps the stdio it is given: a pipe here would never reach its end.
    with tempfile.TemporaryFile() as errors:
        started = subprocess.run([runtime, "--root", state, "run", "-d", "--bundle", bundle, f"bench-{runtime}"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
        if started.returncode != 0:
            errors.seek(0)
            ctx.notes.append(f"{runtime}: run -d failed, skipped: {errors.read().decode().strip()[-200:]}")
            return None
    return [runtime, "--root", state, "exec", f"bench-{runtime}", "/bin/true"]


def stop_oci(ctx: Context, runtime: str) -> None:
    state = os.path.join(ctx.scratch, f"{runtime}-state")
    subprocess.run([runtime, "--root", state, "delete", "-f", f"bench-{runtime}"], capture_output=True)


def use_bytecode_cache(ctx: Context) -> None:
    """Compile the engine once, as an installed engine has its .pyc files (the timed runs may read them)."""
    # Without it (PYTHONDONTWRITEBYTECODE=1, as on the project's machines) every exec compiles
    # every module it imports again, which costs more than all the rest of it.
    compile_once(ctx.python, ctx.impls)
    ctx.notes.append("the engine ran from compiled bytecode (final/__pycache__), as an installed one does")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=30, help="timed runs per contender (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--python", default="/usr/bin/python3", help="python that runs the engine")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: containers need root\nhint: sudo python3 bench/exec.py")
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as scratch:
        ctx = Context(rootfs=make_rootfs(os.path.join(scratch, "rootfs")), scratch=scratch, python=args.python,
                      impls=["final"])
        use_bytecode_cache(ctx)
        engine, pid1 = start_dockyard(ctx)
        oci = {runtime: start_oci(ctx, runtime) for runtime in ("runc", "crun")}
        try:
            rows = [Row("dockyard final: exec bench /bin/true", ctx.engine("final", "exec", "bench", "/bin/true")),
                    *(Row(f"{runtime} exec", argv) for runtime, argv in oci.items() if argv),
                    Row("nsenter --all -t PID1 /bin/true", ["nsenter", "--all", "-t", str(pid1), "/bin/true"]),
                    Row("dockyard final: version (the CLI's own start)", ctx.engine("final", "version"))]
            times = measure(rows, args.runs, args.warmup, ctx.notes)
        finally:
            subprocess.run(ctx.engine("final", "rm", "-f", "bench"), cwd=REPO, capture_output=True,
                           env={**os.environ, "PYTHONPATH": REPO})
            engine.wait()
            for runtime, argv in oci.items():
                if argv:
                    stop_oci(ctx, runtime)
    print(f"exec of /bin/true into a running busybox container: {args.runs} runs each, interleaved")
    print(f"engine python: {describe(args.python)}")
    print(f"machine: Linux {platform.release()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print()
    print(table(times, next(iter(times))))
    print(f"ratio: a row's median over that of {next(iter(times))!r}")
    for note in ctx.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
